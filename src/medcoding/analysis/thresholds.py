"""Per-code decision boundaries: the fix the study proposes but could not make.

One boundary per code is tuned on the validation split (``evaluation.tune_per_label_thresholds``;
codes with too little validation support keep the global boundary) and compared on test with the
single global boundary: overall metrics and the under-coding ranges' detection, against human
codes and, on synthetic cohorts, against the truth. On synthetic cohorts the boundaries can also be
tuned on the validation split's *true* codes, the "clean data for calibrating" the study wished for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medcoding import evaluation, metrics
from medcoding.analysis.inputs import AnalysisInputs
from medcoding.analysis.undercoding import has_range_code, range_label_columns

OVERALL_METRICS = ("f1_micro", "f1_macro", "exact_match")


def tune_boundaries(
    val: AnalysisInputs, global_threshold: float, min_support: int = 10,
    reference: str = "human",
) -> np.ndarray:
    """Per-label boundaries ``[labels]`` tuned on ``val`` against ``reference``.

    Labels with fewer than ``min_support`` positive validation courses keep
    ``global_threshold``.
    """
    tuned = evaluation.tune_per_label_thresholds(val.reference(reference), val.scores,
                                              min_support=min_support, fallback=global_threshold)
    tuned = np.asarray(tuned, dtype=float)  # [labels]
    if tuned.shape != (len(val.labels),):
        raise ValueError(f"tuned boundaries have shape {tuned.shape}, expected "
                         f"({len(val.labels)},)")
    return tuned


def boundary_sets(
    val: AnalysisInputs, global_threshold: float, min_support: int = 10
) -> dict[str, np.ndarray]:
    """The boundary variants to compare: ``global``, ``per-code (human)`` and, on synthetic
    cohorts, ``per-code (truth)``; each a ``[labels]`` array."""
    sets = {"global": np.full(len(val.labels), float(global_threshold)),
            "per-code (human)": tune_boundaries(val, global_threshold, min_support, "human")}
    if val.is_synthetic:
        sets["per-code (truth)"] = tune_boundaries(val, global_threshold, min_support, "truth")
    return sets


def overall_comparison(test: AnalysisInputs, boundaries: dict[str, np.ndarray]) -> pd.DataFrame:
    """Overall test metrics per boundary variant and reference.

    Columns ``boundary, reference, f1_micro, f1_macro, exact_match``.
    """
    references = ["human", "truth"] if test.is_synthetic else ["human"]
    rows = []
    for name, thresholds in boundaries.items():
        for reference in references:
            result = metrics.evaluate(test.reference(reference), test.scores,
                                      threshold=thresholds, ks=(5,))
            rows.append({"boundary": name, "reference": reference,
                         **{key: float(result[key]) for key in OVERALL_METRICS}})
    return pd.DataFrame(rows)


def range_comparison(
    test: AnalysisInputs, specs, boundaries: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Detection per code range and boundary variant, against human codes and truth.

    A course is flagged when any label of the range reaches its boundary. Columns ``range,
    boundary, reference, cases, detected, detection_rate, flagged, flagged_precision``:
    ``cases`` are the reference's courses with a range code, ``flagged_precision`` the share of
    flagged courses that are reference cases.
    """
    references = ["human", "truth"] if test.is_synthetic else ["human"]
    column = {"human": test.code_column, "truth": test.true_column}
    rows = []
    for spec in specs:
        columns = range_label_columns(test.labels, spec)
        for name, thresholds in boundaries.items():
            flagged = ((test.scores[:, columns] >= thresholds[columns]).any(axis=1)
                       if len(columns) else np.zeros(len(test.split), dtype=bool))  # [courses]
            for reference in references:
                cases = has_range_code(test.split[column[reference]], spec)
                rows.append({
                    "range": spec, "boundary": name, "reference": reference,
                    "cases": int(cases.sum()), "detected": int((flagged & cases).sum()),
                    "detection_rate": _ratio((flagged & cases).sum(), cases.sum()),
                    "flagged": int(flagged.sum()),
                    "flagged_precision": _ratio((flagged & cases).sum(), flagged.sum())})
    return pd.DataFrame(rows)


def range_boundaries(
    val: AnalysisInputs, specs, boundaries: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The boundary each variant gives every label of the ranges, with validation support.

    Columns ``range, label, val_support_human, [val_support_truth,] <one column per variant>``.
    """
    rows = []
    support_human = np.asarray(val.y_human.sum(axis=0)).ravel()  # [labels]
    support_truth = (np.asarray(val.y_truth.sum(axis=0)).ravel()
                     if val.is_synthetic else None)
    for spec in specs:
        for column in range_label_columns(val.labels, spec):
            row = {"range": spec, "label": val.labels[column],
                   "val_support_human": int(support_human[column])}
            if support_truth is not None:
                row["val_support_truth"] = int(support_truth[column])
            row.update({name: float(values[column]) for name, values in boundaries.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _ratio(part, whole) -> float:
    return float(part / whole) if whole else float("nan")
