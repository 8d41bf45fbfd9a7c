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
    top = np.argsort(-inputs.scores, axis=1, kind="stable")[:, :k]  # [courses, k]
    in_top = np.zeros(inputs.scores.shape, dtype=bool)  # [courses, labels]
    np.put_along_axis(in_top, top, True, axis=1)
    per_course = {}
    for role, matrix in role_matrices(inputs, reference).items():
        matrix = matrix.tocsr()
        counts = np.diff(matrix.indptr)  # [courses]
        hits = np.asarray(matrix.multiply(in_top).sum(axis=1)).ravel()  # [courses]
        per_course[role] = (np.where(counts > 0, hits / np.maximum(counts, 1), 0.0),
                            (counts > 0).astype(float))
    patients, patient_of = np.unique(inputs.split["patient_id"].astype(str), return_inverse=True)

    def recall(role: str, weights: np.ndarray) -> np.ndarray:  # weights [resamples, courses]
        values, has = per_course[role]
        denominator = weights @ has
        return np.where(denominator > 0, (weights @ values) / np.maximum(denominator, 1e-12),
                        np.nan)

    ones = np.ones((1, len(patient_of)))
    primary, secondary = recall("primary", ones)[0], recall("secondary", ones)[0]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(patients), size=(n_resamples, len(patients)))
    weights = np.stack([np.bincount(draw, minlength=len(patients)) for draw in draws])
    course_weights = weights[:, patient_of].astype(float)  # [resamples, courses]
    samples = recall("primary", course_weights) - recall("secondary", course_weights)
    samples = samples[np.isfinite(samples)]
    low, high = (np.quantile(samples, [0.025, 0.975]) if len(samples)
                 else (np.nan, np.nan))
    return {"k": k, "primary": float(primary), "secondary": float(secondary),
            "difference": float(primary - secondary), "low": float(low), "high": float(high)}


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
