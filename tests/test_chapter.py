"""medcoding.chapter: the one-call set-up of an analysis chapter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medcoding.chapter import Chapter, open_chapter
from medcoding.io import write_json
from medcoding.runs import save_predictions

LABELS = ["E11", "I10"]


def write_run(root, synthetic: bool):
    split = pd.DataFrame({"course_id": ["a", "b"], "patient_id": ["p", "q"],
                          "specialty": ["s", "s"], "department": ["d", "d"], "text": ["x", "y"],
                          "codes_l3": [["E11"], ["I10"]], "primary_l3": ["E11", "I10"]})
    if synthetic:
        split["true_l3"] = [["E11", "I10"], ["I10"]]
    (root / "prepared").mkdir(parents=True)
    for name in ("train", "test"):
        split.to_parquet(root / "prepared" / f"{name}.parquet")
    save_predictions(root / "predictions" / "main", "test", ["b", "a"],
                     np.array([[0.1, 0.9], [0.8, 0.3]], dtype=np.float32), LABELS)
    write_json(root / "models" / "main" / "config.json",  # what modeldir.info reads
               {"model_type": "plmca", "id2label": {"0": "E11", "1": "I10"}, "threshold": 0.4})
    write_json(root / "models" / "main" / "complete.json", {"complete": True})


@pytest.mark.parametrize("synthetic", [True, False])
def test_open_chapter_loads_the_test_split_in_order_and_says_so(tmp_path, capsys, synthetic):
    write_run(tmp_path, synthetic)
    chapter = open_chapter(tmp_path)
    assert isinstance(chapter, Chapter) and chapter.threshold == 0.4
    assert chapter.synthetic is synthetic
    np.testing.assert_allclose(chapter.test.scores, [[0.8, 0.3], [0.1, 0.9]], atol=1e-3)
    assert capsys.readouterr().out == (
        "2 test courses, 2 labels (l3), decision threshold 0.40 (tuned on validation), "
        f"synthetic cohort with known truth: {synthetic}\n")
    shown = chapter.table(pd.DataFrame({"x": [0.12345]}), "t")
    assert shown["x"].tolist() == [0.123] and (tmp_path / "tables" / "t.csv").is_file()
    message = chapter.without_truth("the truth table")
    assert message.startswith("This cohort has no known truth") and message in (
        capsys.readouterr().out)


def test_the_coder_reasons_come_from_the_cohort_the_run_was_prepared_from(tmp_path):
    write_run(tmp_path, synthetic=True)
    chapter = open_chapter(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest.json does not exist"):
        chapter.coding()
    cohort = tmp_path / "elsewhere"
    write_json(tmp_path / "prepared" / "manifest.json", {"data_dir": str(cohort)})
    cohort.mkdir()
    assert chapter.cohort_dir() == cohort and chapter.coding() is None  # no coding table
    pd.DataFrame({"course_id": ["a"], "code": ["E11"], "truly_present": [True],
                  "human_coded": [False], "reason": ["missed_buried"]}).to_parquet(
        cohort / "coding.parquet")
    assert chapter.coding()["reason"].tolist() == ["missed_buried"]


def test_show_saves_the_figure_as_png_and_closes_it(tmp_path):
    import matplotlib.pyplot as plt

    write_run(tmp_path, synthetic=False)
    chapter = open_chapter(tmp_path)
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    path = chapter.show(fig, "line")
    assert path == tmp_path / "figures" / "line.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.number not in plt.get_fignums()  # closed: the next figure starts afresh


def test_models_need_the_results_chapters_baselines(tmp_path):
    write_run(tmp_path, synthetic=True)
    chapter = open_chapter(tmp_path)
    with pytest.raises(FileNotFoundError, match="run notebooks/03_results first"):
        chapter.models()
    directory = tmp_path / "predictions" / "baseline_tfidf_lr"
    save_predictions(directory, "test", ["a", "b"],
                     np.array([[0.7, 0.2], [0.1, 0.6]], dtype=np.float32), LABELS)
    write_json(directory / "baseline.json", {"name": "TF-IDF + LR (C=100)", "threshold": 0.3})
    models = chapter.models()
    assert list(models) == ["PLM-CA", "TF-IDF + LR"]
    assert models["TF-IDF + LR"].threshold == 0.3 and models["TF-IDF + LR"].ranks
