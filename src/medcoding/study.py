"""The study's reported numbers, as data, so every notebook can put them beside ours.

Source: Edin et al., "A medical coding language model trained on clinical narratives from a
population-wide cohort of 1.8 million patients" (the text in ``shared/paper``). Percentages are
stored as fractions (0.718, not 71.8). Each value is quoted from the Results or Methods section;
where the paper states one thing twice with different numbers, both are kept and the docstring
says so.
"""

from __future__ import annotations

import pandas as pd

#: Table 1 rows in the order the study prints them, mapped to ``medcoding.metrics`` names.
METRIC_NAMES = {
    "f1_micro": "F1 micro",
    "f1_macro": "F1 macro",
    "exact_match": "Exact match ratio",
    "recall@5": "Recall@5",
    "recall@10": "Recall@10",
    "recall@15": "Recall@15",
    "map": "Mean average precision",
    "precision@recall": "Precision@recall",
}

_TABLE1_COLUMNS = [  # (training patients, ICD-10 level, label)
    (50_000, "3", "50K"),
    (100_000, "3", "100K"),
    (200_000, "3", "200K"),
    (500_000, "3", "500K"),
    (1_000_000, "3", "1M"),
    (1_800_000, "3", "1.8M"),
    (1_000_000, "full", "1M (level 5)"),
]

_TABLE1_VALUES = {
    "f1_micro": [0.599, 0.617, 0.658, 0.690, 0.701, 0.718, 0.546],
    "f1_macro": [0.256, 0.263, 0.305, 0.410, 0.436, 0.473, 0.101],
    "exact_match": [0.370, 0.425, 0.473, 0.517, 0.520, 0.546, 0.332],
    "recall@5": [0.822, 0.853, 0.878, 0.898, 0.905, 0.914, 0.784],
    "recall@10": [0.887, 0.909, 0.930, 0.944, 0.949, 0.955, 0.860],
    "recall@15": [0.913, 0.931, 0.948, 0.960, 0.964, 0.969, 0.892],
    "map": [0.724, 0.749, 0.780, 0.807, 0.815, 0.828, 0.665],
    "precision@recall": [0.629, 0.654, 0.690, 0.722, 0.731, 0.748, 0.561],
}


def table1() -> pd.DataFrame:
    """Table 1 in long form: ``train_patients, level, column, metric, metric_name, value``.

    Level ``"3"`` is the ICD-10 category, ``"full"`` the study's level-5 code. All columns are
    evaluated against human codes on the same test set of 270,000 patients.
    """
    rows = [
        {
            "train_patients": patients,
            "level": level,
            "column": label,
            "metric": metric,
            "metric_name": METRIC_NAMES[metric],
            "value": values[index],
        }
        for metric, values in _TABLE1_VALUES.items()
        for index, (patients, level, label) in enumerate(_TABLE1_COLUMNS)
    ]
    return pd.DataFrame(rows)


def table1_wide() -> pd.DataFrame:
    """Table 1 as printed: one row per metric, one column per training size/level."""
    long = table1()
    wide = long.pivot(index="metric", columns="column", values="value")
    wide = wide.loc[list(METRIC_NAMES), [label for _, _, label in _TABLE1_COLUMNS]]
    wide.index = [METRIC_NAMES[m] for m in wide.index]
    wide.columns.name = None
    return wide


def table1_level3_columns() -> list[str]:
    """Table 1's level-3 column labels, smallest training size first (``["50K", ..., "1.8M"]``)."""
    return [label for _, level, label in _TABLE1_COLUMNS if level == "3"]


def headline(level: str = "3") -> dict[str, float]:
    """The largest model's metrics: level 3 (1.8M patients) or ``"full"`` (level 5, 1M)."""
    long = table1()
    if level == "3":
        chosen = long[(long["level"] == "3") & (long["train_patients"] == 1_800_000)]
    elif level == "full":
        chosen = long[long["level"] == "full"]
    else:
        raise ValueError(f"level must be '3' or 'full', not {level!r}")
    return dict(zip(chosen["metric"], chosen["value"], strict=True))


