"""medcoding.analysis.documentation: unspecified diabetes and low-confidence heart failure."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import documentation
from medcoding.analysis.inputs import from_frames

LABELS = ["E10", "E11", "E14", "I50"]


@pytest.mark.parametrize(("text", "specific", "generic"), [
    ("Type 2 diabetes. Diabetes controlled; DM follow-up, diabetic foot check.", 1, 3),
    ("Known T2DM on metformin.", 1, 0),
    ("diabetes mellitus type 1 since childhood; diabetes nurse", 1, 1),
    ("NIDDM, IDDM", 2, 0),
    ("non-insulin-dependent diabetes; insulin-dependent diabetes. Diabetes nurse.", 2, 1),
    ("diabetes, diabetes and more diabetes", 0, 3),
    ("", 0, 0),
])
def test_diabetes_mentions(text, specific, generic):
    assert documentation.diabetes_mentions(text) == {"specific": specific, "generic": generic}


def test_heart_failure_mentions_split_negations():
    text = "No signs of heart failure. Known CHF, LVEF 30%. Echo: EF low. Denies HF symptoms."
    counts = documentation.count_mentions(documentation.HEART_FAILURE, text)
    assert counts == {"affirmed": 1, "negated": 2}
    assert len(documentation.EJECTION_FRACTION.findall(text)) == 2


def make_inputs():
    split = pd.DataFrame({
        "course_id": ["c0", "c1", "c2", "c3", "c4"],
        "specialty": ["endo", "endo", "cardio", "cardio", "cardio"],
        "department": ["e1", "e1", "k1", "k1", "k1"],
        "text": ["type 2 diabetes ... diabetes ... diabetes", "diabetes",
                 "heart failure, EF 25%", "cardiology clinic", "no heart failure"],
        "codes_l3": [["E14"], ["E14"], ["I50"], ["I50"], ["I50"]],
        "primary_l3": ["E14", "E14", "I50", "I50", "I50"],
        "true_l3": [["E11"], ["E14"], ["I50"], [], ["I50"]],
        "true_full": [["E11.9"], ["E14.9"], ["I50.0"], [], ["I50.1"]],
        "true_evidence": [["buried"], ["listed"], ["listed"], [], ["drug"]],
        "true_primary_full": ["E11.9", "E14.9", "I50.0", None, "I50.1"],
    })
    scores = np.array([[0.05, 0.4, 0.05, 0.0],
                       [0.0, 0.2, 0.3, 0.0],
                       [0.0, 0.0, 0.0, 0.9],
                       [0.0, 0.0, 0.0, 0.1],
                       [0.0, 0.0, 0.0, 0.15]], dtype=np.float32)  # [courses, labels]
    return from_frames(split, scores, LABELS)


def test_unspecified_diabetes_cases_and_summary():
    cases = documentation.unspecified_diabetes(make_inputs())
    assert cases["course_id"].tolist() == ["c0", "c1"]
    assert cases["prefers_specific"].tolist() == [True, False]
    assert cases["specific_score"].tolist() == pytest.approx([0.4, 0.2])
    assert cases["mentions_specific"].tolist() == [1, 0]
    assert cases["mentions_generic"].tolist() == [2, 1]
    assert cases["true_specific"].tolist() == [True, False]
    assert cases["evidence"].tolist() == ["buried", "none"]
    summary = documentation.diabetes_summary(cases).set_index("group")
    assert summary.loc["prefers specific", "share"] == 0.5
    assert summary.loc["prefers specific", "buried_share"] == 1.0
    assert summary.loc["all", "specific_above_share"] == 0.5  # c0: 0.4 > 0.05; c1: 0.2 < 0.3
    assert summary.loc["other", "specific_above_share"] == 0.0
    assert summary.loc["all", "median_specific_score"] == pytest.approx(0.3)
    assert summary.loc["all", "median_unspecified_score"] == pytest.approx(0.175)
    assert summary.loc["other", "true_specific_share"] == 0.0


def test_low_confidence_heart_failure():
    cases = documentation.low_confidence_coded(make_inputs(), "I50", max_score=0.2)
    assert cases["course_id"].tolist() == ["c2", "c3", "c4"]
    assert cases["low_confidence"].tolist() == [False, True, True]
    assert cases["mentions"].tolist() == [1, 0, 0]
    assert cases["negated_mentions"].tolist() == [0, 0, 1]
    assert cases["ef_mentions"].tolist() == [1, 0, 0]
    assert cases["evidence"].tolist() == ["listed", "absent", "drug"]
    summary = documentation.low_confidence_summary(cases).set_index("group")
    assert summary.loc["low", "cases"] == 2
    assert summary.loc["low", "share"] == pytest.approx(2 / 3)
    assert summary.loc["low", "absent_share"] == 0.5
    assert summary.loc["high", "mention_share"] == 1.0


def test_no_cases_give_empty_summaries():
    inputs = make_inputs()
    cases = documentation.unspecified_diabetes(inputs, unspecified="E13")
    assert cases.empty
    summary = documentation.diabetes_summary(cases)
    assert summary["cases"].tolist() == [0, 0, 0] and summary["share"].isna().all()
