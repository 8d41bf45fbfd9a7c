"""The human coder misses codes for reasons: prominence, reimbursement, length, pressure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from synthetic_fixture import cohort

from medcoding.cohort import contract
from medcoding.cohort.synthetic.coder import make_typo


def _coding() -> pd.DataFrame:
    c = cohort()
    coding = c.coding.merge(c.truth[["course_id", "code", "is_primary", "evidence"]],
                            how="left", on=["course_id", "code"])
    coded_courses = set(c.codes["course_id"])
    return coding[coding["course_id"].isin(coded_courses)]


def test_coding_table_covers_truth_and_human_codes_once():
    c = cohort()
    keys = set(zip(c.coding["course_id"], c.coding["code"], strict=True))
    assert len(keys) == len(c.coding)
    assert keys == set(zip(c.truth["course_id"], c.truth["code"], strict=True)) | set(
        zip(c.codes["course_id"], c.codes["code"], strict=True))
    assert set(c.coding["reason"]) <= set(contract.CODING_REASONS)
    truth_keys = set(zip(c.truth["course_id"], c.truth["code"], strict=True))
    assert all(((a, b) in truth_keys) == t for a, b, t in
               zip(c.coding["course_id"], c.coding["code"], c.coding["truly_present"],
                   strict=True))
    human_keys = set(zip(c.codes["course_id"], c.codes["code"], strict=True))
    assert all(((a, b) in human_keys) == h for a, b, h in
               zip(c.coding["course_id"], c.coding["code"], c.coding["human_coded"],
                   strict=True))


def test_coded_share_falls_with_prominence():
    coding = _coding()
    secondary = coding[coding["truly_present"] & (coding["is_primary"] == False)]  # noqa: E712
    share = secondary.groupby("evidence")["human_coded"].mean()
    assert coding.loc[coding["is_primary"] == True, "human_coded"].mean() > 0.95  # noqa: E712
    assert share["listed"] > share["narrative"] > share["drug"]
    assert share["listed"] > 0.5 and share["drug"] < 0.3
    assert share["undocumented"] < 0.15  # only carried over from an earlier course
    implied = secondary["evidence"].isin(contract.EVIDENCE_IMPLIED)
    named = secondary["evidence"].isin(contract.EVIDENCE_NAMED)
    ratio = secondary.loc[implied, "human_coded"].mean() / secondary.loc[named,
                                                                         "human_coded"].mean()
    assert ratio < 0.5


def test_chapter_xx_and_low_priority_ranges_are_coded_well_under_half():
    coding = _coding()
    secondary = coding[coding["truly_present"] & (coding["is_primary"] == False)]  # noqa: E712
    category = secondary["code"].str[:3]
    x = secondary[category.between("X60", "X84")]["human_coded"].mean()
    obesity = secondary[category == "E66"]["human_coded"].mean()
    hypertension = secondary[category.between("I10", "I15")]["human_coded"].mean()
    heart_failure = secondary[category == "I50"]["human_coded"].mean()
    assert x < 0.45 and obesity < 0.45 and hypertension < 0.45
    assert heart_failure > obesity + 0.1


def test_every_miss_and_error_has_its_reason():
    coding = _coding()
    reasons = coding["reason"].value_counts()
    for reason in ("missed_narrative_only", "missed_implied_only", "missed_low_priority",
                   "missed_undocumented", "carried_over", "negated_mention",
                   "historical_mention", "unspecified_for_buried", "replaced_by_unspecified",
                   "sibling_code", "inferred_from_related"):
        assert reasons.get(reason, 0) > 0, reason
    wrong = coding[coding["human_coded"] & ~coding["truly_present"]]
    assert wrong["reason"].isin([r for r, text in contract.CODING_REASONS.items()
                                 if text.startswith("not true")]).all()
    missed = coding[~coding["human_coded"] & coding["truly_present"]]
    assert (~missed["reason"].str.startswith("coded_")).all()
    e14 = coding[coding["reason"] == "unspecified_for_buried"]
    assert (e14["code"] == "E14.9").all()


def test_carried_over_codes_were_coded_in_the_previous_course():
    c = cohort()
    courses = c.courses.sort_values(["patient_id", "course_id"])
    previous = dict(zip(courses["course_id"], courses.groupby("patient_id")["course_id"].shift(),
                        strict=True))
    human = c.codes.groupby("course_id")["code"].agg(set)
    carried = c.coding[c.coding["reason"].isin(["carried_over", "carried_over_resolved"])]
    assert len(carried) > 20
    hits = [code in human.get(previous[course], set()) or
            any(code[:3] == h[:3] for h in human.get(previous[course], set()))
            for course, code in zip(carried["course_id"], carried["code"], strict=True)
            if not np.isnan(previous[course])]
    assert np.mean(hits) > 0.6  # the coder copies from the last coded course with codes


def test_typos_are_invalid_codes():
    from medcoding import icd10

    for code in ("E66.9", "I10", "J18.1", "X60.0"):
        assert not icd10.is_valid(make_typo(code))