#: Cohort sizes (Results, first paragraph; Methods: patient cohorts).
COHORT = {
    "patients_raw": 2_600_000,
    "patients_after_preprocessing": 2_075_000,
    "records_raw": 16_000_000,
    "records_used": 5_800_000,
    "train_patients": 1_800_000,
    "val_patients": 5_000,
    "test_patients": 270_000,
    "max_note_characters": 10_000,
    "min_category_count": 10,
}

#: Training settings (Methods: model).
TRAINING = {
    "batch_size": 128,
    "epochs": 10,
    "learning_rate": 5e-5,
    "patience": 2,
    "early_stopping_metric": "map",
    "window_tokens": 128,
    "max_tokens": 10_000,
    "codes_per_course": 2,
}

#: Figure 1: median department F1 per specialty, the extremes the text names.
SPECIALTY_RANGE = pd.DataFrame(
    [
        {"specialty": "Clinical neurophysiology", "f1_micro": 0.91},
        {"specialty": "Child and adolescent psychiatry", "f1_micro": 0.53},
    ]
)
MIN_DEPARTMENT_TEST_COURSES = 100

#: Figure 2a/2b and Figure 3 statements.
CODE_FREQUENCY = {
    "never_predicted_share": 0.201,
    "rare_code_training_count": 100,
    "common_code_training_count": 10_000,
    "common_code_mean_f1_above": 0.6,
}
SECONDARY_SHARE = {
    "min_training_count": 1_000,
    "mostly_secondary_share": 0.8,
    "mostly_secondary_mean_f1_below": 0.5,
    "mostly_primary_mean_f1_above": 0.7,
}
PRIORITY_RECALL = {"secondary_recall@10": 0.90}

#: The three under-coding case studies (Results: suicide-related behaviours, weight disorders,
#: hypertension). ``validated`` is the share of 50 reviewed model-only cases judged truly present.
UNDERCODING = pd.DataFrame(
    [
        {
            "condition": "Suicide-related behaviour",
            "codes": "X60-X84",
            "codes_as_written": "X60-X85",
            "human_coded_cases": 389,
            "secondary_share": float("nan"),
            "detected_at_0.5": 0.213,
            "lowered_threshold": 0.05,
            "detected_at_lowered": 0.645,
            "extra_model_cases": 917,
            "validated": 0.86,
            "explicit_mention": 0.68,
        },
        {
            "condition": "Weight disorders",
            "codes": "E66",
            "codes_as_written": "E66",
            "human_coded_cases": 4_870,
            "secondary_share": 0.869,
            "detected_at_0.5": 0.528,
            "lowered_threshold": 0.1,
            "detected_at_lowered": 0.786,
            "extra_model_cases": 6_551,
            "validated": 0.76,
            "explicit_mention": 0.76,
        },
        {
            "condition": "Hypertension",
            "codes": "I10-I15",
            "codes_as_written": "I10-I15",
            "human_coded_cases": 23_510,
            "secondary_share": 0.896,
            "detected_at_0.5": 0.613,
            "lowered_threshold": 0.1,
            "detected_at_lowered": 0.860,
            "extra_model_cases": 25_529,
            "validated": 0.84,
            "explicit_mention": 0.74,
        },
    ]
)
# Hypertension's 0.84 is the 74% explicit mentions plus the 10% on antihypertensives. The abstract
# and the discussion give 76-86% validated; the introduction says 66-72%, which matches none of
# the three sections and is not used here. The suicide sweep's secondary share is not reported.

REVIEW_SAMPLE_SIZE = 50

#: Documentation: unspecified diabetes (E14) against the specific types E10/E11.
DIABETES = {
    "e14_cases": 926,
    "model_agreed": 314,
    "specific_preferred_share": 0.31,
    "specific_high": 0.1,
    "unspecific_low": 0.1,
    "explicit_type_share": 0.74,
    "explicit_type_cases": 37,
}

