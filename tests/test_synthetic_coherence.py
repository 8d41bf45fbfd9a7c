"""A clinician's read of whole courses: each property holds over every course of the shared
synthetic cohort (tests/synthetic_fixture.py: 2,500 patients, seed 7)."""

from __future__ import annotations

import difflib
import functools
import re

import pandas as pd
from synthetic_fixture import cohort, texts

from medcoding import icd10
from medcoding.cohort.synthetic import language
from medcoding.cohort.synthetic.population import full_codes

NAMED = ("primary", "listed", "narrative", "buried")
WARD = re.compile(r"\b(admitted|admission|ward|discharge summary|discharge letter|epicrisis|"
                  r"during the stay|summary of stay|on day \d+|day \d+:|thromboprophylaxis|"
                  r"i\.v\.)", re.IGNORECASE)


def _courses(codes: set[str]) -> set[int]:
    """Courses with a true code that is in ``codes`` or whose category is."""
    truth = cohort().truth
    return set(truth.loc[truth["code"].isin(codes) | truth["code"].str[:3].isin(codes),
                         "course_id"])


def _note_types() -> pd.Series:
    return cohort().notes.groupby("course_id")["note_type"].agg(set)


def test_outpatient_courses_have_visits_and_a_letter_not_a_ward_stay():
    courses = cohort().courses
    outpatient = courses.loc[~courses["inpatient"], "course_id"]
    assert len(outpatient) > 500
    ward = {course: WARD.findall(texts()[course]) for course in outpatient}
    assert {course: words for course, words in ward.items() if words} == {}
    types = _note_types()
    seen = set().union(*types[outpatient])
    assert "admission_note" not in seen and {"visit_note", "discharge_summary"} <= seen
    inpatient = courses.loc[courses["inpatient"], "course_id"]
    assert sum(bool(WARD.search(texts()[c])) for c in inpatient) > 0.8 * len(inpatient)


def test_a_postoperative_course_follows_an_operation():
    types = _note_types()
    unoperated = [c for c, text in texts().items()
                  if re.search(r"postoperative|sutures to be removed", text, re.IGNORECASE)
                  and "operation_note" not in types[c]]
    assert len(unoperated) < 0.002 * len(types)  # an operation note left empty is not written


def test_obesity_class_agrees_with_the_bmi_written():
    classes = {"class i obesity": (30, 35), "class ii obesity": (35, 40),
               "class iii obesity": (40, 99), "morbid obesity": (40, 99),
               "severe obesity": (40, 99)}
    checked = wrong = 0
    for text in texts():
        low = text.lower()
        bmis = [float(b) for b in re.findall(r"BMI (\d+\.\d)", text)]
        for form, (low_bmi, high_bmi) in classes.items():
            if bmis and re.search(r"(?<![a-z])" + form, low):
                checked += 1
                wrong += any(not low_bmi <= b < high_bmi for b in bmis)
    assert checked > 30 and wrong == 0


def test_a_specific_fourth_character_is_named_in_the_text():
    conditions = language.conditions()
    truth = cohort().truth
    named = truth[truth["evidence"].isin(NAMED)]
    checked = missing = 0
    for course, code in zip(named["course_id"], named["code"], strict=True):
        forms = conditions.get(code[:3], {}).get("code_forms", {}).get(code)
        if forms:
            checked += 1
            low = texts()[course].lower()
            missing += not any(f.lower() in low for f in [*forms, icd10.title(code)])
    assert checked > 1000 and missing < 0.03 * checked  # the rest: a misspelled sentence
    for code, words in (("G40.6", r"grand mal|tonic-clonic"), ("C18.2", r"ascending"),
                        ("E11.3", r"retinopathy|ophthalmic")):
        rows = named[named["code"] == code]
        assert len(rows) > 3, code
        said = [bool(re.search(words, texts()[c], re.IGNORECASE)) for c in rows["course_id"]]
        assert sum(said) >= 0.95 * len(said), code


def test_specific_codes_of_the_long_tail_are_named_by_their_own_terms():
    assert "subdural" in " ".join(language.derived_code_forms("I62.0"))
    assert not re.search("extradural|epidural", " ".join(language.derived_code_forms("I62.0")))
    assert "extradural" in " ".join(language.derived_code_forms("I62.1"))
    # "NOS" is a qualifier, not the start of "nose"
    assert all("nose" in f for f in language.derived_code_forms("J34.1"))
    primaries = cohort().truth[cohort().truth["is_primary"]].merge(cohort().courses)
    cardiology = primaries[primaries["specialty"] == "cardiology"]["code"].str[:3]
    assert len(cardiology) > 100 and not cardiology.between("I60", "I69").any()


