"""The study's evaluation metrics for multi-label code prediction, exact and fast.

Inputs are ``y_true``, a boolean ``[documents, labels]`` matrix (dense NumPy or SciPy sparse, built
from code lists with :func:`label_matrix`), and ``scores``, floats of the same shape (float16,
float32 or float64; the predictions contract stores float16).

Definitions (the study's Methods, "Evaluation"):

- A label is *predicted* when ``score >= threshold`` (``score > threshold`` with ``rule=">"``),
  compared exactly (float16 scores are widened to float32 without loss and the threshold is
  rounded up to the next float32, which gives the same answer as comparing the real numbers).
  ``threshold`` is one float or one per label ``[labels]``.
- ``f1_micro``: 2 TP / (2 TP + FP + FN) over all labels; ``precision_micro`` = TP / predicted,
  ``recall_micro`` = TP / true. A zero denominator gives 0 (as scikit-learn does).
- ``f1_macro``: mean of per-label F1 = 2 TP / (support + predicted) over the labels with support
  >= 1 in ``y_true``.
- ``exact_match``: share of all documents whose predicted label set equals the true set (a
  document without labels matches when nothing is predicted).
- ``recall@k``: mean over documents with >= 1 true label of (true labels among the k highest
  scores) / (number of true labels). k larger than the number of labels means all labels.
- ``precision@recall``: the same documents' mean precision among their R highest scores, R = the
  document's number of true labels.
- ``map``: the same documents' mean average precision over the full ranking: the mean, over the
  true labels, of (true labels with a score >= its score) / (labels with a score >= its score).
  This is scikit-learn's ``average_precision_score`` for the document, ties included.

Ties in ``recall@k`` and ``precision@recall``: when labels share a score across the k-th place,
each tied true label counts with the share of the tied places inside the top k, i.e. the average
over every order of the tied labels. Without ties this is the ordinary top-k; with all-zero scores
``recall@k`` is k / (number of labels), whatever the label order.

Conventions (options of :func:`evaluate`; ours are the defaults). The study authors' public code
differs from ours in two choices that change the numbers on the same scores:

- ``labels="all"`` (ours) scores every model label; ``labels="present"`` (the reference) scores only
  the labels with support >= 1 in ``y_true`` and drops the documents left without a true label, so
  labels never seen in the evaluated split can neither be predicted falsely nor take a rank;
- ``rule=">="`` (ours) predicts a label at ``score >= threshold``; ``rule=">"`` (the reference, and
  the study's "above the threshold") at ``score > threshold``. They differ only for scores equal
  to the threshold, which float16 scores make common.

:func:`conventions` puts the four combinations side by side.

Scores are read in chunks of :data:`CHUNK_ROWS` documents; no dense float64 copy of the whole
matrix is made. Every count is additive, so :class:`Counts` holds them per document (or summed
over any weighting of documents): bootstrap resamples and subgroups in
:mod:`medcoding.evaluation` are weighted sums of the same per-document counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import scipy.sparse as sp

DEFAULT_KS: tuple[int, ...] = (5, 10, 15)
CHUNK_ROWS = 8192
GATHER_ELEMENTS = 1 << 22  # scores gathered at once to rank true labels (16 MB as float32)
THRESHOLD_GRID = np.round(np.arange(1, 100) / 100, 2)  # [99] 0.01, 0.02, ..., 0.99
LABEL_SETS = ("all", "present")  # evaluate(labels=...): every model label | labels in y_true
RULES = (">=", ">")  # evaluate(rule=...): predicted at score >= threshold | score > threshold

Matrix = np.ndarray | sp.csr_matrix


# --------------------------------------------------------------------------- label matrices


def label_matrix_with_unknown(
    code_lists: Sequence[Sequence[str]], labels: Sequence[str]
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Boolean ``[documents, labels]`` CSR matrix of the code lists, and the codes left out.

    Codes not in ``labels`` are not in the matrix; the second value counts, for each such code,
    the documents that hold it (most frequent first), so callers can report them. A code listed
    twice in one document counts once.
    """
    labels = list(labels)
    index = {label: column for column, label in enumerate(labels)}
    if len(index) != len(labels):
        duplicated = sorted(pd.Series(labels)[pd.Series(labels).duplicated()].unique())
        raise ValueError(
            f"labels hold duplicates, e.g. {duplicated[:5]}; fix: pass each label once "
            "(as labels.json lists them)"
        )
    indptr = [0]
    indices: list[int] = []
    unknown: Counter[str] = Counter()
    bad_rows: list[int] = []
    for row, codes in enumerate(code_lists):
        if codes is None or isinstance(codes, str | float):
            bad_rows.append(row)
            indptr.append(len(indices))
            continue
        unique_codes = set(codes)
        indices.extend(sorted(index[code] for code in unique_codes if code in index))
        unknown.update(str(code) for code in unique_codes if code not in index)
        indptr.append(len(indices))
    if bad_rows:
        examples = [code_lists[row] for row in bad_rows[:5]]
        raise ValueError(
            f"code lists must be lists of codes; rows {bad_rows[:5]} hold {examples!r} "
            f"({len(bad_rows)} rows in all). Fix: use an empty list for a document without codes "
            "and wrap a single code in a list"
        )
    data = np.ones(len(indices), dtype=bool)
    shape = (len(indptr) - 1, len(labels))
    matrix = sp.csr_matrix((data, np.asarray(indices, dtype=np.int64), indptr), shape=shape)
    return matrix, dict(sorted(unknown.items(), key=lambda item: (-item[1], item[0])))


