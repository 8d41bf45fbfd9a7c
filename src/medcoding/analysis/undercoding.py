"""Under-coding sweeps: how many human-coded cases a code range's scores catch as the decision
boundary falls, how many uncoded cases the model flags, and (synthetic cohorts) how many of those
are truly present.

A *case* is a course. A course is a human-coded case of a range when any of its human codes lies
in the range, truly present when any of its true codes does, and flagged at boundary ``t`` when
the highest score over the range's labels is at least ``t``. The study swept X60-X84 (its
"X60-X85"), E66 and I10-I15 and hand-reviewed 50 flagged uncoded cases of each (76-86% genuine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from medcoding import icd10
from medcoding.analysis.comparison import MODEL
from medcoding.analysis.inputs import AnalysisInputs
from medcoding.cohort.contract import EVIDENCE_IMPLIED, EVIDENCE_LEVELS, EVIDENCE_NAMED

DEFAULT_RANGES = ("X60-X84", "E66", "I10-I15")
DEFAULT_THRESHOLDS = (0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02, 0.01)
EVIDENCE_ORDER = EVIDENCE_LEVELS
"""Evidence kinds of true codes, strongest first (named, then shown only by a drug, lab, finding
or method, then undocumented); a course takes its range codes' strongest."""


def range_label_columns(labels: list[str], spec: str) -> np.ndarray:
    """Column indices of the labels inside the range ``spec`` (may be empty)."""
    code_range = icd10.parse_range(spec)
    return np.array([i for i, label in enumerate(labels) if label in code_range], dtype=int)


def range_scores(inputs: AnalysisInputs, spec: str) -> np.ndarray:
    """Highest score over the range's labels per course ``[courses]`` (0 when it has none)."""
    columns = range_label_columns(inputs.labels, spec)
    if len(columns) == 0:
        return np.zeros(len(inputs.split), dtype=np.float32)
    return inputs.scores[:, columns].max(axis=1)  # [courses]