def test_no_drug_that_the_patients_state_forbids():
    meds = cohort().medications.groupby("course_id")["drug"].agg(set)
    kidney = _courses({"N17", "N18.4", "N18.5"})
    failing = kidney | _courses({"I50", "I11.0"})
    assert len(kidney) > 50
    assert not [c for c in kidney if "metformin" in meds.get(c, set())]
    assert not [c for c in failing if "ibuprofen" in meds.get(c, set())]
    assert sum("linagliptin" in meds.get(c, set()) for c in kidney) > 0
    outpatient = cohort().courses.loc[~cohort().courses["inpatient"], "course_id"]
    assert not texts()[outpatient].str.contains("i.v.", regex=False).any()


def test_laboratory_values_agree_with_the_kidney_stage():
    labs = cohort().labs
    egfr = labs[labs["test"] == "eGFR"].set_index("course_id")["value"]
    advanced = egfr[egfr.index.isin(_courses({"N18.4", "N18.5"}))]
    injured = egfr[egfr.index.isin(_courses({"N17"}))]
    assert len(advanced) > 30 and advanced.max() < 30
    assert len(injured) > 30 and injured.max() < 60


def test_prednisolone_is_given_for_a_reason_in_a_usual_dose():
    meds = cohort().medications
    steroid = set(meds.loc[meds["drug"] == "prednisolone", "course_id"])
    assert 0 < len(steroid) < 0.03 * len(cohort().courses)
    reasons = _courses({"J44", "M06"})
    assert steroid <= reasons


def test_one_home_one_gcs_and_no_healthy_patient_with_a_problem_list():
    truth = cohort().truth
    chronic = {c for c, spec in language.conditions().items() if "chronic" in spec}
    known = set(truth.loc[truth["evidence"].isin(("listed", "narrative", "buried")) &
                          truth["code"].str[:3].isin(chronic), "course_id"])
    for course, text in texts().items():
        homes = set(re.findall(r"\b(?:Lives|Living) (alone|with [^.]*?|in a nursing home)"
                               r" in [A-ZÆØÅ]", text))
        assert len(homes) <= 1, (course, homes)
        if "daughter's home" in text:
            assert not re.search(r"\b(Lives|Living) (alone|with (his|her) (wife|husband))", text)
        gcs = set(re.findall(r"\b(?:GCS|Glasgow coma scale) (\d+)", text))
        assert len(gcs) <= 1, (course, gcs)
        assert "Hud:" not in text
        if course in known:
            assert not re.search(r"(otherwise|previously) healthy", text, re.IGNORECASE), course


def test_emg_reports_study_the_nerve_of_the_diagnosis():
    c = cohort()
    primaries = c.truth[c.truth["is_primary"]]
    reports = c.notes[c.notes["note_type"] == "neurophysiology_report"]
    for code, nerve in (("G56.0", "median"), ("G56.2", "ulnar")):
        rows = reports[reports["course_id"].isin(primaries.loc[primaries["code"] == code,
                                                               "course_id"])]
        named = rows["text"].str.findall(r"in the (median|ulnar|radial|peroneal|tibial|sural) "
                                         r"nerve")  # a misspelled name ("meian") is no nerve
        assert len(rows) >= 3 and named.str.len().sum() > 0, code
        assert all(set(found) <= {nerve} for found in named), code


def test_administrative_encounters_fit_the_course():
    primaries = cohort().truth[cohort().truth["is_primary"]].merge(cohort().courses)
    z53 = primaries[primaries["code"].str.startswith("Z53")]
    assert not z53["specialty"].isin(["geriatrics", "internal_medicine", "cardiology"]).any()
    outpatient_only = primaries[primaries["code"].isin(["Z76.0", "Z23.8", "Z09.8"])]
    assert len(outpatient_only) > 5 and not outpatient_only["inpatient"].any()


def test_every_condition_key_is_read_by_the_generator():
    used = {"codes", "chronic", "cluster", "risk", "forms", "abbrev", "typos", "code_forms",
            "bmi_forms", "drugs", "implied", "finding", "labs", "code_labs", "negatable",
            "rule_out", "rule_out_in", "family", "family_age", "past", "past_age",
            "finding_section", "symptom"}
    keys = {k for spec in language.conditions().values() for k in spec}
    assert keys <= used, keys - used


LAB_PANEL = re.compile(r"\b(INR|CRP|albumin|haemoglobin|sodium|potassium|creatinine|ALAT|eGFR|"
                       r"leucocytes|thrombocytes|glucose) \d")


def _neurophysiology_courses() -> set[int]:
    notes = cohort().notes
    return set(notes.loc[notes["note_type"] == "neurophysiology_report", "course_id"])


