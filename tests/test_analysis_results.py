"""medcoding.analysis.results: our scoring conventions beside the reference implementation's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import results
from medcoding.chapter import open_chapter
from medcoding.io import write_json
from medcoding.runs import save_predictions

LABELS = ["A", "B", "C"]  # C is coded in no test course


def write_run(root, scores):
    split = pd.DataFrame({"course_id": ["a", "b", "c"], "patient_id": ["p", "q", "r"],
                          "specialty": ["s"] * 3, "department": ["d"] * 3, "text": ["x"] * 3,
                          "codes_l3": [["A"], ["A", "B"], ["B"]],
                          "primary_l3": ["A", "A", "B"]})
    (root / "prepared").mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        split.to_parquet(root / "prepared" / f"{name}.parquet")
    save_predictions(root / "predictions" / "main", "test", ["a", "b", "c"],
                     np.array(scores, dtype=np.float32), LABELS)
    write_json(root / "models" / "main" / "config.json",
               {"model_type": "plmca", "id2label": dict(enumerate(LABELS)), "threshold": 0.5})
    write_json(root / "models" / "main" / "complete.json", {"complete": True})
    return open_chapter(root)


def test_the_reference_conventions_drop_absent_labels_and_ties(tmp_path):
    # a: A at the threshold, C (never coded) above it; b: B at the threshold
    chapter = write_run(tmp_path, [[0.5, 0.1, 0.6], [0.9, 0.5, 0.1], [0.2, 0.7, 0.1]])
    table = results.conventions(chapter.test, chapter.threshold).set_index("metric")
    assert table.loc["n_labels"].tolist() == [3, 2, 3, 2]
    # ours: {A, C}, {A, B}, {B}: TP 4 of 5 predicted, 4 true; reference: {}, {A}, {B}: TP 2 of 2
    assert table.loc["f1_micro", results.OURS] == pytest.approx(8 / 9)
    assert table.loc["f1_micro", results.REFERENCE] == pytest.approx(4 / 6)
    reading = results.conventions_reading(table.reset_index())
    assert reading.startswith("Scored as the reference implementation scores (only the 2 labels "
                              "present in the test courses instead of all 3, and a code predicted "
                              "when its score is above the threshold")
    change = (table[results.REFERENCE] - table[results.OURS]).drop("n_labels").astype(float)
    largest = change.abs().idxmax()
    assert (f"{table.loc[largest, results.REFERENCE]:.3f} against our "
            f"{table.loc[largest, results.OURS]:.3f}") in reading


def test_without_ties_or_absent_labels_the_conventions_agree(tmp_path):
    chapter = write_run(tmp_path, [[0.9, 0.1, 0.2], [0.8, 0.7, 0.1], [0.2, 0.6, 0.1]])
    table = results.conventions(chapter.test, chapter.threshold)
    # C is absent, but never predicted and always ranked last: no metric moves
    assert table.loc[table["metric"] == "f1_micro", results.OURS].item() == 1.0
    assert results.conventions_reading(table).endswith("no metric changes by 0.0005 or more.")