def has_range_code(code_lists, spec: str) -> np.ndarray:
    """Boolean ``[courses]``: the course's code list holds a code inside ``spec``."""
    code_range = icd10.parse_range(spec)
    return np.array([any(code in code_range for code in (codes if codes is not None else []))
                     for codes in code_lists], dtype=bool)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); ``(nan, nan)`` for no trials."""
    if trials == 0:
        return (float("nan"), float("nan"))
    interval = stats.binomtest(successes, trials).proportion_ci(
        confidence_level=2 * stats.norm.cdf(z) - 1, method="wilson")
    return (float(interval.low), float(interval.high))


def with_shares(table: pd.DataFrame, total: int, spec: str, threshold: float) -> pd.DataFrame:
    """``table``'s ``cases`` as shares of ``total`` flagged cases with Wilson 95% intervals,
    led by the range and the boundary."""
    table = table.assign(share=table["cases"] / total)
    intervals = [wilson_interval(int(cases), total) for cases in table["cases"]]
    table["share_low"] = [low for low, _ in intervals]
    table["share_high"] = [high for _, high in intervals]
    table.insert(0, "threshold", float(threshold))
    table.insert(0, "range", spec)
    return table


def sweep(inputs: AnalysisInputs, spec: str, thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """Detection of the range's human-coded cases and the uncoded cases flagged, per boundary.

    Columns: ``range, threshold, range_labels, human_cases, detected, detection_rate,
    flagged_uncoded``; on synthetic cohorts also ``true_cases, true_detected, true_recall,
    flagged_uncoded_true, true_share, true_share_low, true_share_high`` (the share of flagged
    uncoded cases that are truly present, with its Wilson 95% interval).
    """
    score = range_scores(inputs, spec)  # [courses]
    human = has_range_code(inputs.split[inputs.code_column], spec)
    truth = (has_range_code(inputs.split[inputs.true_column], spec)
             if inputs.is_synthetic else None)
    label_count = len(range_label_columns(inputs.labels, spec))
    rows = []
    for threshold in thresholds:
        flagged = score >= threshold
        row = {"range": spec, "threshold": float(threshold), "range_labels": label_count,
               "human_cases": int(human.sum()), "detected": int((flagged & human).sum()),
               "detection_rate": _share(flagged & human, human),
               "flagged_uncoded": int((flagged & ~human).sum())}
        if truth is not None:
            extra = flagged & ~human
            low, high = wilson_interval(int((extra & truth).sum()), int(extra.sum()))
            row.update({"true_cases": int(truth.sum()),
                        "true_detected": int((flagged & truth).sum()),
                        "true_recall": _share(flagged & truth, truth),
                        "flagged_uncoded_true": int((extra & truth).sum()),
                        "true_share": _share(extra & truth, extra),
                        "true_share_low": low, "true_share_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def sweeps(inputs: AnalysisInputs, specs=DEFAULT_RANGES, thresholds=DEFAULT_THRESHOLDS):
    """:func:`sweep` for several ranges, stacked."""
    return pd.concat([sweep(inputs, spec, thresholds) for spec in specs], ignore_index=True)


def lowest_majority_boundary(swept: pd.DataFrame, share: float = 0.5) -> pd.DataFrame:
    """Per range, the lowest swept boundary at which at least ``share`` of the flagged uncoded
    cases are truly present, with the detection there (synthetic cohorts).

    ``swept`` is :func:`sweep` or :func:`sweeps` output with truth columns. Columns: ``range,
    boundary, true_share, flagged_uncoded, detection_rate, true_recall``; ``boundary`` is NaN
    (and the rest with it) where no swept boundary reaches ``share``.
    """
    if "true_share" not in swept.columns:
        raise ValueError("lowest_majority_boundary needs a sweep with truth columns "
                         "(true_share); fix: sweep a synthetic cohort's inputs")
    rows = []
    for spec, group in swept.groupby("range", sort=False):
        reached = group[group["true_share"] >= share].sort_values("threshold")
        if reached.empty:
            rows.append({"range": spec, "boundary": np.nan, "true_share": np.nan,
                         "flagged_uncoded": np.nan, "detection_rate": np.nan,
                         "true_recall": np.nan})
            continue
        best = reached.iloc[0]
        rows.append({"range": spec, "boundary": float(best["threshold"]),
                     "true_share": float(best["true_share"]),
                     "flagged_uncoded": int(best["flagged_uncoded"]),
                     "detection_rate": float(best["detection_rate"]),
                     "true_recall": float(best["true_recall"])})
    return pd.DataFrame(rows)


def _share(hits: np.ndarray, base: np.ndarray) -> float:
    total = int(base.sum())
    return float(hits.sum() / total) if total else float("nan")


def case_evidence(inputs: AnalysisInputs, spec: str) -> pd.Series:
    """Per course, what the synthetic truth holds for the range.

    The strongest evidence of the course's true codes in the range (``EVIDENCE_LEVELS`` of the
    contract: ``listed``, ``narrative``, ``drug``, ``method``, ``undocumented``, ...); for courses
    without one, ``distractor`` when the text mentions a range code that is absent (negated,
    previous attempt, bypass without weight, ...; the kind is used when the split has an aligned
    ``distractor_kind`` column), else ``none``.
    """
    if not inputs.is_synthetic:
        raise ValueError(f"{inputs.source}: case evidence needs the synthetic truth columns "
                         "(true_full, true_evidence); fix: run this on a synthetic cohort")
    code_range = icd10.parse_range(spec)
    split = inputs.split
    distractors = split["distractor_l3"] if "distractor_l3" in split.columns else None
    kinds = split["distractor_kind"] if "distractor_kind" in split.columns else None
    values = [found if found is not None else _distractor(distractors, kinds, row, code_range)
              for row, found in enumerate(true_evidence(split, spec))]
    return pd.Series(values, index=split.index, name="evidence")


def true_evidence(split: pd.DataFrame, spec: str) -> list[str | None]:
    """Per course, the strongest evidence kind of its true codes inside ``spec`` (else None).

    Reads the synthetic columns ``true_full`` and ``true_evidence`` (aligned lists).
    """
    code_range = icd10.parse_range(spec)
    values = []
    for codes, kinds in zip(split["true_full"], split["true_evidence"], strict=True):
        found = {kind for code, kind in zip(_listed(codes), _listed(kinds), strict=True)
                 if code in code_range}
        values.append(next((kind for kind in EVIDENCE_ORDER if kind in found),
                           sorted(found)[0] if found else None))
    return values


def _listed(values) -> list:
    return [] if values is None else list(values)


def _distractor(distractors, kinds, row: int, code_range) -> str:
    if distractors is None:
        return "none"
    codes = _listed(distractors.iat[row])
    if kinds is not None:
        hits = [kind for code, kind in zip(codes, _listed(kinds.iat[row]), strict=True)
                if code in code_range]
        return f"distractor: {sorted(hits)[0]}" if hits else "none"
    return "distractor" if any(code in code_range for code in codes) else "none"


def flagged_evidence(inputs: AnalysisInputs, spec: str, threshold: float) -> pd.DataFrame:
    """What the truth holds for the uncoded cases the model flags at ``threshold`` (synthetic).

    Columns ``range, threshold, truly_present, evidence, cases, share`` (share of all flagged
    uncoded cases), with a ``true_share`` interval per truly-present group in ``share_low`` /
    ``share_high`` (Wilson 95%).
    """
    columns = ["range", "threshold", "truly_present", "evidence", "cases", "share", "share_low",
               "share_high"]
    score = range_scores(inputs, spec)
    human = has_range_code(inputs.split[inputs.code_column], spec)
    truth = has_range_code(inputs.split[inputs.true_column], spec)
    extra = (score >= threshold) & ~human
    if not extra.any():
        return pd.DataFrame({"range": pd.Series(dtype=object), "threshold": pd.Series(dtype=float),
                             "truly_present": pd.Series(dtype=bool),
                             "evidence": pd.Series(dtype=object),
                             "cases": pd.Series(dtype=int),
                             **{c: pd.Series(dtype=float) for c in columns[5:]}})
    frame = pd.DataFrame({"truly_present": truth[extra],
                          "evidence": case_evidence(inputs, spec)[extra].to_numpy()})
    table = frame.groupby(["truly_present", "evidence"]).size().rename("cases").reset_index()
    table = with_shares(table, int(extra.sum()), spec, threshold)
    return table.sort_values(["truly_present", "cases"], ascending=[False, False],
                             ignore_index=True)[columns]


def secondary_share(code_lists, primaries, spec: str) -> dict:
    """Courses with a code of the range and the share where none of them is the primary.

    Returns ``{"range", "cases", "secondary", "secondary_share"}`` (the study: 86.9% for E66,
    89.6% for I10-I15).
    """
    code_range = icd10.parse_range(spec)
    cases = secondary = 0
    for codes, primary in zip(code_lists, primaries, strict=True):
        if any(code in code_range for code in _listed(codes)):
            cases += 1
            secondary += int(not (isinstance(primary, str) and primary in code_range))
    return {"range": spec, "cases": cases, "secondary": secondary,
            "secondary_share": secondary / cases if cases else float("nan")}


def review_sheet(
    inputs: AnalysisInputs, spec: str, threshold: float, sample_size: int = 50, seed: int = 0,
    include_text: bool = False,
) -> pd.DataFrame:
    """A seeded random sample of flagged uncoded cases for manual review, without the truth.

    Columns ``course_id, patient_id, specialty, department, range, range_score, top_code,
    human_codes`` (+ ``text`` only when ``include_text``), and empty reviewer columns
    ``genuine`` (yes/no), ``evidence`` and ``comment``. Notes stay out of the sheet by default:
    a sheet may leave the secure environment, note text must not.
    """
    columns_in_range = range_label_columns(inputs.labels, spec)
    score = range_scores(inputs, spec)
    human = has_range_code(inputs.split[inputs.code_column], spec)
    candidates = np.flatnonzero((score >= threshold) & ~human)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, size=min(sample_size, len(candidates)),
                                replace=False))
    split = inputs.split.iloc[chosen]
    if len(columns_in_range):
        best = inputs.scores[np.ix_(chosen, columns_in_range)].argmax(axis=1)
        top_code = [inputs.labels[columns_in_range[i]] for i in best]
    else:
        top_code = []
    sheet = pd.DataFrame({
        "course_id": split["course_id"].to_numpy(),
        "patient_id": split["patient_id"].to_numpy() if "patient_id" in split else None,
        "specialty": split["specialty"].to_numpy(),
        "department": split["department"].to_numpy(),
        "range": spec,
        "range_score": np.round(score[chosen].astype(float), 4),
        "top_code": top_code,
        "human_codes": [" ".join(_listed(codes)) for codes in split[inputs.code_column]],
    })
    if include_text:
        sheet["text"] = split["text"].to_numpy()
    for column in ("genuine", "evidence", "comment"):
        sheet[column] = ""
    return sheet


# --------------------------------------------------------------------------- by mechanism

#: How a truly present flagged case is shown, grouped as the study's hand review grouped it.
NAMED, IMPLIED, UNWRITTEN = "present: named in the text", "present: implied only", \
    "present: not written in this course"
STUDY_KINDS, OTHER_KINDS, NO_DISTRACTOR = ("absent: the study's error kinds",
                                           "absent: another distractor",
                                           "absent: no distractor in the text")
REVIEW_GROUPS = (NAMED, IMPLIED, UNWRITTEN, STUDY_KINDS, OTHER_KINDS, NO_DISTRACTOR)


def read_coding(data_dir: str | Path) -> pd.DataFrame | None:
    """The cohort's ``coding`` table (why each true or human code was coded or missed), or None.

    ``data_dir`` is the contract directory (a prepared directory's manifest names it as
    ``data_dir``). Returns ``course_id, code, truly_present, human_coded, reason``; None when the
    cohort has no ``coding.parquet`` (real cohorts, older synthetic ones).
    """
    path = Path(data_dir) / "coding.parquet"
    if not path.is_file():
        return None
    return pd.read_parquet(path, columns=["course_id", "code", "truly_present", "human_coded",
                                          "reason"])


def missed_reasons(coding: pd.DataFrame, course_ids, spec: str) -> pd.Series:
    """Per course of ``course_ids``: the coder's recorded reason for missing its true codes of
    the range (the commonest when several, ties by name), None where none was missed."""
    code_range = icd10.parse_range(spec)
    missed = coding[coding["truly_present"] & ~coding["human_coded"]
                    & coding["code"].map(lambda code: code in code_range)]
    reason = (missed.groupby(["course_id", "reason"]).size().rename("n").reset_index()
              .sort_values(["course_id", "n", "reason"], ascending=[True, False, True])
              .drop_duplicates("course_id").set_index("course_id")["reason"])
    lookup = reason.to_dict()
    return pd.Series([lookup.get(course) for course in course_ids], dtype=object, name="reason")


def flagged_mechanisms(inputs: AnalysisInputs, spec: str, threshold: float,
                       coding: pd.DataFrame | None) -> pd.DataFrame:
    """The uncoded cases the model flags at ``threshold``, by the mechanism behind each.

    A truly present case is split by the coder's recorded reason for missing it (``coding``:
    ``missed_narrative_only``, ``missed_implied_only``, ``missed_buried``,
    ``missed_not_reimbursed``, ...; ``no recorded reason`` without a coding table) and by how the
    text shows it (``evidence``); a truly absent one by the distractor kind in its text that
    misled the model (``negated``, ``previous_attempt``, ``bypass_no_weight``, ...; ``no
    distractor`` when the text mentions none of the range). Columns ``range, threshold,
    truly_present, mechanism, evidence, group, cases, share, share_low, share_high`` (share of
    all flagged uncoded cases, Wilson 95%); ``group`` is one of :data:`REVIEW_GROUPS`.
    """
    from medcoding import study

    if not inputs.is_synthetic:
        raise ValueError(f"{inputs.source}: mechanisms need the synthetic truth; fix: run this "
                         "on a synthetic cohort")
    columns = ["range", "threshold", "truly_present", "mechanism", "evidence", "group", "cases",
               "share", "share_low", "share_high"]
    score = range_scores(inputs, spec)
    human = has_range_code(inputs.split[inputs.code_column], spec)
    truth = has_range_code(inputs.split[inputs.true_column], spec)
    extra = (score >= threshold) & ~human  # [courses]
    if not extra.any():
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    evidence = case_evidence(inputs, spec)[extra].to_numpy()
    if coding is None:
        reasons = np.array([None] * int(extra.sum()), dtype=object)
    else:
        reasons = missed_reasons(coding, inputs.split["course_id"][extra], spec).to_numpy()
    study_kinds = study.review_distractor_kinds(spec)
    rows = []
    for present, shown, reason in zip(truth[extra], evidence, reasons, strict=True):
        if present:
            mechanism = reason if reason is not None else "no recorded reason"
            group = (NAMED if shown in EVIDENCE_NAMED else IMPLIED if shown in EVIDENCE_IMPLIED
                     else UNWRITTEN)
        else:
            kind = shown.removeprefix("distractor: ") if shown.startswith("distractor") else None
            mechanism = kind if kind else "no distractor"
            group = (NO_DISTRACTOR if kind is None else
                     STUDY_KINDS if kind in study_kinds else OTHER_KINDS)
        rows.append({"truly_present": bool(present), "mechanism": mechanism,
                     "evidence": shown if present else "absent", "group": group})
    frame = pd.DataFrame(rows)
    table = (frame.groupby(["truly_present", "mechanism", "evidence", "group"]).size()
             .rename("cases").reset_index())
    table = with_shares(table, int(extra.sum()), spec, threshold)
    return table.sort_values(["truly_present", "cases", "mechanism"],
                             ascending=[False, False, True], ignore_index=True)[columns]


def beside_review(mechanisms: pd.DataFrame, spec: str) -> pd.DataFrame:
    """Our flagged uncoded cases of ``spec`` in the study's review groups, beside its shares.

    ``mechanisms`` is :func:`flagged_mechanisms` output. Columns ``range, group, cases, share,
    share_low, share_high, study_share, study_finding`` (study columns from
    :data:`medcoding.study.UNDERCODING_REVIEW`; NaN where the study gives no share).
    """
    from medcoding import study

    wanted = icd10.parse_range(spec)
    ours = mechanisms[[icd10.parse_range(r) == wanted for r in mechanisms["range"]]]
    total = int(ours["cases"].sum()) if len(ours) else 0
    review = study.undercoding_review(spec)
    rows = []
    for group in REVIEW_GROUPS:
        cases = int(ours.loc[ours["group"] == group, "cases"].sum()) if total else 0
        low, high = wilson_interval(cases, total)
        theirs = review[review["group"] == group]
        rows.append({"range": spec, "group": group, "cases": cases,
                     "share": cases / total if total else np.nan,
                     "share_low": low, "share_high": high,
                     "study_share": theirs["share"].sum(min_count=1) if len(theirs) else np.nan,
                     "study_finding": "; ".join(theirs["finding"]) if len(theirs) else ""})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- chapter tables


def flag_boundaries(specs, flag_threshold: float | None = None,
                    fallback: float = 0.1) -> dict[str, float]:
    """The boundary of the flagged-case analysis per range: ``flag_threshold`` when given, else
    the study's lowered boundary for the range, else ``fallback``."""
    from medcoding import study

    if flag_threshold is not None:
        return {spec: float(flag_threshold) for spec in specs}
    boundaries = {}
    for spec in specs:
        try:
            boundaries[spec] = float(study.undercoding(spec)["lowered_threshold"])
        except KeyError:
            boundaries[spec] = float(fallback)
    return boundaries