def test_a_neurophysiology_course_reports_the_study_not_the_ward():
    studied = _neurophysiology_courses()
    assert len(studied) > 50
    neutral = {d[0] for key in ("neutral_drugs", "neutral_drugs_outpatient")
               for d in language.load("population")[key]}
    prescribed = re.compile(r"\b(" + "|".join(sorted(neutral)) + r") \d")  # a drug and its dose
    impression = re.compile(r"^(Conclusion|Summary|Impression): .*\b(known|Known|Has|has)\b",
                            re.MULTILINE)
    wrong = {c for c in studied if LAB_PANEL.search(texts()[c])
             or prescribed.search(texts()[c]) or impression.search(texts()[c])
             or re.search(r"Discharge medication|Prescriptions|Continue ", texts()[c])}
    assert wrong == set()


DISEASE_WORD = re.compile(r"(itis|osis|oma|emia|pathy|ia)$")


@functools.cache
def _specific_forms(code: str) -> frozenset[str]:
    """The names of a specific ``code`` itself: its own forms and its title."""
    found = language.forms_of(code[:3])
    names = {*found["code_forms"].get(code, ()), *language.derived_code_forms(code),
             icd10.title(code)}
    return frozenset(n.lower() for n in names if n)


@functools.cache
def _sibling_forms(code: str) -> frozenset[str]:
    """Names that belong to a specific sibling of ``code`` only (none of its category's
    curated general names)."""
    category = code[:3]
    spec = language.conditions().get(category, {})
    general = {icd10.title(category).lower(), *(f.lower() for f in spec.get("forms", ())),
               *(f.lower() for f in spec.get("abbrev", ()))}
    siblings = set().union(*[_specific_forms(s) for s in full_codes(category)
                             if s != code and language._specific(s)] or [set()])
    return frozenset(f for f in siblings - _specific_forms(code) - general  # a disease's name,
                     if len(f.split()) > 1 or DISEASE_WORD.search(f))  # not "abdomen"


@functools.cache
def _sibling_pattern(code: str) -> tuple[re.Pattern | None, tuple[str, ...]]:
    """A pattern of the sibling-only names of ``code`` and the names of ``code`` (removed from
    the text first: a sibling's name inside one of them is no sibling's name)."""
    siblings = _sibling_forms(code)
    if not siblings:
        return None, ()
    found = language.forms_of(code[:3])
    own = _specific_forms(code) | {f.lower() for f in (*found["forms"], *found["abbrev"],
                                                       icd10.title(code[:3]))
                                   if f.lower() not in siblings}
    pattern = re.compile(r"(?<![a-z])(" + "|".join(re.escape(f) for f in sorted(siblings))
                         + r")(?![a-z])")
    return pattern, tuple(sorted(own, key=len, reverse=True))


def test_a_true_code_is_never_named_by_a_sibling_code():
    truth = cohort().truth
    lowered = {}
    checked, wrong = 0, []
    for course, code in zip(truth["course_id"], truth["code"], strict=True):
        if "." not in code:
            continue
        checked += 1
        pattern, own = _sibling_pattern(code)
        if pattern is None:
            continue
        if course not in lowered:
            lowered[course] = texts()[course].lower()
        low = lowered[course]
        if not pattern.search(low):
            continue
        for name in own:
            low = low.replace(name, " ")
        found = pattern.search(low)
        if found:
            wrong.append((course, code, found.group()))
    assert checked > 5000 and len(wrong) < 0.0005 * checked, wrong[:10]  # a sibling as distractor


def test_antidotes_are_treatment_and_weight_loss_drugs_need_obesity():
    antidotes = [a[0] for a in language.load("population")["antidotes"].values()]
    listed = re.compile(r"(^(Discharge medication|Medication at discharge|Medicines at discharge|"
                        r"Prescriptions|Medication|Current medication): [^\n]*|"
                        r"Continue (?:[^.\n]|\.\d)*)\b(" + "|".join(map(re.escape, antidotes))
                        + r") \d", re.MULTILINE)  # in the list of drugs to go on with
    meds = cohort().medications
    given = set(meds.loc[meds["drug"].isin(antidotes), "course_id"])
    assert len(given) > 10
    assert [c for c in given if listed.search(texts()[c])] == []
    written = sum(any(a in texts()[c] for a in antidotes) for c in given)  # as treatment
    assert written > 0.9 * len(given)  # the rest: a misspelled sentence
    for poisoning, drugs in (("T39.1", {"paracetamol"}), ("T40", {"morphine", "oxycodone"}),
                             ("T42", {"zopiclone", "oxazepam"})):  # no more of the same
        poisoned = _courses({poisoning})
        assert len(poisoned) > 3 and not set(meds.loc[meds["drug"].isin(drugs), "course_id"]) & \
            poisoned, poisoning
    assert not any(re.search(r"\b(Given|Treated with|Received|treatment:) [a-z %0-9]+ "
                             r"(repeated once|then 50|according to)", texts()[c]) for c in given)
    starved = _courses({"E40", "E41", "E42", "E43", "E44", "E45", "E46", "R63.4", "R64"})
    glp1 = set(meds.loc[meds["drug"].isin(["liraglutide", "semaglutide"]), "course_id"])
    assert len(starved) > 3 and glp1 & starved == set()


