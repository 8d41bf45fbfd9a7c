"""medcoding.metrics against scikit-learn and plain-Python references, plus hand-made edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from medcoding import metrics
from medcoding.metrics import (
    THRESHOLD_GRID,
    evaluate,
    label_matrix,
    label_matrix_with_unknown,
    per_label,
    recall_at_k_subset,
    threshold_grid_counts,
    tune_threshold,
)

# --------------------------------------------------------------------------- references


def reference_share_in_top(row_scores, label, k):
    """Share of the orders of tied labels in which ``label`` is among the top ``k`` (brute force
    over tie groups: labels above it always precede it, its tie group is ordered uniformly)."""
    score = row_scores[label]
    greater = sum(1 for value in row_scores if value > score)
    tied = sum(1 for value in row_scores if value == score)
    places = [greater + position for position in range(tied)]  # its possible 0-based places
    return sum(1 for place in places if place < k) / tied


def reference_ranking(y_true, scores, ks):
    """Plain-Python Recall@k and Precision@Recall, means over documents with labels."""
    recall = {k: [] for k in ks}
    precision_at_recall = []
    for truth_row, score_row in zip(y_true, scores, strict=True):
        true_labels = [label for label, is_true in enumerate(truth_row) if is_true]
        if not true_labels:
            continue
        row = [float(value) for value in score_row]
        for k in ks:
            found = sum(reference_share_in_top(row, label, k) for label in true_labels)
            recall[k].append(found / len(true_labels))
        found = sum(reference_share_in_top(row, label, len(true_labels)) for label in true_labels)
        precision_at_recall.append(found / len(true_labels))
    result = {f"recall@{k}": np.mean(values) for k, values in recall.items()}
    result["precision@recall"] = np.mean(precision_at_recall)
    return result


def reference_topk_tie_free(y_true, scores, k):
    """Recall@k by sorting each row (valid when the row has no ties)."""
    values = []
    for truth_row, score_row in zip(y_true, scores, strict=True):
        if truth_row.any():
            top = np.argsort(-score_row.astype(np.float64))[:k]
            values.append(truth_row[top].sum() / truth_row.sum())
    return np.mean(values)


def sklearn_map(y_true, scores):
    rows = [i for i in range(len(y_true)) if y_true[i].any()]
    return np.mean([average_precision_score(y_true[i], scores[i].astype(np.float64)) for i in rows])


def random_case(n_documents, n_labels, seed, dtype=np.float32, density=0.08):
    rng = np.random.default_rng(seed)
    y_true = rng.random((n_documents, n_labels)) < density
    y_true[0] = False  # a document without labels
    boost = 0.4 * y_true * rng.random((n_documents, n_labels))
    scores = (rng.random((n_documents, n_labels)) * 0.6 + boost).astype(dtype)
    return y_true, scores


def assert_matches_sklearn(y_true, scores, threshold, result):
    predicted = scores >= np.asarray(threshold, dtype=np.float64)
    present = np.flatnonzero(y_true.any(axis=0))
    assert result["f1_micro"] == pytest.approx(f1_score(y_true, predicted, average="micro"))
    assert result["f1_macro"] == pytest.approx(
        f1_score(y_true, predicted, average="macro", labels=present, zero_division=0)
    )
    assert result["precision_micro"] == pytest.approx(
        precision_score(y_true, predicted, average="micro", zero_division=0)
    )
    assert result["recall_micro"] == pytest.approx(recall_score(y_true, predicted, average="micro"))
    assert result["exact_match"] == pytest.approx(accuracy_score(y_true, predicted))
    assert result["map"] == pytest.approx(sklearn_map(y_true, scores))
    assert result["n_documents"] == len(y_true)


# --------------------------------------------------------------------------- label matrices


def test_label_matrix_marks_codes_and_counts_unknown_ones():
    matrix, unknown = label_matrix_with_unknown(
        [["E66", "I10"], [], ["I10", "I10", "X99"], np.array(["X99", "Z00"])], ["E66", "I10"]
    )
    assert matrix.dtype == bool and matrix.shape == (4, 2)
    assert matrix.toarray().tolist() == [
        [True, True],
        [False, False],
        [False, True],
        [False, False],
    ]
    assert unknown == {"X99": 2, "Z00": 1}
    assert (label_matrix([["I10"]], ["E66", "I10"]).toarray() == [[False, True]]).all()


def test_label_matrix_rejects_bad_rows_and_duplicate_labels():
    with pytest.raises(ValueError, match=r"rows \[1, 2\]"):
        label_matrix([["E66"], None, "E66"], ["E66"])
    with pytest.raises(ValueError, match="duplicates.*E66"):
        label_matrix([["E66"]], ["E66", "E66"])


# --------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize(
    ("n_documents", "n_labels", "seed"), [(60, 7, 0), (200, 40, 1), (150, 120, 2), (9, 3, 3)]
)
@pytest.mark.parametrize("sparse", [False, True])
def test_evaluate_matches_sklearn_and_references(n_documents, n_labels, seed, sparse):
    y_true, scores = random_case(n_documents, n_labels, seed, np.float64)
    result = evaluate(sp.csr_matrix(y_true) if sparse else y_true, scores, 0.5)
    assert_matches_sklearn(y_true, scores, 0.5, result)
    for k in (5, 10, 15):
        assert result[f"recall@{k}"] == pytest.approx(reference_topk_tie_free(y_true, scores, k))
    reference = reference_ranking(y_true, scores, (5, 10, 15))
    for name, value in reference.items():
        assert result[name] == pytest.approx(value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_evaluate_with_ties_matches_sklearn_ap_and_tie_reference(dtype):
    rng = np.random.default_rng(7)
    y_true = rng.random((120, 12)) < 0.2
    scores = (rng.integers(0, 5, size=(120, 12)) / 4).astype(dtype)  # many ties
    result = evaluate(y_true, scores, 0.5, ks=(1, 3, 5))
    assert_matches_sklearn(y_true, scores, 0.5, result)
    for name, value in reference_ranking(y_true, scores, (1, 3, 5)).items():
        assert result[name] == pytest.approx(value)


def test_tie_share_is_the_average_over_every_order_of_the_labels():
    rng = np.random.default_rng(3)
    y_true = rng.random((6, 6)) < 0.4
    y_true[:, 0] = True
    scores = rng.integers(0, 3, size=(6, 6)).astype(np.float32)
    ks = (1, 2, 4)
    by_order = {k: [] for k in ks}
    for order in itertools.permutations(range(6)):  # every tie-breaking order of the labels
        ranks = np.argsort(np.lexsort((np.array(order)[None, :].repeat(6, 0), -scores)), axis=1)
        for k in ks:
            found = (y_true & (ranks < k)).sum(axis=1) / y_true.sum(axis=1)
            by_order[k].append(found.mean())
    result = evaluate(y_true, scores, ks=ks)
    for k in ks:
        assert result[f"recall@{k}"] == pytest.approx(np.mean(by_order[k]))


def test_chunks_and_gathered_batches_give_the_same_numbers(monkeypatch):
    y_true, scores = random_case(101, 30, 5, np.float16)
    whole = evaluate(y_true, scores, 0.4)
    whole_table = per_label(y_true, scores, 0.4)
    whole_counts = threshold_grid_counts(y_true, scores, by_label=True)
    monkeypatch.setattr(metrics, "CHUNK_ROWS", 7)
    monkeypatch.setattr(metrics, "GATHER_ELEMENTS", 64)
    assert evaluate(sp.csr_matrix(y_true), scores, 0.4) == pytest.approx(whole)
    assert per_label(y_true, scores, 0.4).equals(whole_table)
    for chunked, unchunked in zip(
        threshold_grid_counts(y_true, scores, by_label=True), whole_counts, strict=True
    ):
        np.testing.assert_array_equal(chunked, unchunked)


def test_documents_without_labels_count_for_exact_match_only():
    y_true = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.3], [0.7, 0.1, 0.1]], dtype=np.float32)
    result = evaluate(y_true, scores, 0.5, ks=(1,))
    assert result["exact_match"] == pytest.approx(2 / 3)  # row 2 predicts a label it lacks
    assert result["recall@1"] == 1.0 and result["map"] == 1.0 and result["precision@recall"] == 1.0
    assert result["f1_micro"] == pytest.approx(2 * 1 / (1 + 2))


def test_no_labels_at_all_gives_nan_ranking_metrics():
    result = evaluate(np.zeros((2, 3), dtype=bool), np.zeros((2, 3), dtype=np.float32))
    assert result["exact_match"] == 1.0 and result["f1_micro"] == 0.0
    assert np.isnan(result["f1_macro"]) and np.isnan(result["map"])
    assert np.isnan(result["recall@5"]) and np.isnan(result["precision@recall"])


def test_label_never_predicted_counts_zero_in_macro_f1():
    y_true = np.array([[1, 1], [1, 0]], dtype=bool)
    scores = np.array([[0.9, 0.2], [0.8, 0.1]], dtype=np.float32)  # label 1 never predicted
    result = evaluate(y_true, scores, 0.5)
    assert result["f1_macro"] == pytest.approx((1.0 + 0.0) / 2)
    table = per_label(y_true, scores, 0.5, labels=["A", "B"])
    assert table.to_dict("list") == {
        "label": ["A", "B"],
        "support": [2, 1],
        "predicted": [2, 0],
        "tp": [2, 0],
        "precision": [1.0, 0.0],
        "recall": [1.0, 0.0],
        "f1": [1.0, 0.0],
    }


def test_all_zero_scores():
    y_true = np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=bool)
    result = evaluate(y_true, np.zeros((2, 4), dtype=np.float16), 0.5, ks=(1, 2, 4))
    assert result["f1_micro"] == 0.0 and result["exact_match"] == 0.0
    assert result["recall@1"] == pytest.approx(1 / 4)  # every label ties: k / labels
    assert result["recall@2"] == pytest.approx(2 / 4)
    assert result["recall@4"] == 1.0
    assert result["map"] == pytest.approx((2 / 4 + 1 / 4) / 2)  # scikit-learn's tie rule
    assert result["precision@recall"] == pytest.approx((2 / 4 + 1 / 4) / 2)


def test_k_larger_than_the_number_of_labels_finds_every_label():
    y_true, scores = random_case(30, 4, 11)
    result = evaluate(y_true, scores, ks=(5, 100))
    assert result["recall@5"] == 1.0 and result["recall@100"] == 1.0


def test_per_label_thresholds_match_sklearn():
    y_true, scores = random_case(150, 9, 4)
    thresholds = np.linspace(0.2, 0.8, 9)
    result = evaluate(y_true, scores, thresholds)
    assert_matches_sklearn(y_true, scores, thresholds, result)
    table = per_label(y_true, scores, thresholds)
    predicted = scores >= thresholds
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, average=None, zero_division=0
    )
    np.testing.assert_allclose(table["precision"], precision)
    np.testing.assert_allclose(table["recall"], recall)
    np.testing.assert_allclose(table["f1"], f1)
    np.testing.assert_array_equal(table["support"], support)
    np.testing.assert_array_equal(table["predicted"], predicted.sum(axis=0))


def test_threshold_compares_real_numbers_not_rounded_ones():
    score = np.float32(0.3)  # 0.30000001192...
    scores = np.array([[score, 0.5]], dtype=np.float32)
    y_true = np.array([[True, True]])
    assert evaluate(y_true, scores, 0.3)["recall_micro"] == 1.0
    just_above = float(score) + 1e-12  # rounds to the same float32
    assert evaluate(y_true, scores, just_above)["recall_micro"] == 0.5
    assert evaluate(y_true, scores.astype(np.float16), 0.5)["recall_micro"] == 0.5


def test_bad_inputs_raise_clear_errors():
    y_true = np.array([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="NaN in rows \\[1\\]"):
        evaluate(y_true, np.array([[0.1, 0.2], [np.nan, 0.3]]))
    with pytest.raises(ValueError, match="shape"):
        evaluate(y_true, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="float16, float32 or float64"):
        evaluate(y_true, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="only 0/1.*rows \\[0\\]"):
        evaluate(np.array([[2, 0], [0, 1]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="one per label"):
        evaluate(y_true, np.zeros((2, 2)), threshold=[0.5, 0.5, 0.5])


# --------------------------------------------------------------------------- subsets, tuning


def test_recall_at_k_subset_ranks_among_all_scores():
    y_true, scores = random_case(80, 25, 6, np.float64)
    rng = np.random.default_rng(0)
    primary = y_true & (rng.random(y_true.shape) < 0.5)
    result = recall_at_k_subset(sp.csr_matrix(primary), scores, ks=(1, 5))
    documents = primary.any(axis=1)
    assert result["n_documents"] == documents.sum() and result["n_codes"] == primary.sum()
    for k in (1, 5):
        top = np.argsort(-scores, axis=1)[:, :k]
        found = np.take_along_axis(primary, top, axis=1).sum(axis=1)
        expected = (found[documents] / primary[documents].sum(axis=1)).mean()
        assert result[f"recall@{k}"] == pytest.approx(expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_tune_threshold_matches_a_grid_search_with_sklearn(dtype):
    y_true, scores = random_case(300, 20, 8, dtype)
    grid_f1 = np.array(
        [f1_score(y_true, scores >= threshold, average="micro") for threshold in THRESHOLD_GRID]
    )
    best = np.flatnonzero(grid_f1 == grid_f1.max())
    assert tune_threshold(y_true, scores) == THRESHOLD_GRID[best[len(best) // 2]]
    predicted, tp = threshold_grid_counts(y_true, scores, by_label=True)  # [labels, grid]
    for index in (0, 37, 98):
        hits = scores >= THRESHOLD_GRID[index]
        np.testing.assert_array_equal(predicted[:, index], hits.sum(axis=0))
        np.testing.assert_array_equal(tp[:, index], (hits & y_true).sum(axis=0))


def test_tune_threshold_on_a_custom_grid_and_without_labels():
    y_true = np.array([[1, 0], [0, 1], [0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.4], [0.3, 0.6], [0.2, 0.1]], dtype=np.float32)
    assert tune_threshold(y_true, scores, grid=[0.25, 0.5, 0.95]) == 0.5
    with pytest.raises(ValueError, match="no labels"):
        tune_threshold(np.zeros((2, 2), dtype=bool), np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="increasing"):
        tune_threshold(y_true, scores, grid=[0.5, 0.2])


# --------------------------------------------------------------------------- conventions

#: Three documents, three labels: label 2 is never true and document 2 has no label, so
#: labels="present" keeps documents 0-1 and labels 0-1; document 0's true score sits exactly on
#: the threshold 0.5, so rule=">" loses it.
CONVENTION_TRUTH = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
CONVENTION_SCORES = np.array([[0.5, 0.2, 0.9], [0.1, 0.7, 0.5], [0.6, 0.1, 0.1]], dtype=np.float32)


@pytest.mark.parametrize(
    "labels, rule, expected",
    [
        # predicted {0, 2}, {1, 2}, {0}: TP 2 of 5 predicted, 2 true; AP 1/2 (label 2 above) and 1
        ("all", ">=", {"n_documents": 3, "f1_micro": 4 / 7, "precision_micro": 2 / 5,
                       "exact_match": 0.0, "f1_macro": (2 / 3 + 1) / 2, "map": 3 / 4}),
        # documents 0-1, labels 0-1: predicted {0}, {1}, both right
        ("present", ">=", {"n_documents": 2, "f1_micro": 1.0, "precision_micro": 1.0,
                           "exact_match": 1.0, "f1_macro": 1.0, "map": 1.0}),
        # 0.5 is no longer predicted: {2}, {1}, {0}: TP 1 of 3, document 1 exactly right
        ("all", ">", {"n_documents": 3, "f1_micro": 2 / 5, "precision_micro": 1 / 3,
                      "exact_match": 1 / 3, "f1_macro": (0 + 1) / 2, "map": 3 / 4}),
        ("present", ">", {"n_documents": 2, "f1_micro": 2 / 3, "precision_micro": 1.0,
                          "exact_match": 1 / 2, "f1_macro": (0 + 1) / 2, "map": 1.0}),
    ],
)
def test_label_set_and_decision_rule_conventions_by_hand(labels, rule, expected):
    result = evaluate(CONVENTION_TRUTH, CONVENTION_SCORES, 0.5, ks=(1,), labels=labels, rule=rule)
    assert {key: result[key] for key in expected} == pytest.approx(expected)


def test_present_labels_match_sklearn_on_the_kept_columns_and_rows():
    y_true, scores = random_case(80, 12, 5)
    y_true[:, [3, 7]] = False  # two labels absent from the split
    thresholds = np.linspace(0.3, 0.7, 12)
    rows, columns = y_true.any(axis=1), y_true.any(axis=0)
    result = evaluate(y_true, scores, thresholds, labels="present")
    kept_truth, kept_scores = y_true[rows][:, columns], scores[rows][:, columns]
    assert_matches_sklearn(kept_truth, kept_scores, thresholds[columns], result)
    assert result["n_documents"] == rows.sum() < len(y_true)


def test_strict_rule_differs_only_at_scores_equal_to_the_threshold():
    y_true = np.array([[True, True, True]])
    scores16 = np.array([[0.5, 0.5005, 0.4995]], dtype=np.float16)  # 0.5 is exact in float16
    assert evaluate(y_true, scores16, 0.5)["recall_micro"] == pytest.approx(2 / 3)
    assert evaluate(y_true, scores16, 0.5, rule=">")["recall_micro"] == pytest.approx(1 / 3)
    score = np.float32(0.3)  # 0.30000001192...: above the real number 0.3 under both rules
    scores32 = np.array([[score, 0.0, 0.0]], dtype=np.float32)
    assert evaluate(y_true, scores32, 0.3, rule=">")["recall_micro"] == pytest.approx(1 / 3)
    assert evaluate(y_true, scores32, float(score), rule=">")["recall_micro"] == 0.0
    table = per_label(y_true, scores16, 0.5, rule=">")
    assert table["predicted"].tolist() == [0, 1, 0]


def test_conventions_table_puts_the_four_combinations_side_by_side():
    table = metrics.conventions(CONVENTION_TRUTH, CONVENTION_SCORES, 0.5, ks=(1,)).set_index(
        "metric")
    assert list(table.columns) == list(metrics.CONVENTIONS)
    assert table.loc["n_labels"].tolist() == [3, 2, 3, 2]
    assert table.loc["n_documents"].tolist() == [3, 2, 3, 2]
    assert table.loc["f1_micro"].tolist() == pytest.approx([4 / 7, 1.0, 2 / 5, 2 / 3])
    assert list(table.index[2:]) == metrics.metric_names((1,))


def test_unknown_convention_names_the_choices():
    with pytest.raises(ValueError, match=r"labels must be one of \['all', 'present'\]"):
        evaluate(CONVENTION_TRUTH, CONVENTION_SCORES, labels="seen")
    with pytest.raises(ValueError, match=r"rule must be one of \['>=', '>'\]"):
        evaluate(CONVENTION_TRUTH, CONVENTION_SCORES, rule="=>")
