"""Figure 3: are human-coded primary diagnoses ranked higher than secondary ones?

The study shows Recall@5 and Recall@10 separately for the primary code of each course and for its
secondary codes; primary codes are found more often among the model's top suggestions (and 90% of
secondary codes are in the top 10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from medcoding import metrics
from medcoding.analysis.comparison import MODEL
from medcoding.analysis.inputs import AnalysisInputs


def role_matrices(inputs: AnalysisInputs, reference: str = "human") -> dict[str, sp.csr_matrix]:
    """Split the reference codes into ``{"primary": ..., "secondary": ...}`` label matrices.

    Human reference: the primary column of the split. Truth reference (synthetic): the true
    primary full code, reduced to its category at level 3.
    """
    all_codes = inputs.reference(reference)
    if reference == "human":
        primary = inputs.split[inputs.primary_column]
    else:
        primary = inputs.split["true_primary_full"]
        if inputs.level == "l3":
            primary = primary.map(lambda code: code[:3] if isinstance(code, str) else code)
    primary_matrix = metrics.label_matrix(
        [[code] if isinstance(code, str) else [] for code in primary], inputs.labels)
    # A primary code the course does not also list is still a primary code of interest.
    secondary = all_codes.astype(np.int8) - all_codes.multiply(primary_matrix).astype(np.int8)
    secondary.eliminate_zeros()
    return {"primary": primary_matrix, "secondary": secondary.astype(bool).tocsr()}


def role_recall(inputs: AnalysisInputs, ks=(5, 10), reference: str = "human") -> pd.DataFrame:
    """Recall@k for primary and for secondary codes.

    Recall@k of a role is the mean, over courses with at least one code of that role, of the
    share of those codes among the k highest-scoring labels (``metrics.recall_at_k_subset``).
    Columns ``role, k, recall, courses, codes``.
    """
    rows = []
    for role, matrix in role_matrices(inputs, reference).items():
        result = metrics.recall_at_k_subset(matrix, inputs.scores, ks)
        for k in ks:
            rows.append({"role": role, "k": int(k), "recall": result[f"recall@{int(k)}"],
                         "courses": result["n_documents"], "codes": result["n_codes"]})
    return pd.DataFrame(rows, columns=["role", "k", "recall", "courses", "codes"])


def unseen_codes(inputs: AnalysisInputs) -> pd.DataFrame:
    """Human primary/secondary codes outside the label vocabulary (never rankable).

    Columns ``role, codes, unseen``: how many codes of each role the test split holds and how
    many of them the model has no label for.
    """
    known = set(inputs.labels)
    counts = {"primary": [0, 0], "secondary": [0, 0]}
    column, primary_column = inputs.code_column, inputs.primary_column
    for codes, primary in zip(inputs.split[column], inputs.split[primary_column], strict=True):
        for code in set(codes if codes is not None else []):
            role = "primary" if code == primary else "secondary"
            counts[role][0] += 1
            counts[role][1] += int(code not in known)
    return pd.DataFrame([{"role": role, "codes": total, "unseen": unseen}
                         for role, (total, unseen) in counts.items()])


def role_difference(inputs: AnalysisInputs, k: int = 10, n_resamples: int = 1000, seed: int = 0,
                    reference: str = "human") -> dict:
    """Primary minus secondary Recall@k with a 95% bootstrap interval over test patients.

    Each resample draws patients with replacement and recomputes both recalls on the same
    draw (percentile interval). Returns ``k, primary, secondary, difference, low, high``.
    """
    from medcoding.analysis.paired import ratio_difference

    found = role_ratios(inputs, k, reference)
    paired = ratio_difference(found["primary"], found["secondary"],
                              inputs.split["patient_id"], n_resamples, seed)
    return {"k": k, "primary": paired["first"], "secondary": paired["second"],
            "difference": paired["difference"], "low": paired["low"], "high": paired["high"]}


def role_ratios(inputs: AnalysisInputs, k: int = 10, reference: str = "human") -> dict:
    """Recall@k of each role as a ratio of per-course sums: ``{role: (hits, has)}`` where
    ``hits`` ``[courses]`` is the share of the course's codes of that role among its ``k``
    highest-scoring labels and ``has`` is 1 for a course with a code of that role, else 0."""
    top = np.argsort(-inputs.scores, axis=1, kind="stable")[:, :k]  # [courses, k]
    in_top = np.zeros(inputs.scores.shape, dtype=bool)  # [courses, labels]
    np.put_along_axis(in_top, top, True, axis=1)
    ratios = {}
    for role, matrix in role_matrices(inputs, reference).items():
        matrix = matrix.tocsr()
        counts = np.diff(matrix.indptr)  # [courses]
        hits = np.asarray(matrix.multiply(in_top).sum(axis=1)).ravel()  # [courses]
        ratios[role] = (np.where(counts > 0, hits / np.maximum(counts, 1), 0.0),
                        (counts > 0).astype(float))
    return ratios


def beside_study(recall: pd.DataFrame, differences: list[dict]) -> pd.DataFrame:
    """The study's secondary Recall@10 and its 'primary above secondary' beside ours."""
    from medcoding import study

    lookup = recall.set_index(["role", "k"])["recall"]
    rows = [{"statement": "secondary Recall@10",
             "study": study.PRIORITY_RECALL["secondary_recall@10"],
             "ours": lookup.get(("secondary", 10), np.nan), "low": np.nan, "high": np.nan}]
    for found in differences:
        rows.append({"statement": f"primary minus secondary Recall@{found['k']} "
                                  "(the study: positive)", "study": np.nan,
                     "ours": found["difference"], "low": found["low"], "high": found["high"]})
    return pd.DataFrame(rows)


