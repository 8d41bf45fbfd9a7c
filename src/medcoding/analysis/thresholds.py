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


def paired_gains(test: AnalysisInputs, boundaries: dict[str, np.ndarray], n_resamples: int,
                 seed: int, metrics_shown=("f1_micro", "f1_macro")) -> pd.DataFrame:
    """Each per-code variant minus the global boundary on test, per reference and metric, with
    the paired patient bootstrap of :func:`medcoding.analysis.comparison.paired_differences`.

    Columns ``variant, reference, metric, global, variant_value, gain, low, high``.
    """
    from medcoding.analysis.comparison import Scored, paired_differences

    models = {name: Scored(name, test, values) for name, values in boundaries.items()}
    table = paired_differences(models, n_resamples, seed, metrics=metrics_shown, base="global")
    return pd.DataFrame({
        "variant": table["model"], "reference": table["reference"], "metric": table["metric"],
        "global": table["base_estimate"], "variant_value": table["model_estimate"],
        "gain": -table["difference"], "low": -table["high"], "high": -table["low"]})


def gains_reading(gains: pd.DataFrame, metric: str = "f1_micro") -> str:
    """What per-code boundaries buy over the global one, per variant and reference."""
    from medcoding import readings

    parts = []
    for _, row in gains[gains["metric"] == metric].iterrows():
        against = "the human codes" if row["reference"] == "human" else "the truth"
        source = "true" if row["variant"].endswith("(truth)") else "human"
        parts.append(readings.compare(
            f"boundaries tuned per code on the {source} codes", "the global boundary",
            row["gain"], row["low"], row["high"], f"micro F1 against {against}"))
    return " ".join(parts)


def beside_study(ranges: pd.DataFrame, specs, boundaries: dict[str, np.ndarray]) -> pd.DataFrame:
    """The study's detection at 0.5 and at its lowered boundary beside our detection of the
    human-coded cases per variant (``ours_<variant>``)."""
    from medcoding import study

    lookup = ranges.set_index(["range", "boundary", "reference"])
    rows = []
    for spec in specs:
        try:
            theirs = study.undercoding(spec)
        except KeyError:
            theirs = {"detected_at_0.5": np.nan, "detected_at_lowered": np.nan,
                      "lowered_threshold": np.nan}
        row = {"range": spec, "study_detected_0.5": theirs["detected_at_0.5"],
               "study_lowered_boundary": theirs["lowered_threshold"],
               "study_detected_lowered": theirs["detected_at_lowered"]}
        for name in boundaries:
            row[f"ours_{name}"] = lookup.loc[(spec, name, "human"), "detection_rate"]
        rows.append(row)
    return pd.DataFrame(rows)
