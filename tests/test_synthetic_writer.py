"""The record: evidence means what it says, distractors have scope, specialties differ."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from synthetic_fixture import cohort, texts

from medcoding.cohort import contract
from medcoding.cohort.synthetic import language


def _named(category: str, text: str) -> bool:
    phrases = language.surface_forms([category])[category]
    low = text.lower()
    return any(re.search(r"(?<![a-z0-9])" + re.escape(p) + r"(?![a-z0-9])", low)
               for p in phrases if len(p) > 2)


def _rows(evidence: str, categories: tuple[str, ...], limit: int = 150) -> pd.DataFrame:
    truth = cohort().truth
    rows = truth[(truth["evidence"] == evidence) & truth["code"].str[:3].isin(categories)]
    return rows.head(limit)


def test_evidence_levels_are_the_contract_vocabulary():
    kinds = set(cohort().truth["evidence"])
    assert kinds <= set(contract.EVIDENCE_LEVELS)
    assert {"primary", "listed", "narrative", "buried", "drug", "finding", "undocumented"} <= kinds


def test_drug_only_conditions_are_not_named_but_their_drug_is_given():
    rows = _rows("drug", ("I10", "E11"))
    meds = cohort().medications.groupby("course_id")["drug"].agg(set)
    assert len(rows) > 40
    named = np.mean([_named(code[:3], texts()[course]) for course, code in
                     zip(rows["course_id"], rows["code"], strict=True)])
    assert named < 0.1  # only a misspelled mention or another note could name it
    drugs = {"I10": {"amlodipine", "losartan", "bendroflumethiazide", "ramipril"},
             "E11": {"metformin", "linagliptin"}}  # linagliptin where the kidneys forbid metformin
    assert all(meds[course] & drugs[code[:3]] for course, code in
               zip(rows["course_id"], rows["code"], strict=True))


def test_undocumented_conditions_leave_no_trace_named_ones_are_there():
    undocumented = _rows("undocumented", ("I10", "E11", "I50", "N18", "J44", "E78"))
    listed = _rows("listed", ("I10", "E11", "I50", "N18", "J44", "E78"))
    share = {name: np.mean([_named(code[:3], texts()[course]) for course, code in
                            zip(rows["course_id"], rows["code"], strict=True)])
             for name, rows in (("undocumented", undocumented), ("listed", listed))}
    assert share["undocumented"] < 0.1 and share["listed"] > 0.85


def test_buried_diabetes_sits_in_a_long_course_among_generic_mentions():
    rows = _rows("buried", ("E10", "E11"))
    assert len(rows) > 15
    lengths = []
    for course in rows["course_id"]:
        text = texts()[course]
        lengths.append(len(text))
        assert len(text) > 1500
        assert len(re.findall(r"\bdiabet", text, re.IGNORECASE)) >= 3
    assert np.median(lengths) > 1.6 * texts().str.len().median()


def test_obesity_by_finding_shows_a_bmi_over_30_and_no_other_bmi_does():
    truth = cohort().truth
    obese = set(truth.loc[truth["code"].str.startswith("E66") &
                          (truth["evidence"] != "undocumented"), "course_id"])
    found = {course: [float(b) for b in re.findall(r"BMI (\d+\.\d)", text)]
             for course, text in texts().items()}
    lean = [b for course, bmis in found.items() if course not in obese for b in bmis]
    heavy = [b for course, bmis in found.items() if course in obese for b in bmis]
    assert len(lean) > 300 and max(lean) < 30
    assert len(heavy) > 100 and min(heavy) >= 30


def test_distractors_are_absent_and_written_with_scope():
    c = cohort()
    kinds = set(c.distractors["kind"])
    assert kinds <= set(contract.DISTRACTOR_KINDS)
    assert {"negated", "family_history", "past_history", "previous_attempt", "denied_attempt",
            "ambiguous_overdose", "related_cardiovascular", "differential"} <= kinds
    truth = set(zip(c.truth["course_id"], c.truth["code"].str[:3], strict=True))
    clash = [(a, b[:3]) in truth for a, b in zip(c.distractors["course_id"],
                                                 c.distractors["code"], strict=True)]
    assert not any(clash)
    lists = sum(bool(re.search(r"\bNo (signs|clinical signs|evidence) of [^.]* or ", t))
                for t in texts())
    assert lists > 100  # negation scoped over a list


def test_years_fall_between_birth_and_the_course():
    c = cohort()
    courses = c.courses.set_index("course_id")
    year = pd.to_datetime(courses["start_date"]).dt.year
    bad = total = 0
    for course, text in texts().items():
        for match in re.findall(r"\b(?:in|since) ((?:19|20)\d\d)\b", text):
            total += 1
            bad += not (year[course] - courses.loc[course, "age"] - 1 <= int(match)
                        <= year[course])
    assert total > 500 and bad == 0


def test_specialties_write_their_own_note_types_and_lengths():
    c = cohort()
    notes = c.notes.merge(c.courses[["course_id", "specialty"]])
    types = notes.groupby("specialty")["note_type"].agg(set)
    assert "neurophysiology_report" in types["clinical_neurophysiology"]
    assert "operation_note" in types["orthopaedic_surgery"]
    assert "triage_note" in types["emergency_medicine"]
    length = texts().groupby(c.courses.set_index("course_id")["specialty"]).apply(
        lambda s: s.str.len().median())
    assert length["child_and_adolescent_psychiatry"] > 2 * length["clinical_neurophysiology"]
    parental = texts()[c.courses.loc[c.courses["specialty"] ==
                                     "child_and_adolescent_psychiatry", "course_id"]]
    assert parental.str.contains("parents|mother|father", case=False).mean() > 0.8


def test_school_grades_follow_the_childs_age():
    courses = cohort().courses.set_index("course_id")
    grades = language.load("language")["values"]["grade"]
    pattern = re.compile(r"\b(" + "|".join(grades) + r") grade\b")
    seen = []
    for course, text in texts().items():
        for match in pattern.finditer(text):
            age = int(courses.loc[course, "age"])
            seen.append((age, grades.index(match.group(1))))
    assert len(seen) > 5
    assert all(index == max(0, min(len(grades) - 1, age - 7)) for age, index in seen), seen
    psychiatry = courses[courses["specialty"] == "child_and_adolescent_psychiatry"]
    assert len(psychiatry) > 0 and psychiatry["age"].between(5, 17).all()


# ---------------------------------------------------------------- what a clinician reading notices
def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.?])\s+|\n", text)


def _course_facts() -> pd.DataFrame:
    c = cohort()
    courses = c.courses.set_index("course_id")
    courses["year"] = pd.to_datetime(courses["start_date"]).dt.year
    return courses


def test_current_conditions_are_not_written_as_history():
    c = cohort()
    past = set(c.distractors.loc[c.distractors["kind"].isin(
        ["past_history", "previous_attempt"]), "course_id"])
    allowed = re.compile(r"\b(no|family) history of\b|history of present illness", re.I)
    wrong = [s for course, text in texts().items() if course not in past
             for s in _sentences(text) if "history of" in s.lower() and not allowed.search(s)]
    assert not wrong, wrong[:5]


def test_a_test_negates_only_what_it_looks_for():
    from medcoding.cohort.synthetic.config import SyntheticConfig
    from medcoding.cohort.synthetic.population import catalogue

    conditions = catalogue(SyntheticConfig()).conditions
    tests = {t.lower(): [c for c, s in conditions.items() if t in s.get("rule_out", [])]
             for s in conditions.values() for t in s.get("rule_out", [])}
    pattern = re.compile(r"(" + "|".join(re.escape(t) for t in tests) +
                         r")(?: without (?:signs of )?|: no (?:evidence|signs) of )([^.]+)\.", re.I)
    seen = 0
    for text in texts():
        for test, named in pattern.findall(text):
            seen += 1
            others = [c for c in conditions if c not in tests[test.lower()]]
            assert not any(_named(c, named) for c in others), (test, named)
    assert seen > 20


def test_routine_sentences_stay_in_their_sections():
    headers = language.load("language")["sections"]
    medication = tuple(headers["medication"] + headers["medication_prior"])
    exam = re.compile(r"\b(Neurologically|Neuro|GCS|Lungs|Pulm|Abdomen|Abd|Heart|Cor)\b:?")
    lines = [line for text in texts() for line in text.split("\n")
             if line.startswith(tuple(f"{h}: " for h in medication))]
    assert len(lines) > 500
    assert not [line for line in lines if exam.search(line)][:5]
    ophthalmology = texts()[cohort().courses.loc[
        cohort().courses["specialty"] == "ophthalmology", "course_id"]]
    assert len(ophthalmology) > 20
    assert not ophthalmology.str.contains(
        r"incision|weight-bearing|laparoscop|\bdrain\b|lithotomy", case=False).any()


def test_partner_words_follow_the_patients_sex():
    courses = _course_facts()
    for sex, wrong in (("M", r"\b(?:husband|boyfriend)\b"), ("F", r"\b(?:wife|girlfriend)\b")):
        ids = courses.index[courses["sex"] == sex]
        found = texts()[texts().index.isin(ids)].str.contains(wrong, case=False)
        assert found.sum() == 0, texts()[found[found].index].head(2).tolist()
    men = texts()[texts().index.isin(courses.index[courses["sex"] == "M"])]
    assert men.str.contains(r"\bwife\b").sum() > 20


def test_onset_years_only_for_chronic_conditions_and_past_events_at_a_possible_age():
    from medcoding.cohort.synthetic.config import SyntheticConfig
    from medcoding.cohort.synthetic.population import catalogue

    chronic = catalogue(SyntheticConfig()).chronic_set
    truth = cohort().truth
    acute = truth[~truth["is_primary"] & ~truth["code"].str[:3].isin(chronic)]
    acute = acute.groupby("course_id")["code"].agg(lambda s: {c[:3] for c in s})
    courses = _course_facts()
    since = 0
    for course, text in texts().items():
        birth = courses.loc[course, "year"] - courses.loc[course, "age"]
        for sentence in _sentences(text):
            if re.search(r"\bsince (19|20)\d\d\b", sentence):
                since += 1
                assert not any(_named(c, sentence) for c in acute.get(course, ())), sentence
            for year in re.findall(r"(?:attempts?|self-harm) in ((?:19|20)\d\d)", sentence):
                assert int(year) - birth >= 9, (sentence, courses.loc[course, "age"])
            for ago in re.findall(r"(?:attempts?|self-harm) (\d+) years ago", sentence):
                assert courses.loc[course, "age"] - int(ago) >= 10, sentence
            for year in re.findall(r"gastric bypass in ((?:19|20)\d\d)", sentence):
                assert int(year) - birth >= 17, sentence
    assert since > 50


def test_neurophysiology_reports_are_named_after_the_study_the_diagnosis_needs():
    c = cohort()
    reports = c.notes[c.notes["note_type"] == "neurophysiology_report"].merge(
        c.truth[c.truth["is_primary"]][["course_id", "code"]])
    assert len(reports) > 20
    eeg = reports["text"].str.contains(r"\bEEG\b|Electroencephalography")
    epilepsy = reports["code"].str[:3].isin(["G40", "G41"])
    assert eeg[epilepsy].all() and not eeg[reports["code"].str[:3].isin(["G56", "G62"])].any()
    assert not reports.loc[eeg, "text"].str.contains("nerve conduction", case=False).any()


def test_every_note_has_something_under_its_heading():
    """A heading alone (an operation note whose sentences all went elsewhere) is not a note."""
    notes = cohort().notes
    assert len(notes) > 1000
    bare = notes[~notes["text"].str.contains("\n")]
    assert bare.empty, bare[["note_type", "text"]].head().to_dict("records")
