"""Patients who hang together: age and sex rules, persistent problem lists, clusters, dates."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from medcoding.cohort.synthetic import SyntheticConfig
from medcoding.cohort.synthetic.population import EPOCH, catalogue, draw_patient, group

CONFIG = SyntheticConfig()


@pytest.fixture(scope="module")
def patients():
    cat = catalogue(CONFIG)
    r = random.Random(11)
    return [draw_patient(cat, r, i) for i in range(6000)]


def _codes(course):
    return [course.primary] + course.chronic + course.acute


def test_age_and_sex_rules_hold_for_every_code(patients):
    checked = 0
    for patient in patients:
        for course in patient.courses:
            for code in _codes(course):
                checked += 1
                if "X60" <= code[:3] <= "X84":
                    assert course.age >= 10, (course.age, code)
                if code[:3] in ("N40", "C61"):
                    assert patient.male
                if code.startswith("O"):
                    assert not patient.male and 15 <= course.age <= 50
                if code.startswith("Q") or code[:3] == "M08":
                    assert course.age <= 17
                if code[:3] in ("F03", "G30"):
                    assert course.age >= 55
    assert checked > 50_000


def test_chronic_problems_persist_and_grow(patients):
    cat = catalogue(CONFIG)
    kept = total = 0
    sizes = []
    for patient in patients:
        for before, after in zip(patient.courses, patient.courses[1:], strict=False):
            later = {c[:3] for c in _codes(after)} | {group(c[:3]) for c in _codes(after)}
            for code in before.chronic:
                total += 1
                kept += code[:3] in later or group(code[:3]) in later
        sizes += [(c.age, len(c.chronic)) for c in patient.courses if c.kind == "disease"]
    assert total > 5000 and kept / total > 0.97
    ages, counts = np.array(sizes).T
    assert counts[ages >= 70].mean() > 2.5 * counts[(ages >= 30) & (ages < 50)].mean()
    assert cat.chronic_set >= {"I10", "E11", "N18", "I50", "J44"}


def _share(patients, condition, given):
    with_it = [p for p in patients if given(p.onsets)]
    return np.mean([condition in p.onsets for p in with_it]), len(with_it)


def test_comorbidities_cluster(patients):
    adults = [p for p in patients if (p.courses[-1].age >= 50)]
    dm_obese, n1 = _share(adults, "E11", lambda o: "E66" in o)
    dm_lean, n2 = _share(adults, "E11", lambda o: "E66" not in o)
    assert n1 > 200 and dm_obese > 1.6 * dm_lean
    ckd_risk, _ = _share(adults, "N18", lambda o: "E11" in o and "I10" in o)
    ckd_none, _ = _share(adults, "N18", lambda o: "E11" not in o and "I10" not in o)
    assert ckd_risk > 1.5 * ckd_none
    copd_smoker, _ = _share(adults, "J44", lambda o: "F17" in o)
    copd_never, _ = _share(adults, "J44", lambda o: "F17" not in o)
    assert copd_smoker > 3 * copd_never


def test_dates_agree_and_do_not_pile_up(patients):
    start = (dt.date(CONFIG.start_year, 1, 1) - EPOCH).days
    end = (dt.date(CONFIG.end_year, 12, 31) - EPOCH).days
    days = []
    for patient in patients:
        previous = -10**9
        for course in patient.courses:
            assert start <= course.day <= end and course.day >= previous
            assert course.day > patient.birth_day
            previous = course.day
            days.append(course.day)
    days = np.array(days)
    assert (days == end).mean() < 0.002  # no clip onto the last day
    per_year = np.histogram(days, bins=CONFIG.end_year - CONFIG.start_year + 1)[0]
    assert per_year.min() > 0.7 * per_year.mean()


def test_courses_per_patient_and_event_mix(patients):
    courses = [c for p in patients for c in p.courses]
    assert 3.0 < len(courses) / len(patients) < 3.6  # about 2.8 after the filters
    kinds = {k: np.mean([c.kind == k for c in courses]) for k in ("self_harm", "poisoning",
                                                                  "z_only")}
    assert 0.005 < kinds["self_harm"] < 0.03 and 0.02 < kinds["z_only"] < 0.04
    method_only = [c for c in courses if c.kind == "self_harm"]
    share = np.mean([c.intent == "method_only" for c in method_only])
    assert abs(share - CONFIG.method_only_share) < 0.08
    top = {}
    for c in courses:
        for code in c.chronic + c.acute:
            top[code[:3]] = top.get(code[:3], 0) + 1
    ten = sorted(top, key=top.get, reverse=True)[:10]
    assert "I10" in ten and all(c in catalogue(CONFIG).conditions for c in ten)
