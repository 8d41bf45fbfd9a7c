"""The study's numbers as the book's prose shows them, per chapter: one call glues them all.

``study_prose.glue("01_cohort")`` glues every name of :func:`texts` for that chapter, so a
markdown cell (or a page of ``book/``) can write ``{glue:text}`study_patients_raw```; every value
is formatted from :mod:`medcoding.study`, none is typed.
"""

from __future__ import annotations

from collections.abc import Callable

from medcoding import readings, study


def _cohort() -> dict[str, str]:
    return {"study_patients_raw": f"{study.COHORT['patients_raw']:,}",
            "study_patients_kept": f"{study.COHORT['patients_after_preprocessing']:,}",
            "study_codes_per_course": f"{study.TRAINING['codes_per_course']}",
            "study_max_characters": f"{study.COHORT['max_note_characters']:,}"}


def _results() -> dict[str, str]:
    return {"study_test_patients": f"{study.COHORT['test_patients']:,}",
            "study_train_patients": f"{study.COHORT['train_patients']:,}",
            "study_epochs": f"{study.TRAINING['epochs']}"}


def _scaling() -> dict[str, str]:
    wide = study.table1_wide()
    sizes = study.table1_level3_columns()
    gains = wide[sizes[-1]] - wide[sizes[0]]
    fastest = gains.idxmax()  # the metric that rose most
    return {"study_fastest_metric": fastest,
            "study_fastest_from": f"{wide.loc[fastest, sizes[0]]:.3f}",
            "study_fastest_to": f"{wide.loc[fastest, sizes[-1]]:.3f}",
            "study_smallest": sizes[0], "study_largest": sizes[-1]}


def _specialties() -> dict[str, str]:
    extremes = study.SPECIALTY_RANGE.sort_values("f1_micro")
    low, high = extremes.iloc[0], extremes.iloc[-1]
    return {"study_min_department": f"{study.MIN_DEPARTMENT_TEST_COURSES:,}",
            "study_low_specialty": f"{low['f1_micro']:.0%} ({low['specialty']})",
            "study_high_specialty": f"{high['f1_micro']:.0%} ({high['specialty']})"}


def _code_frequency() -> dict[str, str]:
    return {"study_never": f"{study.CODE_FREQUENCY['never_predicted_share']:.1%}",
            "study_min_count": f"{study.SECONDARY_SHARE['min_training_count']:,}"}


def _primary_secondary() -> dict[str, str]:
    return {"study_secondary_recall": f"{study.PRIORITY_RECALL['secondary_recall@10']:.0%}"}


def _undercoding() -> dict[str, str]:
    validated = study.UNDERCODING["validated"]
    return {"study_review_size": f"{study.REVIEW_SAMPLE_SIZE}",
            **{f"study_secondary_{spec[:3]}": f"{study.undercoding(spec)['secondary_share']:.1%}"
               for spec in ("E66", "I10-I15")},
            "study_x60_cases": f"{study.undercoding('X60-X84')['human_coded_cases']:,}",
            "study_validated_range": f"{validated.min():.0%} to {validated.max():.0%}"}


def _documentation() -> dict[str, str]:
    return {"study_e14_share": f"{study.DIABETES['specific_preferred_share']:.0%}",
            "study_i50_share": f"{study.HEART_FAILURE['low_confidence_share']:.1%}"}


CHAPTERS: dict[str, Callable[[], dict[str, str]]] = {
    "01_cohort": _cohort, "03_results": _results, "04_scaling": _scaling,
    "05_specialties": _specialties, "06_code_frequency": _code_frequency,
    "07_primary_secondary": _primary_secondary, "08_undercoding": _undercoding,
    "09_documentation": _documentation,
}


def texts(chapter: str) -> dict[str, str]:
    """``{glue name: text}`` of the study's numbers that ``chapter``'s prose shows."""
    if chapter not in CHAPTERS:
        raise KeyError(f"no study numbers for chapter {chapter!r}; chapters: {sorted(CHAPTERS)}")
    return CHAPTERS[chapter]()


def glue(chapter: str) -> dict[str, str]:
    """Glue every text of :func:`texts` for myst-nb (not shown in the output); returns them."""
    values = texts(chapter)
    for name, text in values.items():
        readings.glue(name, text)
    return values
