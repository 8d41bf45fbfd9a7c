"""The record of a course: notes in the specialty's style, medications, labs, and what they show.

:func:`write_course` turns the facts of a :class:`~.population.Course` into a
:class:`Record`: the notes (each note a list of section lines, "Header: sentence sentence"),
the medications and laboratory results, the truth with the *evidence* of every true code (how
the text shows it; see ``EVIDENCE_LEVELS`` in :mod:`medcoding.cohort.contract`) and the
distractors (conditions the text mentions although they are absent, with their kind).

Evidence is decided here, per condition: ``primary`` (the reason for the course, named),
``suspected`` (an uncertain inpatient diagnosis, coded as ICD-10 asks), ``listed`` (in a
diagnosis or history list), ``narrative`` (named once in the running text), ``buried`` (named
once, mid-way through the longest section of a long course), ``drug`` / ``lab`` / ``finding`` /
``method`` (shown only by a drug, a laboratory value, a finding such as a BMI or an ejection
fraction, or, for self-harm, the method), ``undocumented`` (present, nothing written).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from dataclasses import dataclass, field

from medcoding import icd10
from medcoding.cohort.synthetic import language
from medcoding.cohort.synthetic.population import (
    EPOCH,
    NO_INTENT_AGE,
    PSYCHIATRY,
    Catalogue,
    Course,
    Patient,
    Specialty,
    group,
)

NOTE_TITLES = {
    "discharge_summary": ("Discharge summary", "DISCHARGE SUMMARY", "Epicrisis", "Discharge letter",
                          "Summary at discharge", "Final note"),
    "admission_note": ("Admission note", "ADMISSION", "Admission record", "Initial assessment",
                       "Intake note"),
    "progress_note": ("Progress note", "Daily note", "Ward round note", "Continuation note"),
    "operation_note": ("Operation note", "OPERATION NOTE", "Operative report", "Surgical note"),
    "triage_note": ("Triage note", "ED triage", "Emergency department note", "Triage"),
}
VISIT_TITLES = ("Outpatient note", "Visit note", "Clinic note", "Outpatient visit")  # not a ward
OUTPATIENT_TITLES = {  # an outpatient course: visits and a closing letter, no admission or stay
    "visit_note": ("Outpatient note, first visit", "First visit", "New patient visit",
                   "Clinic note", "Outpatient assessment"),
    "discharge_summary": ("Outpatient letter", "Clinic letter", "Letter to the GP",
                          "Summary of the outpatient course", "Concluding outpatient note"),
    "triage_note": ("Emergency department note", "ED note", "ED triage", "Triage note"),
}
EMERGENCY_OUTPATIENT_TITLES = {  # seen in the emergency department and sent home
    "progress_note": ("ED reassessment", "Emergency department note, reassessment", "ED note"),
    "discharge_summary": ("ED discharge note", "Emergency department summary",
                          "Note at departure from the ED", "ED summary"),
}
NEUROPHYSIOLOGY_LETTER = ("Reply to the referring doctor", "Letter to the referring doctor",
                          "Neurophysiology summary")
STUDY_TITLES = {  # the neurophysiology report is named after the study it reports
    "eeg": ("EEG report", "EEG", "Electroencephalography", "Neurophysiology report (EEG)"),
    "emg": ("EMG report", "Nerve conduction study", "EMG and nerve conduction studies",
            "Neurophysiology report (EMG/NCS)"),
}
FALLBACK_SECTIONS = ("course", "assessment", "findings", "conclusion", "plan", "current")
INTAKE = ("admission_note", "visit_note", "triage_note", "neurophysiology_report", "operation_note")
PRONOUNS = {True: ("he", "his", "himself"), False: ("she", "her", "herself")}
NAMED = ("primary", "suspected", "listed", "narrative", "buried")
LONG_COURSE_SENTENCES = 36
SUSPECTED_FIRST = 0.6  # a ruled-out (or a confirmed) condition was first suspected at arrival
CONFIRMED_BY_TEST = 0.4  # a true primary with a test that looks for it: the test confirms it
FILLER_VARIANTS = 40
COURSE_SLOTS = ("year", "ago", "age", "alone", "person", "sbp", "dbp", "pulse", "temp", "sat",
                "rr", "bmi",
                "weight", "height", "ef", "grade", "stay", "home", "Year", "Ago", "Age", "Person",
                "Stay", "household", "gcs", "spouse", "Spouse", "kin", "Kin",
                "Household", "nerve", "muscle", "occupation", "Occupation", "alcohol", "Alcohol",
                "quit", "quitago", "oxygen", "referral", "mobility", "Mobility", "glucose",
                "oedema", "since", "spell", "onday", "Onday", "sofar")  # slots whose value is
# the course's own
BANDS = ((18, "child"), (75, "adult"), (200, "old"))
# Day references, filled when the note they land in is known (its day: the 1-based position of the
# note in the course): "on day N" never later than the note's own day, "after N days" of a culture
# never longer than the course has run (see _Writer._render)
ON_DAY, SO_FAR = "\x01", "\x03"
DISCHARGE = re.compile(r"\b(?:discharg|goes home|went home|sent home)", re.IGNORECASE)  # a
# routine sentence that says the patient leaves: only in the course's last note
OEDEMA = {False: ("No ankle oedema", "No pitting oedema", "No peripheral oedema",
                  "No oedema of the legs", "No ankle oedema bilaterally"),
          True: tuple(f"{how} {where} oedema{side}" for how in ("Mild", "Slight", "Moderate")
                      for where in ("ankle", "pitting", "peripheral")
                      for side in (" bilaterally", "", " on the left", " on the right"))}
RETIREMENT_AGE = 67  # works from 18 to 66; retired from 67
NOT_A_JOB = ("student", "unemployed person")
REFERRALS = {True: ("physiotherapy", "rehabilitation", "the municipality"),
             False: ("physiotherapy", "the municipality", "surgery")}
MOBILITY = {  # the ward's mobility sentence: walking, or the chair for a patient on oxygen
    "walks": tuple(f"{verb} with the {who}{where}" for verb in ("Mobilised", "Walked", "Got up")
                   for who in ("physiotherapist", "nurse", "walking frame")
                   for where in ("", ", 50 metres", " to the bathroom", " in the corridor")),
    "chair": ("Sat in the chair for a short while with help", "Mobilised to the chair with the "
              "physiotherapist", "Bed rest; turned regularly", "Sat on the edge of the bed with "
              "help")}
# words for the people around the patient, by age band and sex (a man's partner is not "husband")
_CHILD = {"spouse": ("parents",), "kin": ("mother", "father", "parents")}
_ADULT_KIN = ("mother", "brother", "sister", "friend", "son", "daughter")
_OLD_KIN = ("daughter", "son", "neighbour")
KIN = {
    ("child", True): _CHILD, ("child", False): _CHILD,
    ("adult", True): {"spouse": ("wife", "partner", "girlfriend"), "kin": _ADULT_KIN},
    ("adult", False): {"spouse": ("husband", "partner", "boyfriend"), "kin": _ADULT_KIN},
    ("old", True): {"spouse": ("wife", "partner"), "kin": _OLD_KIN},
    ("old", False): {"spouse": ("husband", "partner"), "kin": _OLD_KIN},
}  # one spouse and one relative per course; where the patient lives: language.yaml households


def _titles(note_type: str, inpatient: bool, intake: str, study: str) -> tuple[str, ...]:
    """The titles a note of ``note_type`` can have: outpatient courses have visits and a
    closing letter (from the emergency department, or to the referring doctor after a
    neurophysiology study), never an admission or a stay."""
    if note_type == "neurophysiology_report":
        return STUDY_TITLES[study]
    if inpatient:
        return NOTE_TITLES[note_type]
    if intake == "triage_note" and note_type in EMERGENCY_OUTPATIENT_TITLES:
        return EMERGENCY_OUTPATIENT_TITLES[note_type]
    if intake == "neurophysiology_report" and note_type == "discharge_summary":
        return NEUROPHYSIOLOGY_LETTER
    if note_type == "progress_note":
        return VISIT_TITLES
    return OUTPATIENT_TITLES.get(note_type, NOTE_TITLES.get(note_type, (note_type,)))


SCHOOL_POOLS = ("school_life", "family_school")  # school, homework, friends: from age 6
CHILDHOOD_POOLS = {("family", "school"): "family_school", ("paediatric", "infant"): "infant"}


def _childhood(age: int) -> str | None:
    """``infant`` (under 3: nappies), ``toddler`` (3-5: no school yet), ``school`` (6-17) or
    ``None`` for an adult."""
    return None if age >= 18 else "infant" if age < 3 else "toddler" if age < 6 else "school"


def band(age: int) -> str:
    """``child`` (under 18), ``adult`` (18-74) or ``old`` (75 and over)."""
    return next(name for limit, name in BANDS if age < limit)


@dataclass
class Record:
    """A written course: notes, drugs, labs, truth with evidence, distractors."""

    notes: list[tuple[str, str]]
    medications: list[tuple[str, str]]
    labs: list[tuple[str, float, str]]
    truth: list[tuple[str, bool, str]]
    distractors: list[tuple[str, str]]
    chars: int


@dataclass
class _Values:
    """Template values: fixed ones for the course, per-call ones, and fresh random ones."""

    r: random.Random
    fixed: dict
    birth_year: int
    year: int
    extra: dict = field(default_factory=dict)

    choices: dict = field(default_factory=dict)
    outpatient: bool = False  # templates of the ``outpatient`` block first

    def __getitem__(self, key: str):
        if key in self.extra:
            return self.extra[key]
        if key in self.fixed:
            return self.fixed[key]
        r = self.r
        if key in self.choices:
            options = self.choices[key]
            return options[int(r.random() * len(options))]
        if key == "n":
            return str(r.randint(2, 9))
        if key == "day":  # the days of a gestational week (40+3)
            return str(int(r.random() * 7))
        age = self.year - self.birth_year
        if "@" in key:  # year@N / ago@N: when the patient was at least N years old
            name, low = key.split("@")
            low = min(int(low) + 1, age)  # + 1: the calendar years overstate the age by up to one
            if name == "year":
                return str(r.randint(self.birth_year + low, self.year))
            return str(r.randint(1, max(1, min(age - low, 40))))
        if key == "year":  # after birth (past early childhood for adults), before the course
            return str(r.randint(min(self.birth_year + 1 + min(15, age // 2), self.year),
                                 self.year))
        if key == "ago":
            return str(r.randint(1, max(1, min(age - 1 - min(15, age // 2), 40))))
        if key in ("nrs", "nrs2"):
            return str(r.randint(0, 6))
        if key == "ml":
            return str(r.randint(6, 18) * 100)
        if key == "hour":
            return f"{r.randint(0, 23):02d}"
        if key == "min":
            return f"{r.randint(0, 59):02d}"
        if key == "glucose":
            return f"{r.uniform(4.5, 9.5):.1f}"
        if key in ("packyears", "cigs", "units"):
            return str(r.randint(8, 45))
        if key == "fev1":
            return f"0.{r.randint(45, 69)}"
        if key == "fev1pct":
            return str(r.randint(30, 75))
        pools = language.load("language")["values"]
        if key == "grade":  # the school grade the age gives (first grade at 7, the last at 16)
            grades, years = pools["grade"], int(self.fixed.get("age", age))
            return grades[max(0, min(len(grades) - 1, years - 7))]
        return language.pick(r, pools[key])


MARKERS = re.compile("[" + ON_DAY + SO_FAR + "]")


def _when(match: re.Match, day: int, inpatient: bool, r: random.Random) -> str:
    """A day reference in a note of ``day`` (1 the first note): "on day N" with N from 2 to the
    note's day ("at admission" in the first note, "at the visit" outside a ward), a culture
    "after N days" shorter than the course so far ("so far" in the first note; a visit counts
    as a day)."""
    marker, before = match.group(), match.string[max(0, match.start() - 2):match.start()]
    if marker == SO_FAR:
        if day == 1:
            return "so far"
        return f"after {r.randint(1, day - 1)} days"
    if not inpatient:
        text = "at the visit"
    elif day == 1:
        text = language.pick(r, ("at admission", "on arrival"))
    else:
        text = f"on day {r.randint(2, day)}"
    starts = not before or before[-1] == "\n" or before in (". ", ": ")  # a sentence's start
    return text[:1].upper() + text[1:] if starts else text


class _Draft:
    """Notes being written: ordered notes, each an ordered mapping of section -> sentences."""

    def __init__(self, style: dict, r: random.Random, operated: bool = True):
        notes = []
        for note_type, chance in style["notes"].items():
            if note_type == "operation_note" and not operated:
                continue  # no operation for an outpatient or a diagnosis still in doubt
            if note_type == "progress_note":
                count = int(chance) + (r.random() < chance - int(chance))
                notes += [note_type] * count
            elif r.random() < chance:
                notes.append(note_type)
        if not notes:
            notes = [next(iter(style["notes"]))]
        self.notes = [(t, {s: [] for s in style[t]}) for t in notes]
        self.operated = "operation_note" in notes
        self.intake = next((n for n in self.notes if n[0] in INTAKE), self.notes[0])
        self.summary = next((n for n in self.notes if n[0] == "discharge_summary"), self.notes[-1])
        self.routing = {**language.load("language")["routing"], **style.get("routing", {})}

    def add(self, kind: str, sentence: str, where: str = "any",
            r: random.Random | None = None) -> None:
        """Put ``sentence`` in the first section of ``routing[kind]`` that the preferred note
        (``intake``, ``summary`` or a random one) has, else in any note that has one."""
        if where == "intake":
            order = [self.intake] + self.notes
        elif where == "summary":
            order = [self.summary] + self.notes
        else:
            order = self.notes[:]
            r.shuffle(order)
        wanted = self.routing[kind]
        if not wanted:
            return  # the style writes nothing of this kind (no medication in an EEG report)
        for note in order:
            for section in wanted:
                if section in note[1]:
                    note[1][section].append(sentence)
                    return
        for note in order:  # no section of its own: the running text, never a triage line
            for section in FALLBACK_SECTIONS:
                if section in note[1]:
                    note[1][section].append(sentence)
                    return
        first = order[0][1]
        first[next(iter(first))].append(sentence)

    def sections(self) -> list[list[str]]:
        return [lines for _, sections in self.notes for lines in sections.values()]


# The nerve an EMG study finds affected and the muscle examined with the needle, by the primary
NERVES = {"G56.0": ("median", "abductor pollicis brevis"),
          "G56.1": ("median", "abductor pollicis brevis"),
          "G56.2": ("ulnar", "first dorsal interosseous"),
          "G57.3": ("peroneal", "tibialis anterior"),
          "G62": ("sural", "tibialis anterior"), "G61": ("peroneal", "tibialis anterior")}
OTHER_NERVES = (("peroneal", "tibialis anterior"), ("tibial", "gastrocnemius"),
                ("radial", "extensor digitorum"), ("axillary", "deltoid"))
GCS_LOWERED = ("S06", "T36-T65", "F05", "R40", "I60-I64", "A41", "E10", "G40")


def _gcs(course: Course, r: random.Random) -> str:
    """The course's one Glasgow coma scale: 15, or 13-15 when the primary can lower it."""
    lowered = any(icd10.in_range(course.primary[:3], spec) for spec in GCS_LOWERED)
    return str(r.choice((13, 14, 15, 15)) if lowered else 15)


