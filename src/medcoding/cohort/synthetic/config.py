"""Every rate of the synthetic population, in one documented, YAML-loadable dataclass.

``data/defaults.yaml`` lists the same defaults for users to copy (a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medcoding import config as configs

#: Ranges of the parameters (medcoding.config.check): rates and shares are probabilities; no
#: parameter is negative. The first matching pattern applies, to a number or a mapping's values.
RANGES = {"*_rate": (0, 1), "*_share": (0, 1), "*": (0, None)}

def _self_harm_rate() -> dict[str, float]:
    return {"emergency_medicine": 0.04, "internal_medicine": 0.012, "toxicology": 0.55,
            "adult_psychiatry": 0.10, "child_and_adolescent_psychiatry": 0.08}  # fmt: skip


def _coding_base() -> dict[str, float]:
    return {"primary": 1.0, "listed": 0.85, "narrative": 0.5, "suspected": 0.6, "buried": 0.3,
            "drug": 0.22, "lab": 0.22, "finding": 0.22, "method": 0.35,
            "undocumented": 0.0}  # fmt: skip


def _code_priority() -> dict[str, float]:
    return {"E66": 0.5, "I10-I15": 0.6, "F17": 0.5, "E78": 0.8, "Z00-Z99": 0.6}


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of :func:`medcoding.cohort.synthetic.generate`; defaults follow the study.

    Patients and courses
        ``courses_extra_mean``: mean of the Poisson number of courses beyond the first;
        ``max_courses``; ``child_share``: patients under 18 at their first course;
        ``start_year``/``end_year``: the period (course dates are spread over it, never clipped).
    Diagnoses
        ``chronic_scale`` multiplies every chronic condition's lifetime share (conditions.yaml);
        ``cluster_sd``: spread of the latent metabolic/cardiac/lung/mind factors that make
        comorbidities cluster; ``burden_scale`` multiplies each specialty's mean number of acute
        secondaries; ``tail_primary_share``/``tail_secondary_share``: primaries and secondaries
        drawn from the long tail (Zipf weights ``1 / (rank + zipf_offset) ** zipf_exponent``,
        rank order fixed by ``catalogue_seed``).
    Documentation
        ``title_rate``: names written as the ICD title (a rare variant); ``abbreviation_rate``,
        ``form_typo_rate`` (known misspellings of a name), ``sentence_typo_rate`` (one word of a
        sentence mistyped); ``implied_scale`` multiplies each condition's share shown only by a
        drug, lab or finding; ``listed_share``: named secondaries in a list (the rest in the
        narrative); ``buried_rate``: named secondaries written once deep in a long note;
        ``buried_diabetes_rate``: type 1/2 diabetes written so, among generic "diabetes";
        ``filler_median``/``filler_sigma``: routine sentences per course (log-normal).
    Distractors (per course)
        ``negation_rate``, ``ruled_out_rate``, ``to_exclude_rate``, ``family_history_rate``,
        ``past_history_rate``, ``bypass_no_weight_rate``; ``related_cardiovascular_rate``
        (given a heart condition without hypertension: a blood-pressure drug for it);
        ``previous_attempt_rate``, ``denied_attempt_rate`` (in self-harm specialties).
    Events
        ``self_harm_rate``: per specialty, courses that are a self-harm event (age >= 10);
        ``method_only_share``: of those, described only by the method; ``accidental_share``:
        of the other poisonings, accidental ones with intent denied (X40-X44), the rest
        overdoses whose intent the notes never state (poisoning code only);
        ``z_only_rate``: administrative courses.
    The human coder (coder.py)
        ``coding_base``: chance a true secondary is coded, by evidence; times
        ``not_reimbursed_factor`` for chapter XX, ``code_priority`` by range, the specialty's
        time ``pressure`` and ``1 / (1 + chars / length_half_chars)`` for the course's length.
        Errors: ``carry_over_rate`` (a chronic code of the previous course, not written now),
        ``carry_over_resolved_rate`` (an acute one), ``negated_coding_rate``,
        ``historical_coding_rate``, ``outpatient_uncertain_coding``, ``buried_e14_rate``,
        ``sibling_rate``, ``ambiguous_intent_coding``, ``inferred_coding_rate``.
    Filter cases
        ``uncoded_rate``: courses without codes; ``invalid_code_rate``: coded courses with one
        typo code (``E669X``).
    Output
        ``block_patients``: patients per random block (block ``b`` is seeded with ``(seed, b)``,
        so the output depends neither on ``row_group_blocks`` nor on the number of workers).
    """

    courses_extra_mean: float = 2.3
    max_courses: int = 12
    child_share: float = 0.12
    start_year: int = 2006
    end_year: int = 2016
    chronic_scale: float = 1.0
    cluster_sd: float = 0.7
    burden_scale: float = 0.6
    tail_primary_share: float = 0.2
    tail_secondary_share: float = 0.08
    zipf_exponent: float = 1.0
    zipf_offset: float = 10.0
    catalogue_seed: int = 20240601
    title_rate: float = 0.04
    abbreviation_rate: float = 0.25
    form_typo_rate: float = 0.03
    sentence_typo_rate: float = 0.04
    implied_scale: float = 1.5
    listed_share: float = 0.55
    buried_rate: float = 0.04
    buried_diabetes_rate: float = 0.25
    filler_median: float = 14.0
    filler_sigma: float = 0.8
    negation_rate: float = 0.9
    ruled_out_rate: float = 0.35
    to_exclude_rate: float = 0.35
    family_history_rate: float = 0.6
    past_history_rate: float = 0.6
    bypass_no_weight_rate: float = 0.02
    related_cardiovascular_rate: float = 0.6
    previous_attempt_rate: float = 0.15
    denied_attempt_rate: float = 0.25
    self_harm_rate: dict[str, float] = field(default_factory=_self_harm_rate)
    method_only_share: float = 0.12
    accidental_share: float = 0.5
    z_only_rate: float = 0.03
    coding_base: dict[str, float] = field(default_factory=_coding_base)
    not_reimbursed_factor: float = 0.6
    code_priority: dict[str, float] = field(default_factory=_code_priority)
    length_half_chars: float = 12000.0
    carry_over_rate: float = 0.3
    carry_over_resolved_rate: float = 0.03
    negated_coding_rate: float = 0.03
    historical_coding_rate: float = 0.05
    outpatient_uncertain_coding: float = 0.15
    buried_e14_rate: float = 0.5
    sibling_rate: float = 0.015
    ambiguous_intent_coding: float = 0.25
    inferred_coding_rate: float = 0.08
    uncoded_rate: float = 0.03
    invalid_code_rate: float = 0.01
    block_patients: int = 500
    row_group_blocks: int = 20

    def to_dict(self) -> dict[str, Any]:
        """All parameters as plain Python values (for ``manifest.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> SyntheticConfig:
        """Build a config from ``values``; an unknown key, a wrong type or a value out of range
        raises :class:`medcoding.config.ConfigError` naming it and the fix."""
        merged = {}
        for name, value in configs.check(cls, values, source, RANGES).items():
            default = getattr(cls(), name)
            merged[name] = {**default, **value} if isinstance(default, dict) else value
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SyntheticConfig:
        """Read a YAML mapping of parameters (any subset; the rest keep their defaults)."""
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of parameter: value; fix: write "
                             "e.g. 'uncoded_rate: 0.05'")
        return cls.from_dict(values, source=str(path))