def reading(differences: list[dict]) -> str:
    """Whether primary codes are ranked above secondary ones, per k, from the intervals."""
    from medcoding import readings

    parts = []
    for found in differences:
        parts.append(readings.compare(
            f"primary codes (Recall@{found['k']}: {found['primary']:.1%})",
            f"secondary codes ({found['secondary']:.1%})", found["difference"], found["low"],
            found["high"], f"Recall@{found['k']}", readings.points, verb="ranked above"))
    return (" ".join(parts) + " The study found primary codes above secondary ones at both k.")


# --------------------------------------------------------------------------- baselines

def differences_by_model(models, ks=(5, 10), n_resamples: int = 1000, seed: int = 0,
                         reference: str = "human") -> pd.DataFrame:
    """:func:`role_difference` for every model that ranks labels (a dictionary's 0/1 scores
    order none, so Recall@k would read its ties in label order; see
    :func:`medcoding.analysis.comparison.ranking_models`). Columns ``model, k, primary,
    secondary, difference, low, high``."""
    from medcoding.analysis.comparison import ranking_models

    rows = [{"model": name, **role_difference(scored.inputs, int(k), n_resamples, seed,
                                              reference)}
            for name, scored in ranking_models(models).items() for k in ks]
    return pd.DataFrame(rows, columns=["model", "k", "primary", "secondary", "difference", "low",
                                       "high"])


def model_reading(table: pd.DataFrame, base: str = MODEL) -> str:
    """Per baseline of :func:`differences_by_model`, whether it ranks primary codes above
    secondary ones too. The frequency prior ranks every course alike, so a gap it shows as
    well comes with which codes are primary, not with reading the notes."""
    from medcoding import readings
    from medcoding.analysis.comparison import called

    parts = []
    for _, row in table[table["model"] != base].iterrows():
        name, k = called(row["model"]), row["k"]
        parts.append(f"{readings.sentence(name)} at Recall@{k}: " + readings.compare(
            f"primary codes ({row['primary']:.1%})", f"secondary codes ({row['secondary']:.1%})",
            row["difference"], row["low"], row["high"], f"Recall@{k}", readings.points,
            verb="ranked above"))
        if not row["model"].startswith("frequency prior"):
            continue
        base_row = table[(table["model"] == base) & (table["k"] == k)]
        base_sign = (readings.direction(base_row["low"].iloc[0], base_row["high"].iloc[0])
                     if len(base_row) else 0)
        prior_sign = readings.direction(row["low"], row["high"])
        if base_sign > 0 and prior_sign > 0:
            parts.append(f"The prior reads no note, so at Recall@{k} part of {base}'s gap comes "
                         "with which codes are primary, not with reading.")
        elif base_sign > 0 and prior_sign < 0:
            parts.append(f"The prior reads no note and ranks secondary codes higher, so {base}'s "
                         f"lead of primary codes at Recall@{k} comes from reading the notes, not "
                         "from code frequency.")
    return " ".join(parts)
