"""medcoding.analysis.inputs: one run's split, scores and code matrices, row-aligned."""

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis.inputs import (
    from_frames,
    global_threshold,
    load_inputs,
    training_frequency,
)
from medcoding.io import write_json, write_parquet

LABELS = ["E11", "I10", "J18"]


def make_split(synthetic: bool = False) -> pd.DataFrame:
    split = pd.DataFrame({
        "course_id": ["c0", "c1", "c2"],
        "patient_id": ["p0", "p1", "p1"],
        "specialty": ["s"] * 3,
        "department": ["d"] * 3,
        "text": ["a", "b", "c"],
        "codes_l3": [["E11", "I10"], ["Z99"], ["J18"]],
        "codes_full": [["E11.9", "I10.9"], ["Z99.1"], ["J18.9"]],
        "primary_l3": ["E11", "Z99", "J18"],
        "primary_full": ["E11.9", "Z99.1", "J18.9"],
    })
    if synthetic:
        split["true_l3"] = [["E11", "I10"], ["I10"], ["J18"]]
    return split


def test_from_frames_builds_matrices():
    scores = np.arange(9, dtype=np.float16).reshape(3, 3) / 10  # [courses, labels]
    inputs = from_frames(make_split(), scores, LABELS)
    assert inputs.y_human.toarray().tolist() == [[True, True, False], [False, False, False],
                                                 [False, False, True]]
    assert inputs.y_truth is None and not inputs.is_synthetic
    assert inputs.scores.dtype == np.float32
    synthetic = from_frames(make_split(synthetic=True), scores, LABELS)
    assert synthetic.is_synthetic
    assert synthetic.reference("truth").toarray()[1].tolist() == [False, True, False]


def test_from_frames_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*3 labels"):
        from_frames(make_split(), np.zeros((3, 2)), LABELS)
    with pytest.raises(ValueError, match="missing column.*primary_l3"):
        from_frames(make_split().drop(columns="primary_l3"), np.zeros((3, 3)), LABELS)
    with pytest.raises(ValueError, match="level"):
        from_frames(make_split(), np.zeros((3, 3)), LABELS, level="l4")
    with pytest.raises(ValueError, match="reference 'truth' needs"):
        from_frames(make_split(), np.zeros((3, 3)), LABELS).reference("truth")


def test_training_frequency_counts_each_course_once():
    train = pd.DataFrame({"codes": [["E11", "I10", "I10"], ["I10"], ["J18", "I10"], ["X99"]],
                          "primary": ["E11", "I10", "J18", "X99"]})
    table = training_frequency(train, LABELS + ["K35"])
    assert table["train_count"].tolist() == [1, 3, 1, 0]
    assert table["train_secondary"].tolist() == [0, 2, 0, 0]
    assert table["secondary_share"].iloc[:3].tolist() == pytest.approx([0.0, 2 / 3, 0.0])
    assert np.isnan(table["secondary_share"].iloc[3])


def test_load_inputs_reorders_predictions(tmp_path):
    from medcoding.runs import save_predictions

    split = make_split()
    write_parquet(tmp_path / "prepared" / "test.parquet", split)
    write_parquet(tmp_path / "prepared" / "train.parquet", split)
    scores = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]], dtype=np.float32)
    order = [2, 0, 1]
    save_predictions(tmp_path / "predictions" / "main", "test",
                     split["course_id"].iloc[order].tolist(), scores[order], LABELS)
    inputs = load_inputs(tmp_path, "main", "test")
    assert inputs.scores == pytest.approx(scores, abs=1e-3)
    assert inputs.train_frequency()["train_count"].tolist() == [1, 1, 1]

    save_predictions(tmp_path / "predictions" / "short", "test", ["c0", "c1"], scores[:2],
                     LABELS)
    with pytest.raises(ValueError, match=r"lacks 1 course.*'c2'.*medcoding predict"):
        load_inputs(tmp_path, "short", "test")
    with pytest.raises(FileNotFoundError, match="medcoding predict"):
        load_inputs(tmp_path, "missing", "test")


def test_load_inputs_reads_full_code_level(tmp_path):
    from medcoding.runs import save_predictions

    split = make_split()
    write_parquet(tmp_path / "prepared" / "test.parquet", split)
    write_parquet(tmp_path / "prepared" / "train.parquet", split)
    labels = ["E11.9", "I10.9", "J18.9"]
    save_predictions(tmp_path / "predictions" / "full", "test", split["course_id"].tolist(),
                     np.zeros((3, 3)), labels)
    inputs = load_inputs(tmp_path, "full", "test")
    assert inputs.level == "full" and inputs.code_column == "codes_full"
    assert inputs.y_human.toarray()[0].tolist() == [True, True, False]


def test_global_threshold_comes_from_the_model_config(tmp_path):
    config = {"model_type": "plmca", "id2label": {"0": "E11", "1": "I10"}, "threshold": 0.37}
    write_json(tmp_path / "models" / "main" / "config.json", config)
    write_json(tmp_path / "models" / "main" / "complete.json", {"complete": True})
    assert global_threshold(tmp_path, "main") == 0.37
    write_json(tmp_path / "models" / "old" / "config.json", {"n_labels": 2})  # before plmca
    write_json(tmp_path / "models" / "old" / "complete.json", {"complete": True})
    with pytest.raises(ValueError, match="older medcoding.*re-train"):
        global_threshold(tmp_path, "old")
    with pytest.raises(FileNotFoundError, match="medcoding train"):
        global_threshold(tmp_path, "missing")


def test_loading_analysis_inputs_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    from medcoding.runs import save_predictions

    split = make_split()
    write_parquet(tmp_path / "prepared" / "test.parquet", split)
    write_parquet(tmp_path / "prepared" / "train.parquet", split)
    save_predictions(tmp_path / "predictions" / "main", "test", split["course_id"].tolist(),
                     np.full((3, 3), 0.5), LABELS, level="3")
    code = ("import sys, medcoding.analysis\n"
            "from medcoding.analysis import documentation, frequency, inputs, priority, "
            "specialty, thresholds, undercoding\n"
            f"data = inputs.load_inputs({str(tmp_path)!r}, 'main', 'test')\n"
            "print(data.level, data.scores.shape, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["l3", "(3,", "3)", "False"]