def test_delirium_superimposed_on_dementia_needs_a_dementia():
    truth = cohort().truth
    demented = _courses({"F00", "F01", "F02", "F03", "G30"})
    on_dementia = set(truth.loc[truth["code"] == "F05.1", "course_id"])
    without = set(truth.loc[truth["code"] == "F05.0", "course_id"])
    assert len(on_dementia) > 5 and on_dementia <= demented
    assert len(without) > 5 and not without & demented


FRAGMENT = re.compile(r"\b(of|with|for|in) (of|with|degree of)\b|\b(burn|corrosion) of degree\b|"
                      r", (part|site|level)[,.]|\b(of|with) ((confirmed|ruled out|excluded|"
                      r"verified|established)[.,;]|was|is)\b|\bsclerosis, multiple\b")


def test_no_garbled_title_fragment_names_a_condition():
    garbled = {c: FRAGMENT.search(text).group() for c, text in texts().items()
               if FRAGMENT.search(text)}
    assert garbled == {}


def test_work_fits_the_age():
    ages = cohort().courses.set_index("course_id")["age"]
    works = re.compile(r"\bWorks as an? [a-zA-Z ]+?(?: for (\d+) years)?\.")
    checked, wrong = 0, []
    for course, text in texts().items():
        age = ages[course]
        for match in works.finditer(text):
            checked += 1
            years = int(match.group(1) or 0)
            if not 16 <= age <= 70 or years > age - 15:
                wrong.append((course, age, match.group()))
        if re.search(r"\bRetired\b", text) and age < 55:
            wrong.append((course, age, "retired"))
    assert checked > 100 and wrong == []


HISTORY_LINE = re.compile(r"^(Medical history|Previous history|Known diseases|Background|PMH|"
                          r"History|Problem list|Problems|Active problems|Issues): (.*)$",
                          re.MULTILINE)
SOCIAL_FACT = re.compile(r"\b(Lives|Living) (alone|with|in)\b|\bWorks as\b|\bRetired\b|"
                         r"\b(Never smoked|Non-smoker|Has never smoked|Former smoker|Ex-smoker|"
                         r"Stopped smoking|No alcohol|Drives|Does not drive)\b|\bSmokes \d|"
                         r"\bSmoking: \d|\bDrinks \d|\bAlcohol (\d|only)|\bHome (care|help) \d|"
                         r"\bHas (no )?children\b")


def test_social_facts_are_not_in_the_past_history():
    social = [(course, m.group(2)) for course, text in texts().items()
              for m in HISTORY_LINE.finditer(text) if SOCIAL_FACT.search(m.group(2))]
    assert social == []
    assert sum(bool(SOCIAL_FACT.search(text)) for text in texts()) > 0.2 * len(texts())


NEVER_SMOKED = re.compile(r"\b(Never smoked|Non-smoker|Has never smoked)\b")
SMOKED = re.compile(r"\b(Former smoker|Ex-smoker|Stopped smoking|Smokes \d|still smoking)\b")


def test_smoking_and_alcohol_are_the_patients_own():
    c = cohort()
    smokers, drinkers, copd = _courses({"F17"}), _courses({"F10"}), _courses({"J44"})
    patient = c.courses.set_index("course_id")["patient_id"]
    never, ever, sober, dependent = set(), set(), set(), set()
    wrong = []
    for course, text in texts().items():
        said_never, said_smoked = bool(NEVER_SMOKED.search(text)), bool(SMOKED.search(text))
        no_alcohol = bool(re.search(r"\b[Nn]o alcohol\b", text))
        if said_never and (said_smoked or course in smokers or course in copd):
            wrong.append((course, "never smoked"))
        if no_alcohol and (course in drinkers or re.search(r"alcohol \d\d units|Drinks", text)):
            wrong.append((course, "no alcohol"))
        (never if said_never else set()).add(patient[course])
        (ever if said_smoked or course in smokers else set()).add(patient[course])
        (sober if no_alcohol else set()).add(patient[course])
        (dependent if course in drinkers else set()).add(patient[course])
    assert len(never) > 200 and len(sober) > 100
    assert wrong == [] and never & ever == set() and sober & dependent == set()