def sweep_notes(swept: pd.DataFrame) -> list[str]:
    """One line per range of a sweep that cannot be drawn: no label, or no human-coded case."""
    notes = []
    for spec, group in swept.groupby("range", sort=False):
        if group["range_labels"].iloc[0] == 0:
            notes.append(f"{spec}: no code of this range is in the model's label vocabulary (too "
                         "rare in training): the model cannot flag it.")
        elif group["human_cases"].iloc[0] == 0:
            notes.append(f"{spec}: no test course has a human-coded code of this range.")
    return notes


def _study(spec: str) -> dict | None:
    from medcoding import study

    try:
        return study.undercoding(spec)
    except KeyError:
        return None


def beside_study(inputs: AnalysisInputs, specs, boundaries: dict[str, float]) -> pd.DataFrame:
    """Detection at 0.5 and at the lowered boundary, and the uncoded cases flagged there, ours
    beside the study's (its numbers from :data:`medcoding.study.UNDERCODING`)."""
    rows = []
    for spec in specs:
        theirs = _study(spec)
        lowered = boundaries[spec] if theirs is None else float(theirs["lowered_threshold"])
        ours = sweep(inputs, spec, sorted({0.5, lowered}, reverse=True)).set_index("threshold")
        rows.append({
            "range": spec, "lowered_boundary": lowered,
            "study_cases": np.nan if theirs is None else theirs["human_coded_cases"],
            "our_cases": ours["human_cases"].iloc[0],
            "study_detected_0.5": np.nan if theirs is None else theirs["detected_at_0.5"],
            "our_detected_0.5": ours.loc[0.5, "detection_rate"],
            "study_detected_lowered": np.nan if theirs is None else theirs["detected_at_lowered"],
            "our_detected_lowered": ours.loc[lowered, "detection_rate"],
            "study_extra_cases": np.nan if theirs is None else theirs["extra_model_cases"],
            "our_extra_cases": ours.loc[lowered, "flagged_uncoded"],
        })
    return pd.DataFrame(rows)


