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
