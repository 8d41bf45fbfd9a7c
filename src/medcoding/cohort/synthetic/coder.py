"""The human coder: misses codes for reasons and errs like people do.

:func:`code_course` reads a written :class:`~.writer.Record` and returns the human codes and one
``coding`` row per code in truth or in the human codes, with the reason (``CODING_REASONS`` in
:mod:`medcoding.cohort.contract`).

A true secondary is coded with probability ``coding_base[evidence]`` (prominence: a listed
diagnosis is coded far more often than one shown only by a drug) times
``not_reimbursed_factor`` for chapter XX (external causes count for nothing), the range's
``code_priority``, the specialty's time ``pressure`` and ``1 / (1 + chars / length_half_chars)``
(long courses are read less well). A miss is attributed to the factor that lowered the chance
most. Errors: chronic codes carried over from the patient's previous course although this course
never mentions them, acute ones carried over although resolved, negated, historical, family or
differential mentions coded now and then, suspected outpatient diagnoses coded against the rule,
overdoses of unknown intent coded as self-harm, hypertension inferred from a heart drug, E14 for
a buried diabetes type, a sibling code, a typo.
"""

from __future__ import annotations

import random

from medcoding import icd10
from medcoding.cohort.synthetic.population import Catalogue, Course, full_codes
from medcoding.cohort.synthetic.writer import Record

PROMINENCE_MISS = {"listed": "missed_listed", "narrative": "missed_narrative_only",
                   "buried": "missed_buried", "suspected": "missed_suspected",
                   "drug": "missed_implied_only", "lab": "missed_implied_only",
                   "finding": "missed_implied_only", "method": "missed_implied_only"}
CODED = {"primary": "coded_primary", "suspected": "coded_suspected", "listed": "coded_listed",
         "narrative": "coded_narrative", "buried": "coded_buried", "drug": "coded_implied",
         "lab": "coded_implied", "finding": "coded_implied", "method": "coded_implied"}
DISTRACTOR_ERRORS = {  # distractor kind -> (config rate name, reason)
    "negated": ("negated_coding_rate", "negated_mention"),
    "ruled_out": ("negated_coding_rate", "negated_mention"),
    "denied_attempt": ("negated_coding_rate", "negated_mention"),
    "to_exclude": ("negated_coding_rate", "planned_exclusion"),
    "differential": ("negated_coding_rate", "differential_coded"),
    "family_history": ("negated_coding_rate", "family_mention"),
    "past_history": ("historical_coding_rate", "historical_mention"),
    "previous_attempt": ("historical_coding_rate", "historical_mention"),
    "bypass_no_weight": ("historical_coding_rate", "historical_mention"),
    "suspected_outpatient": ("outpatient_uncertain_coding", "uncertain_outpatient"),
    "ambiguous_overdose": ("ambiguous_intent_coding", "ambiguous_intent"),
    "related_cardiovascular": ("inferred_coding_rate", "inferred_from_related"),
}


def make_typo(code: str) -> str:
    """An invalid spelling of ``code``: ``E66.9`` -> ``E669X``, ``I10`` -> ``I1O``."""
    if "0" in code[1:]:
        typo = code[0] + code[1:].replace("0", "O", 1)
    else:
        typo = code.replace(".", "") + "X"
    return typo if not icd10.is_valid(typo) else code.replace(".", "") + "XX"


def _sibling(code: str, r: random.Random) -> str | None:
    siblings = [c for c in full_codes(code[:3]) if c != code]
    return r.choice(siblings) if siblings and "." in code else None


_PRIORITY: dict[tuple[int, str], float | None] = {}


def _priority(cat: Catalogue, category: str) -> float | None:
    """The configured ``code_priority`` of ``category``'s range (None: none), cached."""
    key = (id(cat), category)
    if key not in _PRIORITY:
        _PRIORITY[key] = next((priority for spec, priority in cat.config.code_priority.items()
                               if icd10.in_range(category, spec)), None)
    return _PRIORITY[key]