def secondary_shares(inputs: AnalysisInputs, specs) -> pd.DataFrame:
    """Per range: the share of human-coded training and test cases where it is secondary,
    beside the study's."""
    rows = []
    for spec in specs:
        train = secondary_share(inputs.train_codes["codes"], inputs.train_codes["primary"], spec)
        test = secondary_share(inputs.split[inputs.code_column],
                               inputs.split[inputs.primary_column], spec)
        theirs = _study(spec)
        rows.append({"range": spec, "train_cases": train["cases"],
                     "train_secondary_share": train["secondary_share"],
                     "test_cases": test["cases"], "test_secondary_share": test["secondary_share"],
                     "study_secondary_share": np.nan if theirs is None
                     else theirs["secondary_share"]})
    return pd.DataFrame(rows)


def validation(inputs: AnalysisInputs, specs, boundaries: dict[str, float]) -> pd.DataFrame:
    """Per range, at its boundary: the flagged uncoded cases, the share truly present (Wilson
    95%) beside the study's reviewed share, and recall of the true cases (synthetic)."""
    rows = []
    for spec in specs:
        row = sweep(inputs, spec, [boundaries[spec]]).iloc[0]
        theirs = _study(spec)
        rows.append({"range": spec, "boundary": boundaries[spec],
                     "flagged_uncoded": row["flagged_uncoded"],
                     "truly_present": row["flagged_uncoded_true"],
                     "true_share": row["true_share"], "low": row["true_share_low"],
                     "high": row["true_share_high"],
                     "study_validated": np.nan if theirs is None else theirs["validated"],
                     "true_recall": row["true_recall"]})
    return pd.DataFrame(rows)


