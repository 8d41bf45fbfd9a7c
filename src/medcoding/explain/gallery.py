"""The gallery: one explorer case per phenomenon the synthetic generator plants.

The kinds (``GALLERY_KINDS``) are the generator's documented phenomena, found through the truth
columns of a synthetic prepared split (``true_full`` with ``true_evidence``: ``drug`` for a
condition shown only by its medication, ``undocumented`` for one the text never mentions): an
under-coded suicide attempt, hypertension found through medication, the E14/E11 diabetes
disagreement and heart failure coded without evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medcoding.explain.case import as_list, label_for

GALLERY_KINDS = {
    "suicide_undercoded": "an under-coded suicide attempt: true X60-X84, not coded by the human",
    "hypertension_medication": "hypertension found only through medication: true I10, drug",
    "diabetes_e14_e11": "an E14/E11 disagreement: the human coded E14, the truth is E11",
    "heart_failure_no_evidence": "heart failure coded without evidence: human I50, undocumented",
}


def _truth_pairs(row) -> list[tuple[str, str]]:
    """``(full code, evidence)`` pairs of a synthetic row's true codes."""
    return list(zip((str(c) for c in as_list(row.get("true_full"))),
                    (str(e) for e in as_list(row.get("true_evidence"))), strict=False))


def gallery_match(row) -> dict[str, str]:
    """The gallery kinds (``GALLERY_KINDS``) a synthetic row belongs to, with the code to show."""
    from medcoding.icd10 import SUICIDE_RELATED, category, in_range

    human_l3 = {category(str(code)) for code in as_list(row.get("codes_l3"))}
    truth = _truth_pairs(row)
    true_l3 = {category(code) for code, _ in truth}
    found = {}
    suicide = [code for code, _ in truth if in_range(code, SUICIDE_RELATED)]
    if suicide and not any(in_range(code, SUICIDE_RELATED) for code in human_l3):
        found["suicide_undercoded"] = suicide[0]
    hypertension = [code for code, kind in truth if category(code) == "I10" and kind == "drug"]
    if hypertension:
        found["hypertension_medication"] = hypertension[0]
    if "E14" in human_l3 and "E11" in true_l3:
        found["diabetes_e14_e11"] = next(code for code, _ in truth if category(code) == "E11")
    heart = [code for code, kind in truth if category(code) == "I50" and kind == "undocumented"]
    if heart and "I50" in human_l3:
        found["heart_failure_no_evidence"] = heart[0]
    return found


def gallery_pool(test_df: pd.DataFrame, per_kind: int = 20, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_kind`` seeded candidates of each gallery kind (the rows worth scoring)."""
    if "true_full" not in test_df.columns:
        return test_df.iloc[:0]
    matches = test_df.apply(gallery_match, axis=1)
    chosen: list[int] = []
    for kind in GALLERY_KINDS:
        positions = np.flatnonzero(matches.map(lambda found, kind=kind: kind in found).to_numpy())
        rng = np.random.default_rng([seed, list(GALLERY_KINDS).index(kind)])
        chosen += rng.permutation(positions)[:per_kind].tolist()
    return test_df.iloc[sorted(set(chosen))]


def select_gallery_cases(test_df: pd.DataFrame, scores: np.ndarray, labels: Sequence[str],
                         size: int | None = None, seed: int = 0) -> pd.DataFrame:
    """One course per gallery kind, the candidate the model scores highest for the kind's code.

    ``scores`` ``[len(test_df), labels]`` are the model's probabilities for the rows of
    ``test_df`` (a prepared split with truth columns, or a subset such as :func:`gallery_pool`).
    Returns ``DataFrame(kind, description, course_id, code, score, candidates)``, one row per kind
    in ``GALLERY_KINDS`` order; a kind without any candidate has ``course_id`` None and 0
    candidates (small cohorts, or codes outside the model's labels), so the caller can say so.

    ``size`` (default: one per found kind) is the number of cases wanted: fewer keeps the first
    found kinds (missing kinds stay listed with ``course_id`` None); more adds seeded random
    courses (kind ``random``, code: the model's top code), e.g. for a non-synthetic cohort.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(test_df), len(labels)):
        raise ValueError(f"select_gallery_cases: scores have shape {scores.shape}, expected "
                         f"({len(test_df)}, {len(labels)}) = (rows of test_df, labels)")
    matches = test_df.apply(gallery_match, axis=1) if len(test_df) else pd.Series([], dtype=object)
    rows = []
    for kind, description in GALLERY_KINDS.items():
        best = None
        candidates = 0
        for position, found in enumerate(matches):
            label = label_for(found[kind], labels) if kind in found else None
            if label is None:
                continue
            candidates += 1
            score = scores[position, list(labels).index(label)]
            if best is None or score > best[2]:
                best = (test_df["course_id"].iloc[position], label, score)
        rows.append({"kind": kind, "description": description,
                     "course_id": best[0] if best else None, "code": best[1] if best else None,
                     "score": float(best[2]) if best else float("nan"),
                     "candidates": candidates})
    gallery = pd.DataFrame(rows)
    gallery["course_id"] = pd.Series([row["course_id"] for row in rows], dtype=object)  # ids stay
    if size is None:
        return gallery
    found = gallery[gallery["course_id"].notna()]
    keep = set(found.index[: max(int(size), 0)]) | set(gallery.index[gallery["course_id"].isna()])
    gallery = gallery.loc[sorted(keep)]
    extra = int(size) - len(found)
    if extra > 0:
        taken = set(gallery["course_id"].dropna())
        free = np.flatnonzero(~test_df["course_id"].isin(taken).to_numpy())
        picked = np.random.default_rng(seed).permutation(free)[:extra]
        top = scores[picked].argmax(axis=1) if len(picked) else []
        gallery = pd.concat([gallery, pd.DataFrame({
            "kind": "random", "description": "a random test course",
            "course_id": pd.Series(test_df["course_id"].iloc[picked].tolist(), dtype=object),
            "code": [labels[int(index)] for index in top],
            "score": scores[picked, top] if len(picked) else [], "candidates": len(free)})],
            ignore_index=True)
    return gallery.reset_index(drop=True)


def gallery_reading(gallery: pd.DataFrame) -> str:
    """The opening of the chapter's reading: which gallery kinds have a page."""
    shown = gallery.dropna(subset=["course_id"])
    if not len(shown):
        return "No gallery kind occurs in this test set. "
    return (f"The gallery shows {len(shown)} course(s): "
            + ", ".join(shown["description"].str.split(":").str[0]) + ". ")