def test_a_triage_line_gives_the_triage_category():
    line = re.compile(r"^(Triage|Triage category|Priority): (.*)$", re.MULTILINE)
    colours = ["red", "orange", "yellow", "green", "blue"]
    lines = [(c, m.group(2)) for c, text in texts().items() for m in line.finditer(text)]
    assert len(lines) > 100
    wrong = [(c, said) for c, said in lines  # the first word a category (or a misspelled one)
             if not difflib.get_close_matches(said.split()[0].strip(".,").lower(), colours,
                                              cutoff=0.6) and not re.match(r"[1-5]\b", said)]
    assert wrong == []


def test_outpatients_have_no_uncertain_primary_infarction_or_sepsis():
    c = cohort()
    outpatient = set(c.courses.loc[~c.courses["inpatient"], "course_id"])
    differential = set(c.distractors.loc[c.distractors["kind"] == "differential", "course_id"])
    inpatient = set(c.courses["course_id"]) - outpatient
    assert len(differential & inpatient) > 50 and not differential & outpatient
    assert len(_courses({"I21", "A41"}) & inpatient) > 20
    assert not _courses({"I21", "I22", "A40", "A41"}) & outpatient


def _needing(need: str) -> set[int]:
    """Courses with a true code in the ranges of ``treatment_needs[need]`` (population.yaml)."""
    ranges = language.load("population")["treatment_needs"][need].split(",")
    return _courses({c for spec in ranges for c in icd10.range_categories(spec)})


def test_routine_treatment_sentences_need_a_condition_that_calls_for_them():
    c = cohort()
    meds = c.medications
    operated = {course for course, types in _note_types().items() if "operation_note" in types}
    icu = set(c.courses.loc[c.courses["specialty"] == "anaesthesiology_and_intensive_care",
                            "course_id"])
    oxygen, infection, pain = _needing("oxygen"), _needing("infection"), _needing("pain")
    cognition, frail = _needing("cognition"), _needing("frail") | icu
    wrong = {"oxygen": [], "antibiotics": [], "memory clinic": [], "walking": [], "opioid": []}
    for course, text in texts().items():
        if re.search(r"\d L oxygen", text) and course not in oxygen:
            wrong["oxygen"].append(course)
        if re.search(r"\b(Antibiotics|IV antibiotics) (stopped|switched|continued)|"
                     r"Infection markers", text) and course not in infection:
            wrong["antibiotics"].append(course)
        if "memory clinic" in text and course not in cognition:
            wrong["memory clinic"].append(course)
        if re.search(r"\b(Walked|Mobilised|Got up) with the (physiotherapist|nurse|walking frame)",
                     text) and course in oxygen | frail:
            wrong["walking"].append(course)
    opioids = set(meds.loc[meds["drug"].isin(["morphine", "oxycodone"]), "course_id"])
    wrong["opioid"] = sorted(opioids - pain - operated - _courses({"F11", "T40"}))
    assert len(opioids) > 100 and len(_needing("oxygen")) > 100
    assert {kind: len(courses) for kind, courses in wrong.items()} == dict.fromkeys(wrong, 0)


def test_a_work_up_rules_out_what_the_specialty_would_suspect():
    conditions = language.conditions()
    distractors = cohort().distractors
    ruled = distractors[distractors["kind"].isin(["ruled_out", "to_exclude"])]
    specialty = cohort().courses.set_index("course_id")["specialty"]
    assert len(ruled) > 300
    pairs = zip(ruled["code"].str[:3], specialty.loc[ruled["course_id"]], strict=True)
    wrong = [(code, name) for code, name in pairs
             if name not in conditions[code].get("rule_out_in", ())]
    assert wrong == []  # no toxicology patient is suspected of appendicitis


def test_fever_needs_an_infection_and_a_low_saturation_a_condition_that_needs_oxygen():
    infected, oxygen = _needing("infection"), _needing("oxygen")
    temperature = re.compile(r"(?<!troponin )\b(?:T|temp|Temp|Temperature|temperature) "
                             r"(\d\d\.\d)")
    saturation = re.compile(r"\b(?:SpO2|sat|saturation) (\d+)%")
    fevers = low = 0
    for course, text in texts().items():
        fever = any(float(t) >= 38.0 for t in temperature.findall(text))
        desaturated = any(int(s) < 94 for s in saturation.findall(text))
        assert not fever or course in infected, (course, "fever without an infection")
        assert not desaturated or course in oxygen, (course, "saturation < 94% without cause")
        fevers += fever
        low += desaturated
    assert fevers > 50 and low > 50  # both still happen where they belong