def _vitals(patient: Patient, course: Course, present: set[str], r: random.Random,
            obese: bool, extreme: bool = False, needs: frozenset[str] = frozenset()) -> dict:
    """The course's vital signs: fever only with an infection, a low saturation and a fast
    breathing rate only with a condition that needs oxygen (``treatment_needs``)."""
    age = course.age
    hypertensive = "HT" in present
    sbp = r.randint(142, 178) if hypertensive else r.randint(104, 136)
    dbp = r.randint(86, 102) if hypertensive else r.randint(60, 84)
    if age < 14:
        sbp, dbp = r.randint(90, 115), r.randint(50, 70)
    height = r.randint(165, 195) if patient.male else r.randint(152, 180)
    if age < 16:
        height = min(height, 75 + 6 * age)
    if obese:
        bmi = r.uniform(40.5, 52.0) if extreme else r.uniform(30.5, 46.0)
    elif age < 16:
        bmi = r.uniform(14.0, 22.0)
    else:
        bmi = r.uniform(19.0, 29.4)
    weight = bmi * (height / 100) ** 2
    return {
        "sbp": str(sbp), "dbp": str(dbp), "bmi": f"{bmi:.1f}", "height": str(height),
        "weight": str(round(weight)),
        "pulse": str(r.randint(82, 134) if "I48" in present else r.randint(56, 96)),
        "temp": f"{r.uniform(36.2, 38.9 if 'infection' in needs else 37.6):.1f}",
        "sat": str(r.randint(88, 96) if "oxygen" in needs else r.randint(95, 100)),
        "rr": str(r.randint(18, 28) if "oxygen" in needs else r.randint(12, 18)),
        "ef": str(r.randint(20, 38)),
    }


