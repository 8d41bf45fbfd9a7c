"""Every rate of the synthetic population, in one documented, YAML-loadable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _default_secondary_coding() -> dict[str, float]:
    return {"X60-X84": 0.25, "E66": 0.45, "I10-I15": 0.55, "I50": 0.80, "E11": 0.75,
            "N18": 0.80}  # fmt: skip


def _default_implicit_rate() -> dict[str, float]:
    return {"I10": 0.25, "E11": 0.15, "E66": 0.35, "I50": 0.2}


def _default_self_harm_rate() -> dict[str, float]:
    return {"emergency_medicine": 0.04, "internal_medicine": 0.012, "toxicology": 0.55,
            "adult_psychiatry": 0.10, "child_and_adolescent_psychiatry": 0.08}  # fmt: skip


def _default_specialty_coding_factor() -> dict[str, float]:
    return {"geriatrics": 0.8, "nephrology": 0.85, "neurology": 0.85, "internal_medicine": 0.9,
            "anaesthesiology_and_intensive_care": 0.85,
            "child_and_adolescent_psychiatry": 0.8}  # fmt: skip


def _default_hf_undocumented_rate() -> dict[str, float]:
    return {"cardiology": 0.08, "geriatrics": 0.06}


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of :func:`medcoding.cohort.synthetic.generate`; defaults follow the study.

    Patients and courses
        ``courses_extra_mean``: mean of the Poisson number of courses beyond the first (the
        study had 2.8 courses per patient); ``max_courses``; ``child_share``: patients under 18;
        ``start_year``/``end_year``: course dates.
    Diagnoses
        ``tail_primary_share``: primaries drawn from each specialty's Zipf-weighted long tail of
        rare categories (``zipf_exponent``, rank order fixed by ``catalogue_seed``);
        ``tail_secondary_share``: the same for secondaries. ``burden_scale`` multiplies every
        specialty's mean number of true secondary diagnoses (1.3 makes the median number of
        human codes per course 2, as in the study's Danish setting).
    Documentation
        ``discharge_summary_rate``, ``admission_note_rate``, ``progress_notes_mean``;
        ``filler_median``/``filler_sigma``: log-normal number of routine sentences per course
        (sets note length: median about 1,500 characters, 2-3% over 10,000);
        ``implicit_rate``: share of true cases of I10, E11, E66, I50
        documented only implicitly (drug, BMI, ejection fraction); ``buried_diabetes_rate``:
        share of type 1/2 diabetes cases whose type is written once, deep in a long note, while
        generic "diabetes" appears >= 3 times; ``negation_rate``, ``family_history_rate``,
        ``past_history_rate``, ``weight_loss_rate``: per-course distractor rates;
        ``header_rate``: notes that open with the department header line.
    Events
        ``self_harm_rate``: per specialty, share of courses that are a self-harm event
        (X60-X84 plus the poisoning or injury code); ``accidental_poisoning_share``: share of
        those outside psychiatry that are instead an accidental overdose with suicidal intent
        denied (X40-X44, a near miss); ``hf_undocumented_rate``: per specialty,
        share of courses with heart failure present and coded but never written;
        ``z_only_rate``: administrative Z-coded encounters.
    The human coder
        ``secondary_coding``: probability that a true secondary is coded, by code range;
        ``default_secondary_coding`` for the rest, times the specialty's
        ``specialty_coding_factor`` (multimorbid specialties code fewer of their many
        secondaries); ``implicit_coding_factor`` multiplies the rate for implicit-only cases
        (1.0: coders read medication lists and BMIs); ``undocumented_coding``: coding of
        undocumented heart failure;
        ``buried_e14_rate``: buried type 1/2 diabetes coded as E14; ``sibling_confusion_rate``:
        primary coded as a sibling code; ``uncertain_swap_rate``: uncertainly documented primary
        coded as the differential diagnosis.
    Filter cases
        ``uncoded_rate``: courses without codes; ``invalid_code_rate``: coded courses with one
        typo code (``E669X``, ``I1O``); no discharge summary, Z-only, rare categories, long text
        and adult psychiatry follow from the rates above.
    Output
        ``block_patients``: patients per random block (the RNG of block ``b`` is seeded with
        ``(seed, b)``, so output does not depend on ``row_group_blocks``, the blocks per
        Parquet row group).
    """

    courses_extra_mean: float = 1.8
    max_courses: int = 9
    child_share: float = 0.12
    start_year: int = 2006
    end_year: int = 2016
    tail_primary_share: float = 0.2
    tail_secondary_share: float = 0.2
    zipf_exponent: float = 1.0
    catalogue_seed: int = 20240601
    burden_scale: float = 1.3
    discharge_summary_rate: float = 0.95
    admission_note_rate: float = 0.8
    progress_notes_mean: float = 1.2
    filler_median: float = 18.0
    filler_sigma: float = 1.1
    implicit_rate: dict[str, float] = field(default_factory=_default_implicit_rate)
    buried_diabetes_rate: float = 0.2
    negation_rate: float = 0.3
    family_history_rate: float = 0.15
    past_history_rate: float = 0.08
    weight_loss_rate: float = 0.02
    header_rate: float = 0.9
    self_harm_rate: dict[str, float] = field(default_factory=_default_self_harm_rate)
    accidental_poisoning_share: float = 0.2
    hf_undocumented_rate: dict[str, float] = field(default_factory=_default_hf_undocumented_rate)
    z_only_rate: float = 0.03
    secondary_coding: dict[str, float] = field(default_factory=_default_secondary_coding)
    default_secondary_coding: float = 0.6
    specialty_coding_factor: dict[str, float] = field(
        default_factory=_default_specialty_coding_factor)
    implicit_coding_factor: float = 1.0
    undocumented_coding: float = 1.0
    buried_e14_rate: float = 0.5
    sibling_confusion_rate: float = 0.02
    uncertain_swap_rate: float = 0.5
    uncoded_rate: float = 0.03
    invalid_code_rate: float = 0.01
    block_patients: int = 500
    row_group_blocks: int = 20

    def to_dict(self) -> dict[str, Any]:
        """All parameters as plain Python values (for ``manifest.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> SyntheticConfig:
        """Build a config from ``values``; unknown keys raise an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown synthetic parameter(s) {unknown}; fix: use only "
                f"{sorted(known)}"
            )
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SyntheticConfig:
        """Read a YAML mapping of parameters (any subset; the rest keep their defaults)."""
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of parameter: value; fix: write "
                             "e.g. 'uncoded_rate: 0.05'")
        return cls.from_dict(values, source=str(path))