def test_a_young_child_has_no_school_an_older_one_no_nappies_and_children_doses():
    courses = cohort().courses.set_index("course_id")
    school = re.compile(r"\b(school|homework|grade|the teacher|screen time)\b", re.IGNORECASE)
    nappies = re.compile(r"nappies|breastfed|bottle-fed", re.IGNORECASE)
    young = courses.index[courses["age"] < 6]
    older = courses.index[courses["age"] >= 3]
    assert len(young) > 100
    assert [c for c in young if school.search(texts()[c])] == []
    assert [c for c in older if nappies.search(texts()[c])] == []
    adult_doses = re.compile(r"pantoprazole 40 mg|paracetamol 1 g|ibuprofen 400 mg three|"
                             r"zopiclone 7.5 mg")  # prescribed (an overdose counts tablets)
    children = courses.index[courses["age"] < 12]
    assert [c for c in children if adult_doses.search(texts()[c])] == []


def _ages() -> pd.Series:
    return cohort().courses.set_index("course_id")["age"]


def test_a_hypertension_inferred_from_the_heart_rests_on_a_true_heart_condition():
    """The related-cardiovascular step (a heart drug, I10 inferred) reads the true conditions,
    never a distractor negated in the same course ("without signs of stroke")."""
    truth = cohort().truth
    categories = truth.assign(c=truth["code"].str[:3]).groupby("course_id")["c"].agg(set)
    distractors = cohort().distractors
    related = distractors.loc[distractors["kind"] == "related_cardiovascular", "course_id"]
    assert len(related) > 100
    unfounded = [c for c in related if not categories[c] & {"I48", "I50", "I25", "I63"}]
    assert unfounded == []


FAMILY = re.compile(r"(?:Family history|FH|Heredity|Family): [^.\n]*|(?:Mother|Father|Brother|"
                    r"Sister|Maternal grandmother|Paternal grandfather) (?:has|had) [^.\n]*")
ADULT_DISEASE = {"C18": 40, "C34": 40, "C50": 25, "I21": 30, "I25": 30, "I63": 30, "G30": 50,
                 "I10": 25, "E11": 25}  # the youngest a relative who has it can plausibly be


def test_a_childs_family_history_names_relatives_old_enough_for_the_disease():
    """A small child's brother has no bronchial carcinoma, and a parent of a child had nothing
    "in old age" or at an age the parent cannot have reached."""
    ages, distractors = _ages(), cohort().distractors
    family = distractors[distractors["kind"] == "family_history"]
    checked = wrong = 0
    for course, code in zip(family["course_id"], family["code"], strict=True):
        age = ages[course]
        if age >= 18:
            continue
        for sentence in FAMILY.findall(texts()[course]):
            checked += 1
            low = sentence.lower()
            sibling = re.search(r"\b(brother|sister)\b", low)
            grand = "grand" in low
            said = [int(a) for a in re.findall(r"\bat (\d\d)\b", low)]
            oldest = age + (12 if sibling else 80 if grand else 50)
            wrong += bool(sibling and ADULT_DISEASE.get(code[:3], 0) > oldest
                          or any(a > oldest for a in said)
                          or ("old age" in low and not grand))
    assert checked > 50 and wrong == 0


PAST_AGE = {"S72": 40, "L89": 30, "C50": 25, "I21": 30, "I63": 20, "I26": 15, "K80": 12,
            "F32": 10}  # a previous hip fracture, pressure ulcer, ...: the youngest plausible


def test_a_past_history_fits_the_patients_age_and_falls_after_birth():
    ages, distractors = _ages(), cohort().distractors
    past = distractors[distractors["kind"] == "past_history"]
    too_young = [(c, code) for c, code in zip(past["course_id"], past["code"], strict=True)
                 if ages[c] < PAST_AGE.get(code[:3], 0)]
    courses = cohort().courses.set_index("course_id")
    born = pd.to_datetime(courses["start_date"]).dt.year - courses["age"] - 1
    unborn = [(c, y) for c in set(past["course_id"])
              for y in re.findall(r"(?:Previous|Prior|Former|Had|History of) [^.,\n]+? in "
                                  r"(\d{4})", texts()[c]) if int(y) <= born[c]]
    assert len(past) > 500 and too_young == [] and unborn == []


ADULT_ONLY = re.compile(r"E1[0-4]\.[2-8]|C(?:0\d|1\d|2[013-6]|3\d|61|67|90)|H34|K57|K70|M48|"
                        r"L89")  # diabetic complications, carcinomas, degenerative disease