def label_matrix(code_lists: Sequence[Sequence[str]], labels: Sequence[str]) -> sp.csr_matrix:
    """Boolean ``[documents, labels]`` CSR matrix; codes outside ``labels`` are left out.

    Use :func:`label_matrix_with_unknown` to learn which codes were left out.
    """
    return label_matrix_with_unknown(code_lists, labels)[0]


# --------------------------------------------------------------------------- input checks


def as_truth(y_true, name: str = "y_true") -> sp.csr_matrix:
    """``y_true`` as a boolean CSR matrix with sorted indices; it must hold only 0/1 values."""
    if sp.issparse(y_true):
        matrix = sp.csr_matrix(y_true, copy=True)
    else:
        array = np.asarray(y_true)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D [documents, labels]; got shape {array.shape}")
        matrix = sp.csr_matrix(array)
    if matrix.dtype != bool:
        coo = matrix.tocoo()
        bad = ~((coo.data == 0) | (coo.data == 1))
        if bad.any():
            raise ValueError(
                f"{name} must hold only 0/1 or True/False; rows {coo.row[bad][:5].tolist()} "
                f"hold {coo.data[bad][:5].tolist()}. Fix: build it with label_matrix()"
            )
        matrix.data = matrix.data.astype(bool)
    matrix.eliminate_zeros()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def as_scores(scores, shape: tuple[int, int], name: str = "scores") -> np.ndarray:
    """``scores`` as a float16/32/64 array of ``shape`` (not copied when already one)."""
    array = scores if isinstance(scores, np.ndarray) else np.asarray(scores)
    if array.dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(
            f"{name} must be float16, float32 or float64; got {array.dtype}. Fix: pass the "
            "model's probabilities, e.g. load_predictions(...).scores"
        )
    if array.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {array.shape} but y_true has {tuple(shape)}; fix: align the rows "
            "(documents) and the columns (labels, in the labels.json order)"
        )
    return array


def _compute_dtype(scores: np.ndarray) -> type:
    return np.float64 if scores.dtype == np.float64 else np.float32


def _round_up(values: np.ndarray, dtype: type) -> np.ndarray:
    """Smallest ``dtype`` numbers >= ``values``, so ``score >= result`` is ``score >= value``."""
    cast = values.astype(dtype)
    low = cast < values
    cast[low] = np.nextafter(cast[low], np.array(np.inf, dtype=cast.dtype))
    return cast


def threshold_vector(threshold, n_labels: int, dtype: type = np.float32,
                     rule: str = ">=") -> np.ndarray:
    """One threshold per label ``[labels]`` in ``dtype``: the smallest ``dtype`` number a score
    must reach, so ``score >= result`` is ``score >= threshold`` (``rule=">="``, see
    :func:`_round_up`) or ``score > threshold`` (``rule=">"``: one step further where the
    threshold is itself a ``dtype`` number)."""
    _check_choice("rule", rule, RULES)
    values = np.asarray(threshold, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_labels, float(values))
    elif values.shape != (n_labels,):
        raise ValueError(
            f"threshold must be one float or one per label ({n_labels}); got shape {values.shape}"
        )
    if np.isnan(values).any():
        raise ValueError(f"threshold holds NaN at labels {np.flatnonzero(np.isnan(values))[:5]}")
    reach = _round_up(values, dtype)
    if rule == ">":
        exact = reach == values  # the threshold itself is a dtype number: step past it
        reach[exact] = np.nextafter(reach[exact], np.array(np.inf, dtype=reach.dtype))
    return reach


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")