def model_boundaries(scored, specs, boundaries: dict[str, float]) -> dict[str, float]:
    """The boundary each range is flagged at for one model: a model whose scores are
    probabilities flags at the range's lowered boundary, as PLM-CA does; a dictionary (scores 0
    or 1) where a phrase matches (its own threshold)."""
    if scored.ranks:
        return {spec: boundaries[spec] for spec in specs}
    return {spec: float(scored.threshold) for spec in specs}


def validation_by_model(models, specs, boundaries: dict[str, float]) -> pd.DataFrame:
    """:func:`validation` for PLM-CA and each baseline (``models``: name ->
    :class:`medcoding.analysis.comparison.Scored`, as ``comparison.load_models`` gives): would a
    lookup or TF-IDF flag as many uncoded cases, and as many truly present ones?

    Each model flags at :func:`model_boundaries`. The frequency prior scores every course alike,
    so it flags all or none and is left out.
    """
    frames = []
    for name, scored in models.items():
        if not scored.reads_text:
            continue
        own = model_boundaries(scored, specs, boundaries)
        table = validation(scored.inputs, specs, own).drop(columns=["study_validated"])
        frames.append(table.assign(model=name))
    columns = ["model", "range", "boundary", "flagged_uncoded", "truly_present", "true_share",
               "low", "high", "true_recall"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(
        columns=columns)


#: The two measures of a flagged-case comparison (synthetic cohorts), as the reading names them.
FLAG_MEASURES = {
    "uncoded_found": "under-coding recall",  # truly present uncoded cases that are flagged
    "true_share": "flag precision",  # flagged uncoded cases that are truly present
}


def flag_ratios(inputs: AnalysisInputs, spec: str, boundary: float) -> dict:
    """Per-course sums of :data:`FLAG_MEASURES` for one model and range (synthetic cohorts):
    ``{measure: (numerator [courses], denominator [courses])}``."""
    flagged = range_scores(inputs, spec) >= boundary  # [courses]
    coded = has_range_code(inputs.split[inputs.code_column], spec)
    true = has_range_code(inputs.split[inputs.true_column], spec)
    extra = flagged & ~coded
    return {"uncoded_found": (extra & true, true & ~coded), "true_share": (extra & true, extra)}


def validation_differences(models, specs, boundaries: dict[str, float], n_resamples: int = 1000,
                           seed: int = 0, base: str = MODEL) -> pd.DataFrame:
    """``base`` minus each text-reading baseline in :data:`FLAG_MEASURES`, per range, with a 95%
    interval from resampling test patients (the same draw for both models,
    :func:`medcoding.analysis.paired.ratio_difference`).

    Columns ``model, range, measure, base_estimate, model_estimate, difference, low, high``.
    """
    from medcoding.analysis.paired import ratio_difference

    reference = models[base]
    units = reference.inputs.split["patient_id"]
    rows = []
    mine = {spec: flag_ratios(reference.inputs, spec, boundaries[spec]) for spec in specs}
    for name, scored in models.items():
        if name == base or not scored.reads_text:
            continue
        own = model_boundaries(scored, specs, boundaries)
        for spec in specs:
            theirs = flag_ratios(scored.inputs, spec, own[spec])
            for measure in FLAG_MEASURES:
                found = ratio_difference(mine[spec][measure], theirs[measure], units,
                                         n_resamples, seed)
                rows.append({"model": name, "range": spec, "measure": measure,
                             "base_estimate": found["first"], "model_estimate": found["second"],
                             "difference": found["difference"], "low": found["low"],
                             "high": found["high"]})
    return pd.DataFrame(rows, columns=["model", "range", "measure", "base_estimate",
                                       "model_estimate", "difference", "low", "high"])


def validation_difference_reading(differences: pd.DataFrame, base: str = MODEL) -> str:
    """Per range, PLM-CA's under-coding recall (the share of the truly present uncoded cases it
    flags) and flag precision (the share of its flagged uncoded cases truly present), then
    whether each baseline does better or worse (:func:`medcoding.readings.compare`), from
    :func:`validation_differences`."""
    from medcoding.analysis.comparison import called

    if differences.empty:
        return "No baseline reads the text, so there is no flagged-case comparison."
    parts = []
    for spec, by_range in differences.groupby("range", sort=False):
        estimate = by_range.groupby("measure")["base_estimate"].first()
        recall = estimate.get("uncoded_found", np.nan)
        precision = estimate.get("true_share", np.nan)
        lead = (f"{spec}: {base} flags {recall:.0%} of the truly present uncoded cases "
                "(under-coding recall)" if np.isfinite(recall) else
                f"{spec}: no truly present case is uncoded")
        lead += (f", and {precision:.0%} of the uncoded cases it flags are truly present (flag "
                 "precision)." if np.isfinite(precision) else ", and it flags no uncoded case.")
        said = [_compared(base, called(row["model"]), row, spec)
                for _, row in by_range.iterrows()]
        parts.append(" ".join([lead, *said]))
    return " ".join(parts)


def _compared(base: str, name: str, row: pd.Series, spec: str) -> str:
    """One sentence of :func:`validation_difference_reading`: who is ahead on the row's
    measure, or why the two cannot be compared."""
    from medcoding import readings

    measure = FLAG_MEASURES[row["measure"]]
    if row["measure"] == "true_share" and np.isnan(row["model_estimate"]):
        return readings.sentence(f"{name} flags no uncoded {spec} case, so it has no {measure}.")
    if row["base_estimate"] == row["model_estimate"] and row["low"] == row["high"]:
        return readings.sentence(f"{name} has the same {measure} "
                                 f"({row['model_estimate']:.0%}) on every resample.")
    return readings.compare(base, name, row["difference"], row["low"], row["high"], measure,
                            readings.points)


def mechanism_summary(mechanisms: pd.DataFrame) -> pd.DataFrame:
    """Per range: flagged uncoded cases, the commonest coder reason among the truly present and
    the commonest distractor kind among the absent, with their counts."""
    rows = []
    for spec, group in mechanisms.groupby("range", sort=False):
        present = group[group["truly_present"].astype(bool)].groupby("mechanism")["cases"].sum()
        absent = group[~group["truly_present"].astype(bool)].groupby("mechanism")["cases"].sum()
        top_present = present.sort_values(ascending=False, kind="stable")
        top_absent = absent.sort_values(ascending=False, kind="stable")
        rows.append({"range": spec, "flagged_uncoded": int(group["cases"].sum()),
                     "present": int(present.sum()), "absent": int(absent.sum()),
                     "top_reason": top_present.index[0] if len(present) else None,
                     "top_reason_cases": int(top_present.iloc[0]) if len(present) else 0,
                     "top_distractor": top_absent.index[0] if len(absent) else None,
                     "top_distractor_cases": int(top_absent.iloc[0]) if len(absent) else 0})
    return pd.DataFrame(rows, columns=["range", "flagged_uncoded", "present", "absent",
                                       "top_reason", "top_reason_cases", "top_distractor",
                                       "top_distractor_cases"])


def reading(beside: pd.DataFrame, checked: pd.DataFrame | None = None,
            summary: pd.DataFrame | None = None) -> str:
    """The chapter's reading from :func:`beside_study`, :func:`validation` and
    :func:`mechanism_summary` (the last two None on a cohort without truth)."""
    from medcoding import readings

    parts = []
    for _, row in beside.iterrows():
        if np.isnan(row["our_detected_0.5"]):
            parts.append(f"{row['range']}: no human-coded test case, so no detection rate.")
            continue
        text = (f"{row['range']}: the model detects {row['our_detected_0.5']:.1%} of the "
                f"human-coded cases at 0.5 and {row['our_detected_lowered']:.1%} at "
                f"{row['lowered_boundary']:g}, where it flags {int(row['our_extra_cases']):,} "
                f"uncoded case{'' if int(row['our_extra_cases']) == 1 else 's'}")
        if not np.isnan(row["study_detected_0.5"]):
            text += (f" (the study: {row['study_detected_0.5']:.1%} and "
                     f"{row['study_detected_lowered']:.1%}, "
                     f"{int(row['study_extra_cases']):,} cases)")
        parts.append(text + ".")
    if checked is None:
        parts.append("Without a known truth, whether the flagged cases are real needs the review "
                     "sheets.")
        return " ".join(parts)
    for _, row in checked.iterrows():
        if not row["flagged_uncoded"]:
            parts.append(f"{row['range']}: the model flags no uncoded case at "
                         f"{row['boundary']:g}.")
            continue
        name = f"the {int(row['flagged_uncoded']):,} flagged uncoded {row['range']} cases"
        parts.append(readings.majority(name, row["true_share"], row["low"], row["high"]))
        if not np.isnan(row["study_validated"]):
            parts.append(readings.against(f"The share truly present for {row['range']}",
                                          row["true_share"], row["low"], row["high"],
                                          row["study_validated"], "the study's review",
                                          ".0%"))
    if summary is not None:
        for _, row in summary.iterrows():
            said = []
            if row["top_reason"] and row["present"]:
                said.append(f"the coder's commonest recorded reason for missing a present one "
                            f"is {row['top_reason']} ({row['top_reason_cases']} of "
                            f"{row['present']})")
            if row["top_distractor"] and row["absent"]:
                said.append(f"the commonest cause of an absent one is {row['top_distractor']} "
                            f"({row['top_distractor_cases']} of {row['absent']})")
            if said:
                parts.append(f"Among the flagged {row['range']} cases, " + "; ".join(said) + ".")
    return " ".join(parts)


def beside_long(ours: pd.DataFrame, share: str, low: str, high: str, study_share: str,
                ours_label: str = "ours (all flagged, 95% CI)",
                study_label: str = "study (reviewed sample)") -> pd.DataFrame:
    """Ours and the study's shares stacked for one figure: ``source, share, low, high`` plus
    the other columns of ``ours`` (the study's rows where it has a value, without interval)."""
    mine = ours.dropna(subset=[share]).assign(source=ours_label, share=lambda d: d[share],
                                              low=lambda d: d[low], high=lambda d: d[high])
    theirs = ours.dropna(subset=[share, study_share]).assign(
        source=study_label, share=lambda d: d[study_share], low=lambda d: d[study_share],
        high=lambda d: d[study_share])
    return pd.concat([mine, theirs], ignore_index=True)


def boundary_table(boundaries: dict[str, float]) -> pd.DataFrame:
    """``range, flagged-case boundary``: :func:`flag_boundaries` as the chapter shows it."""
    return pd.DataFrame({"range": list(boundaries),
                         "flagged-case boundary": list(boundaries.values())})


def mechanisms_table(inputs: AnalysisInputs, specs, boundaries: dict[str, float],
                     coding: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`flagged_mechanisms` of every range at its boundary, stacked."""
    return pd.concat([flagged_mechanisms(inputs, spec, boundaries[spec], coding)
                      for spec in specs], ignore_index=True)


def review_table(mechanisms: pd.DataFrame, specs) -> pd.DataFrame:
    """:func:`beside_review` of every range, stacked."""
    return pd.concat([beside_review(mechanisms, spec) for spec in specs], ignore_index=True)


def review_long(review: pd.DataFrame) -> pd.DataFrame:
    """The review groups that hold cases, ours and the study's stacked (:func:`beside_long`),
    with ``case`` (``"E66: present: named in the text"``) for the figure's axis."""
    long = beside_long(review[review["cases"] > 0], "share", "share_low", "share_high",
                       "study_share")
    return long.assign(case=long["range"] + ": " + long["group"]) if len(long) else long


def review_sheet_name(spec: str) -> str:
    """The table name of a range's review sheet: ``review_X60_X84``."""
    return "review_" + spec.replace(",", "_").replace("-", "_")


def write_review_sheets(inputs: AnalysisInputs, specs, boundaries: dict[str, float],
                        run_dir: str | Path, sample_size: int, seed: int,
                        include_text: bool) -> pd.DataFrame:
    """Write each range's :func:`review_sheet` to ``<run_dir>/tables/review_<range>.csv``;
    returns one row per sheet: ``range, boundary, cases, file, note_text``."""
    from medcoding.runs import Run

    rows = []
    for spec in specs:
        sheet = review_sheet(inputs, spec, boundaries[spec], sample_size=sample_size, seed=seed,
                             include_text=include_text)
        name = review_sheet_name(spec)
        Run(run_dir).write_table(sheet, name)
        rows.append({"range": spec, "boundary": boundaries[spec], "cases": len(sheet),
                     "file": f"tables/{name}.csv", "note_text": include_text})
    return pd.DataFrame(rows)