def test_no_diabetic_complication_or_adult_only_condition_in_a_young_child():
    truth = cohort().truth
    young = truth[truth["course_id"].map(_ages()) < 12]
    assert len(young) > 300
    assert sorted(young.loc[young["code"].str.match(ADULT_ONLY), "code"]) == []


def test_no_small_child_comes_to_hospital_alone():
    ages = _ages()
    alone = [c for c, text in texts().items() if ages[c] < 15 and re.search(
        r"(?:by (?:ambulance|own transport|taxi)|outpatient clinic)[^.\n]* alone\.", text)]
    assert alone == []


def _notes_in_order() -> dict[int, list[tuple[str, str]]]:
    notes = cohort().notes
    out: dict[int, list[tuple[str, str]]] = {}
    for course, note_type, text in zip(notes["course_id"], notes["note_type"], notes["text"],
                                       strict=True):
        out.setdefault(course, []).append((note_type, text))
    return out


LEAVES = re.compile(r"\b(?:discharg|goes home|went home|sent home)", re.IGNORECASE)
POSTOPERATIVE = re.compile(r"postoperative|sutures to be removed|weight-bearing", re.IGNORECASE)


def test_a_note_tells_only_what_has_happened_by_its_day():
    """The notes of a course are its days in order (the k-th note is day k): no "on day 4" in
    the note of day 2, no culture "without growth after 6 days" before six days have passed,
    no "goes home in the afternoon" before the last note, no sutures before the operation."""
    late = leaves = early_surgery = 0
    for notes in _notes_in_order().values():
        operated = next((k for k, (t, _) in enumerate(notes) if t == "operation_note"), None)
        for k, (_, text) in enumerate(notes, start=1):
            body = text.split("\n", 1)[1] if "\n" in text else ""
            late += sum(int(n) > k for n in re.findall(r"\b[Oo]n day (\d+)", body))
            late += sum(int(n) >= k for n in re.findall(r"without growth after (\d+) days", body))
            late += sum(int(n) != k for n in re.findall(r"^Day (\d+):", body, re.MULTILINE))
            leaves += k < len(notes) and bool(LEAVES.search(body))
            early_surgery += operated is not None and k - 1 < operated and bool(
                POSTOPERATIVE.search(body))
    assert (late, leaves, early_surgery) == (0, 0, 0)


def _abrupt() -> set[str]:
    return set(icd10.range_categories(language.load("population")["abrupt_onset"]))


def test_an_abrupt_illness_began_hours_or_a_day_or_two_before():
    """An infarction, a stroke, sepsis or an injury did not start a week ago."""
    abrupt = _abrupt()
    assert {"I21", "I63", "A41", "S72"} <= abrupt
    primary = cohort().truth.query("is_primary").set_index("course_id")["code"].str[:3]
    onsets = re.compile(r"(?:symptoms started|after) (\d+) days(?: ago| of symptoms)")
    checked = long_ago = 0
    for course, text in texts().items():
        if primary.get(course) in abrupt:
            days = [int(n) for n in onsets.findall(text)]
            checked += 1
            long_ago += any(n > 2 for n in days)
    assert checked > 500 and long_ago == 0


def test_a_clinic_visit_rules_out_no_emergency():
    """Outside the emergency department an outpatient course plans no serial troponins for an
    infarction nor a CT angiography for a pulmonary embolism."""
    courses = cohort().courses
    types = _note_types()
    emergency = {name for name, spec in language.load("specialties")["specialties"].items()
                 if spec.get("style") == "triage"}
    clinic = set(courses.loc[~courses["inpatient"] & ~courses["specialty"].isin(emergency),
                             "course_id"]) - {c for c in types.index if "triage_note" in types[c]}
    distractors = cohort().distractors
    ruled = distractors[distractors["kind"].isin(["ruled_out", "to_exclude"])
                        & distractors["course_id"].isin(clinic)]
    emergencies = ruled[ruled["code"].str[:3].isin(["I21", "I26", "I63", "K35"])]
    tests = [c for c in clinic if re.search(r"serial troponins|CT pulmonary angiography",
                                            texts()[c])]
    assert len(clinic) > 500 and (len(emergencies), len(tests)) == (0, 0)


