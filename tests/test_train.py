"""Training: learnability, model directory, exact resume, 2-process gloo data parallel."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from prepared_fixture import one_thread, write_prepared
from safetensors.torch import load_file

from medcoding.encoding import load_encoder_and_tokenizer
from medcoding.train import (
    TrainConfig,
    f1_micro,
    main,
    mean_average_precision,
    train,
    training_subset,
)

QUICK = {"encoder": "tiny", "learning_rate": 2e-3, "batch_size": 16, "warmup_fraction": 0.0,
         "progress": False}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    with one_thread():
        yield


def test_mean_average_precision_by_hand():
    targets = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=bool)
    scores = np.array([[0.9, 0.8, 0.1], [0.2, 0.3, 0.1], [0.5, 0.5, 0.5]])
    # document 1: relevant at ranks 1 and 3 -> (1 + 2/3) / 2; document 2: rank 1 -> 1
    assert mean_average_precision(targets, scores) == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert f1_micro(targets, scores, 0.5) == pytest.approx(2 * 1 / (5 + 3))


def test_training_subset_is_nested_by_patient_rank():
    frame = pd.DataFrame({"patient_rank": [3, 0, 2, 1], "text": list("abcd")})
    assert training_subset(frame, 2)["text"].tolist() == ["b", "d"]
    assert set(training_subset(frame, 2)["text"]) < set(training_subset(frame, 3)["text"])
    with pytest.raises(ValueError, match="selects no training course"):
        training_subset(frame, 0)


@pytest.mark.slow
def test_tiny_model_learns_far_beyond_the_frequency_baseline(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=200, median_words=30)
    result = train(prepared, tmp_path / "model", TrainConfig(**QUICK, epochs=5, patience=5))
    names = {path.name for path in (tmp_path / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_log.csv",
            "train_summary.json", "complete.json"} <= names
    log = pd.read_csv(tmp_path / "model" / "train_log.csv")
    assert list(log.columns) == ["epoch", "loss", "val_map", "val_f1_micro", "seconds",
                                 "tokens_per_s"]
    assert len(log) == 5 and log["loss"].iloc[-1] < log["loss"].iloc[0]
    assert result.best_val_map == log["val_map"].max()
    assert result.best_val_map > result.frequency_baseline_map + 0.2, (result.best_val_map,
                                                                       result.frequency_baseline_map)


def test_resume_mid_epoch_ends_with_identical_weights(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=64, n_val=16, median_words=40)
    config = dict(QUICK, epochs=2, checkpoint_every=0)
    train(prepared, tmp_path / "full", TrainConfig(**config))
    stopped = train(prepared, tmp_path / "resumed", TrainConfig(**config, stop_after_steps=6))
    assert not stopped.finished and stopped.steps == 6  # 4 steps per epoch: mid second epoch
    with pytest.raises(ValueError, match="settings differ"):
        train(prepared, tmp_path / "resumed", TrainConfig(**dict(config, batch_size=8)),
              resume=True)
    result = train(prepared, tmp_path / "resumed", TrainConfig(**config), resume=True)
    assert result.finished and result.steps == 8
    full = load_file(tmp_path / "full" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    logs = [pd.read_csv(tmp_path / name / "train_log.csv") for name in ("full", "resumed")]
    pd.testing.assert_frame_equal(logs[0][["epoch", "loss", "val_map"]],
                                  logs[1][["epoch", "loss", "val_map"]])


def test_resume_without_checkpoint_names_the_fix(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=8, n_val=4, n_test=4)
    with pytest.raises(FileNotFoundError, match="without\n?.*--resume"):
        train(prepared, tmp_path / "model", TrainConfig(**QUICK), resume=True)


@pytest.mark.slow
def test_two_process_gloo_run_matches_single_process(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=48, n_val=16, median_words=40)
    texts = pd.read_parquet(prepared / "train.parquet")["text"].tolist()
    encoder, tokenizer = load_encoder_and_tokenizer("tiny", texts, seed=0)
    encoder.config.hidden_dropout_prob = encoder.config.attention_probs_dropout_prob = 0.0
    encoder_dir = tmp_path / "encoder"
    encoder.save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    args = ["--data", str(prepared), "--encoder", str(encoder_dir), "--epochs", "2", "--lr",
            "1e-3", "--batch-size", "16", "--no-bf16", "--token-budget", "1024"]
    assert main(args + ["--out", str(tmp_path / "single")]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_port=29517", "-m", "medcoding.train", *args, "--out", str(tmp_path / "ddp")],
        env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    single = load_file(tmp_path / "single" / "model.safetensors")
    parallel = load_file(tmp_path / "ddp" / "model.safetensors")
    for name in single:
        torch.testing.assert_close(parallel[name], single[name], atol=2e-5, rtol=1e-4)
    assert not (tmp_path / "ddp" / "checkpoint").exists()


def test_validation_metrics_agree_with_medcoding_metrics():
    metrics = pytest.importorskip("medcoding.metrics")
    rng = np.random.default_rng(0)
    targets = rng.random((60, 15)) < 0.15
    targets[0] = False  # a document without codes is left out of MAP by both
    scores = rng.random((60, 15)).astype(np.float32)
    reference = metrics.evaluate(targets, scores, threshold=0.5)
    assert mean_average_precision(targets, scores) == pytest.approx(reference["map"])
    assert f1_micro(targets, scores, 0.5) == pytest.approx(reference["f1_micro"])


def weights_of(directory):
    return load_file(directory / "model.safetensors")


def test_training_into_a_model_directory_never_loses_the_model(tmp_path):
    from medcoding.predict import Coder

    prepared = write_prepared(tmp_path / "prepared", n_train=32, n_val=8, n_test=4,
                              median_words=20)
    config = dict(QUICK, epochs=1, checkpoint_every=0)
    out = tmp_path / "model"
    train(prepared, out, TrainConfig(**config))
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    with pytest.raises(FileExistsError, match="already holds a model.*--overwrite"):
        train(prepared, out, TrainConfig(**dict(config, seed=1)))
    stopped = train(prepared, out, TrainConfig(**dict(config, seed=1), stop_after_steps=1),
                    overwrite=True)  # interrupted: the old model stays whole and loadable
    assert not stopped.finished
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
    Coder.from_pretrained(out)
    partial = tmp_path / "model.partial"
    with pytest.raises(ValueError, match="not a finished model directory"):
        Coder.from_pretrained(partial)
    result = train(prepared, out, TrainConfig(**dict(config, seed=1)), resume=True,
                   overwrite=True)
    assert result.finished and result.model_dir == out and not partial.exists()
    assert (out / "complete.json").is_file()
    assert (out / "model.safetensors").read_bytes() != before["model.safetensors"]
    Coder.from_pretrained(out)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    import medcoding.train as train_module

    prepared = write_prepared(tmp_path / "prepared", n_train=32, n_val=8, n_test=4,
                              median_words=20)
    config = dict(QUICK, epochs=2, checkpoint_every=1)  # 2 steps per epoch
    train(prepared, tmp_path / "full", TrainConfig(**config))
    real_save = torch.save
    calls = {"optimizer": 0}

    def disk_full_on_second_optimizer_write(obj, path, *args, **kwargs):
        if "optimizer" in str(path):
            calls["optimizer"] += 1
            if calls["optimizer"] == 2:
                raise OSError(28, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(train_module.torch, "save", disk_full_on_second_optimizer_write)
    with pytest.raises(OSError, match="No space left"):
        train(prepared, tmp_path / "resumed", TrainConfig(**config))
    monkeypatch.setattr(train_module.torch, "save", real_save)
    result = train(prepared, tmp_path / "resumed", TrainConfig(**config), resume=True)
    assert result.finished and result.steps == 4
    full, resumed = weights_of(tmp_path / "full"), weights_of(tmp_path / "resumed")
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


def test_resume_with_other_data_is_refused_before_anything_is_written(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=32, n_val=8, n_test=4,
                              median_words=20)
    other = write_prepared(tmp_path / "other", n_train=40, n_val=8, n_test=4, median_words=20,
                           seed=3)
    config = dict(QUICK, epochs=1, checkpoint_every=0)
    train(prepared, tmp_path / "model", TrainConfig(**config, stop_after_steps=1))
    labels = (tmp_path / "model.partial" / "config.json").read_bytes()
    with pytest.raises(ValueError, match="differ from the data the interrupted run") as error:
        train(other, tmp_path / "model", TrainConfig(**config), resume=True)
    assert str(other) in str(error.value)
    assert (tmp_path / "model.partial" / "config.json").read_bytes() == labels