def restrict_to_present(y_true, scores, threshold=0.5):
    """The reference's evaluation set: labels with support >= 1, documents with >= 1 label.

    Returns ``(truth [kept documents, present labels], scores [same], threshold, kept documents
    [documents] bool, present labels [labels] bool)``; a per-label threshold is cut to the present
    labels. The kept scores are one copy, in their stored dtype.
    """
    truth = as_truth(y_true)
    scores = as_scores(scores, truth.shape)
    present = np.diff(truth.tocsc().indptr) > 0  # [labels]
    kept = np.diff(truth.indptr) > 0  # [documents]
    threshold = np.asarray(threshold, dtype=np.float64)
    if threshold.ndim == 1 and threshold.shape == (truth.shape[1],):
        threshold = threshold[present]
    kept_scores = scores[np.ix_(kept, present)]  # [kept documents, present labels]
    return truth[kept][:, present], kept_scores, threshold, kept, present


def iter_chunks(
    truth: sp.csr_matrix, scores: np.ndarray, dtype: type | None
) -> Iterator[tuple[sp.csr_matrix, np.ndarray]]:
    """Yield ``(truth rows, score rows)`` per :data:`CHUNK_ROWS` documents.

    Scores are cast to ``dtype`` (None: as stored) in one buffer reused from chunk to chunk, so
    a yielded block is valid until the next one. Raises when a chunk holds NaN scores, naming
    the rows.
    """
    chunk_rows = CHUNK_ROWS
    buffer = None
    for start in range(0, truth.shape[0], chunk_rows):
        stop = min(start + chunk_rows, truth.shape[0])
        block = scores[start:stop]  # [rows, labels]
        if dtype is not None and block.dtype != dtype:
            if buffer is None:
                buffer = np.empty((chunk_rows, scores.shape[1]), dtype=dtype)
            np.copyto(buffer[: stop - start], block)
            block = buffer[: stop - start]
        nan_rows = np.isnan(block).any(axis=1)
        if nan_rows.any():
            raise ValueError(
                f"scores hold NaN in rows {(start + np.flatnonzero(nan_rows))[:5].tolist()}; "
                "fix: rerun prediction for those documents (NaN cannot be ranked)"
            )
        yield truth[start:stop], block


def safe_ratio(numerator, denominator, empty: float = 0.0) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.broadcast_to(np.asarray(denominator, dtype=np.float64), numerator.shape)
    out = np.full(numerator.shape, empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


# --------------------------------------------------------------------------- ranks


def _entry_ranks(block: np.ndarray, rows: np.ndarray, values: np.ndarray):
    """For each entry (its row, its score): labels of the row scoring > and >= the score."""
    greater = np.empty(len(rows), dtype=np.int64)
    at_least = np.empty(len(rows), dtype=np.int64)
    step = max(1, GATHER_ELEMENTS // max(1, block.shape[1]))
    gathered = np.empty((min(step, len(rows)), block.shape[1]), dtype=block.dtype)  # [step, labels]
    compared = np.empty(gathered.shape, dtype=bool)  # [step, labels]
    for start in range(0, len(rows), step):
        stop = min(start + step, len(rows))
        np.take(block, rows[start:stop], axis=0, out=gathered[: stop - start])
        value = values[start:stop, None]  # [step, 1]
        np.greater(gathered[: stop - start], value, out=compared[: stop - start])
        greater[start:stop] = compared[: stop - start].sum(axis=1)
        np.greater_equal(gathered[: stop - start], value, out=compared[: stop - start])
        at_least[start:stop] = compared[: stop - start].sum(axis=1)
    return greater, at_least


def _share_in_top(greater: np.ndarray, at_least: np.ndarray, k) -> np.ndarray:
    """Share of an entry's tie group inside the top ``k`` (1 or 0 when it has no ties)."""
    return np.clip((k - greater) / (at_least - greater), 0.0, 1.0)


def _entries_at_least(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each entry: entries of the same row with a score >= its score (itself included)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-values, rows))  # by row, then score descending
    sorted_rows, sorted_values = rows[order], values[order]
    new_row = np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]
    new_group = new_row | np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group_end = np.r_[np.flatnonzero(new_group)[1:], len(rows)]  # exclusive end of each tie group
    row_start = np.flatnonzero(new_row)
    count = group_end[np.cumsum(new_group) - 1] - row_start[np.cumsum(new_row) - 1]
    result = np.empty(len(rows), dtype=np.int64)
    result[order] = count
    return result


