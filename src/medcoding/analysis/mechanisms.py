"""Every true code of the test split with the coder's recorded mechanism and the model's rank.

On a synthetic cohort the ``coding`` table (book/data_contract.md) records why each true code was
coded or missed (``coded_listed``, ``missed_narrative_only``, ``missed_implied_only``,
``carried_over``, ...) and why each human code that is not true was given. Joined with the model's
scores, it splits a gap between the model and the coders into the part the coder made (true
codes left uncoded) and the part the model made (true codes it does not rank):

- :func:`true_codes`: one row per true level-3 code of a course: role (primary/secondary), coded
  or not, the coder's reason, its training frequency, and whether the model ranks it in its top k;
- :func:`by_mechanism`: shares with Wilson 95% intervals per group of those rows;
- :func:`coded_gap`: the model's top-k share of coded against uncoded true codes, with the
  Newcombe interval of the difference;
- :func:`human_code_reasons`: the recorded reason behind each human code of a range (for
  unspecified diabetes and heart failure).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from medcoding import icd10
from medcoding.analysis.inputs import AnalysisInputs
from medcoding.analysis.undercoding import wilson_interval

NO_REASON = "no recorded reason"


def _categories(codes: pd.Series) -> pd.Series:
    dotted = icd10.normalise_series(codes.astype(str), errors="coerce")
    return dotted.map(lambda code: code[:3] if isinstance(code, str) else None)


def _reason_lookup(coding: pd.DataFrame | None, truly_present: bool) -> dict:
    """``{(course_id, category): reason}`` of the coding rows with that truth value."""
    if coding is None:
        return {}
    rows = coding[coding["truly_present"] == truly_present]
    keys = zip(rows["course_id"], _categories(rows["code"]), strict=True)
    lookup: dict = {}
    for key, reason in zip(keys, rows["reason"], strict=True):
        lookup.setdefault(key, reason)  # a category with several full codes: the first row
    return lookup


def true_codes(inputs: AnalysisInputs, coding: pd.DataFrame | None, k: int = 10) -> pd.DataFrame:
    """One row per true level-3 code of every test course (synthetic cohorts).

    Columns ``row, course_id, code, role, coded, reason, in_vocabulary, in_top_k, train_count``:
    ``role`` is ``primary`` for the category of ``true_primary_full``; ``coded`` whether the human
    codes hold the category; ``reason`` the coder's recorded reason (:data:`NO_REASON` without a
    coding table); ``in_top_k`` whether the model ranks the code among its ``k`` highest scores
    (False for a code outside the label vocabulary).
    """
    if not inputs.is_synthetic:
        raise ValueError(f"{inputs.source}: true codes need the synthetic truth; fix: run this on "
                         "a synthetic cohort")
    column = {label: i for i, label in enumerate(inputs.labels)}
    top = np.argsort(-inputs.scores, axis=1, kind="stable")[:, :k]  # [courses, k]
    counts = inputs.train_frequency().set_index("label")["train_count"]
    reasons = _reason_lookup(coding, truly_present=True)
    rows = []
    split = inputs.split
    for row, (course, truth, human, primary) in enumerate(zip(
            split["course_id"], split["true_l3"], split["codes_l3"], split["true_primary_full"],
            strict=True)):
        human_set = set([] if human is None else human)
        primary_category = primary[:3] if isinstance(primary, str) else None
        ranked = set(top[row].tolist())
        for code in sorted(set([] if truth is None else truth)):
            index = column.get(code)
            rows.append({"row": row, "course_id": course, "code": code,
                         "role": "primary" if code == primary_category else "secondary",
                         "coded": code in human_set,
                         "reason": reasons.get((course, code), NO_REASON),
                         "in_vocabulary": index is not None,
                         "in_top_k": index is not None and index in ranked,
                         "train_count": int(counts.get(code, 0))})
    return pd.DataFrame(rows, columns=["row", "course_id", "code", "role", "coded", "reason",
                                       "in_vocabulary", "in_top_k", "train_count"])


def by_mechanism(codes: pd.DataFrame, by: list[str], outcome: str = "in_top_k") -> pd.DataFrame:
    """Per group of :func:`true_codes` rows: ``codes``, the share with ``outcome`` and its
    Wilson 95% interval (``share, low, high``), largest groups first within the first key."""
    grouped = codes.groupby(by, sort=True)[outcome].agg(["size", "sum"]).reset_index()
    grouped = grouped.rename(columns={"size": "codes", "sum": "hits"})
    grouped["hits"] = grouped["hits"].astype(int)
    grouped["share"] = grouped["hits"] / grouped["codes"]
    intervals = [wilson_interval(int(h), int(n)) for h, n in
                 zip(grouped["hits"], grouped["codes"], strict=True)]
    grouped["low"] = [low for low, _ in intervals]
    grouped["high"] = [high for _, high in intervals]
    return grouped.sort_values([by[0], "codes"], ascending=[True, False], ignore_index=True)


def newcombe_difference(hits_a: int, n_a: int, hits_b: int, n_b: int) -> tuple[float, float,
                                                                               float]:
    """``p_a - p_b`` with Newcombe's hybrid-score 95% interval (from two Wilson intervals)."""
    if n_a == 0 or n_b == 0:
        return (math.nan, math.nan, math.nan)
    p_a, p_b = hits_a / n_a, hits_b / n_b
    low_a, high_a = wilson_interval(hits_a, n_a)
    low_b, high_b = wilson_interval(hits_b, n_b)
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return (difference, low, high)


