"""The cohort chapter's tables: who is in the data and what each filter removed.

Each function takes the prepared splits (or ``flow.csv``) and returns a tidy DataFrame for one
figure or table of ``notebooks/01_cohort``, with the study's figures beside ours where it gives
them (:mod:`medcoding.study`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medcoding import study

SPLITS = ("train", "val", "test")


def read_splits(prepared: str | Path) -> dict[str, pd.DataFrame]:
    """The three prepared splits by name."""
    return {name: pd.read_parquet(Path(prepared) / f"{name}.parquet") for name in SPLITS}


def kept_beside_study(flow: pd.DataFrame) -> pd.DataFrame:
    """Patients before and after the filters, ours and the study's, with the share kept."""
    first, last = flow.iloc[0], flow.iloc[-1]
    kept = pd.DataFrame({
        "source": ["this cohort", "the study"],
        "patients_before": [first["patients_before"], study.COHORT["patients_raw"]],
        "patients_after": [last["patients_after"], study.COHORT["patients_after_preprocessing"]],
    })
    kept["share_kept"] = kept["patients_after"] / kept["patients_before"]
    return kept


def split_sizes(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Courses and patients per split beside the study's patients."""
    return pd.DataFrame({
        "split": list(splits),
        "courses": [len(frame) for frame in splits.values()],
        "patients": [frame["patient_id"].nunique() for frame in splits.values()],
        "study_patients": [study.COHORT[f"{name}_patients"] for name in splits],
    })


def all_courses(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every prepared course with its split name and its text length in characters."""
    courses = pd.concat([frame.assign(split=name) for name, frame in splits.items()],
                        ignore_index=True)
    return courses.assign(characters=courses["text"].str.len())


def by_specialty(courses: pd.DataFrame) -> pd.DataFrame:
    """Courses, departments and share of courses per specialty, largest first."""
    table = (courses.groupby("specialty")
             .agg(courses=("course_id", "size"), departments=("department", "nunique"))
             .reset_index().sort_values("courses", ascending=False, ignore_index=True))
    table["share"] = table["courses"] / table["courses"].sum()
    return table


def codes_per_course(courses: pd.DataFrame, cap: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Categories per course per reference (human codes, and the truth on a synthetic cohort).

    Returns the distribution (``reference, codes, courses, share``; ``cap`` means ``cap`` or
    more) and a summary (``reference, mean, median, max, secondary_share``, the share of code
    occurrences that are secondary), with the study's codes per course as a last row.
    """
    references = {"human": "codes_l3"}
    if "true_l3" in courses.columns:
        references["truth"] = "true_l3"
    per_course = pd.concat([pd.DataFrame({"reference": name, "codes": courses[column].map(len)})
                            for name, column in references.items()])
    distribution = (per_course.assign(codes=per_course["codes"].clip(upper=cap)).value_counts()
                    .rename("courses").reset_index())
    distribution["share"] = distribution["courses"] / distribution.groupby("reference")[
        "courses"].transform("sum")
    distribution = distribution.sort_values(["reference", "codes"]).reset_index(drop=True)
    summary = per_course.groupby("reference")["codes"].agg(["mean", "median", "max"])
    summary["secondary_share"] = 1 - 1 / summary["mean"].clip(lower=1)
    summary = summary.reset_index()
    summary.loc[len(summary)] = ["the study", study.TRAINING["codes_per_course"],
                                 float("nan"), float("nan"), float("nan")]
    return distribution, summary


def note_lengths(courses: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Characters per course by split (count, 10%, 50%, 90%, max) and median by specialty."""
    lengths = courses.groupby("split")["characters"].describe(percentiles=[0.1, 0.5, 0.9])
    lengths = lengths.reset_index()[["split", "count", "10%", "50%", "90%", "max"]]
    median = (courses.groupby("specialty")["characters"].median().rename("median_characters")
              .reset_index())
    return lengths, median
