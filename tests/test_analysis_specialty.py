"""medcoding.analysis.specialty: micro F1 per department and the median per specialty."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import specialty
from medcoding.analysis.inputs import from_frames


def make_inputs():
    split = pd.DataFrame({
        "course_id": [f"c{i}" for i in range(7)],
        "specialty": ["S1", "S1", "S1", "S1", "S2", "S2", "S2"],
        "department": ["d1", "d1", "d2", "d2", "d3", "d3", "d4"],
        "codes_l3": [["E11"], ["I10"], ["E11"], ["I10"], ["I10"], ["E11", "I10"], ["E11"]],
        "primary_l3": ["E11", "I10", "E11", "I10", "I10", "E11", "E11"],
    })
    scores = np.array([[0.9, 0.0],    # d1: tp
                       [0.6, 0.2],    # d1: fp E11, fn I10 -> F1 2/4
                       [0.8, 0.0],    # d2: tp
                       [0.0, 0.0],    # d2: fn -> F1 2/3
                       [0.0, 0.7],    # d3: tp
                       [0.7, 0.7],    # d3: 2 tp -> F1 1
                       [0.0, 0.0]],   # d4: fn -> F1 0 (1 course)
                      dtype=np.float32)  # [courses, labels]
    return from_frames(split, scores, ["E11", "I10"])


def test_department_f1_by_hand():
    table = specialty.department_f1(make_inputs(), threshold=0.5, min_courses=2)
    assert table["department"].tolist() == ["d3", "d2", "d1", "d4"]
    assert table["f1_micro"].tolist() == pytest.approx([1.0, 2 / 3, 0.5, 0.0])
    assert table["courses"].tolist() == [2, 2, 2, 1]
    assert table["included"].tolist() == [True, True, True, False]


def test_specialty_medians_and_range():
    departments = specialty.department_f1(make_inputs(), threshold=0.5, min_courses=2)
    medians = specialty.specialty_medians(departments)
    assert medians["specialty"].tolist() == ["S2", "S1"]
    assert medians["median_f1"].tolist() == pytest.approx([1.0, (0.5 + 2 / 3) / 2])
    assert medians["departments"].tolist() == [1, 2]
    extremes = specialty.specialty_range(medians)
    assert extremes["high"] == ("S2", pytest.approx(1.0))
    assert extremes["low"][0] == "S1"


def test_no_department_reaches_minimum():
    departments = specialty.department_f1(make_inputs(), threshold=0.5, min_courses=100)
    assert not departments["included"].any() and len(departments) == 4
    medians = specialty.specialty_medians(departments)
    assert medians.empty and "median_f1" in medians.columns
    assert specialty.specialty_range(medians) == {"low": None, "high": None, "specialties": 0}


def test_truth_reference_needs_synthetic_cohort():
    with pytest.raises(ValueError, match="true_l3"):
        specialty.department_f1(make_inputs(), reference="truth")


def scored_models():
    from medcoding.analysis.comparison import Scored

    model = make_inputs()
    copy = make_inputs()
    copy.scores[:] = copy.scores[::-1]  # another model: same courses, other scores
    return {"PLM-CA": Scored("PLM-CA", model, 0.5), "TF-IDF + LR": Scored("TF-IDF + LR", copy, 0.5)}


def test_baselines_by_department_pair_the_departments():
    departments = specialty.department_f1_by_model(scored_models(), min_courses=2)
    assert departments["model"].drop_duplicates().tolist() == ["PLM-CA", "TF-IDF + LR"]
    mine = departments[departments["model"] == "PLM-CA"].drop(columns="model")
    assert mine.reset_index(drop=True).equals(
        specialty.department_f1(make_inputs(), 0.5, 2))
    medians = specialty.medians_by_model(departments)
    assert medians["specialty"].tolist() == ["S2", "S2", "S1", "S1"]  # PLM-CA's order
    agreement = specialty.baseline_agreement(departments, n_resamples=200, seed=1)
    row = agreement.iloc[0]
    other = departments[(departments["model"] == "TF-IDF + LR") & departments["included"]]
    assert row["departments"] == 3
    assert row["base_mean_f1"] == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert row["model_mean_f1"] == pytest.approx(other["f1_micro"].mean())
    assert row["difference"] == pytest.approx(row["base_mean_f1"] - row["model_mean_f1"])
    assert row["low"] <= row["difference"] <= row["high"]


def test_baseline_reading_claims_shared_difficulty_only_when_the_interval_is_positive():
    import pandas as pd

    common = {"model": "TF-IDF + LR", "departments": 22, "base_mean_f1": 0.54,
              "model_mean_f1": 0.52, "difference": 0.02, "low": 0.005, "high": 0.045}
    shared = pd.DataFrame([{**common, "correlation": 0.69, "correlation_low": 0.27,
                            "correlation_high": 0.91}])
    unclear = pd.DataFrame([{**common, "correlation": 0.10, "correlation_low": -0.4,
                             "correlation_high": 0.5}])
    said = specialty.baseline_reading(shared)
    assert "PLM-CA beat TF-IDF + LR by 0.020 mean department micro F1" in said
    assert "part of the spread comes with the courses" in said
    assert "correlation 0.69, 95% CI 0.27 to 0.91" in said
    assert "the data cannot tell" in specialty.baseline_reading(unclear)
    assert "spread comes with" not in specialty.baseline_reading(unclear)