def test_glucose_and_oedema_follow_the_conditions():
    """A triage blood glucose outside 3.9-7.8 mmol/L needs a condition that moves it (a
    5-year-old with chest pain read 9.2), and oedema on examination a condition that causes it
    (heart failure, kidney or liver disease, ...; a 7-year-old had pitting oedema)."""
    high, low, oedema = _needing("hyperglycaemia"), _needing("hypoglycaemia"), _needing("oedema")
    glucose = re.compile(r"\b(?:Blood glucose|BS) (\d+\.\d) mmol/L")
    swollen = re.compile(r"\b(?:Mild|Slight|Moderate) (?:ankle|pitting|peripheral) oede",
                         re.IGNORECASE)
    measured = unexplained = oedemas = unfounded = 0
    for course, text in texts().items():
        for value in (float(v) for v in glucose.findall(text)):
            measured += 1
            unexplained += (value > 7.8 and course not in high) or (value < 3.9
                                                                    and course not in low)
        if swollen.search(text):
            oedemas += 1
            unfounded += course not in oedema
    assert measured > 300 and oedemas > 30 and (unexplained, unfounded) == (0, 0)


REASON = re.compile(r"^(?:Reason for admission|Reason for referral|Cause of contact|Presenting "
                    r"complaint|Admission reason|Referral): (.*)$", re.MULTILINE)


def test_no_reason_for_contact_is_an_icd_title_verbatim():
    """The reason for contact names the primary in clinical words, never its WHO title
    ("Admission for abnormal findings on diagnostic imaging of central nervous system");
    titles of one or two words ("inguinal hernia") are the clinical words too."""
    primary = cohort().truth.query("is_primary").set_index("course_id")["code"]
    checked, verbatim = 0, []
    for course, text in texts().items():
        code = primary[course]
        titled = [t.lower() for t in (icd10.title(code), *language.titles(code[:3]))
                  if t and len(t.split()) >= 3]
        for line in REASON.findall(text):
            checked += 1
            low = line.lower()
            verbatim += [(code, t) for t in titled if re.search(
                r"(?<![\w-])" + re.escape(t) + r"(?![\w-])", low)]
    assert checked > 3000 and verbatim == []


STOPPED = re.compile(r"\b(?:Former smoker|Ex-smoker), stopped in (\d{4}); (\d+) pack-years\.")
STILL = re.compile(r"\bSmoking: (\d+) pack-years, still smoking\.")


def test_pack_years_fit_the_years_smoked():
    """At most two packs a day from age 12: a man of 76 who stopped at 20 cannot have 13
    pack-years, nor a smoker of 30 have 45."""
    courses = cohort().courses.set_index("course_id")
    born = pd.to_datetime(courses["start_date"]).dt.year - courses["age"] - 1  # the earliest
    checked, wrong = 0, []
    for course, text in texts().items():
        for match in STOPPED.finditer(text):
            checked += 1
            years = int(match.group(1)) - born[course] - 12
            if int(match.group(2)) > 2 * max(years + 1, 1):
                wrong.append((course, courses.at[course, "age"], match.group()))
        for match in STILL.finditer(text):
            checked += 1
            if int(match.group(1)) > 2 * max(courses.at[course, "age"] - 12, 1):
                wrong.append((course, courses.at[course, "age"], match.group()))
    assert checked > 100 and wrong == []


def test_cultures_are_taken_for_an_infection_on_a_ward():
    """No blood or urine culture in a clinic letter, nor in a course without an infection
    (an outpatient cardiology letter read "Blood cultures pending")."""
    infected = _needing("infection")
    inpatient = cohort().courses.set_index("course_id")["inpatient"]
    culture = re.compile(r"\b(Blood cultures|Urine culture) (negative|pending|without growth)")
    cultured = [course for course, text in texts().items() if culture.search(text)]
    wrong = [course for course in cultured if not inpatient[course] or course not in infected]
    assert len(cultured) > 50 and wrong == []


def test_one_year_is_singular():
    plural = [course for course, text in texts().items()
              if re.search(r"(?<![\d.,])1 years\b", text)]
    assert plural == []


ADULT_ACCIDENT = re.compile(r"for a toothache|for back pain|by mistake while confused|injected "
                            r"the long-acting insulin")
INTENT_ASKED = re.compile(r"denies any intent|no suicidal intent|(denies|rejects) (any )?"
                          r"(suicide attempt|intent to die|self-harm)|intent (unclear|not stated)")


def test_a_childs_poisoning_is_a_childs_accident():
    """A child under 12 finds a medicine at home; under 10 nobody asks about intent (a 4-year-old
    "took too many paracetamol tablets for a toothache, about 43 over two days")."""
    ages = cohort().courses.set_index("course_id")["age"]
    poisoned = _courses({f"T{n}" for n in range(36, 66)})
    children = [course for course in poisoned if ages[course] < 12]
    text = texts()
    wrong = [(course, ages[course]) for course in children
             if ADULT_ACCIDENT.search(text[course])
             or (ages[course] < 10 and INTENT_ASKED.search(text[course]))]
    assert len(children) > 5 and wrong == []
