"""Documentation quality: unspecified diabetes the model would code specifically, and heart
failure coded with little support in the notes.

Study: among 926 human-coded unspecified diabetes (E14) cases, in 31% the model scored type 1 or
type 2 (E10/E11) above 0.1 and E14 below 0.1; in a sample of 50 such cases 74% named the type
explicitly, usually once, buried among repeated generic "diabetes". Among 7,454 heart failure
(I50) cases, 17.6% scored below 0.2, and a sample of those held clear evidence in only 38%.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from medcoding.analysis.inputs import AnalysisInputs
from medcoding.analysis.undercoding import (
    EVIDENCE_ORDER,
    has_range_code,
    range_scores,
    true_evidence,
)

SPECIFIC_DIABETES = re.compile(
    r"\b(?:type\s*(?:1|2|I{1,2}|one|two)\s+diabet\w*|diabet\w*(?:\s+mellitus)?,?\s+type\s*"
    r"(?:1|2|I{1,2}|one|two)\b|(?:non-)?insulin[- ]dependent\s+diabet\w*|T[12]DM|N?IDDM|"
    r"DM\s*[12]\b|DM\s+type\s*[12])",
    re.IGNORECASE)
"""A named diabetes type: "type 2 diabetes", "diabetes mellitus type 1", "T2DM", "NIDDM",
"non-insulin-dependent diabetes"."""
GENERIC_DIABETES = re.compile(r"\bdiabet\w*|\bDM\b", re.IGNORECASE)
"""Any diabetes mention; counted after the specific mentions are taken out of the text."""
HEART_FAILURE = re.compile(
    r"\b(?:heart failure|cardiac failure|congestive failure|CHF|HFrEF|HFpEF|HFmrEF|HF)\b",
    re.IGNORECASE)
EJECTION_FRACTION = re.compile(r"\b(?:L?VEF|EF|ejection fraction)\b", re.IGNORECASE)
NEGATED = re.compile(r"\b(?:no|without|denies|negative for|rule[sd]? out)\b[^.;\n]{0,40}$",
                     re.IGNORECASE)
"""A negation cue in the 40 characters before a mention in the same sentence."""


def diabetes_mentions(text: str) -> dict[str, int]:
    """Count named-type and generic diabetes mentions in ``text``.

    ``{"specific": n, "generic": m}``: ``generic`` counts diabetes mentions outside the
    named-type ones ("Diabetes, type 2 ... diabetes ... DM" gives specific 1, generic 2).
    """
    text = text or ""
    specific = len(SPECIFIC_DIABETES.findall(text))
    generic = len(GENERIC_DIABETES.findall(SPECIFIC_DIABETES.sub(" ", text)))
    return {"specific": specific, "generic": generic}


def count_mentions(pattern: re.Pattern, text: str) -> dict[str, int]:
    """Mentions of ``pattern`` in ``text``, split into affirmed and negated (cue just before)."""
    affirmed = negated = 0
    for match in pattern.finditer(text or ""):
        if NEGATED.search(text[max(0, match.start() - 60):match.start()]):
            negated += 1
        else:
            affirmed += 1
    return {"affirmed": affirmed, "negated": negated}


def unspecified_diabetes(
    inputs: AnalysisInputs, specific: str = "E10-E11", unspecified: str = "E14",
    specific_min: float = 0.1, unspecified_max: float = 0.1,
) -> pd.DataFrame:
    """One row per human-coded unspecified diabetes case, with the model's view and the text's.

    Columns ``course_id, specialty, specific_score, unspecified_score, prefers_specific,
    mentions_specific, mentions_generic`` and, on synthetic cohorts, ``true_specific`` (a true
    code in ``specific``), ``true_unspecified`` and ``evidence`` (strongest evidence of the
    true specific code). ``prefers_specific``: specific score > ``specific_min`` and unspecified
    score < ``unspecified_max`` (the study's rule).
    """
    cases = np.flatnonzero(has_range_code(inputs.split[inputs.code_column], unspecified))
    split = inputs.split.iloc[cases]
    specific_score = range_scores(inputs, specific)[cases]
    unspecified_score = range_scores(inputs, unspecified)[cases]
    mentions = [diabetes_mentions(text) for text in _texts(split)]
    table = pd.DataFrame({
        "course_id": split["course_id"].to_numpy(),
        "specialty": split["specialty"].to_numpy(),
        "specific_score": specific_score.astype(float),
        "unspecified_score": unspecified_score.astype(float),
        "prefers_specific": (specific_score > specific_min) & (unspecified_score < unspecified_max),
        "mentions_specific": [m["specific"] for m in mentions],
        "mentions_generic": [m["generic"] for m in mentions],
    })
    if inputs.is_synthetic:
        table["true_specific"] = has_range_code(split[inputs.true_column], specific)
        table["true_unspecified"] = has_range_code(split[inputs.true_column], unspecified)
        table["evidence"] = [kind or "none" for kind in true_evidence(split, specific)]
    return table


def diabetes_summary(cases: pd.DataFrame) -> pd.DataFrame:
    """Counts and shares for the unspecified diabetes cases, split by ``prefers_specific``.

    One row per group (``all``, ``prefers specific``, ``other``): ``cases``, ``share`` of all
    cases, median specific and unspecified scores, ``specific_above_share`` (the specific type
    scored above the unspecified code, a looser rule than the study's), median specific and
    generic mentions, and on synthetic cohorts ``true_specific_share`` and ``buried_share``
    (share whose true specific type is documented only as "buried").
    """
    groups = {"all": cases, "prefers specific": cases[cases["prefers_specific"]],
              "other": cases[~cases["prefers_specific"]]}
    rows = []
    for name, group in groups.items():
        row = {"group": name, "cases": len(group),
               "share": len(group) / len(cases) if len(cases) else float("nan"),
               "median_specific_score": _median(group["specific_score"]),
               "median_unspecified_score": _median(group["unspecified_score"]),
               "specific_above_share": _mean(group["specific_score"] > group["unspecified_score"]),
               "median_mentions_specific": _median(group["mentions_specific"]),
               "median_mentions_generic": _median(group["mentions_generic"])}
        if "true_specific" in cases.columns:
            row["true_specific_share"] = _mean(group["true_specific"])
            row["buried_share"] = _mean(group["evidence"] == "buried")
        rows.append(row)
    return pd.DataFrame(rows)


def low_confidence_coded(
    inputs: AnalysisInputs, code: str = "I50", max_score: float = 0.2,
) -> pd.DataFrame:
    """One row per human-coded ``code`` case: the model's score and what the notes hold.

    Columns ``course_id, specialty, department, score, low_confidence, mentions, negated_mentions,
    ef_mentions`` and, on synthetic cohorts, ``truly_present`` and ``evidence`` (strongest
    evidence of the true code, ``absent`` when not truly present).
    """
    cases = np.flatnonzero(has_range_code(inputs.split[inputs.code_column], code))
    split = inputs.split.iloc[cases]
    score = range_scores(inputs, code)[cases]
    texts = list(_texts(split))
    condition = [count_mentions(HEART_FAILURE, text) for text in texts]
    table = pd.DataFrame({
        "course_id": split["course_id"].to_numpy(),
        "specialty": split["specialty"].to_numpy(),
        "department": split["department"].to_numpy(),
        "score": score.astype(float),
        "low_confidence": score < max_score,
        "mentions": [c["affirmed"] for c in condition],
        "negated_mentions": [c["negated"] for c in condition],
        "ef_mentions": [len(EJECTION_FRACTION.findall(text)) for text in texts],
    })
    if inputs.is_synthetic:
        table["truly_present"] = has_range_code(split[inputs.true_column], code)
        evidence = [kind or "none" for kind in true_evidence(split, code)]
        table["evidence"] = np.where(table["truly_present"], evidence, "absent")
    return table


def low_confidence_summary(cases: pd.DataFrame) -> pd.DataFrame:
    """Per confidence group (``all``, ``low``, ``high``): cases, share, share with an affirmed
    mention, share with an ejection fraction mention, and (synthetic) the share per evidence."""
    groups = {"all": cases, "low": cases[cases["low_confidence"]],
              "high": cases[~cases["low_confidence"]]}
    rows = []
    for name, group in groups.items():
        row = {"group": name, "cases": len(group),
               "share": len(group) / len(cases) if len(cases) else float("nan"),
               "mention_share": _mean(group["mentions"] > 0),
               "ef_share": _mean(group["ef_mentions"] > 0)}
        if "evidence" in cases.columns:
            for kind in (*EVIDENCE_ORDER, "absent"):
                row[f"{kind}_share"] = _mean(group["evidence"] == kind)
        rows.append(row)
    return pd.DataFrame(rows)


def _texts(split: pd.DataFrame):
    if "text" not in split.columns:
        raise ValueError("the split has no 'text' column; fix: load a split written by "
                         "`medcoding prepare` (text is needed for mention counts)")
    return split["text"].fillna("").astype(str)


def _median(values: pd.Series) -> float:
    return float(values.median()) if len(values) else float("nan")


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")


def with_reasons(cases: pd.DataFrame, reasons: pd.DataFrame) -> pd.DataFrame:
    """``cases`` with the coder's recorded reason for its human code of the range (from
    :func:`medcoding.analysis.mechanisms.human_code_reasons`; the first when several)."""
    first = reasons.drop_duplicates("course_id").set_index("course_id")["reason"]
    return cases.assign(reason=cases["course_id"].map(first).fillna("no recorded reason"))


def reason_table(cases: pd.DataFrame, group: str) -> pd.DataFrame:
    """Cases per ``group`` value and recorded ``reason``: ``group, reason, cases, share``
    (share within the group)."""
    table = cases.groupby([group, "reason"]).size().rename("cases").reset_index()
    table["share"] = table["cases"] / table.groupby(group)["cases"].transform("sum")
    return table.sort_values([group, "cases"], ascending=[False, False], ignore_index=True)


def _shares(hits: int, total: int) -> tuple[float, float, float]:
    from medcoding.analysis.undercoding import wilson_interval

    low, high = wilson_interval(hits, total)
    return (hits / total if total else float("nan"), low, high)


def beside_study(diabetes: pd.DataFrame, heart: pd.DataFrame, unspecified: str = "E14",
                 code: str = "I50", low_confidence: float = 0.2) -> pd.DataFrame:
    """The study's documentation figures beside ours, with Wilson 95% intervals:
    ``statement, study, ours, low, high, cases``."""
    from medcoding import study

    prefers = diabetes[diabetes["prefers_specific"]] if len(diabetes) else diabetes
    low = heart[heart["low_confidence"]] if len(heart) else heart
    rows = [
        (f"{unspecified} cases where the model prefers a specific type",
         study.DIABETES["specific_preferred_share"], int(len(prefers)), len(diabetes)),
        ("... of those, the specific type is truly present (the study: explicit in its sample)",
         study.DIABETES["explicit_type_share"],
         int(prefers["true_specific"].sum()) if "true_specific" in prefers else None,
         len(prefers)),
        (f"{code} cases scored below {low_confidence}", study.HEART_FAILURE["low_confidence_share"],
         int(len(low)), len(heart)),
        ("... of those, the text mentions heart failure or an EF (the study: clear evidence)",
         study.HEART_FAILURE["evidence_share"],
         int(((low["mentions"] > 0) | (low["ef_mentions"] > 0)).sum()) if len(low) else 0,
         len(low)),
        ("... of those, heart failure is truly present", float("nan"),
         int(low["truly_present"].sum()) if "truly_present" in low else None, len(low)),
    ]
    table = []
    for statement, theirs, hits, total in rows:
        ours, lo, hi = _shares(hits, total) if hits is not None else (float("nan"),) * 3
        table.append({"statement": statement, "study": theirs, "ours": ours, "low": lo,
                      "high": hi, "cases": total})
    return pd.DataFrame(table)


def reading(beside: pd.DataFrame) -> str:
    """Each of our shares against the study's (:func:`medcoding.readings.against`)."""
    from medcoding import readings

    parts = []
    for _, row in beside.iterrows():
        name = row["statement"].split(" (the study")[0].replace("... of those, ", "of those, ")
        if not row["cases"]:
            parts.append(f"No case for: {name}.")
        elif np.isnan(row["study"]):
            shown = readings.interval(row["ours"], row["low"], row["high"], ".0%")
            parts.append(readings.sentence(f"{name}: {shown}."))
        else:
            parts.append(readings.against(f"The share ({name}; {int(row['cases'])} cases)",
                                          row["ours"], row["low"], row["high"], row["study"],
                                          "the study's", ".0%"))
    return " ".join(parts)
