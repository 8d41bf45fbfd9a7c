"""medcoding.analysis.frequency: per-code F1 against training frequency and secondary share."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import frequency
from medcoding.analysis.inputs import from_frames

LABELS = ["E11", "I10", "J18", "K35"]


def make_inputs():
    train = pd.DataFrame({
        "codes_l3": [["E11", "I10"], ["I10"], ["I10", "J18"], ["E11", "I10"]],
        "primary_l3": ["E11", "I10", "J18", "E11"],
    })
    split = pd.DataFrame({
        "course_id": ["c0", "c1", "c2", "c3"],
        "codes_l3": [["E11", "I10"], ["I10"], ["J18"], ["E11"]],
        "primary_l3": ["E11", "I10", "J18", "E11"],
    })
    scores = np.array([[0.9, 0.2, 0.0, 0.0],
                       [0.0, 0.7, 0.0, 0.0],
                       [0.0, 0.0, 0.1, 0.0],
                       [0.6, 0.6, 0.0, 0.0]], dtype=np.float16)  # [courses, labels]
    return from_frames(split, scores, LABELS, train=train)


def test_code_table_by_hand():
    table = frequency.code_table(make_inputs(), threshold=0.5).set_index("label")
    assert table["support"].tolist() == [2, 2, 1, 0]
    assert table["predicted"].tolist() == [2, 2, 0, 0]
    assert table["f1"].iloc[:3].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert np.isnan(table.loc["K35", "f1"])
    assert table["train_count"].tolist() == [2, 4, 1, 0]
    assert table["train_secondary"].tolist() == [0, 3, 0, 0]
    assert table["secondary_share"].iloc[:3].tolist() == pytest.approx([0.0, 0.75, 0.0])
    assert np.isnan(table.loc["K35", "secondary_share"])
    assert frequency.never_predicted_share(table.reset_index()) == 0.5


def test_frequency_bins_log_edges():
    codes = pd.DataFrame({"train_count": [5, 50, 60, 500, 1000, 10, 0],
                          "f1": [0.2, 0.4, 0.6, 0.9, 0.8, 0.3, 0.5],
                          "predicted": [0, 3, 3, 9, 9, 1, 0]})
    table = frequency.frequency_bins(codes)
    assert table["bin_low"].tolist() == [1, 10, 100, 1000]
    assert table["codes"].tolist() == [1, 3, 1, 1]
    assert table["mean_f1"].tolist() == pytest.approx([0.2, (0.4 + 0.6 + 0.3) / 3, 0.9, 0.8])
    assert table["never_predicted_share"].tolist() == [1.0, 0.0, 0.0, 0.0]
    half = frequency.frequency_bins(codes, per_decade=2)
    assert half["bin_low"].round(2).tolist() == [3.16, 10, 31.62, 316.23, 1000]
    assert frequency.frequency_bins(codes.iloc[:0]).empty


def test_secondary_table_and_bins():
    table = frequency.code_table(make_inputs(), threshold=0.5)
    secondary = frequency.secondary_table(table, min_train_count=1)
    assert secondary["label"].tolist() == ["E11", "I10"]
    bins = frequency.secondary_bins(secondary)
    assert bins["codes"].tolist() == [1, 0, 0, 1, 0]
    assert bins["mean_f1"].iloc[[0, 3]].tolist() == pytest.approx([1.0, 0.5])
    assert bins["mean_f1"].iloc[[1, 2, 4]].isna().all()
    edge = pd.DataFrame({"secondary_share": [0.8, 1.0], "f1": [0.1, 0.3]})
    assert frequency.secondary_bins(edge)["codes"].tolist() == [0, 0, 0, 0, 2]
    assert frequency.secondary_table(table, min_train_count=10).empty


def test_baselines_by_code_leave_the_prior_out_of_the_trends():
    from medcoding.analysis.comparison import Scored

    prior = make_inputs()
    prior.scores[:] = prior.scores[0]  # every course alike
    models = {"PLM-CA": Scored("PLM-CA", make_inputs(), 0.5),
              "frequency prior": Scored("frequency prior", prior, 0.5)}
    bins = frequency.bins_by_model(models)
    mine = bins[bins["model"] == "PLM-CA"].drop(columns="model").reset_index(drop=True)
    assert mine.equals(frequency.frequency_bins(frequency.code_table(make_inputs(), 0.5)))
    assert set(bins["model"]) == {"PLM-CA", "frequency prior"}
    trends = frequency.trends_by_model(models, min_train_count=0, n_resamples=20)
    assert set(trends["model"]) == {"PLM-CA"}


def test_model_trend_reading_explains_with_a_dictionary_only_where_intervals_allow():
    rows = [("PLM-CA", "log10 training frequency", 0.63, 0.58, 0.69),
            ("PLM-CA", "secondary share", -0.50, -0.75, -0.28),
            ("surface-form dictionary", "log10 training frequency", -0.38, -0.50, -0.28),
            ("surface-form dictionary", "secondary share", -0.51, -0.71, -0.31),
            ("ICD-10 title dictionary", "log10 training frequency", -0.06, -0.15, 0.05),
            ("ICD-10 title dictionary", "secondary share", -0.10, -0.30, 0.10)]
    table = pd.DataFrame(rows, columns=["model", "factor", "correlation", "low", "high"])
    table["codes"] = 70
    said = frequency.model_trend_reading(table)
    assert said.count("comes from the number of training examples") == 1  # surface forms only
    assert said.count("comes with the courses and their coding") == 1
    assert "The data cannot tell whether the ICD-10 title dictionary's per-code F1" in said
    rising = table.assign(low=table["low"].abs(), high=table["high"].abs() + 0.1)
    assert "comes with the codes themselves" in frequency.model_trend_reading(rising)