def _evidence(cat: Catalogue, r: random.Random, code: str, specialty: Specialty,
              chronic: bool, can_bury: bool = True) -> str:
    """How the record will show a true secondary ``code``. Only a course that can run long
    (``can_bury``: it has a routine pool that repeats) buries a name; elsewhere a draw of
    ``buried`` names it once in the narrative."""
    cfg = cat.config
    category = code[:3]
    if chronic and r.random() > specialty.mentions_chronic:
        return "undocumented"
    implied = cat.conditions.get(category, {}).get("implied", {})
    u = r.random()
    for kind, share in implied.items():
        u -= share * cfg.implied_scale
        if u < 0:
            return kind
    if category in ("E10", "E11") and r.random() < cfg.buried_diabetes_rate:
        return "buried" if can_bury else "narrative"
    if r.random() < cfg.buried_rate:
        return "buried" if can_bury else "narrative"
    return "listed" if r.random() < cfg.listed_share else "narrative"


def _dose(r: random.Random, drug: list) -> tuple[str, str, str]:
    return drug[0], drug[1], language.pick(r, drug[2])


class Writer:
    """Writes courses for one catalogue (the language resources, loaded once)."""

    def __init__(self, cat: Catalogue):
        self.cat = cat
        self.cfg = cat.config
        self.lang = language.load("language")
        self.pop = language.load("population")
        self.styles = self.lang["styles"]
        self.headers = self.lang["sections"]
        negatable = [c for c, s in cat.conditions.items() if s.get("negatable")]
        self.negatable_known = [c for c in negatable if c in cat.chronic_set]
        self.negatable = [c for c in negatable if c not in cat.chronic_set]
        # the conditions a specialty's work-up rules out or plans to exclude, by specialty index
        self.rule_out = [[c for c, spec in cat.conditions.items() if spec.get("rule_out")
                          and s.name in spec.get("rule_out_in", ())] for s in cat.specialties]
        self.family = [c for c, s in cat.conditions.items() if s.get("family")]
        self.past = [c for c, s in cat.conditions.items() if s.get("past")]
        # the youngest a relative with it (family) or the patient when it happened (past) can be
        self.family_age = {c: max([cat.conditions[c].get("family_age", 0)] + [
            rule.min_age for rule in cat._rules_of(c)]) for c in self.family}
        self.past_age = {c: max([2, cat.conditions[c].get("past_age", 0)] + [
            rule.min_age for rule in cat._rules_of(c)]) for c in self.past}
        self.relatives = [tuple(rel) for rel in self.pop["relatives"]]
        self.filler = {k: [self._prerender(t) for t in v] for k, v in self.lang["filler"].items()}
        self.filler_sections = self.lang["filler_sections"]
        self.pools: dict[tuple, tuple] = {}  # (specialty, inpatient, band, study) -> pools
        self.allowed: dict[tuple, list[str]] = {}  # (pool, age, male) -> allowed distractors
        self.templates: dict[str, list[tuple]] = {}
        self.eeg = {c for spec in self.lang["eeg_categories"]
                    for c in icd10.range_categories(spec)}
        self.self_harm_specialties = {i for i, rate in enumerate(cat.self_harm) if rate > 0}
        self.external_of_drug = {m[3]: m[1] for m in cat.self_harm_methods if m[3]}
        outpatient = self.lang["outpatient"]
        self.outpatient_styles = {name: {**style, "notes": outpatient["styles"][name],
                                         "visit_note": style.get("admission_note", ["reason"])}
                                  for name, style in self.styles.items()}
        self.outpatient_headers = {**self.headers, **outpatient["sections"]}
        self.outpatient_filler = outpatient["filler"]
        self.repeatable = set(self.lang["repeatable_filler"])
        self.operation_filler = set(self.lang["operation_filler"])
        self.households = {band_name: [(language.compile_template(says),
                                         language.compile_template(home))
                                        for says, home in options]
                           for band_name, options in self.lang["households"].items()}
        self.contraindicated = self.pop["contraindicated"]
        self.jobs = [j for j in self.lang["values"]["job"] if j not in NOT_A_JOB]
        self.needs = {need: set(icd10.range_categories(ranges))
                      for need, ranges in self.pop["treatment_needs"].items()}
        self.neutral_needs = self.pop["neutral_needs"]
        self.abrupt = set(icd10.range_categories(self.pop["abrupt_onset"]))
        self.emergency_rule_out = set(self.pop["emergency_rule_out"])
        self.rule_out_clinic = [[c for c in pool if c not in self.emergency_rule_out]
                                for pool in self.rule_out]
        self._habit_draws: tuple = (None, [], set())  # (patient id, its draws, its categories)
        self.antidotes = {antidote[0] for antidote in self.pop["antidotes"].values()}
        self.lab_tests = {c: {test for test, *_ in spec.get("labs", [])}
                          | {test for ranges in spec.get("code_labs", {}).values()
                             for test, *_ in ranges}
                          for c, spec in cat.conditions.items()}
        self.bmi = 0.0  # the BMI of the course being written
        self.bmi_forms = {form: tuple(limits) for form, limits in
                          cat.conditions["E66"].get("bmi_forms", {}).items()}

    def _prerender(self, template: str) -> tuple:
        """A filler template: ``("live", compiled)`` when it needs the course's values (years,
        vitals), else ``("fixed", {(male, band): variants})``, rendered once (fast to draw
        from)."""
        compiled = language.compile_template(template)
        if any(f"{{${name}" in template for name in COURSE_SLOTS):
            return ("live", compiled)
        r = random.Random(template)
        variants = {}
        for (age_band, male), words in KIN.items():
            he, his, himself = PRONOUNS[male]
            values = _Values(r, {"pron": he, "poss": his, "selfhim": himself}, 1950, 2010,
                             choices=words)
            variants[male, age_band] = [language.render(compiled, r, values)
                                        for _ in range(FILLER_VARIANTS)]
        return ("fixed", variants)

    def _pools(self, s: Specialty, style: dict, inpatient: bool, age_band: str,
               study: str, operated: bool, infected: bool = False,
               childhood: str | None = None) -> tuple:
        """The routine-sentence pools of a course: ``((pool, templates), ...)``; outpatients
        get clinic sentences instead of ward ones (``outpatient.filler``), children family
        ones instead of social (``childhood``: a toddler's without school, an infant's with
        nappies), and only an operated course a postoperative course."""
        key = (s.name, inpatient, age_band, study, operated, infected, childhood)
        if key not in self.pools:
            names = []
            for name in s.filler or style["filler"]:
                if name == "neurophysiology":
                    name = study
                elif not inpatient and name in self.outpatient_filler:
                    name = self.outpatient_filler[name]
                elif name == "social" and age_band == "child":
                    name = "family"
                if name is None or (name in self.operation_filler and not operated) or (
                        name == "infection" and not infected) or (
                        name in SCHOOL_POOLS and childhood in ("infant", "toddler")):
                    continue
                extra = CHILDHOOD_POOLS.get((name, childhood))
                for pool in (name, extra) if extra else (name,):
                    if pool not in names:
                        names.append(pool)
            self.pools[key] = tuple((name, self.filler[name]) for name in names)
        return self.pools[key]

    # ------------------------------------------------------------------ helpers
    def _name(self, code: str, r: random.Random) -> str:
        text = language.name(code, r, self.cfg)
        limits = self.bmi_forms.get(text) if code[:3] == "E66" else None
        if limits is not None and not limits[0] <= self.bmi < limits[1]:
            return "obesity"  # a class that the written BMI does not have
        return text

    def _clinical_name(self, code: str, r: random.Random) -> str:
        """The name of the reason for contact: never a WHO title verbatim."""
        text = language.clinical_name(code, r, self.cfg)
        limits = self.bmi_forms.get(text) if code[:3] == "E66" else None
        if limits is not None and not limits[0] <= self.bmi < limits[1]:
            return "obesity"
        return text

    def _say(self, key: str, r: random.Random, values: _Values, **extra) -> str:
        values.extra = extra
        text = language.render(language.pick(r, self._templates(key, values.outpatient)), r,
                               values)
        return self._typo(text, r)

    def _templates(self, key: str, outpatient: bool = False) -> list[tuple]:
        """The compiled templates of ``key`` (``"distractors.negated"``), cached; for an
        outpatient course those of ``outpatient.KEY`` where the language file has them."""
        cache = (key, outpatient)
        if cache not in self.templates:
            node = None
            for root in ((self.lang["outpatient"], self.lang) if outpatient else (self.lang,)):
                node = root
                for part in key.split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                if node is not None:
                    break
            self.templates[cache] = [language.compile_template(t) for t in node]
        return self.templates[cache]

    def _typo(self, sentence: str, r: random.Random) -> str:
        if r.random() < self.cfg.sentence_typo_rate:
            return language.misspell(sentence, r)
        return sentence

    # ------------------------------------------------------------------ the course
    def write_course(self, patient: Patient, course: Course, r: random.Random) -> Record:
        """The record of ``course`` (``patient`` gives sex, birth and the problem list)."""
        cat = self.cat
        s = cat.specialties[course.specialty]
        style = (self.styles if course.inpatient else self.outpatient_styles)[s.style]
        draft = _Draft(style, r, operated=not course.uncertain and course.suspected is None)
        year = (EPOCH + dt.timedelta(days=course.day)).year
        he, his, himself = PRONOUNS[patient.male]
        person = (("boy" if patient.male else "girl") if course.age < 18
                  else ("man" if patient.male else "woman"))
        truth: list[tuple[str, bool, str]] = []
        distractors: list[tuple[str, str]] = []
        meds: dict[str, tuple[str, str]] = {}
        labs: dict[str, tuple[float, str]] = {}
        codes = [course.primary] + course.chronic + course.acute
        present = {c[:3] for c in codes} | {group(c[:3]) for c in codes}
        obese_shown = False
        age_band = band(course.age)
        study = "eeg" if course.primary[:3] in self.eeg else "emg"
        needs = {need for need, categories in self.needs.items() if not present.isdisjoint(
            categories)}
        if s.name == "anaesthesiology_and_intensive_care":
            needs.add("frail")
        pools = self._pools(s, style, course.inpatient, age_band, study, draft.operated,
                            "infection" in needs, _childhood(course.age))
        can_bury = self._can_run_long(draft, pools)
        evidence = {}
        for code in course.chronic + course.acute:
            evidence[code] = _evidence(cat, r, code, s, code in course.chronic, can_bury)
        if course.event and course.intent in ("stated", "method_only"):
            external = course.event[1]
            evidence[external] = "narrative" if course.intent == "stated" else "method"
            if course.primary != course.event[0]:
                evidence[course.event[0]] = "narrative"
        if course.intent == "accidental":
            evidence[course.event[1]] = "narrative"
        if "E66" in present and any(c[:3] == "E66" and evidence.get(c) != "undocumented"
                                    for c in codes):
            obese_shown = True
        fixed = {"pron": he, "poss": his, "selfhim": himself, "person": person,
                 "age": str(course.age)}
        fixed.update(_vitals(patient, course, present if obese_shown or "E66" not in present
                             else present - {"E66"}, r, obese_shown,
                             extreme=any(c == "E66.2" for c in codes), needs=frozenset(needs)))
        self.bmi = float(fixed["bmi"])  # the BMI this course writes (obesity names agree)
        fixed["gcs"] = _gcs(course, r)
        fixed.update(self._habits(patient, course, present, year, r))
        fixed["nerve"], fixed["muscle"] = NERVES.get(course.primary, NERVES.get(
            course.primary[:3])) or language.pick(r, OTHER_NERVES)
        kin = KIN[age_band, patient.male]
        fixed["spouse"] = language.pick(r, kin["spouse"])
        fixed["kin"] = language.pick(r, kin["kin"])
        fixed["alone"] = ("alone" if course.age >= 15 else  # no small child comes alone
                          f"accompanied by {his} {fixed['kin']}")
        choices = {"stay": ("stay", "admission") if course.inpatient else ("visit", "course"),
                   "referral": REFERRALS[course.inpatient] + (
                       ("the memory clinic",) if "cognition" in needs else ()),
                   "mobility": MOBILITY["chair" if needs & {"oxygen", "frail"} else "walks"]}
        fixed["oxygen"] = f"{r.randint(1, 5)} L oxygen" if "oxygen" in needs else "room air"
        fixed["glucose"] = self._glucose(course, present, needs, r)
        fixed["oedema"] = language.pick(r, OEDEMA["oedema" in needs])
        fixed["since"], fixed["spell"] = self._onset(course, r)
        fixed["onday"], fixed["sofar"] = ON_DAY, SO_FAR
        birth_year = patient.birth_year()
        values = _Values(r, fixed, birth_year, year, choices=choices,
                         outpatient=not course.inpatient)
        says, home = language.pick(r, self.households[age_band])  # one home for the course
        fixed["household"] = language.render(says, r, values)
        fixed["household"] = fixed["household"][:1].lower() + fixed["household"][1:]
        fixed["home"] = language.render(home, r, values)
        fixed["home"] = fixed["home"][:1].lower() + fixed["home"][1:]

        # ---- the primary
        primary_evidence = "suspected" if course.uncertain and course.inpatient else "primary"
        truth.append((course.primary, True, primary_evidence))
        self._primary(course, s, draft, r, values, distractors, meds, labs)
        # ---- secondaries
        listed: dict[bool, list[str]] = {True: [], False: []}  # chronic?, names
        buried = []
        chronic = set(course.chronic)
        for code in course.chronic + course.acute:
            kind = evidence[code]
            truth.append((code, False, kind))
            category = code[:3]
            spec = cat.conditions.get(category, {})
            if kind == "undocumented" or (course.event and code in course.event[:2]):
                continue
            drug = None
            if kind in ("listed", "narrative", "buried"):
                if spec.get("drugs") and r.random() < 0.7:
                    drug, atc, dose = _dose(r, language.pick(r, spec["drugs"]))
                    meds.setdefault(drug, (atc, dose))
                if r.random() < 0.7:
                    self._labs(code, spec, r, labs)
            is_chronic = code in chronic
            if is_chronic and kind in ("narrative", "buried"):
                onset = min(birth_year + int(patient.onsets.get(category, 0)), year - 1)
                onset = max(onset, birth_year + 1) if year - birth_year >= 2 else year
                extra = {"onset": str(onset), "onsetago": str(max(1, year - onset))}
            else:
                extra = {"drug": drug or "the usual treatment"}
            if kind == "listed":
                listed[is_chronic].append(self._name(code, r))
            elif kind == "narrative":
                key = "narrative" if is_chronic else "narrative_acute"
                draft.add(key, self._say(key, r, values, name=self._name(code, r), **extra),
                          r=r)
            elif kind == "buried":
                key = "buried" if is_chronic else "buried_acute"
                buried.append(self._say(key, r, values, name=self._name(code, r), **extra))
                if category in ("E10", "E11"):
                    for template in r.sample(self._templates("generic_diabetes",
                                                             values.outpatient), 4):
                        draft.add("narrative", self._typo(language.render(template, r, values),
                                                          r), r=r)
            elif kind == "drug":
                drug, atc, dose = _dose(r, spec["drugs"][0])
                meds[drug] = (atc, dose)
            elif kind == "lab":
                self._labs(code, spec, r, labs)
            elif kind == "finding":
                drug = language.pick(r, spec["drugs"]) if spec.get("drugs") else None
                if drug is not None:
                    name, atc, dose = _dose(r, drug)
                    meds[name] = (atc, dose)
                values.extra = {"drug": drug[0] if drug else "treatment"}
                template = language.pick(r, spec["finding"])
                route = "social_finding" if spec.get("finding_section") == "social" else "finding"
                draft.add(route, self._typo(language.render(template, r, values), r), r=r)
        for is_chronic, names in listed.items():
            key = "listed" if is_chronic else "listed_acute"
            for i in range(0, len(names), 4):
                chunk = language.join_names(names[i:i + 4])
                where = "intake" if is_chronic and r.random() < 0.6 else "summary"
                draft.add(key, self._say(key, r, values, names=chunk), where=where)
        # ---- smoking status of a non-dependent patient (the patient's own, see _habits)
        smoking = fixed["smoking"]
        if smoking in ("never", "former") and r.random() < 0.5:
            draft.add("social_finding", self._say(f"smoking.{smoking}", r, values), r=r)
            if smoking == "former":
                distractors.append(("F17.2", "past_history"))
        # ---- distractors
        self._distractors(course, s, draft, r, values, present, distractors, meds,
                          patient.male)
        # ---- vitals, BMI, drugs, labs, plan, filler
        if r.random() < 0.6 or (obese_shown and "E66" in present):
            line = language.render(language.pick(r, self._templates("vitals")), r, values)
            if obese_shown or (course.age >= 18 and r.random() < 0.35):
                line += ", " + language.render(language.pick(r, self._templates("bmi_line")), r,
                                               values)
            draft.add("vitals", line + ".", where="intake")
        neutral = self.pop["neutral_drugs_child" if course.age < 12 else
                           "neutral_drugs_psychiatry" if s.name in PSYCHIATRY else
                           "neutral_drugs" if course.inpatient else "neutral_drugs_outpatient"]
        study_only = style.get("study", False)  # a neurophysiology study: no ward drugs or labs
        for drug, atc, dose in (_dose(r, d) for d in r.sample(neutral, r.randint(0, 3))):
            need = self.neutral_needs.get(drug)  # opioids for pain, antibiotics for infection
            if not study_only and (need is None or need in needs or (
                    need == "pain" and draft.operated)):
                meds.setdefault(drug, (atc, dose))
        self._contraindications(meds, codes, r)
        if not course.inpatient:  # no infusions in a clinic or an emergency visit
            for drug in [d for d, (_, dose) in meds.items() if "i.v." in dose]:
                del meds[drug]
        measured = {test for c in present if c in self.lab_tests for test in self.lab_tests[c]}
        for test, low, high, unit in r.sample(self.pop["routine_labs"], r.randint(3, 7)):
            if test not in measured and not study_only:  # a normal eGFR beside a CKD is no
                # routine value
                labs.setdefault(test, (round(r.uniform(low, high), 1), unit))
        for drug, (_, dose) in meds.items():
            if drug in self.antidotes:  # given during the course: its treatment
                draft.add("treatment", self._say("antidote", r, values, drug=drug, dose=dose),
                          r=r)
        items = [f"{d} {dose}" for d, (_, dose) in meds.items() if d not in self.antidotes]
        if items and r.random() < 0.9 and not study_only:
            draft.add("medication", language.pick(r, ("", "Continue ")) + ", ".join(items) + ".",
                      where="summary")
        if labs and r.random() < 0.5 and not study_only:
            shown = r.sample(list(labs.items()), min(len(labs), r.randint(2, 5)))
            draft.add("finding", ", ".join(f"{t} {v:g}" for t, (v, _) in shown) + ".",
                      where="any", r=r)
        draft.add("plan", self._say("plan" if course.inpatient else "plan_outpatient", r, values),
                  where="summary")
        self._filler(s, style, draft, r, values, bool(buried), pools, (patient.male, age_band))
        operation = next((n[1] for n in draft.notes if n[0] == "operation_note"), None)
        if operation is not None and not any(operation.values()):  # the operation was done
            operation[next(iter(operation))].append(self._say(
                "procedure_line", r, values, name=self._name(course.primary, r)))
        for sentence in buried:
            lines = max(draft.sections(), key=len)
            lines.insert(len(lines) // 2, sentence)
        notes = self._render(draft, course, r, study)
        chars = sum(len(text) for _, text in notes)
        return Record(notes, [(d, atc) for d, (atc, _) in meds.items()],
                      [(t, v, u) for t, (v, u) in labs.items()], truth, distractors, chars)

    def _glucose(self, course: Course, present: set[str], needs: set[str],
                 r: random.Random) -> str:
        """The triage blood glucose: low only with a hypoglycaemia or an insulin overdose, high
        with diabetes (up to 16) or a condition that raises it (sepsis, infarction, stroke,
        pancreatitis: up to 10.5), else normal for the age."""
        if "hypoglycaemia" in needs:
            return f"{r.uniform(1.8, 3.6):.1f}"
        if "hyperglycaemia" in needs:
            diabetic = not present.isdisjoint(("E10", "E11", "E12", "E13", "E14"))
            return f"{r.uniform(6.0, 16.0) if diabetic else r.uniform(5.0, 10.5):.1f}"
        return f"{r.uniform(4.0, 6.5) if course.age < 12 else r.uniform(4.5, 7.4):.1f}"

    def _onset(self, course: Course, r: random.Random) -> tuple[str, str]:
        """When the symptoms began (``since``, "symptoms started ...") and how long they have
        lasted (``spell``, "after ..."): hours to two days for an abrupt primary (an
        infarction, a stroke, sepsis, an injury; population.yaml abrupt_onset), else days."""
        if course.primary[:3] in self.abrupt:
            hours = r.randint(1, 12)
            return language.pick(r, ((f"{hours} hours ago", f"{hours} hours of symptoms"),
                                     ("a few hours ago", "a few hours of symptoms"),
                                     ("this morning", "a few hours of symptoms"),
                                     ("yesterday", "a day of symptoms"),
                                     ("2 days ago", "2 days of symptoms")))
        days = r.randint(2, 9)
        return f"{days} days ago", f"{days} days of symptoms"

    def _habits(self, patient: Patient, course: Course, present: set[str], year: int,
                r: random.Random) -> dict:
        """Work, smoking and alcohol: the patient's own (drawn from the patient's id, the same
        in every course), fitting the age and the course's F10, F17 and J44. Works from 18 to
        66 (years in the job since the start age), retired from 67; a smoker with F17, never
        "never smoked" after COPD or with tobacco dependence at any time, an ex-smoker only
        after the patient's year of stopping, pack-years from the packs a day over the years
        smoked (from 14-19 to stopping, or to now); heavy drinking with F10, never "no alcohol"
        for a patient who has or will have alcohol dependence."""
        if self._habit_draws[0] != patient.patient_id:  # once per patient (courses in a row)
            h = random.Random(patient.patient_id)
            self._habit_draws = (patient.patient_id, [h.random() for _ in range(11)], set(
                patient.onsets) | {code[:3] for other in patient.courses
                                   for code in (other.primary, *other.chronic, *other.acute)})
        _, draws, ever = self._habit_draws
        job, student, start = self.jobs[int(draws[0] * len(self.jobs))], draws[1] < 0.3, draws[2]
        smoke, quit_age, packs = draws[3], 20 + int(draws[4] * 25), 0.5 + draws[5]  # packs/day
        smoke_start = 14 + int(draws[10] * 6)  # the age smoking began, 14-19
        drink, light, heavy = draws[7], draws[8], draws[9]
        age = course.age
        article = "an" if job[0] in "aeiou" else "a"
        start_age = (25 if student else 18) + int(start * 8)
        if age >= RETIREMENT_AGE:
            occupation = language.pick(r, ("retired", f"retired; formerly {article} {job}",
                                           f"retired {job}"))
        elif student and age < 25:
            occupation = "student"
        elif age - start_age >= 1:
            occupation = f"works as {article} {job}" + language.pick(
                r, ("", f" for {age - start_age} years"))
        else:
            occupation = f"works as {article} {job}"
        if "F17" in present:
            smoking = "current"
        elif "F17" in ever or age < 15:
            smoking = "silent"  # tobacco dependence before or after this course: not "never"
        elif smoke < 0.3 or "J44" in ever:
            smoking = "former" if age > quit_age else "silent"
        else:
            smoking = "never"
        units = 30 + int(heavy * 40)
        if "F10" in present:
            alcohol = f"alcohol {units} units a week"
        elif drink < 0.35 and "F10" not in ever:
            alcohol = "no alcohol"
        elif drink < 0.55:
            alcohol = "alcohol only at weekends"
        else:
            alcohol = f"alcohol {1 + int(light * 9)} units a week"
        quit = patient.birth_year() + quit_age
        smoked_years = (min(quit_age, age) if smoking == "former" else age) - smoke_start
        return {"occupation": occupation, "smoking": smoking, "alcohol": alcohol,
                "units": str(units), "quit": str(min(quit, year)),
                "quitago": str(max(1, year - quit)),
                "packyears": str(max(1, round(packs * max(1, smoked_years)))),
                "cigs": str(round(packs * 20))}

    def _contraindications(self, meds: dict, codes: list[str], r: random.Random) -> None:
        """Drop the drugs that the patient's state forbids (``population.yaml:
        contraindicated``: metformin after an acute kidney injury or in CKD 4-5, NSAIDs in
        CKD 4-5 or heart failure), giving the safe alternative where there is one."""
        for drug, rule in self.contraindicated.items():
            if drug in meds and any(code in rule["when"] or code[:3] in rule["when"]
                                    for code in codes):
                del meds[drug]
                if rule.get("instead"):
                    name, atc, dose = _dose(r, rule["instead"])
                    meds.setdefault(name, (atc, dose))

    def _labs(self, code: str, spec: dict, r: random.Random, labs: dict) -> None:
        ranges = list(spec.get("labs", [])) + list(spec.get("code_labs", {}).get(code, []))
        for test, low, high, unit in ranges:
            labs[test] = (round(r.uniform(low, high), 1), unit)

    # ------------------------------------------------------------------ the primary
    def _primary(self, course: Course, s: Specialty, draft: _Draft, r: random.Random,
                 values: _Values, distractors: list, meds: dict, labs: dict) -> None:
        cat = self.cat
        spec = cat.conditions.get(course.primary[:3], {})
        if course.kind == "z_only":
            sentence = next(z[1] for z in cat.z_encounters if z[0] == course.primary)
            draft.add("presentation", sentence, where="intake")
            draft.add("diagnosis", sentence, where="summary")
            return
        if course.event is not None:
            self._event(course, draft, r, values, distractors, meds, labs)
        elif course.uncertain:
            others = language.join_names([self._name(c, r) for c in course.differentials])
            for where in ("intake", "summary"):
                draft.add("suspected", self._say("suspected", r, values,
                                                 name=self._clinical_name(course.primary, r),
                                                 others=others), where=where)
            distractors += [(c, "differential") for c in course.differentials]
        else:
            planned = s.planned or (not course.inpatient and s.style != "triage")
            key = ("presentation.obstetric" if s.style == "obstetric" else
                   "presentation.planned" if planned else "presentation.chronic"
                   if course.primary[:3] in cat.chronic_set else "presentation.acute")
            draft.add("presentation", self._say(key, r, values, name=self._clinical_name(
                course.primary, r)), where="intake")
            if course.suspected is not None:
                draft.add("suspected", self._say(
                    "suspected", r, values, name=self._name(course.suspected, r),
                    others="other causes"), where="summary")
                distractors.append((course.suspected, "suspected_outpatient"))
            draft.add("diagnosis", self._say("diagnosis_line", r, values,
                                             name=self._name(course.primary, r)), where="summary")
            tests = [t for t in spec.get("rule_out", []) if not t.startswith("a normal")]
            if tests and course.inpatient and r.random() < CONFIRMED_BY_TEST:
                name = self._clinical_name(course.primary, r)  # the suspicion is a reason
                if r.random() < SUSPECTED_FIRST:
                    draft.add("presentation", self._say("distractors.suspicion", r, values,
                                                        name=name), where="intake")
                draft.add("finding", self._say("distractors.confirmed", r, values, name=name,
                                               test=language.pick(r, tests)), r=r)
        if course.event is None or course.primary != course.event[0]:
            if spec.get("drugs") and r.random() < 0.8:
                drug, atc, dose = _dose(r, language.pick(r, spec["drugs"]))
                meds.setdefault(drug, (atc, dose))
            self._labs(course.primary, spec, r, labs)

    def _event(self, course: Course, draft: _Draft, r: random.Random, values: _Values,
               distractors: list, meds: dict, labs: dict) -> None:
        injury, external, method, drug = course.event
        method = method.replace("{n}", str(r.randint(8, 60)))
        method = method.replace("herself/himself", values["selfhim"])
        intent = language.pick(r, self.pop["intent"]).replace("her/his", values["poss"]).replace(
            "she/he", values["pron"])
        if course.intent == "stated":
            draft.add("presentation", self._say("self_harm_named", r, values, method=method,
                                                intent=intent), where="intake")
            draft.add("risk", self._say("self_harm_followup", r, values), where="summary")
        elif course.intent == "method_only":
            draft.add("presentation", self._say("self_harm_method_only", r, values,
                                                method=method), where="intake")
        elif course.intent == "accidental" and course.age < NO_INTENT_AGE:  # a child: no intent
            draft.add("presentation", self._say("accidental_child", r, values, method=method),
                      where="intake")
        elif course.intent == "accidental":
            draft.add("presentation", self._say("accidental", r, values, method=method),
                      where="intake")
            distractors.append((self.external_of_drug.get(drug, "X60") + ".0", "denied_attempt"))
        else:  # ambiguous: an overdose whose intent the notes never state
            sentence = self._say("distractors.ambiguous_overdose", r, values)
            for word in ("paracetamol", "tramadol", "diazepam"):
                sentence = sentence.replace(word, drug if drug else word)
            draft.add("presentation", sentence, where="intake")
            distractors.append((self.external_of_drug.get(drug, "X60") + ".0",
                                "ambiguous_overdose"))
        if course.primary == injury:
            draft.add("diagnosis", self._say("diagnosis_line", r, values,
                                             name=self._name(injury, r)), where="summary")
        if drug in self.pop["poisoning_labs"]:
            for test, low, high, unit in self.pop["poisoning_labs"][drug]:
                labs[test] = (round(r.uniform(low, high), 1), unit)
        if drug in self.pop["antidotes"]:
            name, atc, dose = _dose(r, self.pop["antidotes"][drug])
            meds[name] = (atc, dose)

    # ------------------------------------------------------------------ distractors
    def _absent(self, category: str, present: set[str]) -> bool:
        return category not in present and group(category) not in present

    def _relatives_of(self, category: str, age: int) -> list[tuple[str, int]]:
        """The relatives who can have ``category`` (its family_age and sex rules) beside a
        patient of ``age``, each with the oldest they can be."""
        low = self.family_age[category]
        out = []
        for name, sex, _, older in self.relatives:
            oldest = age + older
            if oldest >= max(low, 1) and self.cat.allowed(category, oldest, sex == "M"):
                out.append((name, oldest))
        return out

    def _fits(self, category: str, kind: str, age: int, male: bool) -> bool:
        """Whether a distractor of ``kind`` may name ``category`` for a patient of ``age``: a
        family history when a relative can have it, a past history when the patient was old
        enough for it before now, else the patient's own age and sex rules."""
        if kind == "family_history":
            return bool(self._relatives_of(category, age))
        if kind == "past_history" and age <= self.past_age[category]:
            return False
        return self.cat.allowed(category, age, male)

    def _relative(self, category: str, age: int, r: random.Random) -> tuple[str, str]:
        """A relative with ``category`` and, at times, when: " at 55" (an age between its
        family_age and the relative's oldest) or " in old age" (a relative who can be old)."""
        name, oldest = language.pick(r, self._relatives_of(category, age))
        low, high = max(self.family_age[category], 20), min(oldest, 85)
        options = [""]
        if high >= low + 5:
            options.append(f" at {5 * r.randint(-(-low // 5), high // 5)}")
        if oldest >= 75:
            options.append(" in old age")
        return name, language.pick(r, options)

    def _distractors(self, course: Course, s: Specialty, draft: _Draft, r: random.Random,
                     values: _Values, present: set[str], out: list, meds: dict,
                     male: bool) -> None:
        cfg, cat = self.cfg, self.cat
        adult = course.age >= 18
        clinic = not course.inpatient and s.style != "triage"  # outside the emergency department
        mentioned: set[str] = set()  # the distractors chosen: named once, never present (a
        # negated stroke is no heart condition to the related-cardiovascular step below)

        def pick(pool: list[str], k: int, kind: str = "") -> list[str]:
            key = (id(pool), course.age, male)
            if key not in self.allowed:
                self.allowed[key] = [c for c in pool if self._fits(c, kind, course.age, male)]
            options = [c for c in self.allowed[key] if self._absent(c, present)
                       and c not in mentioned]
            chosen = r.sample(options, min(k, len(options)))
            mentioned.update(chosen)
            return chosen

        workup = self.styles[s.style].get("workup", False)  # a medical work-up of the patient
        if r.random() < cfg.negation_rate and (workup or r.random() < 0.3):
            # chronic conditions are "not known"; acute ones have no signs, or a test shows
            # none (one condition, the test that looks for it)
            known = not workup or r.random() < 0.4
            chosen = pick(self.negatable_known if known else self.negatable,
                          1 + int(r.random() * 2.2))
            if chosen:
                names = language.join_names([self._name(c, r) for c in chosen], "or")
                tests = cat.conditions[chosen[0]].get("rule_out", [])
                healthy = not course.chronic and not any(c[:3] in cat.chronic_set
                                                         for c in course.acute)
                if known and healthy and r.random() < 0.3:
                    key, route = "distractors.negated_healthy", "negation_known"
                elif known:
                    key, route = "distractors.negated_known", "negation_known"
                elif len(chosen) == 1 and tests and r.random() < 0.5 and not (
                        clinic and chosen[0] in self.emergency_rule_out):
                    key, route = "distractors.negated_test", "negation"
                else:
                    key, route = "distractors.negated", "negation"
                draft.add(route, self._say(key, r, values, names=names,
                                           test=language.pick(r, tests) if tests else ""), r=r)
                out += [(cat.code_of(c, r), "negated") for c in chosen]
        rule_out = self.rule_out[course.specialty]
        if clinic:  # a clinic rules out no infarction, no embolism, no stroke
            rule_out = self.rule_out_clinic[course.specialty]
        for kind, rate, pool, route, key in (
                ("ruled_out", cfg.ruled_out_rate, rule_out, "negation", "ruled_out"),
                ("to_exclude", cfg.to_exclude_rate, rule_out, "plan", "to_exclude"),
                ("family_history", cfg.family_history_rate, self.family, "family",
                 "family_history"),
                ("past_history", cfg.past_history_rate, self.past, "history_mention",
                 "past_history")):
            if r.random() >= rate or (kind in ("ruled_out", "to_exclude") and not workup):
                continue
            for c in pick(pool, 1, kind):
                test = language.pick(r, cat.conditions[c].get("rule_out", ["investigations"]))
                low = self.past_age.get(c, 2)
                relative = when = ""
                if kind == "family_history":
                    relative, when = self._relative(c, course.age, r)
                draft.add(route, self._say(f"distractors.{key}", r, values,
                                           name=self._name(c, r), test=test,
                                           pastyear=values[f"year@{low}"],
                                           pastago=values[f"ago@{low}"], parent=relative,
                                           relative=("a " if relative in ("brother", "sister")
                                                     else "the ") + relative,
                                           relwhen=when), r=r)
                out.append((cat.code_of(c, r), kind))
                if kind == "ruled_out" and r.random() < SUSPECTED_FIRST:
                    draft.add("presentation", self._say("distractors.suspicion", r, values,
                                                        name=self._name(c, r)), where="intake")
        if course.specialty in self.self_harm_specialties and course.age >= 12:
            attempt_now = course.intent in ("stated", "method_only")
            if r.random() < cfg.previous_attempt_rate * (2 if attempt_now else 1):
                draft.add("history_mention", self._say("distractors.previous_attempt", r, values),
                          r=r)
                out.append(("X84", "previous_attempt"))
            if not attempt_now and course.intent != "accidental" and (
                    r.random() < cfg.denied_attempt_rate):
                draft.add("risk", self._say("distractors.denied_attempt", r, values), r=r)
                out.append(("X84", "denied_attempt"))
        if adult and r.random() < cfg.bypass_no_weight_rate:
            draft.add("history_mention", self._say("distractors.bypass_no_weight", r, values),
                      r=r)
            if self._absent("E66", present):
                out.append(("E66.9", "bypass_no_weight"))
        related = [c for c in ("I48", "I50", "I25", "I63") if c in present]
        if related and self._absent("I10", present) and (
                r.random() < cfg.related_cardiovascular_rate):
            drug, atc, dose = _dose(r, language.pick(r, self.pop["cardiac_non_htn_drugs"][
                language.pick(r, related)]))
            meds.setdefault(drug, (atc, dose))
            out.append(("I10", "related_cardiovascular"))

    # ------------------------------------------------------------------ filler and text
    def _can_run_long(self, draft: _Draft, pools: tuple) -> bool:
        """Whether routine sentences can make this course long: one of its repeating pools has
        a section to go into in the course's notes (else :meth:`_filler` stops at one of each)."""
        return any(name in self.repeatable and self._pool_lines(draft, name)
                   for name, _ in pools)

    def _pool_lines(self, draft: _Draft, name: str) -> list[list[str]]:
        """The sections of ``draft``'s notes that pool ``name``'s sentences go into."""
        return [lines for _, lines in self._pool_places(draft, name)]

    def _pool_places(self, draft: _Draft, name: str) -> list[tuple[int, list[str]]]:
        """The sections of :meth:`_pool_lines`, each with the index of its note; a
        postoperative pool's only from the operation note on (no sutures before the
        operation)."""
        wanted = self.filler_sections[name]
        start = 0
        if name in self.operation_filler:
            start = next((i for i, (t, _) in enumerate(draft.notes) if t == "operation_note"), 0)
        return [(i, sections[section]) for i, (_, sections) in enumerate(draft.notes)
                if i >= start for section in wanted if section in sections]

    def _filler(self, s: Specialty, style: dict, draft: _Draft, r: random.Random,
                values: _Values, long: bool, pools: tuple, variant: tuple) -> None:
        """Routine sentences, each into a section its pool belongs in (``filler_sections``);
        a pool with no such section in this course's notes writes nothing."""
        mean = math.log(max(1.0, self.cfg.filler_median * style["length"] * s.length))
        count = int(r.lognormvariate(mean, self.cfg.filler_sigma))
        if long:
            count = max(count, LONG_COURSE_SENTENCES)
        targets, pool = [], []
        last = len(draft.notes) - 1
        for name, templates in pools:
            lines = self._pool_places(draft, name)
            if lines:
                targets.append(lines)
                pool += [(len(targets) - 1, kind, t, name in self.repeatable)
                         for kind, t in templates]
        if not pool:
            return
        if not long:  # a short course does not say the same routine thing twice
            count = min(count, len(pool))
        chosen = r.sample(pool, min(count, len(pool)))
        again = [item for item in pool if item[3]]  # facts (home, examination) are said once
        if again:
            chosen += [again[int(r.random() * len(again))] for _ in range(count - len(chosen))]
        values.extra = {}
        for target, kind, template, _ in chosen:
            if kind == "live":
                sentence = language.render(template, r, values)
            else:
                options = template[variant]
                sentence = options[int(r.random() * len(options))]
            places = targets[target]
            if DISCHARGE.search(sentence):  # the patient leaves: only in the last note
                places = [place for place in places if place[0] == last]
                if not places:
                    continue
            places[int(r.random() * len(places))][1].append(self._typo(sentence, r))

    def _render(self, draft: _Draft, course: Course, r: random.Random,
                study: str) -> list[tuple[str, str]]:
        department = course.department
        notes = []
        surname = language.load("language")["values"]["surname"]
        headers = self.headers if course.inpatient else self.outpatient_headers
        day = 0  # the day of the note: its position among the notes written
        for note_type, sections in draft.notes:
            titles = _titles(note_type, course.inpatient, draft.intake[0], study)
            title = language.pick(r, titles)
            head = language.pick(r, (f"{title}, {department}", f"{department}. {title}",
                             f"{title} ({department})", title,
                             f"{title}, {department}, Dr {language.pick(r, surname)}"))
            if not any(sections.values()):
                continue  # a heading with nothing under it (a quiet day, an operation note
                # whose sentences went elsewhere) is no note
            day += 1
            lines = [head]
            for section, sentences in sections.items():
                if not sentences:
                    continue
                header = language.pick(r, headers[section])
                if note_type == "progress_note" and course.inpatient and r.random() < 0.5:
                    header = f"Day {day}"
                lines.append(f"{header}: " + " ".join(sentences))
            text = "\n".join(lines)
            if MARKERS.search(text):
                text = MARKERS.sub(lambda m, d=day: _when(m, d, course.inpatient, r), text)
            notes.append((note_type, text))
        return notes
