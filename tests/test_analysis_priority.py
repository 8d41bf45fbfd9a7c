"""medcoding.analysis.priority: Recall@k for primary and for secondary codes."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import priority
from medcoding.analysis.inputs import from_frames

LABELS = ["E11", "I10", "J18", "K35", "N39", "R07"]


def make_inputs():
    split = pd.DataFrame({
        "course_id": ["c0", "c1", "c2"],
        "patient_id": ["p0", "p1", "p2"],
        "codes_l3": [["E11", "I10"], ["J18", "I10", "N39", "Z99"], []],
        "primary_l3": ["E11", "J18", None],
        "true_l3": [["E11", "I10", "K35"], ["J18", "I10", "N39"], ["R07"]],
        "true_primary_full": ["E11.9", "J18.9", "R07.4"],
    })
    scores = np.zeros((3, 6), dtype=np.float32)  # [courses, labels]
    scores[0, [0, 1, 2]] = [0.9, 0.1, 0.5]  # ranks: E11 1, J18 2, I10 3
    scores[1, [1, 4, 2]] = [0.9, 0.8, 0.7]  # ranks: I10 1, N39 2, J18 3
    scores[2, 5] = 0.4
    return from_frames(split, scores, LABELS)


def test_role_recall_by_hand():
    table = priority.role_recall(make_inputs(), ks=(1, 2)).set_index(["role", "k"])
    assert table.loc[("primary", 1), "recall"] == pytest.approx(0.5)
    assert table.loc[("primary", 2), "recall"] == pytest.approx(0.5)
    assert table.loc[("secondary", 1), "recall"] == pytest.approx((0 + 0.5) / 2)
    assert table.loc[("secondary", 2), "recall"] == pytest.approx((0 + 1.0) / 2)
    assert table.loc[("primary", 1), "courses"] == 2
    assert table.loc[("secondary", 1), "codes"] == 3


def test_role_recall_against_truth():
    table = priority.role_recall(make_inputs(), ks=(1,), reference="truth").set_index("role")
    assert table.loc["primary", "recall"] == pytest.approx((1 + 0 + 1) / 3)
    assert table.loc["secondary", "codes"] == 4  # I10, K35, I10, N39


def test_unseen_codes():
    table = priority.unseen_codes(make_inputs()).set_index("role")
    assert table.loc["primary", "codes"] == 2 and table.loc["primary", "unseen"] == 0
    assert table.loc["secondary", "codes"] == 4 and table.loc["secondary", "unseen"] == 1


def test_role_difference_pairs_the_two_recalls_by_hand():
    found = priority.role_difference(make_inputs(), k=1, n_resamples=200, seed=2)
    assert found["primary"] == pytest.approx(0.5)  # as test_role_recall_by_hand
    assert found["secondary"] == pytest.approx(0.25)
    assert found["difference"] == pytest.approx(0.25)
    assert found["low"] <= 0.25 <= found["high"]


def test_differences_by_model_leave_out_a_dictionary_and_read_the_prior():
    from medcoding.analysis.comparison import Scored

    dictionary = make_inputs()
    dictionary.scores[:] = (dictionary.scores > 0).astype(np.float32)
    models = {"PLM-CA": Scored("PLM-CA", make_inputs(), 0.5),
              "ICD-10 title dictionary": Scored("ICD-10 title dictionary", dictionary, 0.5)}
    table = priority.differences_by_model(models, ks=(1, 2), n_resamples=50, seed=0)
    assert table["model"].tolist() == ["PLM-CA", "PLM-CA"]  # the 0/1 scores rank nothing
    reverse = pd.DataFrame([
        {"model": "PLM-CA", "k": 5, "primary": 0.74, "secondary": 0.58, "difference": 0.16,
         "low": 0.12, "high": 0.19},
        {"model": "frequency prior", "k": 5, "primary": 0.09, "secondary": 0.24,
         "difference": -0.15, "low": -0.17, "high": -0.12}])
    said = priority.model_reading(reverse)
    assert said.startswith("The frequency prior at Recall@5: Secondary codes (24.0%) ranked "
                           "above primary codes (9.0%) by 15.0 points")
    assert "comes from reading the notes, not from code frequency" in said
    unclear = reverse.assign(low=[0.12, -0.2], high=[0.19, 0.1])
    assert "code frequency" not in priority.model_reading(unclear)
