"""medcoding.scaling and medcoding.fitting: the ladder on a tiny prepared run, trained here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prepared_fixture import one_thread, write_prepared

from medcoding import evaluation, scaling, study
from medcoding.fitting import fit_and_score
from medcoding.runs import Run
from medcoding.train import TrainConfig

CONFIG = TrainConfig(encoder="tiny", epochs=1, batch_size=16, learning_rate=2e-3,
                     warmup_fraction=0.0, encoder_dropout=0.0, progress=False)


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory):
    """A run with 60 training patients, a main model on all of them and a 2-rung ladder scored
    on 6 of the 12 test patients."""
    root = tmp_path_factory.mktemp("ladder")
    write_prepared(root / "prepared", n_train=60, n_val=12, n_test=12, median_words=30)
    with one_thread():
        main = fit_and_score(root, "main", CONFIG)
        ladder = scaling.open_ladder(root, [40, 20, 500], test_patients=6, seed=1)
        table = scaling.run_ladder(ladder, CONFIG)
    return root, main, ladder, table


def test_fit_and_score_trains_the_model_and_scores_val_and_test(ladder_run):
    root, main, _, _ = ladder_run
    run = Run(root)
    assert main == run.model_dir("main") and (main / "complete.json").is_file()
    for split in ("val", "test"):
        scores = run.load_predictions("main", split)
        courses = run.load_split(split)["course_id"]
        assert sorted(scores.course_ids) == sorted(courses)
        assert scores.scores.shape == (len(courses), len(run.model_info("main").labels))
        assert np.isfinite(scores.scores.astype(np.float32)).all()


def test_rungs_are_capped_at_the_training_split_and_sorted():
    assert scaling.rung_sizes([400, 100, 200, 100], available=150) == [100, 150]


def test_the_ladder_test_courses_are_a_seeded_subset_of_patients():
    test = pd.DataFrame({"patient_id": [f"p{i // 2}" for i in range(20)], "x": range(20)})
    chosen = scaling.ladder_test_courses(test, 3, seed=1)
    assert chosen["patient_id"].nunique() == 3 and len(chosen) == 6  # two courses each
    assert chosen.equals(scaling.ladder_test_courses(test, 3, seed=1))
    assert scaling.ladder_test_courses(test, None, seed=1) is test
    assert len(scaling.ladder_test_courses(test, 100, seed=1)) == 20


def test_open_ladder_writes_the_scored_subset_and_says_so(ladder_run, capsys):
    root, _, ladder, _ = ladder_run
    assert ladder.sizes == [20, 40, 60] and ladder.available == 60
    assert ladder.scored_dir == root / "ladder_prepared"
    scored = pd.read_parquet(ladder.scored_dir / "test.parquet")
    assert scored["patient_id"].nunique() == 6 and len(scored) == len(ladder.scored_ids)
    scaling.open_ladder(root, [20], test_patients=None, seed=1)
    assert capsys.readouterr().out == ("60 training patients; rungs: [20]\n"
                                       f"rungs are scored on {len(ladder.codes)} test courses\n")


def test_every_rung_is_scored_on_the_same_courses_at_its_own_threshold(ladder_run):
    root, _, ladder, table = ladder_run
    run = Run(root)
    # 60 is the whole split: the main model saw no more patients, so it adds no row
    assert table["model"].tolist() == ["ladder"] * 3
    assert table["train_patients"].tolist() == [20, 40, 60]
    assert list(table.columns) == scaling.LADDER_COLUMNS
    for row in table.itertuples():
        name = f"ladder_{row.train_patients}"
        scores = run.load_predictions(name, "test")
        assert sorted(scores.course_ids) == sorted(ladder.scored_ids)
        assert run.model_info(name).threshold == row.threshold
        expected = evaluation.evaluate_courses(scores.course_ids, scores.scores, scores.labels,
                                               ladder.codes, row.threshold)
        assert table.loc[row.Index, "map"] == pytest.approx(expected["map"])
        assert 0 <= row.f1_micro <= 1


def test_a_main_model_larger_than_the_ladder_is_the_last_row(ladder_run, capsys):
    root, _, _, _ = ladder_run
    with one_thread():
        small = scaling.open_ladder(root, [20], test_patients=6, seed=1)
        table = scaling.run_ladder(small, CONFIG)
    assert table["model"].tolist() == ["ladder", "main model (chapter 2)"]
    assert table["train_patients"].tolist() == [20, 60]
    assert "last row: the main model of chapter 2 (60 patients, tiny, 1 epoch(s))" in (
        capsys.readouterr().out)


def test_growth_sets_our_rise_beside_the_study_s():
    names = list(study.METRIC_NAMES)
    table = pd.DataFrame([dict.fromkeys(names, 0.2), dict.fromkeys(names, 0.5)])
    growth = scaling.growth(table).set_index("metric")
    assert growth["ours_gain"].tolist() == pytest.approx([0.3] * len(names))
    assert growth.loc["Mean average precision", "study_50K"] == 0.724
    assert growth.loc["Mean average precision", "study_1.8M"] == 0.828
    assert growth.loc["Mean average precision", "study_gain"] == pytest.approx(0.104)
    long = scaling.metrics_long(table.assign(train_patients=[20, 40]))
    assert long.loc[long["metric"] == "F1 micro", "value"].tolist() == [0.2, 0.5]
    assert len(long) == 2 * len(names) and set(long["metric"]) == set(study.METRIC_NAMES.values())
    assert set(scaling.study_level3()["train_patients"]) == {50_000, 100_000, 200_000, 500_000,
                                                            1_000_000, 1_800_000}
