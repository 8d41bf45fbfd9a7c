"""medcoding.analysis.training: the training chapter's tables, on a tiny model trained here."""

from __future__ import annotations

import pandas as pd
import pytest
from prepared_fixture import one_thread, train_tiny_model

from medcoding import modeldir
from medcoding.analysis import training


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    with one_thread():
        root = train_tiny_model(tmp_path_factory.mktemp("training"))
    return {"3": root / "model"}


def test_the_log_holds_every_epoch_of_every_level(models):
    log = training.training_log(models)
    assert log["level"].tolist() == ["3", "3", "3"] and log["epoch"].tolist() == [1, 2, 3]
    curves = training.curves(log)
    assert len(curves) == 9  # 3 epochs x loss, val MAP, val micro F1
    assert sorted(set(curves["series"])) == ["level 3: loss", "level 3: val_f1_micro",
                                             "level 3: val_map"]
    val_map = curves[curves["series"] == "level 3: val_map"]["value"].tolist()
    assert val_map == log["val_map"].tolist()


def test_the_summary_is_the_best_epoch_and_the_tuned_threshold(models):
    log = training.training_log(models)
    summary = training.summaries(models).iloc[0]
    best = log.loc[log["val_map"].idxmax()]
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val_map"] == pytest.approx(best["val_map"])
    info = modeldir.info(models["3"])
    assert summary["threshold"] == info.threshold and summary["labels"] == len(info.labels) > 0
    assert 0 < summary["frequency_baseline_val_map"] < 1


def test_timing_sums_the_seconds_of_the_epochs():
    log = pd.DataFrame({"level": ["3", "3", "full"], "epoch": [1, 2, 1],
                        "seconds": [10.0, 14.0, 5.0], "tokens_per_s": [100.0, 300.0, 50.0]})
    timing = training.timing(log).set_index("level")
    assert timing.loc["3"].tolist() == [2, 24.0, 200.0]
    assert timing.loc["full"].tolist() == [1, 5.0, 50.0]


def test_the_set_up_table_puts_the_profile_beside_the_study():
    table = training.settings_beside_study("minilm", 1550, 1, 8, 1e-4, 2, 0.0)
    assert table.values.tolist() == [
        ["encoder", "minilm", "Danish BERT-base"],
        ["training patients", "1,550", "1,800,000"],
        ["epochs", "1", "10"],
        ["batch size", "8", "128"],
        ["learning rate", "0.0001", "5e-05"],
        ["patience", "2", "2"],
        ["encoder dropout", "0", "not stated"],
        ["encoder layers", "all, all trained", "all 12, all trained"],
    ]
    everyone = training.settings_beside_study("tiny", None, 1, 16, 1e-3, 2, None, 3, 1)
    assert everyone.loc[1, "this book"] == "all"
    assert everyone.loc[6, "this book"] == "the encoder's own"
    assert everyone.loc[7, "this book"] == "first 3; embeddings and first 1 frozen"