def _block_ranking(truth_block: sp.csr_matrix, block: np.ndarray, ks: Sequence[int]):
    """Per-document sums over true labels: shares in top k ``[rows, K]``, AP, P@R ``[rows]``.

    Each is the document's Recall@k / AP / Precision@Recall (0 for a document without labels).
    """
    n_rows = block.shape[0]
    n_true = np.diff(truth_block.indptr)  # [rows]
    rows = np.repeat(np.arange(n_rows), n_true)  # [entries]
    values = block[rows, truth_block.indices]  # [entries]
    greater, at_least = _entry_ranks(block, rows, values)
    per_document = np.maximum(n_true, 1)

    def per_row(entry_values: np.ndarray) -> np.ndarray:
        return np.bincount(rows, weights=entry_values, minlength=n_rows) / per_document

    recall = np.zeros((n_rows, len(ks)))  # [rows, K]
    for column, k in enumerate(ks):
        recall[:, column] = per_row(_share_in_top(greater, at_least, k))
    precision_at_recall = per_row(_share_in_top(greater, at_least, n_true[rows]))
    average_precision = per_row(_entries_at_least(rows, values) / at_least)
    return recall, average_precision, precision_at_recall


# --------------------------------------------------------------------------- additive counts


def _weighted(weights, values):
    """``weights [new, units] @ values [units, ...]``, sparse only when both are sparse."""
    if sp.issparse(values) and not sp.issparse(weights):
        return np.asarray((values.T @ weights.T).T)
    result = weights @ values
    return result.tocsr() if sp.issparse(result) else np.asarray(result)


@dataclass(frozen=True)
class Counts:
    """Additive evaluation counts, one row per unit: a document, or a weighted sum of documents."""

    ks: tuple[int, ...]
    documents: np.ndarray  # [units]
    labelled: np.ndarray  # [units] documents with at least one true label
    exact: np.ndarray  # [units] documents whose predicted set equals the true set
    true: np.ndarray  # [units] true labels
    predicted: np.ndarray  # [units] predicted labels
    tp: np.ndarray  # [units] true positives
    recall_at_k: np.ndarray  # [units, len(ks)] sums of per-document Recall@k
    average_precision: np.ndarray  # [units] sums of per-document AP
    precision_at_recall: np.ndarray  # [units] sums of per-document Precision@Recall
    label_true: Matrix  # [units, labels] support
    label_predicted: Matrix  # [units, labels]
    label_tp: Matrix  # [units, labels]

    def combine(self, weights) -> Counts:
        """Counts of ``weights [new_units, units] @ self`` (dense or sparse weights)."""
        values = {
            field.name: _weighted(weights, getattr(self, field.name))
            for field in fields(self)
            if field.name != "ks"
        }
        return Counts(ks=self.ks, **values)

    def total(self) -> Counts:
        """All units summed into one."""
        return self.combine(np.ones((1, len(self.documents))))

    @staticmethod
    def stack(parts: Sequence[Counts]) -> Counts:
        """The units of ``parts`` one after another."""
        values = {}
        for field in fields(Counts):
            if field.name == "ks":
                continue
            pieces = [getattr(part, field.name) for part in parts]
            if sp.issparse(pieces[0]):
                values[field.name] = sp.vstack(pieces, format="csr")
            elif pieces[0].ndim == 2:
                values[field.name] = np.vstack(pieces)
            else:
                values[field.name] = np.concatenate(pieces)
        return Counts(ks=parts[0].ks, **values)


