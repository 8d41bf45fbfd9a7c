"""Evaluation beyond the study: per-code thresholds, bootstrap intervals, subgroups, references.

Every function here reuses the additive per-document counts of :mod:`medcoding.metrics`
(:func:`~medcoding.metrics.document_counts`): a subgroup is a sum of its documents' counts and a
bootstrap resample is a weighted sum, so the scores are read once however many groups or
resamples are asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from medcoding.metrics import (
    DEFAULT_KS,
    as_truth,
    check_grid,
    conventions,
    document_counts,
    evaluate,
    label_matrix,
    metric_names,
    metrics_from_counts,
    middle_of_best,
    safe_ratio,
    threshold_grid_counts,
)

DEFAULT_MIN_SUPPORT = 20  # validation documents with the code before it gets its own threshold
RESAMPLE_BATCH = 50  # bootstrap resamples aggregated at once


def tune_per_label_thresholds(
    y_true,
    scores,
    min_support: int = DEFAULT_MIN_SUPPORT,
    fallback: float | None = None,
    grid=None,
) -> np.ndarray:
    """One decision threshold per code ``[labels]``, tuned for that code's F1 on the grid.

    A code gets its own threshold when it has at least ``min_support`` true documents in
    ``y_true`` and some grid threshold finds it (F1 > 0); where several grid thresholds give the
    best F1, the middle one is taken. Every other code gets ``fallback`` (default: the global
    micro-F1 threshold of :func:`medcoding.metrics.tune_threshold` on the same data).
    The grid defaults to 0.01 .. 0.99 in steps of 0.01.
    """
    grid = check_grid(grid)
    predicted, tp = threshold_grid_counts(y_true, scores, grid, by_label=True)  # [labels, grid]
    support = np.diff(as_truth(y_true).tocsc().indptr)  # [labels]
    if fallback is None:
        if support.sum() == 0:
            raise ValueError("y_true holds no labels; thresholds cannot be tuned on it")
        micro_f1 = safe_ratio(2 * tp.sum(axis=0), support.sum() + predicted.sum(axis=0))
        fallback = float(grid[middle_of_best(micro_f1)])
    f1 = safe_ratio(2 * tp, support[:, None] + predicted)  # [labels, grid]
    own = (support >= min_support) & (f1.max(axis=1) > 0)
    return np.where(own, grid[middle_of_best(f1)], float(fallback))


def _group_indicator(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """Sparse ``[groups, documents]`` matrix with a 1 where a document belongs to a group."""
    n_documents = len(codes)
    data = np.ones(n_documents)
    return sp.csr_matrix((data, (codes, np.arange(n_documents))), shape=(n_groups, n_documents))


def _factorize(values, n_documents: int, name: str) -> tuple[np.ndarray, pd.Index]:
    """Group number per document and the sorted group values; missing values raise."""
    series = pd.Series(np.asarray(values, dtype=object))
    if len(series) != n_documents:
        raise ValueError(f"{name} has {len(series)} values for {n_documents} documents")
    missing = series.isna()
    if missing.any():
        raise ValueError(
            f"{name} is missing for rows {np.flatnonzero(missing)[:5].tolist()} "
            f"({int(missing.sum())} rows); fix: fill them (e.g. 'unknown') before evaluating"
        )
    codes, uniques = pd.factorize(series, sort=True)
    return codes, pd.Index(uniques)


def bootstrap_ci(
    y_true,
    scores,
    groups,
    n_resamples: int = 1000,
    seed: int = 0,
    threshold=0.5,
    ks: Sequence[int] = DEFAULT_KS,
    confidence: float = 0.95,
    method: str = "centered",
) -> pd.DataFrame:
    """Bootstrap intervals for every metric, resampling patients (not documents).

    ``groups`` holds the patient id of each document: a resample draws as many patients as there
    are, with replacement, and takes all documents of each drawn patient. ``estimate`` is the
    metric on the data as given, ``resampled_mean`` the mean over resamples. Deterministic for
    ``seed``. With ``q`` the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles:

    - ``method="percentile"``: ``low, high = q(resampled)``.
    - ``method="centered"`` (default): ``low, high = estimate + q(resampled - resampled_mean)``,
      clipped to [0, 1]: the spread of the resamples placed around the estimate. It equals the
      percentile interval when resampling is unbiased (micro F1, recall@k, MAP, exact match).
      ``f1_macro`` is not: a rare code drawn in no resampled patient leaves the average, rare
      codes have low F1, so resampled macro F1 runs high and its percentile interval can miss
      the estimate altogether (0.206 against [0.210, 0.216] on 20,000 documents of
      ``benchmarks/bench_metrics.py``).
    """
    if n_resamples < 1 or not 0 < confidence < 1 or method not in ("centered", "percentile"):
        raise ValueError(
            "need n_resamples >= 1, 0 < confidence < 1 and method 'centered' or 'percentile'; "
            f"got {n_resamples}, {confidence}, {method!r}"
        )
    counts = document_counts(y_true, scores, threshold, ks, per_document=True)
    patient_of, patients = _factorize(groups, len(counts.documents), "groups (patient ids)")
    per_patient = counts.combine(_group_indicator(patient_of, len(patients)))
    names = metric_names(counts.ks)
    estimate = metrics_from_counts(per_patient.total())
    resampled = _resampled_metrics(per_patient, n_resamples, np.random.default_rng(seed))
    tail = (1 - confidence) / 2
    rows = []
    for name in names:
        samples = resampled[name][np.isfinite(resampled[name])]  # [finite resamples]
        row = {"metric": name, "estimate": float(estimate[name][0])}
        row["resampled_mean"] = samples.mean() if len(samples) else np.nan
        if not len(samples):
            row["low"] = row["high"] = np.nan
        elif method == "percentile":
            row["low"], row["high"] = np.quantile(samples, [tail, 1 - tail])
        else:
            spread = np.quantile(samples - row["resampled_mean"], [tail, 1 - tail])
            row["low"], row["high"] = np.clip(row["estimate"] + spread, 0.0, 1.0)
        rows.append(row)
    return pd.DataFrame(rows, columns=["metric", "estimate", "low", "high", "resampled_mean"])


def _resampled_metrics(per_patient, n_resamples: int, rng: np.random.Generator):
    """Every metric on ``n_resamples`` resamples of the patients: ``{name: [n_resamples]}``."""
    n_patients = len(per_patient.documents)
    batches = []
    for start in range(0, n_resamples, RESAMPLE_BATCH):
        batch = min(RESAMPLE_BATCH, n_resamples - start)
        drawn = rng.integers(0, n_patients, size=(batch, n_patients))  # [batch, draws]
        offsets = np.arange(batch)[:, None] * n_patients
        weights = np.bincount((drawn + offsets).ravel(), minlength=batch * n_patients)
        batches.append(metrics_from_counts(per_patient.combine(weights.reshape(batch, -1))))
    return {name: np.concatenate([values[name] for values in batches]) for name in batches[0]}


def evaluate_by_group(
    y_true,
    scores,
    group_values,
    threshold=0.5,
    min_documents: int = 1,
    ks: Sequence[int] = DEFAULT_KS,
) -> pd.DataFrame:
    """Every metric per group (e.g. specialty, department): one row per group, sorted by group.

    Columns: ``group``, ``n_documents``, then the metrics. Groups with fewer than
    ``min_documents`` documents keep their row with NaN metrics, so none disappears unseen.
    Within a group, ``f1_macro`` averages the labels present in that group.
    """
    counts = document_counts(y_true, scores, threshold, ks, per_document=True)
    group_of, group_names = _factorize(group_values, len(counts.documents), "group_values")
    values = metrics_from_counts(counts.combine(_group_indicator(group_of, len(group_names))))
    table = pd.DataFrame({"group": group_names, **values})
    table["n_documents"] = table["n_documents"].astype(np.int64)
    too_small = table["n_documents"] < min_documents
    table.loc[too_small, metric_names(counts.ks)] = np.nan
    return table


def compare_references(
    y_human, y_true_codes, scores, threshold=0.5, ks: Sequence[int] = DEFAULT_KS
) -> pd.DataFrame:
    """The same metrics against the human codes and against the true codes, side by side.

    For synthetic cohorts, where the true diagnoses are known. Columns: ``metric``, ``human``,
    ``truth``, ``difference`` (truth minus human); ``n_documents`` first.
    """
    human = as_truth(y_human, "y_human")
    truth = as_truth(y_true_codes, "y_true_codes")
    if human.shape != truth.shape:
        raise ValueError(
            f"y_human has shape {human.shape} but y_true_codes has {truth.shape}; fix: build "
            "both with label_matrix() from the same documents and labels"
        )
    by_human, by_truth = (
        metrics_from_counts(
            document_counts(reference, scores, threshold, ks, per_document=False).total()
        )
        for reference in (human, truth)
    )
    names = ["n_documents", *metric_names(ks)]
    table = pd.DataFrame(
        {
            "metric": names,
            "human": [float(by_human[name][0]) for name in names],
            "truth": [float(by_truth[name][0]) for name in names],
        }
    )
    table["difference"] = table["truth"] - table["human"]
    return table


def evaluate_courses(
    course_ids: Sequence,
    scores: np.ndarray,
    labels: Sequence[str],
    codes: pd.Series,
    threshold: float,
    subset: Sequence | None = None,
    label_set: str = "all",
    rule: str = ">=",
) -> dict[str, float]:
    """The study's metrics of scored courses against their human codes.

    ``scores`` is ``[courses, labels]`` in ``course_ids`` order (as saved predictions are);
    ``codes`` holds each course's code list, indexed by course id; ``subset`` restricts the
    evaluation to those course ids, which must all have scores. ``label_set`` and ``rule`` are
    :func:`~medcoding.metrics.evaluate`'s ``labels`` and ``rule`` (``"present"`` and ``">"``: the
    reference implementation's conventions).
    """
    y_true, keep = course_truth(course_ids, labels, codes, subset)
    return evaluate(y_true, np.asarray(scores)[keep], threshold=threshold, labels=label_set,
                    rule=rule)


def conventions_courses(
    course_ids: Sequence,
    scores: np.ndarray,
    labels: Sequence[str],
    codes: pd.Series,
    threshold: float,
    subset: Sequence | None = None,
) -> pd.DataFrame:
    """:func:`medcoding.metrics.conventions` (ours beside the reference implementation's) for
    scored courses, with the arguments of :func:`evaluate_courses`."""
    y_true, keep = course_truth(course_ids, labels, codes, subset)
    return conventions(y_true, np.asarray(scores)[keep], threshold)


def course_truth(course_ids: Sequence, labels: Sequence[str], codes: pd.Series,
                 subset: Sequence | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """``y_true [kept courses, labels]`` from ``codes`` and which of ``course_ids`` are kept."""
    course_ids = np.asarray(course_ids)
    keep = np.ones(len(course_ids), dtype=bool)
    if subset is not None:
        wanted = pd.Index(subset)
        unscored = wanted.difference(pd.Index(course_ids))
        if len(unscored):
            raise ValueError(f"{len(unscored)} course(s) of the subset have no scores, e.g. "
                             f"{list(unscored[:3])}; fix: score the same split first")
        keep = np.isin(course_ids, wanted.to_numpy())
    uncoded = pd.Index(course_ids[keep]).difference(codes.index)
    if len(uncoded):
        raise ValueError(f"{len(uncoded)} scored course(s) have no codes, e.g. "
                         f"{list(uncoded[:3])}; fix: pass the split the scores belong to")
    return label_matrix(codes.loc[course_ids[keep]], list(labels)), keep
