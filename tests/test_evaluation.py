"""medcoding.evaluation: per-code thresholds, patient bootstrap, subgroups, human vs truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from medcoding.evaluation import (
    bootstrap_ci,
    compare_references,
    evaluate_by_group,
    tune_per_label_thresholds,
)
from medcoding.metrics import (
    THRESHOLD_GRID,
    document_counts,
    evaluate,
    metric_names,
    metrics_from_counts,
    tune_threshold,
)


def model_like_case(n_documents, n_labels, seed, dtype=np.float32):
    """Labels with Zipf-like frequencies; true labels score higher than the rest, with noise."""
    rng = np.random.default_rng(seed)
    frequency = 0.5 / np.arange(1, n_labels + 1)
    y_true = rng.random((n_documents, n_labels)) < frequency
    noise = rng.normal(0, 0.2, size=(n_documents, n_labels))
    scores = np.clip(0.15 + 0.5 * y_true + noise, 0, 1).astype(dtype)
    return y_true, scores


# --------------------------------------------------------------------------- weighted counts


def test_weighted_counts_equal_evaluating_the_repeated_documents():
    y_true, scores = model_like_case(40, 12, 0)
    weights = np.random.default_rng(1).integers(0, 4, size=40)
    combined = document_counts(y_true, scores, 0.4, (1, 3)).combine(weights[None, :])
    expected = evaluate(np.repeat(y_true, weights, 0), np.repeat(scores, weights, 0), 0.4, (1, 3))
    values = metrics_from_counts(combined)
    for name, value in expected.items():
        assert values[name][0] == pytest.approx(value), name


# --------------------------------------------------------------------------- per-code thresholds


def test_per_label_thresholds_maximise_each_codes_f1_on_the_grid():
    y_true, scores = model_like_case(400, 10, 2)
    thresholds = tune_per_label_thresholds(y_true, scores, min_support=15, fallback=0.33)
    support = y_true.sum(axis=0)
    for label in range(10):
        if support[label] < 15:
            assert thresholds[label] == 0.33
            continue
        predicted = scores[:, label, None] >= THRESHOLD_GRID  # [documents, grid]
        tp = (predicted & y_true[:, label, None]).sum(axis=0)
        f1 = 2 * tp / (support[label] + predicted.sum(axis=0))
        best = np.flatnonzero(f1 == f1.max())
        assert thresholds[label] == THRESHOLD_GRID[best[len(best) // 2]]
    assert (support < 15).any() and (support >= 15).any()
    tuned = evaluate(y_true, scores, thresholds)
    assert tuned["f1_macro"] >= evaluate(y_true, scores, tune_threshold(y_true, scores))["f1_macro"]


def test_per_label_thresholds_fall_back_to_the_global_one():
    y_true, scores = model_like_case(200, 6, 3, np.float16)
    thresholds = tune_per_label_thresholds(y_true, scores, min_support=10**6)
    assert (thresholds == tune_threshold(y_true, scores)).all()
    never_found = y_true.copy()
    never_found[:, 0] = scores[:, 0] < 0.005  # true only where the score is below every threshold
    thresholds = tune_per_label_thresholds(never_found, scores, min_support=1, fallback=0.5)
    assert thresholds[0] == 0.5


# --------------------------------------------------------------------------- subgroups


def test_evaluate_by_group_equals_evaluating_each_group_alone():
    y_true, scores = model_like_case(300, 15, 4)
    specialty = np.random.default_rng(0).choice(
        ["cardiology", "surgery", "rare"], 300, p=[0.5, 0.48, 0.02]
    )
    table = evaluate_by_group(sp.csr_matrix(y_true), scores, specialty, 0.45, min_documents=20)
    assert table["group"].tolist() == ["cardiology", "rare", "surgery"]
    for row in table.itertuples(index=False):
        members = specialty == row.group
        assert row.n_documents == members.sum()
        if members.sum() < 20:
            assert table.loc[table["group"] == row.group, metric_names()].isna().all(axis=None)
            continue
        expected = evaluate(y_true[members], scores[members], 0.45)
        for name in metric_names():
            assert table.loc[table["group"] == row.group, name].item() == pytest.approx(
                expected[name]
            )


def test_missing_group_values_raise():
    y_true, scores = model_like_case(5, 3, 5)
    with pytest.raises(ValueError, match=r"missing for rows \[1\]"):
        evaluate_by_group(y_true, scores, ["a", None, "b", "a", "b"])


# --------------------------------------------------------------------------- human vs truth


def test_compare_references_puts_both_evaluations_side_by_side():
    truth, scores = model_like_case(150, 10, 6)
    human = truth & (np.random.default_rng(2).random(truth.shape) < 0.7)  # under-coding
    table = compare_references(human, truth, scores, 0.4).set_index("metric")
    by_human, by_truth = evaluate(human, scores, 0.4), evaluate(truth, scores, 0.4)
    for name in by_human:
        assert table.loc[name, "human"] == pytest.approx(by_human[name])
        assert table.loc[name, "truth"] == pytest.approx(by_truth[name])
        assert table.loc[name, "difference"] == pytest.approx(by_truth[name] - by_human[name])
    assert table.loc["precision_micro", "difference"] > 0  # the model finds what humans omitted


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_holds_the_estimate_and_is_deterministic():
    y_true, scores = model_like_case(300, 12, 7)
    patients = np.arange(300) // 3
    table = bootstrap_ci(y_true, scores, patients, 200, seed=4, threshold=0.4, ks=(1, 2))
    assert table["metric"].tolist() == metric_names((1, 2))
    expected = evaluate(y_true, scores, 0.4, ks=(1, 2))
    for row in table.itertuples(index=False):
        assert row.estimate == pytest.approx(expected[row.metric])
        assert row.low <= row.estimate <= row.high
        assert row.low < row.high
    again = bootstrap_ci(y_true, scores, patients, 200, seed=4, threshold=0.4, ks=(1, 2))
    pd.testing.assert_frame_equal(table, again)
    other_seed = bootstrap_ci(y_true, scores, patients, 200, seed=5, threshold=0.4, ks=(1, 2))
    assert not np.allclose(table["low"], other_seed["low"])


def test_bootstrap_interval_narrows_with_more_patients():
    y_true, scores = model_like_case(2000, 12, 8)
    small = bootstrap_ci(y_true[:200], scores[:200], np.arange(200), n_resamples=200)
    large = bootstrap_ci(y_true, scores, np.arange(2000), n_resamples=200)
    for name in ("f1_micro", "recall@5", "map", "exact_match"):
        small_width, large_width = (
            table.set_index("metric").loc[name, "high"] - table.set_index("metric").loc[name, "low"]
            for table in (small, large)
        )
        assert large_width < 0.6 * small_width, name


def test_bootstrap_resamples_patients_not_documents():
    y_true, scores = model_like_case(150, 10, 9)
    copies_y, copies_scores = np.repeat(y_true, 4, axis=0), np.repeat(scores, 4, axis=0)

    def interval(y, s, patients):
        return bootstrap_ci(y, s, patients, n_resamples=300, seed=1, ks=(1, 2))

    one_each = interval(y_true, scores, np.arange(150))
    same_patient = interval(copies_y, copies_scores, np.repeat(np.arange(150), 4))
    as_if_new = interval(copies_y, copies_scores, np.arange(600))
    # Copies of a patient's documents carry no new information: the interval does not change.
    np.testing.assert_allclose(same_patient[["low", "high"]], one_each[["low", "high"]])
    # Counting them as new patients would make it about half as wide (1 / sqrt(4)).
    width_one = (one_each["high"] - one_each["low"]).to_numpy()
    width_new = (as_if_new["high"] - as_if_new["low"]).to_numpy()
    assert (width_one > 0).all()
    assert (width_new < 0.75 * width_one).all()


def test_centered_interval_holds_macro_f1_where_the_percentile_one_misses_it():
    y_true, scores = model_like_case(400, 300, 10)  # many codes seen once or twice
    centered = bootstrap_ci(y_true, scores, np.arange(400), 300, ks=(5,)).set_index("metric")
    percentile = bootstrap_ci(
        y_true, scores, np.arange(400), 300, ks=(5,), method="percentile"
    ).set_index("metric")
    macro = centered.loc["f1_macro"]
    assert macro["resampled_mean"] > macro["estimate"]  # rare codes drop out of resamples
    assert macro["low"] <= macro["estimate"] <= macro["high"]
    assert percentile.loc["f1_macro", "low"] > macro["estimate"]
    shift = centered["estimate"] - centered["resampled_mean"]  # same spread, moved
    np.testing.assert_allclose(centered["low"], percentile["low"] + shift)
    np.testing.assert_allclose(centered["high"], percentile["high"] + shift)


def test_evaluate_courses_restricts_to_the_subset_by_course_id():
    from medcoding.evaluation import evaluate_courses

    labels = ["A", "B"]
    course_ids = [10, 11, 12]
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6]], dtype=np.float16)
    codes = pd.Series({12: ["B"], 11: ["B"], 10: ["A"]})
    # courses 11 and 12: predicted {B} and {A, B} against {B} and {B} -> TP 2, FP 1, FN 0
    result = evaluate_courses(course_ids, scores, labels, codes, 0.5, subset=[12, 11])
    assert result["n_documents"] == 2
    assert result["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    everything = evaluate_courses(course_ids, scores, labels, codes, 0.5)
    assert everything["n_documents"] == 3
    assert everything["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 1))
    with pytest.raises(ValueError, match="1 course\\(s\\) of the subset have no scores"):
        evaluate_courses(course_ids, scores, labels, codes, 0.5, subset=[11, 99])
    with pytest.raises(ValueError, match="have no codes"):
        evaluate_courses(course_ids, scores, labels, codes.drop(10), 0.5)


def test_conventions_of_scored_courses():
    from medcoding.evaluation import conventions_courses, evaluate_courses

    labels = ["A", "B", "C"]  # C never coded
    scores = np.array([[0.5, 0.1, 0.6], [0.2, 0.8, 0.1]], dtype=np.float16)
    codes = pd.Series({10: ["A"], 11: ["B"]})
    table = conventions_courses([10, 11], scores, labels, codes, 0.5).set_index("metric")
    # ours: {A, C}, {B}: TP 2 of 3; present: {A}, {B}; ">": {C}, {B}: TP 1 of 2; reference: {B}
    assert table.loc["f1_micro"].tolist() == pytest.approx([4 / 5, 1.0, 1 / 2, 2 / 3])
    assert evaluate_courses([10, 11], scores, labels, codes, 0.5, label_set="present",
                            rule=">")["f1_micro"] == pytest.approx(2 / 3)