def _block_counts(
    truth_block: sp.csr_matrix,
    block: np.ndarray,
    thresholds: np.ndarray,
    ks: tuple[int, ...],
    per_document: bool,
) -> Counts:
    """Counts of one chunk: one unit per document, or (``per_document=False``) one in all."""
    n_rows = block.shape[0]
    predicted = block >= thresholds  # [rows, labels] bool
    n_true = np.diff(truth_block.indptr)  # [rows]
    rows = np.repeat(np.arange(n_rows), n_true)  # [entries]
    hit = predicted[rows, truth_block.indices]  # [entries]
    n_predicted = predicted.sum(axis=1)
    tp = np.bincount(rows, weights=hit, minlength=n_rows)
    recall, average_precision, precision_at_recall = _block_ranking(truth_block, block, ks)
    label_tp = sp.csr_matrix(
        (hit.astype(np.float64), truth_block.indices, truth_block.indptr), shape=block.shape
    )
    counts = Counts(
        ks=ks,
        documents=np.ones(n_rows),
        labelled=(n_true > 0).astype(np.float64),
        exact=((tp == n_true) & (n_predicted == n_true)).astype(np.float64),
        true=n_true.astype(np.float64),
        predicted=n_predicted.astype(np.float64),
        tp=tp,
        recall_at_k=recall,
        average_precision=average_precision,
        precision_at_recall=precision_at_recall,
        label_true=truth_block.astype(np.float64),
        label_predicted=sp.csr_matrix(predicted).astype(np.float64) if per_document else None,
        label_tp=label_tp,
    )
    if per_document:
        return counts
    totals = {
        field.name: _column_totals(getattr(counts, field.name))
        for field in fields(Counts)
        if field.name not in ("ks", "label_predicted")
    }
    return Counts(ks=ks, label_predicted=_column_totals(predicted), **totals)


def _column_totals(values) -> np.ndarray:
    """Sum over the first axis, kept as one unit: ``[1]`` or ``[1, columns]``."""
    total = np.asarray(values.sum(axis=0), dtype=np.float64)
    return total.reshape(1, *np.shape(values)[1:])


def document_counts(
    y_true,
    scores,
    threshold=0.5,
    ks: Sequence[int] = DEFAULT_KS,
    per_document: bool = True,
    rule: str = ">=",
) -> Counts:
    """Evaluation counts per document (``per_document``) or per chunk of documents.

    Per document, the label matrices are sparse: memory grows with the true and the predicted
    labels, so use a threshold that predicts few labels per document. ``rule`` as in
    :func:`evaluate`.
    """
    truth = as_truth(y_true)
    scores = as_scores(scores, truth.shape)
    ks = _check_ks(ks)
    dtype = _compute_dtype(scores)
    thresholds = threshold_vector(threshold, truth.shape[1], dtype, rule)
    parts = [
        _block_counts(truth_block, block, thresholds, ks, per_document)
        for truth_block, block in iter_chunks(truth, scores, dtype)
    ]
    if not parts:
        raise ValueError("y_true has no documents; nothing to evaluate")
    return Counts.stack(parts)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1; got {ks}")
    return ks


