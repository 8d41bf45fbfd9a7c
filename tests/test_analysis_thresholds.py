"""medcoding.analysis.thresholds: per-code boundaries tuned on validation, compared on test."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import thresholds
from medcoding.analysis.inputs import from_frames

LABELS = ["E66", "I10"]


def frame(codes, truth):
    return pd.DataFrame({
        "course_id": [f"c{i}" for i in range(len(codes))],
        "codes_l3": codes, "primary_l3": [c[0] if c else None for c in codes],
        "true_l3": truth})


def make_val():
    """E66 scores 0.3 on three coded cases, 0.1 on one uncoded true case; I10 has support 1."""
    split = frame([["E66"], ["E66"], ["E66"], [], [], ["I10"]],
                  [["E66"], ["E66"], ["E66"], ["E66"], [], ["I10"]])
    scores = np.array([[0.3, 0], [0.3, 0], [0.3, 0], [0.1, 0], [0, 0], [0, 0.9]],
                      dtype=np.float32)  # [courses, labels]
    return from_frames(split, scores, LABELS)


def make_test():
    split = frame([["E66"], ["E66"], [], []], [["E66"], ["E66"], ["E66"], []])
    scores = np.array([[0.25, 0], [0.6, 0], [0.15, 0], [0, 0]], dtype=np.float32)
    return from_frames(split, scores, LABELS)


def test_tuned_boundaries_follow_the_reference():
    sets = thresholds.boundary_sets(make_val(), global_threshold=0.5, min_support=2)
    assert list(sets) == ["global", "per-code (human)", "per-code (truth)"]
    human, truth = sets["per-code (human)"], sets["per-code (truth)"]
    assert 0.1 < human[0] <= 0.3  # every boundary in (0.1, 0.3] gives F1 1 on human codes
    assert 0 < truth[0] <= 0.1  # on the truth the uncoded 0.1 case must be caught too
    assert human[1] == truth[1] == 0.5  # I10: support 1 < 2 keeps the global boundary


def test_range_comparison_by_hand():
    sets = thresholds.boundary_sets(make_val(), global_threshold=0.5, min_support=2)
    table = thresholds.range_comparison(make_test(), ["E66"], sets)
    table = table.set_index(["boundary", "reference"])
    assert table.loc[("global", "human"), ["cases", "detected", "flagged"]].tolist() == [2, 1, 1]
    assert table.loc[("global", "truth"), ["cases", "detected"]].tolist() == [3, 1]
    assert table.loc[("per-code (human)", "human"), "detection_rate"] == 1.0
    assert table.loc[("per-code (human)", "truth"), "detected"] == 2
    assert table.loc[("per-code (truth)", "truth"), "detection_rate"] == 1.0
    assert table.loc[("per-code (truth)", "human"), "flagged_precision"] == pytest.approx(2 / 3)


def test_overall_comparison_and_boundary_table():
    val, test = make_val(), make_test()
    sets = thresholds.boundary_sets(val, global_threshold=0.5, min_support=2)
    overall = thresholds.overall_comparison(test, sets).set_index(["boundary", "reference"])
    assert overall.loc[("global", "truth"), "f1_micro"] == pytest.approx(2 * 1 / (3 + 1))
    assert overall.loc[("per-code (truth)", "truth"), "f1_micro"] == pytest.approx(1.0)
    boundaries = thresholds.range_boundaries(val, ["E66", "I10-I15"], sets)
    assert boundaries["label"].tolist() == ["E66", "I10"]
    assert boundaries["val_support_human"].tolist() == [3, 1]
    assert boundaries["val_support_truth"].tolist() == [4, 1]
    assert boundaries["global"].tolist() == [0.5, 0.5]


def test_real_cohort_compares_human_only():
    val, test = make_val(), make_test()
    real_val = from_frames(val.split.drop(columns="true_l3"), val.scores, LABELS)
    real_test = from_frames(test.split.drop(columns="true_l3"), test.scores, LABELS)
    sets = thresholds.boundary_sets(real_val, global_threshold=0.5, min_support=2)
    assert list(sets) == ["global", "per-code (human)"]
    assert set(thresholds.range_comparison(real_test, ["E66"], sets)["reference"]) == {"human"}
