"""medcoding.analysis.undercoding: sweeps, flagged cases and their truth, review sheets."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import undercoding
from medcoding.analysis.inputs import from_frames

LABELS = ["E66", "I10", "X60", "X61"]


def make_inputs(synthetic: bool = True):
    """Six courses; X60-X84 scores chosen so each boundary changes one thing.

    c0 human X60 (0.6), c1 human X61 (0.08), c2 human X60 primary (0.01), c3 uncoded but truly
    X60 with explicit evidence (0.3), c4 uncoded, a negated X60 mention only (0.07), c5 nothing.
    """
    split = pd.DataFrame({
        "course_id": [f"c{i}" for i in range(6)],
        "patient_id": [f"p{i}" for i in range(6)],
        "specialty": ["emergency"] * 6,
        "department": ["ED1"] * 6,
        "text": [f"note {i}" for i in range(6)],
        "codes_l3": [["T39", "X60"], ["S61", "X61"], ["X60"], ["T42"], ["I10"], ["E66"]],
        "primary_l3": ["T39", "S61", "X60", "T42", "I10", "E66"],
        "true_l3": [["T39", "X60"], ["S61", "X61"], ["X60"], ["T42", "X60"], ["I10"], ["E66"]],
        "true_full": [["T39.1", "X60.0"], ["S61.0", "X61.9"], ["X60.9"], ["T42.4", "X60.0"],
                      ["I10.9"], ["E66.0"]],
        "true_evidence": [["listed", "listed"], ["listed", "drug"], ["buried"],
                          ["listed", "listed"], ["listed"], ["listed"]],
        "true_primary_full": ["T39.1", "S61.0", "X60.9", "T42.4", "I10.9", "E66.0"],
        "distractor_l3": [[], [], [], [], ["X60"], []],
    })
    if not synthetic:
        split = split.drop(columns=[c for c in split.columns if c.startswith(("true", "distr"))])
    scores = np.zeros((6, 4), dtype=np.float32)  # [courses, labels]
    scores[:, 2] = [0.6, 0.02, 0.01, 0.3, 0.07, 0.0]
    scores[:, 3] = [0.1, 0.08, 0.0, 0.0, 0.0, 0.0]
    scores[:, 0] = [0, 0, 0, 0, 0, 0.9]
    return from_frames(split, scores, LABELS)


def test_sweep_counts_by_hand():
    table = undercoding.sweep(make_inputs(), "X60-X85", thresholds=(0.5, 0.1, 0.05, 0.01))
    assert table["range_labels"].tolist() == [2, 2, 2, 2]
    assert table["human_cases"].tolist() == [3, 3, 3, 3]
    assert table["detected"].tolist() == [1, 1, 2, 3]
    assert table["detection_rate"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1.0])
    assert table["flagged_uncoded"].tolist() == [0, 1, 2, 2]
    assert table["true_cases"].tolist() == [4, 4, 4, 4]
    assert table["flagged_uncoded_true"].tolist() == [0, 1, 1, 1]
    assert np.isnan(table["true_share"].iloc[0])
    assert table["true_share"].iloc[1:].tolist() == pytest.approx([1.0, 0.5, 0.5])
    low, high = undercoding.wilson_interval(1, 2)
    assert table["true_share_low"].iloc[2] == pytest.approx(low)
    assert table["true_share_high"].iloc[2] == pytest.approx(high)


def test_lowest_majority_boundary_picks_the_lowest_boundary_with_a_real_majority():
    table = undercoding.sweep(make_inputs(), "X60-X85", thresholds=(0.5, 0.1, 0.05, 0.01))
    # true_share by boundary (worked above): 0.5 -> none flagged, 0.1 -> 1.0, 0.05 and 0.01 -> 0.5
    found = undercoding.lowest_majority_boundary(table, share=0.5).iloc[0]
    assert found["boundary"] == 0.01
    assert found["detection_rate"] == pytest.approx(1.0)
    strict = undercoding.lowest_majority_boundary(table, share=0.6).iloc[0]
    assert strict["boundary"] == 0.1
    assert strict["flagged_uncoded"] == 1
    assert strict["detection_rate"] == pytest.approx(1 / 3)
    assert np.isnan(undercoding.lowest_majority_boundary(table, share=1.01)["boundary"].iloc[0])


def test_lowest_majority_boundary_needs_truth():
    table = undercoding.sweep(make_inputs(synthetic=False), "X60-X84", thresholds=(0.5,))
    with pytest.raises(ValueError, match="truth columns"):
        undercoding.lowest_majority_boundary(table)


def test_sweep_on_real_cohort_has_no_truth_columns():
    table = undercoding.sweep(make_inputs(synthetic=False), "X60-X84", thresholds=(0.5,))
    assert "true_share" not in table.columns
    assert table["detected"].tolist() == [1]


def test_sweep_range_without_labels_detects_nothing():
    table = undercoding.sweep(make_inputs(), "F32-F33", thresholds=(0.5, 0.01))
    assert table["range_labels"].tolist() == [0, 0]
    assert table["human_cases"].tolist() == [0, 0]
    assert table["flagged_uncoded"].tolist() == [0, 0]
    assert table["detection_rate"].isna().all()


def test_sweeps_stack_ranges():
    table = undercoding.sweeps(make_inputs(), ["X60-X84", "E66"], thresholds=(0.5,))
    assert table["range"].tolist() == ["X60-X84", "E66"]
    assert table["detection_rate"].tolist() == pytest.approx([1 / 3, 1.0])


def test_wilson_interval_reference_values():
    # Reference values: Wilson (1927) score interval, z = 1.96.
    assert undercoding.wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert undercoding.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    # 43/50: centre 0.8343, half-width 0.0962 (worked by hand).
    assert undercoding.wilson_interval(43, 50) == pytest.approx((0.7381, 0.9305), abs=1e-4)
    assert all(np.isnan(undercoding.wilson_interval(0, 0)))


def test_flagged_evidence_splits_true_and_distractor():
    table = undercoding.flagged_evidence(make_inputs(), "X60-X84", threshold=0.05)
    assert table[["truly_present", "evidence", "cases"]].values.tolist() == [
        [True, "listed", 1], [False, "distractor", 1]]
    assert table["share"].tolist() == pytest.approx([0.5, 0.5])
    empty = undercoding.flagged_evidence(make_inputs(), "X60-X84", threshold=0.99)
    assert empty.empty and "evidence" in empty.columns


def test_case_evidence_takes_strongest_and_distractor_kind():
    inputs = make_inputs()
    evidence = undercoding.case_evidence(inputs, "X60-X84").tolist()
    assert evidence == ["listed", "drug", "buried", "listed", "distractor", "none"]
    split = inputs.split.assign(distractor_kind=[[], [], [], [], ["negated"], []])
    kinds = undercoding.case_evidence(from_frames(split, inputs.scores, LABELS), "X60-X84")
    assert kinds.iloc[4] == "distractor: negated"


def test_case_evidence_needs_truth():
    with pytest.raises(ValueError, match="synthetic"):
        undercoding.case_evidence(make_inputs(synthetic=False), "X60-X84")


def test_secondary_share():
    split = make_inputs().split
    result = undercoding.secondary_share(split["codes_l3"], split["primary_l3"], "X60-X84")
    assert result == {"range": "X60-X84", "cases": 3, "secondary": 2,
                      "secondary_share": pytest.approx(2 / 3)}


def test_review_sheet_samples_flagged_uncoded_without_text():
    inputs = make_inputs()
    sheet = undercoding.review_sheet(inputs, "X60-X84", threshold=0.05, sample_size=10, seed=1)
    assert sheet["course_id"].tolist() == ["c3", "c4"]
    assert "text" not in sheet.columns and "true_l3" not in sheet.columns
    assert sheet["top_code"].tolist() == ["X60", "X60"]
    assert sheet["range_score"].tolist() == pytest.approx([0.3, 0.07], abs=1e-4)
    assert sheet[["genuine", "evidence", "comment"]].eq("").all().all()
    one = undercoding.review_sheet(inputs, "X60-X84", threshold=0.05, sample_size=1, seed=1)
    again = undercoding.review_sheet(inputs, "X60-X84", threshold=0.05, sample_size=1, seed=1)
    assert one.equals(again) and len(one) == 1
    with_text = undercoding.review_sheet(inputs, "X60-X84", 0.05, include_text=True)
    assert with_text["text"].tolist() == ["note 3", "note 4"]


def mechanism_inputs():
    """Five uncoded courses the model flags for X60-X84 at 0.1, one of each mechanism.

    m0 truly X60, named in the narrative, missed (narrative only); m1 truly X60 by its method
    only, missed (implied only); m2 truly absent, a previous attempt; m3 truly absent, a negated
    mention; m4 truly absent, nothing in the text; m5 coded X60 (not counted), m6 scored 0.05.
    """
    n = 7
    split = pd.DataFrame({
        "course_id": [f"m{i}" for i in range(n)],
        "patient_id": [f"p{i}" for i in range(n)],
        "specialty": ["emergency"] * n, "department": ["ED1"] * n, "text": ["x"] * n,
        "codes_l3": [["T39"], ["S61"], ["T42"], ["F32"], ["J18"], ["X60"], ["T39"]],
        "primary_l3": ["T39", "S61", "T42", "F32", "J18", "X60", "T39"],
        "true_l3": [["T39", "X60"], ["S61", "X78"], ["T42"], ["F32"], ["J18"], ["X60"],
                    ["T39", "X60"]],
        "true_full": [["T39.1", "X60.0"], ["S61.0", "X78.9"], ["T42.4"], ["F32.1"], ["J18.9"],
                      ["X60.0"], ["T39.1", "X60.0"]],
        "true_evidence": [["listed", "narrative"], ["listed", "method"], ["listed"], ["listed"],
                          ["listed"], ["primary"], ["listed", "listed"]],
        "true_primary_full": ["T39.1", "S61.0", "T42.4", "F32.1", "J18.9", "X60.0", "T39.1"],
        "distractor_l3": [[], [], ["X60"], ["X61"], [], [], []],
        "distractor_kind": [[], [], ["previous_attempt"], ["negated"], [], [], []],
    })
    scores = np.zeros((n, len(LABELS)), dtype=np.float32)  # [courses, labels]
    scores[:, 2] = [0.4, 0.2, 0.3, 0.15, 0.12, 0.9, 0.05]
    coding = pd.DataFrame({
        "course_id": ["m0", "m0", "m1", "m1", "m6"],
        "code": ["X60.0", "T39.1", "X78.9", "S61.0", "X60.0"],
        "truly_present": [True, True, True, True, True],
        "human_coded": [False, True, False, True, False],
        "reason": ["missed_narrative_only", "coded_listed", "missed_implied_only",
                   "coded_listed", "missed_listed"],
    })
    return from_frames(split, scores, LABELS), coding


def test_flagged_mechanisms_split_present_by_reason_and_absent_by_distractor():
    inputs, coding = mechanism_inputs()
    table = undercoding.flagged_mechanisms(inputs, "X60-X84", 0.1, coding)
    by = table.set_index("mechanism")
    assert table["cases"].sum() == 5  # m5 is coded, m6 below the boundary
    assert by.loc["missed_narrative_only", ["truly_present", "evidence", "group"]].tolist() == [
        True, "narrative", undercoding.NAMED]
    assert by.loc["missed_implied_only", ["evidence", "group"]].tolist() == [
        "method", undercoding.IMPLIED]
    assert by.loc["previous_attempt", "group"] == undercoding.STUDY_KINDS
    assert by.loc["negated", "group"] == undercoding.OTHER_KINDS
    assert by.loc["no distractor", "group"] == undercoding.NO_DISTRACTOR
    assert by["share"].tolist() == pytest.approx([0.2] * 5)
    low, high = undercoding.wilson_interval(1, 5)
    assert by.loc["negated", "share_low"] == pytest.approx(low)
    assert by.loc["negated", "share_high"] == pytest.approx(high)
    without = undercoding.flagged_mechanisms(inputs, "X60-X84", 0.1, None)
    assert without.loc[without["truly_present"], "mechanism"].unique().tolist() == [
        "no recorded reason"]
    assert undercoding.flagged_mechanisms(inputs, "X60-X84", 0.95, coding).empty


def test_beside_review_groups_ours_as_the_study_grouped_its_review():
    inputs, coding = mechanism_inputs()
    table = undercoding.flagged_mechanisms(inputs, "X60-X84", 0.1, coding)
    beside = undercoding.beside_review(table, "X60-X85").set_index("group")
    assert beside["cases"].tolist() == [1, 1, 0, 1, 1, 1]
    assert beside.loc[undercoding.NAMED, "study_share"] == pytest.approx(0.68 + 0.08)
    assert beside.loc[undercoding.IMPLIED, "study_share"] == pytest.approx(0.12)
    assert beside.loc[undercoding.STUDY_KINDS, "study_share"] == pytest.approx(0.14)
    assert np.isnan(beside.loc[undercoding.UNWRITTEN, "study_share"])
    unreviewed = undercoding.beside_review(table, "F32-F33")
    assert unreviewed["cases"].sum() == 0 and unreviewed["study_share"].isna().all()


def test_missed_reasons_take_the_commonest_reason_of_the_range():
    coding = pd.DataFrame({
        "course_id": ["a", "a", "a", "b", "c"],
        "code": ["X60.0", "X61.0", "X62.0", "E66.0", "X60.0"],
        "truly_present": [True, True, True, True, False],
        "human_coded": [False, False, False, False, True],
        "reason": ["missed_buried", "missed_not_reimbursed", "missed_not_reimbursed",
                   "missed_low_priority", "ambiguous_intent"],
    })
    reasons = undercoding.missed_reasons(coding, ["a", "b", "c", "d"], "X60-X84")
    assert reasons.tolist() == ["missed_not_reimbursed", None, None, None]


def test_flagged_mechanisms_need_truth():
    with pytest.raises(ValueError, match="synthetic truth"):
        undercoding.flagged_mechanisms(make_inputs(synthetic=False), "X60-X84", 0.1, None)


def test_read_coding_is_none_without_the_table(tmp_path):
    assert undercoding.read_coding(tmp_path) is None
    pd.DataFrame({"course_id": ["a"], "code": ["X60.0"], "truly_present": [True],
                  "human_coded": [False], "reason": ["missed_buried"],
                  "extra": [1]}).to_parquet(tmp_path / "coding.parquet")
    assert undercoding.read_coding(tmp_path).columns.tolist() == [
        "course_id", "code", "truly_present", "human_coded", "reason"]


def test_chapter_tables_beside_the_study():
    inputs = make_inputs()
    boundaries = undercoding.flag_boundaries(["X60-X85", "F32"])
    assert boundaries == {"X60-X85": 0.05, "F32": 0.1}
    assert undercoding.flag_boundaries(["E66"], 0.2) == {"E66": 0.2}
    beside = undercoding.beside_study(inputs, ["X60-X85", "F32"], boundaries).set_index("range")
    assert beside.loc["X60-X85", ["our_cases", "our_extra_cases"]].tolist() == [3, 2]
    assert beside.loc["X60-X85", "our_detected_lowered"] == pytest.approx(2 / 3)
    assert beside.loc["X60-X85", "study_extra_cases"] == 917
    assert np.isnan(beside.loc["F32", "study_cases"]) and beside.loc["F32", "our_cases"] == 0
    checked = undercoding.validation(inputs, ["X60-X85"], boundaries).iloc[0]
    assert (checked["flagged_uncoded"], checked["truly_present"]) == (2, 1)
    assert checked["study_validated"] == 0.86
    shares = undercoding.secondary_shares(inputs, ["X60-X84"]).iloc[0]
    assert (shares["test_cases"], shares["test_secondary_share"]) == (3, pytest.approx(2 / 3))
    swept = undercoding.sweeps(inputs, ["X60-X84", "F32"], (0.5,))
    assert undercoding.sweep_notes(swept) == [
        "F32: no code of this range is in the model's label vocabulary (too rare in training): "
        "the model cannot flag it."]


def test_reading_covers_truth_mechanisms_and_their_absence():
    inputs, coding = mechanism_inputs()
    boundaries = {"X60-X84": 0.1, "E66": 0.1}
    beside = undercoding.beside_study(inputs, list(boundaries), boundaries)
    checked = undercoding.validation(inputs, list(boundaries), boundaries)
    mechanisms = pd.concat([undercoding.flagged_mechanisms(inputs, spec, 0.1, coding)
                            for spec in boundaries], ignore_index=True)
    summary = undercoding.mechanism_summary(mechanisms)
    assert summary[["range", "present", "absent", "top_reason", "top_distractor"]].values.tolist() \
        == [["X60-X84", 2, 3, "missed_implied_only", "negated"]]
    text = undercoding.reading(beside, checked, summary)
    assert "X60-X84: the model detects 100.0% of the human-coded cases at 0.5" in text
    assert "the study: 21.3% and 64.5%, 917 cases" in text
    assert "E66: no human-coded test case, so no detection rate." in text
    # 2 of 5 flagged are real: the interval holds one half, so the reading cannot tell
    assert "cannot tell whether most of the 5 flagged uncoded X60-X84 cases are real" in text
    assert "consistent with the study's review" not in text and "is below the study's" in text
    assert "E66: the model flags no uncoded case at 0.1." in text
    assert ("commonest recorded reason for missing a present one is missed_implied_only "
            "(1 of 2)") in text
    assert "commonest cause of an absent one is negated (1 of 3)" in text
    real = undercoding.reading(undercoding.beside_study(make_inputs(False), ["X60-X84"],
                                                        {"X60-X84": 0.05}))
    assert real.endswith("needs the review sheets.")
    none_present = summary.assign(present=0, top_reason_cases=0)  # every flagged case absent
    text = undercoding.reading(beside, checked, none_present)
    assert "missing a present one" not in text and "an absent one is negated" in text


def test_beside_long_stacks_ours_with_the_study_where_it_has_a_value():
    checked = pd.DataFrame({"range": ["X60-X84", "F32"], "true_share": [0.4, 0.5],
                            "low": [0.3, 0.2], "high": [0.5, 0.8],
                            "study_validated": [0.86, np.nan]})
    long = undercoding.beside_long(checked, "true_share", "low", "high", "study_validated")
    assert long[["range", "source", "share", "low", "high"]].values.tolist() == [
        ["X60-X84", "ours (all flagged, 95% CI)", 0.4, 0.3, 0.5],
        ["F32", "ours (all flagged, 95% CI)", 0.5, 0.2, 0.8],
        ["X60-X84", "study (reviewed sample)", 0.86, 0.86, 0.86]]


def test_every_range_stacked_for_the_chapter():
    inputs, coding = mechanism_inputs()
    boundaries = {"X60-X84": 0.1, "E66": 0.1}
    assert undercoding.boundary_table(boundaries).values.tolist() == [["X60-X84", 0.1],
                                                                     ["E66", 0.1]]
    mechanisms = undercoding.mechanisms_table(inputs, list(boundaries), boundaries, coding)
    assert mechanisms["cases"].sum() == 5 and set(mechanisms["range"]) == {"X60-X84"}
    review = undercoding.review_table(mechanisms, list(boundaries))
    assert review.groupby("range")["cases"].sum().to_dict() == {"E66": 0, "X60-X84": 5}
    long = undercoding.review_long(review)
    # five X60-X84 groups with cases, and the study's share beside the three it reviewed
    assert len(long) == 5 + 3 and long["case"].iloc[0] == f"X60-X84: {undercoding.NAMED}"
    assert undercoding.review_long(review[review["range"] == "E66"]).empty


def test_review_sheets_are_written_one_file_per_range(tmp_path):
    inputs = make_inputs()
    boundaries = {"X60-X84": 0.05, "E66": 0.5}
    written = undercoding.write_review_sheets(inputs, list(boundaries), boundaries, tmp_path,
                                              sample_size=10, seed=1, include_text=False)
    assert written.values.tolist() == [
        ["X60-X84", 0.05, 2, "tables/review_X60_X84.csv", False],
        ["E66", 0.5, 0, "tables/review_E66.csv", False]]
    sheet = pd.read_csv(tmp_path / "tables" / "review_X60_X84.csv")
    assert sheet["course_id"].tolist() == ["c3", "c4"] and "text" not in sheet.columns


def test_validation_by_model_flags_each_model_at_its_kind_of_boundary():
    from medcoding.analysis.comparison import Scored

    model = make_inputs()
    dictionary = make_inputs()
    dictionary.scores[:] = 0.0
    dictionary.scores[[3, 4], 2] = 1.0  # the X60 phrase in c3 (truly X60) and c4 (negated)
    prior = make_inputs()
    prior.scores[:] = 0.25  # every course alike
    models = {"PLM-CA": Scored("PLM-CA", model, 0.5),
              "dictionary": Scored("dictionary", dictionary, 0.5),
              "prior": Scored("prior", prior, 0.2)}
    table = undercoding.validation_by_model(models, ["X60-X84"], {"X60-X84": 0.05})
    assert table["model"].tolist() == ["PLM-CA", "dictionary"]  # the prior flags all or none
    assert table["boundary"].tolist() == [0.05, 0.5]
    assert table["flagged_uncoded"].tolist() == [2, 2]  # PLM-CA: c3 (0.3) and c4 (0.07)
    assert table["truly_present"].tolist() == [1, 1]
    assert table["true_share"].tolist() == pytest.approx([0.5, 0.5])
    assert table["true_recall"].tolist() == pytest.approx([0.75, 0.25])


def test_validation_differences_pair_the_models_by_hand():
    from medcoding.analysis.comparison import Scored

    dictionary = make_inputs()
    dictionary.scores[:] = 0.0
    dictionary.scores[4, 2] = 1.0  # only the negated mention in c4
    models = {"PLM-CA": Scored("PLM-CA", make_inputs(), 0.5),
              "surface-form dictionary": Scored("surface-form dictionary", dictionary, 0.5)}
    table = undercoding.validation_differences(models, ["X60-X84"], {"X60-X84": 0.05},
                                               n_resamples=200, seed=1).set_index("measure")
    # PLM-CA flags c3 (truly X60) and c4 (absent): recall 1 of 1 uncoded true, precision 1/2
    recall, precision = table.loc["uncoded_found"], table.loc["true_share"]
    assert (recall["base_estimate"], recall["model_estimate"]) == (1.0, 0.0)
    assert (precision["base_estimate"], precision["model_estimate"]) == (0.5, 0.0)
    assert recall["difference"] == 1.0 and recall["low"] <= 1.0 <= recall["high"]
    said = undercoding.validation_difference_reading(table.reset_index())
    assert said.startswith("X60-X84: PLM-CA flags 100% of the truly present uncoded cases "
                           "(under-coding recall), and 50% of the uncoded cases it flags are truly "
                           "present (flag precision).")
    assert "beat the surface-form dictionary by 100.0 points under-coding recall" in said


def test_validation_difference_reading_says_why_a_pair_cannot_be_compared():
    rows = [{"model": "TF-IDF + LR", "range": "X60-X84", "measure": "uncoded_found",
             "base_estimate": 0.0, "model_estimate": 0.0, "difference": 0.0, "low": 0.0,
             "high": 0.0},
            {"model": "TF-IDF + LR", "range": "X60-X84", "measure": "true_share",
             "base_estimate": 0.0, "model_estimate": np.nan, "difference": np.nan,
             "low": np.nan, "high": np.nan}]
    said = undercoding.validation_difference_reading(pd.DataFrame(rows))
    assert "TF-IDF + LR has the same under-coding recall (0%) on every resample." in said
    assert "TF-IDF + LR flags no uncoded X60-X84 case, so it has no flag precision." in said