def _dense(matrix: Matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """The metric keys of :func:`evaluate` after ``n_documents``, in order."""
    threshold_based = ["f1_micro", "f1_macro", "precision_micro", "recall_micro", "exact_match"]
    return threshold_based + [f"recall@{k}" for k in ks] + ["map", "precision@recall"]


def metrics_from_counts(counts: Counts) -> dict[str, np.ndarray]:
    """Every metric per unit of ``counts`` (``[units]`` each); ranking metrics NaN without labels.

    Label matrices are made dense here: call it on few units (groups, resamples), not documents.
    """
    support = _dense(counts.label_true)  # [units, labels]
    present = support > 0
    label_f1 = safe_ratio(2 * _dense(counts.label_tp), support + _dense(counts.label_predicted))
    n_present = present.sum(axis=1)
    values = {
        "n_documents": counts.documents,
        "f1_micro": safe_ratio(2 * counts.tp, counts.true + counts.predicted),
        "f1_macro": safe_ratio((label_f1 * present).sum(axis=1), n_present, np.nan),
        "precision_micro": safe_ratio(counts.tp, counts.predicted),
        "recall_micro": safe_ratio(counts.tp, counts.true),
        "exact_match": safe_ratio(counts.exact, counts.documents, np.nan),
    }
    for column, k in enumerate(counts.ks):
        values[f"recall@{k}"] = safe_ratio(counts.recall_at_k[:, column], counts.labelled, np.nan)
    values["map"] = safe_ratio(counts.average_precision, counts.labelled, np.nan)
    values["precision@recall"] = safe_ratio(counts.precision_at_recall, counts.labelled, np.nan)
    return values


# --------------------------------------------------------------------------- public metrics


def evaluate(
    y_true,
    scores,
    threshold=0.5,
    ks: Sequence[int] = DEFAULT_KS,
    labels: str = "all",
    rule: str = ">=",
) -> dict[str, float]:
    """All metrics of the study at one threshold (float, or ``[labels]`` per label).

    ``labels``: ``"all"`` (default) scores every label column; ``"present"`` (the reference
    implementation's convention) only the columns with support >= 1 in ``y_true``, on the
    documents with >= 1 true label. ``rule``: ``">="`` (default) predicts at ``score >=
    threshold``, ``">"`` (the reference's) at ``score > threshold``. See the module docstring.

    Keys: ``n_documents``, then :func:`metric_names` (definitions in the module docstring).
    """
    _check_choice("labels", labels, LABEL_SETS)
    if labels == "present":
        y_true, scores, threshold = restrict_to_present(y_true, scores, threshold)[:3]
    counts = document_counts(y_true, scores, threshold, ks, per_document=False, rule=rule).total()
    values = {name: float(value[0]) for name, value in metrics_from_counts(counts).items()}
    values["n_documents"] = int(values["n_documents"])
    return values


#: The combinations :func:`conventions` compares: column name -> (labels, rule).
CONVENTIONS = {
    "ours (all labels, >=)": ("all", ">="),
    "present labels, >=": ("present", ">="),
    "all labels, >": ("all", ">"),
    "reference (present labels, >)": ("present", ">"),
}


def conventions(y_true, scores, threshold=0.5, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """Every metric under our conventions and the reference implementation's, side by side.

    One row per metric (``n_documents``, ``n_labels`` scored, then :func:`metric_names`), one
    column per combination of :data:`CONVENTIONS`: ours first, the two single changes, the
    reference last.
    """
    truth = as_truth(y_true)
    n_present = int((np.diff(truth.tocsc().indptr) > 0).sum())
    columns = {}
    for name, (label_set, rule) in CONVENTIONS.items():
        values = evaluate(truth, scores, threshold, ks, labels=label_set, rule=rule)
        n_labels = truth.shape[1] if label_set == "all" else n_present
        columns[name] = {"n_documents": values.pop("n_documents"), "n_labels": n_labels, **values}
    return pd.DataFrame(columns).rename_axis("metric").reset_index()


def per_label(
    y_true, scores, threshold=0.5, labels: Sequence[str] | None = None, rule: str = ">="
) -> pd.DataFrame:
    """One row per label: support, predicted, tp, precision, recall, F1 (0 for 0/0).

    ``rule`` as in :func:`evaluate`.
    """
    truth = as_truth(y_true)
    scores = as_scores(scores, truth.shape)
    dtype = _compute_dtype(scores)
    thresholds = threshold_vector(threshold, truth.shape[1], dtype, rule)
    predicted = np.zeros(truth.shape[1], dtype=np.int64)
    tp = np.zeros(truth.shape[1], dtype=np.int64)
    for truth_block, block in iter_chunks(truth, scores, dtype):
        hits = block >= thresholds  # [rows, labels]
        predicted += hits.sum(axis=0)
        rows = np.repeat(np.arange(block.shape[0]), np.diff(truth_block.indptr))
        tp += np.bincount(
            truth_block.indices, weights=hits[rows, truth_block.indices], minlength=truth.shape[1]
        ).astype(np.int64)
    support = np.diff(truth.tocsc().indptr)
    if labels is not None and len(labels) != truth.shape[1]:
        raise ValueError(f"labels has {len(labels)} names for {truth.shape[1]} label columns")
    return pd.DataFrame(
        {
            "label": list(labels) if labels is not None else np.arange(truth.shape[1]),
            "support": support,
            "predicted": predicted,
            "tp": tp,
            "precision": safe_ratio(tp, predicted),
            "recall": safe_ratio(tp, support),
            "f1": safe_ratio(2 * tp, support + predicted),
        }
    )


def recall_at_k_subset(y_true_subset, scores, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Recall@k over the codes of interest only, ranked among all scores.

    ``y_true_subset`` marks the codes of interest (e.g. the primary diagnoses); other true codes
    still take places in the ranking. The mean runs over documents with >= 1 code of interest.
    Returns ``n_documents``, ``n_codes`` and ``recall@k`` for each k.
    """
    truth = as_truth(y_true_subset, "y_true_subset")
    scores = as_scores(scores, truth.shape)
    ks = _check_ks(ks)
    sums = np.zeros(len(ks))
    for truth_block, block in iter_chunks(truth, scores, _compute_dtype(scores)):
        sums += _block_ranking(truth_block, block, ks)[0].sum(axis=0)
    n_documents = int((np.diff(truth.indptr) > 0).sum())
    result: dict[str, float] = {"n_documents": n_documents, "n_codes": int(truth.nnz)}
    for k, total in zip(ks, sums, strict=True):
        result[f"recall@{k}"] = float(total / n_documents) if n_documents else float("nan")
    return result


# --------------------------------------------------------------------------- threshold tuning


def check_grid(grid) -> np.ndarray:
    grid = THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) == 0 or not np.isfinite(grid).all():
        raise ValueError(f"grid must be a non-empty 1-D array of finite thresholds; got {grid!r}")
    if (np.diff(grid) <= 0).any():
        raise ValueError("grid must be strictly increasing")
    return grid


def _grid_bins(block: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per score, the number of grid thresholds it reaches (``score >= grid[i]``)."""
    if block.dtype == np.float16:
        every_half = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
        table = np.searchsorted(grid, every_half, side="right")
        table = table.astype(np.uint8 if len(grid) < 256 else np.int64)
        return table[block.view(np.uint16)]
    return np.searchsorted(_round_up(grid, block.dtype), block, side="right")


def threshold_grid_counts(y_true, scores, grid=None, by_label: bool = False):
    """Predicted labels and true positives at each grid threshold, in one pass over the scores.

    Returns ``(predicted, tp)``, each ``[grid]``, or ``[labels, grid]`` with ``by_label``:
    how many scores (of true labels, for ``tp``) are >= ``grid[i]``.
    """
    truth = as_truth(y_true)
    scores = as_scores(scores, truth.shape)
    grid = check_grid(grid)
    n_bins = len(grid) + 1
    n_labels = truth.shape[1]
    predicted = np.zeros(n_labels * n_bins if by_label else n_bins, dtype=np.int64)
    tp = np.zeros(n_labels * n_bins, dtype=np.int64)
    for truth_block, block in iter_chunks(truth, scores, None):
        bins = _grid_bins(block, grid)  # [rows, labels]
        if by_label:
            for start in range(0, len(bins), 1024):
                flat = (np.arange(n_labels) * n_bins + bins[start : start + 1024]).ravel()
                predicted += np.bincount(flat, minlength=len(predicted))
        else:
            predicted += np.bincount(bins.ravel(), minlength=n_bins)
        rows = np.repeat(np.arange(block.shape[0]), np.diff(truth_block.indptr))
        true_bins = bins[rows, truth_block.indices].astype(np.int64)
        tp += np.bincount(truth_block.indices * n_bins + true_bins, minlength=len(tp))
    tp = tp.reshape(n_labels, n_bins)
    predicted = predicted.reshape(n_labels, n_bins) if by_label else predicted
    if not by_label:
        tp = tp.sum(axis=0)

    def at_least(histogram: np.ndarray) -> np.ndarray:  # scores reaching grid[i]: bins > i
        return np.cumsum(histogram[..., ::-1], axis=-1)[..., ::-1][..., 1:]

    return at_least(predicted), at_least(tp)


def middle_of_best(values: np.ndarray) -> np.ndarray:
    """Index of the middle one of the maxima along the last axis (ties: the median place)."""
    best = values == values.max(axis=-1, keepdims=True)
    target = best.sum(axis=-1, keepdims=True) // 2
    return np.argmax(np.cumsum(best, axis=-1) > target, axis=-1)


def tune_threshold(y_true, scores, grid=None) -> float:
    """The grid threshold that maximises micro F1 (validation data, as the study does).

    The default grid is :data:`THRESHOLD_GRID`, 0.01 to 0.99 in steps of 0.01. Where several
    thresholds reach the maximum, the middle one of them is taken.
    """
    grid = check_grid(grid)
    predicted, tp = threshold_grid_counts(y_true, scores, grid)
    n_true = as_truth(y_true).nnz
    if n_true == 0:
        raise ValueError("y_true holds no labels; a threshold cannot be tuned on it")
    f1 = safe_ratio(2 * tp, n_true + predicted)
    return float(grid[middle_of_best(f1)])