def _chance(cat: Catalogue, code: str, evidence: str, pressure: float,
            chars: int) -> tuple[float, str]:
    """Probability that a true secondary is coded, and the reason if it is not."""
    cfg = cat.config
    factors = {PROMINENCE_MISS[evidence]: cfg.coding_base[evidence],
               "missed_time_pressure": pressure,
               "missed_long_course": 1.0 / (1.0 + chars / cfg.length_half_chars)}
    if code[0] in "VWXY":
        factors["missed_not_reimbursed"] = cfg.not_reimbursed_factor
    priority = _priority(cat, code[:3])
    if priority is not None:
        factors["missed_low_priority"] = priority
    chance = 1.0
    for value in factors.values():
        chance *= value
    return chance, min(factors, key=factors.get)


def code_course(cat: Catalogue, r: random.Random, course: Course, record: Record,
                previous: list[str]) -> tuple[list[tuple[str, bool]], list[tuple]]:
    """Human codes ``[(code, is_primary)]`` and coding rows
    ``[(code, truly_present, human_coded, reason)]`` of one course; ``previous`` holds the
    human codes of the patient's previous course (the coder sees the patient's history)."""
    cfg = cat.config
    rows: dict[str, tuple] = {}
    human: list[tuple[str, bool]] = []
    if r.random() < cfg.uncoded_rate:
        for code, _, _ in record.truth:
            rows.setdefault(code, (code, True, False, "course_not_coded"))
        return [], list(rows.values())
    pressure = cat.specialties[course.specialty].pressure

    def add(code: str, primary: bool, truly: bool, reason: str) -> None:
        if any(code == c for c, _ in human):
            return
        human.append((code, primary))
        rows[code] = (code, truly, True, reason)

    def add_or_sibling(code: str, primary: bool, reason: str) -> None:
        """Code the true ``code``, or now and then a sibling of it instead."""
        sibling = _sibling(code, r) if r.random() < cfg.sibling_rate else None
        if sibling is not None and sibling not in truth_codes:
            add(sibling, primary, False, "sibling_code")
            rows[code] = (code, True, False, "replaced_by_sibling")
        else:
            add(code, primary, True, reason)

    truth_codes = {code for code, _, _ in record.truth}
    truth_categories = {code[:3] for code in truth_codes}
    primary, _, primary_evidence = record.truth[0]
    add_or_sibling(primary, True, CODED[primary_evidence])
    carried = {code[:3] for code in previous}
    for code, _, evidence in record.truth[1:]:
        if code in rows:
            continue
        category = code[:3]
        if evidence == "undocumented":
            if category in carried and r.random() < cfg.carry_over_rate:
                add(code, False, True, "carried_over")
            else:
                rows[code] = (code, True, False, "missed_undocumented")
            continue
        if evidence == "buried" and category in ("E10", "E11") and (
                r.random() < cfg.buried_e14_rate):
            add("E14.9", False, "E14.9" in truth_codes, "unspecified_for_buried")
            rows[code] = (code, True, False, "replaced_by_unspecified")
            continue
        chance, reason = _chance(cat, code, evidence, pressure, record.chars)
        if r.random() < chance:
            add_or_sibling(code, False, CODED[evidence])
        else:
            rows[code] = (code, True, False, reason)
    for code in previous:  # acute problems of the last course, carried over though resolved
        if code[:3] not in truth_categories and not code.startswith("Z") and (
                r.random() < cfg.carry_over_resolved_rate):
            add(code, False, False, "carried_over_resolved")
    for code, kind in record.distractors:
        rate, reason = DISTRACTOR_ERRORS[kind]
        if code[:3] not in truth_categories and r.random() < getattr(cfg, rate):
            full = code if "." in code or icd10.is_valid(code) and len(full_codes(code)) == 1 \
                else cat.code_of(code[:3], r)
            add(full, False, False, reason)
    if human and r.random() < cfg.invalid_code_rate:
        j = int(r.random() * len(human))
        code, is_primary = human[j]
        typo = make_typo(code)
        human[j] = (typo, is_primary)
        _, truly, _, _ = rows.pop(code)
        rows[typo] = (typo, False, True, "typo")
        if truly:
            rows[code] = (code, True, False, "replaced_by_typo")
    for code in truth_codes:
        rows.setdefault(code, (code, True, False, "missed_listed"))
    return human, list(rows.values())
