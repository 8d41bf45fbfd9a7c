"""medcoding.analysis.mechanisms and the readings of the specialty chapter: every branch."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from medcoding.analysis import mechanisms, specialty


def gap(coded_hits, coded, uncoded_hits, uncoded):
    rows = ([{"role": "secondary", "coded": True, "in_top_k": i < coded_hits}
             for i in range(coded)]
            + [{"role": "secondary", "coded": False, "in_top_k": i < uncoded_hits}
               for i in range(uncoded)])
    return mechanisms.coded_gap(pd.DataFrame(rows, columns=["role", "coded", "in_top_k"]))


def test_coded_gap_and_its_reading_in_each_direction():
    higher = gap(90, 100, 50, 100)
    assert (higher["true"], higher["coded_share"]) == (200, 0.5)
    assert higher["difference"] == pytest.approx(0.4) and higher["low"] > 0
    assert "It ranks the coded ones higher (difference 40.0 points" in mechanisms.gap_reading(
        higher, 10)
    lower = gap(20, 100, 80, 100)
    assert "It ranks the uncoded ones higher" in mechanisms.gap_reading(lower, 10)
    same = gap(5, 10, 5, 10)
    assert "The data cannot tell whether it ranks" in mechanisms.gap_reading(same, 10)
    empty = gap(0, 0, 0, 0)
    assert mechanisms.gap_reading(empty, 10) == "The test split holds no true secondary code."
    assert math.isnan(mechanisms.newcombe_difference(0, 0, 1, 2)[0])


def test_newcombe_interval_reference_values():
    # Newcombe (1998), method 10, example (a): 56/70 vs 48/80 -> 0.2000 (0.0524 to 0.3338)
    difference, low, high = mechanisms.newcombe_difference(56, 70, 48, 80)
    assert (difference, low, high) == pytest.approx((0.2, 0.0524, 0.3338), abs=5e-4)


def test_spread_reading_for_no_one_and_several_specialties():
    empty = pd.DataFrame(columns=["specialty", "departments", "courses", "median_f1"])
    assert specialty.spread_reading(empty, 100).startswith("No department has 100 or more")
    one = pd.DataFrame({"specialty": ["cardiology"], "departments": [2], "courses": [300],
                        "median_f1": [0.7], "min_f1": [0.6], "max_f1": [0.8]})
    assert "Only one specialty (cardiology)" in specialty.spread_reading(one, 100)
    several = pd.DataFrame({"specialty": ["clinical_neurophysiology", "urology"],
                            "departments": [1, 1], "courses": [200, 200],
                            "median_f1": [0.8, 0.6], "min_f1": [0.8, 0.6],
                            "max_f1": [0.8, 0.6]})
    text = specialty.spread_reading(several, 100)
    assert "ranges from 60% (urology) to 80% (clinical_neurophysiology)" in text
    assert "Clinical neurophysiology ranks 1 of 2." in text


def test_true_codes_join_the_coder_reason_and_the_model_rank():
    import numpy as np

    from medcoding.analysis.inputs import from_frames

    split = pd.DataFrame({
        "course_id": ["a", "b"], "patient_id": ["p", "q"], "specialty": ["s", "s"],
        "department": ["d", "d"], "text": ["x", "y"],
        "codes_l3": [["E11"], ["I50", "E14"]], "primary_l3": ["E11", "I50"],
        "true_l3": [["E11", "I10"], ["I50", "E11"]],
        "true_primary_full": ["E11.9", "I50.0"],
    })
    scores = np.array([[0.9, 0.1, 0.5, 0.0], [0.2, 0.3, 0.0, 0.8]], dtype=np.float32)
    inputs = from_frames(split, scores, ["E11", "E14", "I10", "I50"],
                         train=split[["codes_l3", "primary_l3"]])
    coding = pd.DataFrame({
        "course_id": ["a", "a", "b", "b", "b"],
        "code": ["E11.9", "I10", "I50.0", "E11.6", "E14.9"],
        "truly_present": [True, True, True, True, False],
        "human_coded": [True, False, True, False, True],
        "reason": ["coded_primary", "missed_implied_only", "carried_over",
                   "replaced_by_unspecified", "unspecified_for_buried"],
    })
    codes = mechanisms.true_codes(inputs, coding, k=2).set_index(["course_id", "code"])
    assert codes.loc[("a", "I10"), ["role", "coded", "reason", "in_top_k"]].tolist() == [
        "secondary", False, "missed_implied_only", True]
    assert codes.loc[("b", "E11"), ["coded", "reason", "in_top_k"]].tolist() == [
        False, "replaced_by_unspecified", False]
    assert codes.loc[("b", "I50"), "role"] == "primary"
    assert codes.loc[("a", "E11"), "train_count"] == 1  # human-coded in one training course
    by = mechanisms.by_mechanism(codes.reset_index(), ["role", "coded"])
    assert by[["role", "coded", "codes", "hits"]].values.tolist() == [
        ["primary", True, 2, 2], ["secondary", False, 2, 1]]
    reasons = mechanisms.human_code_reasons(inputs, coding, "E14")
    assert reasons.values.tolist() == [["b", "E14", False, "unspecified_for_buried"]]
    assert mechanisms.human_code_reasons(inputs, None, "I50")["reason"].tolist() == [
        mechanisms.NO_REASON]