#: Documentation: heart failure (I50) coded, with low model confidence.
HEART_FAILURE = {
    "i50_cases": 7_454,
    "predicted_share": 0.674,
    "low_confidence_cases": 1_312,
    "low_confidence_share": 0.176,
    "low_confidence_below": 0.2,
    "evidence_share": 0.38,
    "evidence_cases": 19,
}


def undercoding(codes: str) -> dict:
    """The study's under-coding numbers for one code range (``"X60-X84"``, ``"E66"``, ...)."""
    rows = UNDERCODING[(UNDERCODING["codes"] == codes) | (UNDERCODING["codes_as_written"] == codes)]
    if rows.empty:
        raise KeyError(f"the study has no under-coding sweep for {codes!r}; it has "
                       f"{list(UNDERCODING['codes'])}")
    return rows.iloc[0].to_dict()


#: The hand review of 50 flagged, uncoded cases per range (Results: suicide-related behaviours,
#: weight disorders, hypertension), one row per finding. ``group`` is the review group of
#: :mod:`medcoding.analysis.undercoding` the finding falls in; ``share`` is NaN where the study
#: names the finding without a share (E66's errors: the rest after the explicit mentions).
#: The suicide review's four shares add to 102% as published.
UNDERCODING_REVIEW = pd.DataFrame(
    [
        {"range": "X60-X84", "finding": "explicit 'suicide attempt'", "share": 0.68,
         "truly_present": True, "group": "present: named in the text"},
        {"range": "X60-X84", "finding": "suicide-related behaviour mentioned", "share": 0.08,
         "truly_present": True, "group": "present: named in the text"},
        {"range": "X60-X84", "finding": "method only (a large paracetamol intake, cut wrists)",
         "share": 0.12, "truly_present": True, "group": "present: implied only"},
        {"range": "X60-X84", "finding": "false: ambiguous overdose, previous attempt, explicit "
         "denial", "share": 0.14, "truly_present": False,
         "group": "absent: the study's error kinds"},
        {"range": "E66", "finding": "explicit overweight or high BMI", "share": 0.76,
         "truly_present": True, "group": "present: named in the text"},
        {"range": "E66", "finding": "errors: weight loss or gastric bypass without the current "
         "weight (no share given)", "share": float("nan"), "truly_present": False,
         "group": "absent: the study's error kinds"},
        {"range": "I10-I15", "finding": "explicit hypertension", "share": 0.74,
         "truly_present": True, "group": "present: named in the text"},
        {"range": "I10-I15", "finding": "antihypertensive drugs only", "share": 0.10,
         "truly_present": True, "group": "present: implied only"},
        {"range": "I10-I15", "finding": "inferred from related cardiovascular conditions",
         "share": 0.16, "truly_present": False, "group": "absent: the study's error kinds"},
    ]
)

#: The synthetic distractor kinds (``contract.DISTRACTOR_KINDS``) that are the study's own
#: error types, per reviewed range.
REVIEW_DISTRACTOR_KINDS = {
    "X60-X84": ("ambiguous_overdose", "previous_attempt", "denied_attempt"),
    "E66": ("bypass_no_weight",),
    "I10-I15": ("related_cardiovascular",),
}


def _review_range(codes: str) -> str | None:
    rows = UNDERCODING[(UNDERCODING["codes"] == codes) | (UNDERCODING["codes_as_written"] == codes)]
    return None if rows.empty else rows.iloc[0]["codes"]


def undercoding_review(codes: str) -> pd.DataFrame:
    """The study's review findings for one range (empty for a range it did not review)."""
    name = _review_range(codes)
    return UNDERCODING_REVIEW[UNDERCODING_REVIEW["range"] == name].reset_index(drop=True)


def review_distractor_kinds(codes: str) -> tuple[str, ...]:
    """The distractor kinds matching the study's error types for ``codes`` (empty if none)."""
    name = _review_range(codes)
    return REVIEW_DISTRACTOR_KINDS.get(name, ()) if name else ()