def coded_gap(codes: pd.DataFrame, role: str = "secondary") -> dict:
    """How much of the gap on ``role`` codes is the coder's and how much the model's.

    Returns ``true`` (true codes of the role), ``coded_share`` (with ``coded_low/high``: the
    coder's completeness), ``top_k_coded`` and ``top_k_uncoded`` (the model's top-k share of the
    coded and the uncoded ones) and ``difference, low, high`` (coded minus uncoded, Newcombe).
    """
    rows = codes[codes["role"] == role]
    coded_mask = rows["coded"].astype(bool)
    coded, uncoded = rows[coded_mask], rows[~coded_mask]
    low, high = wilson_interval(len(coded), len(rows))
    difference = newcombe_difference(int(coded["in_top_k"].sum()), len(coded),
                                     int(uncoded["in_top_k"].sum()), len(uncoded))
    return {"role": role, "true": len(rows),
            "coded_share": len(coded) / len(rows) if len(rows) else math.nan,
            "coded_low": low, "coded_high": high,
            "top_k_coded": coded["in_top_k"].mean() if len(coded) else math.nan,
            "top_k_uncoded": uncoded["in_top_k"].mean() if len(uncoded) else math.nan,
            "difference": difference[0], "low": difference[1], "high": difference[2]}


def gap_reading(gap: dict, k: int) -> str:
    """The coder's and the model's part of the gap on one role, in words from :func:`coded_gap`."""
    from medcoding import readings

    if not gap["true"]:
        return f"The test split holds no true {gap['role']} code."
    text = (f"Of the {gap['true']:,} true {gap['role']} codes, the coder coded "
            f"{readings.interval(gap['coded_share'], gap['coded_low'], gap['coded_high'], '.0%')}"
            f"; the model ranks {gap['top_k_coded']:.0%} of the coded and "
            f"{gap['top_k_uncoded']:.0%} of the uncoded ones in its top {k}. ")
    span = readings.interval(gap["difference"], gap["low"], gap["high"], readings.points).replace(
        " (95% CI", ", 95% CI").rstrip(")")
    sign = readings.direction(gap["low"], gap["high"])
    if sign > 0:
        return text + (f"It ranks the coded ones higher (difference {span}): part of the gap "
                       "lies with the model, not only with the coder.")
    if sign < 0:
        return text + f"It ranks the uncoded ones higher (difference {span})."
    return text + (f"The data cannot tell whether it ranks the coded and the uncoded ones "
                   f"differently (difference {span}).")


def human_code_reasons(inputs: AnalysisInputs, coding: pd.DataFrame | None,
                       spec: str) -> pd.DataFrame:
    """The coder's recorded reason behind each test course's human codes in ``spec``.

    Columns ``course_id, code, truly_present, reason`` (one row per course and human category
    in the range; :data:`NO_REASON` where the coding table has none).
    """
    code_range = icd10.parse_range(spec)
    present = _reason_lookup(coding, truly_present=True)
    absent = _reason_lookup(coding, truly_present=False)
    truth = inputs.split[inputs.true_column] if inputs.is_synthetic else None
    rows = []
    for row, (course, human) in enumerate(zip(inputs.split["course_id"],
                                              inputs.split[inputs.code_column], strict=True)):
        for code in sorted(set([] if human is None else human)):
            if code not in code_range:
                continue
            true_set = set() if truth is None or truth.iat[row] is None else set(truth.iat[row])
            is_true = code in true_set
            reason = (present if is_true else absent).get((course, code), NO_REASON)
            rows.append({"course_id": course, "code": code, "truly_present": is_true,
                         "reason": reason})
    return pd.DataFrame(rows, columns=["course_id", "code", "truly_present", "reason"])
