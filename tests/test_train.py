"""Training: learnability, model directory, exact resume, 2-process gloo data parallel."""


import numpy as np
import pandas as pd
import pytest
import torch
from prepared_fixture import one_thread, write_prepared
from safetensors.torch import load_file

from medcoding.config import ConfigError
from medcoding.encoding import load_encoder_and_tokenizer
from medcoding.train import (
    TrainConfig,
    batch_targets,
    fit,
    frequency_baseline_map,
    parameter_groups,
    split_label_matrix,
    split_path,
    split_texts,
    train,
    training_subset,
)

QUICK = {"encoder": "tiny", "learning_rate": 2e-3, "batch_size": 16, "warmup_fraction": 0.0,
         "progress": False}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    with one_thread():
        yield


def test_frequency_baseline_map_breaks_ties_as_medcoding_metrics():
    train_targets = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=bool)  # 2/3, 2/3, 1/3
    # label 1 ties with label 0 (AP 1/2); label 2 ranks last of 3 (AP 1/3)
    val_targets = np.array([[0, 1, 0], [0, 0, 1]], dtype=bool)
    assert frequency_baseline_map(train_targets, val_targets) == pytest.approx((1 / 2 + 1 / 3) / 2)
    # label 0 ties with label 1: 1/2 (scikit-learn's rule), not the 1 of a stable sort
    assert frequency_baseline_map(train_targets, np.array([[1, 0, 0]])) == pytest.approx(1 / 2)


def test_targets_read_from_arrow_equal_label_matrix_and_stay_sparse(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medcoding import metrics

    codes = [["B", "A", "B", "Z"], [], ["A"], ["Z", "Z"], ["C", "B"]]  # repeats, unknown Z
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"codes": codes, "text": list("abcde")}), path, row_group_size=2)
    expected = metrics.label_matrix(codes, ["A", "B", "C"])
    found = split_label_matrix(path, "codes", ["A", "B", "C"])
    assert found.dtype == bool and found.shape == expected.shape
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(found, part), getattr(expected, part)), part
    rows = batch_targets(found, [4, 0, 4], torch.device("cpu"))
    assert rows.dtype == torch.float32
    assert rows.tolist() == [[0, 1, 1], [1, 1, 0], [0, 1, 1]]
    assert list(split_texts(tmp_path, "train", np.array([1, 2, 4]))) == ["b", "c", "e"]


def test_an_empty_text_is_named_without_reading_the_split_whole(tmp_path):
    prepared = write_prepared(tmp_path / "prepared", n_train=8, n_val=4, n_test=4)
    frame = pd.read_parquet(prepared / "val.parquet")
    frame.loc[2, "text"] = None
    frame.to_parquet(prepared / "val.parquet")
    assert split_path(prepared, "train") == prepared / "train.parquet"
    with pytest.raises(ValueError, match=r"'text' is empty in rows \[2\] \(course_id \['V00002'"):
        split_path(prepared, "val")


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
def test_two_process_gloo_run_matches_single_process(tmp_path, monkeypatch):
    prepared = write_prepared(tmp_path / "prepared", n_train=48, n_val=16, median_words=40)
    texts = pd.read_parquet(prepared / "train.parquet")["text"].tolist()
    encoder, tokenizer = load_encoder_and_tokenizer("tiny", texts, seed=0)
    encoder.config.hidden_dropout_prob = encoder.config.attention_probs_dropout_prob = 0.0
    encoder_dir = tmp_path / "encoder"
    encoder.save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    # the last step of each epoch holds one document: the second process's share is empty
    config = TrainConfig(encoder=str(encoder_dir), epochs=2, learning_rate=1e-3,
                         batch_size=len(texts) - 1, token_budget=1024, precision="fp32",
                         progress=False)
    fit(prepared, tmp_path / "single", config, processes=1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = fit(prepared, tmp_path / "ddp", config, processes=2)
    assert result.finished and result.steps == 4 and result.model_dir == tmp_path / "ddp"
    single = load_file(tmp_path / "single" / "model.safetensors")
    parallel = load_file(tmp_path / "ddp" / "model.safetensors")
    for name in single:
        torch.testing.assert_close(parallel[name], single[name], atol=2e-5, rtol=1e-4)
    logs = [pd.read_csv(tmp_path / name / "train_log.csv") for name in ("single", "ddp")]
    np.testing.assert_allclose(logs[1]["loss"], logs[0]["loss"], rtol=1e-5)
    assert not (tmp_path / "ddp" / "checkpoint").exists()
    assert not (tmp_path / "single" / "checkpoint").exists()


def test_the_command_line_and_the_package_resolve_the_same_config(tmp_path):
    from medcoding.train import config_from_args, parse_args

    base = ["--data", "d", "--out", "o"]
    for encoder, rate in (("tiny", 1e-3), ("minilm", 5e-5)):
        from_flags = config_from_args(parse_args(base + ["--encoder", encoder])).resolved()
        assert from_flags == TrainConfig(encoder=encoder).resolved()
        assert (from_flags.label_query_std, from_flags.learning_rate) == (0.02, rate)
    path = tmp_path / "config.json"
    path.write_text('{"encoder": "tiny", "epochs": 3, "label_query_std": 0.5}')
    config = config_from_args(parse_args(base + ["--config", str(path), "--epochs", "4"]))
    assert (config.encoder, config.epochs, config.label_query_std) == ("tiny", 4, 0.5)
    path.write_text('{"encoder": "tiny", "epoch": 3}')
    with pytest.raises(ConfigError, match=f"{path}.*unknown key 'epoch'.*did you mean 'epochs'"):
        config_from_args(parse_args(base + ["--config", str(path)]))


def test_train_config_refuses_unknown_keys_wrong_types_and_out_of_range_values():
    with pytest.raises(ConfigError, match="profile: unknown key 'learningrate'.*'learning_rate'"):
        TrainConfig.from_dict({"learningrate": 1e-3}, "profile")
    with pytest.raises(ConfigError, match=r"epochs = '3': input should be a valid integer"):
        TrainConfig.from_dict({"epochs": "3"})
    with pytest.raises(ConfigError, match="learning_rate = '1e-4'.*valid number"):
        TrainConfig.from_dict({"learning_rate": "1e-4"})  # YAML reads 1e-4 as a string
    with pytest.raises(ConfigError, match="warmup_fraction = 1.5.*less than or equal to 1"):
        TrainConfig(warmup_fraction=1.5)
    with pytest.raises(ConfigError, match="precision = 'bf32'.*'auto', 'bf16' or 'fp32'"):
        TrainConfig(precision="bf32")
    with pytest.raises(ConfigError, match="progress = 1: input should be a valid boolean"):
        TrainConfig.from_dict({"progress": 1})
    assert TrainConfig.from_dict({"learning_rate": 1, "train_size": None}).learning_rate == 1.0
    assert "\n" not in str(pytest.raises(ConfigError, TrainConfig, epochs=0).value)


def test_no_weight_decay_on_biases_and_layer_norm_weights():
    from medcoding.model import PLMCA, PLMCAConfig

    encoder, tokenizer = load_encoder_and_tokenizer("tiny", ["a few words of text"], seed=0)
    model = PLMCA(PLMCAConfig(encoder=encoder.config.to_dict(), n_labels=3,
                              pad_token_id=tokenizer.pad_token_id), encoder)
    config = TrainConfig(learning_rate=1e-4, head_learning_rate=1e-3, weight_decay=0.01)
    names = {id(param): name for name, param in model.named_parameters()}
    groups = {(group["lr"], group["weight_decay"]): sorted(names[id(p)] for p in group["params"])
              for group in parameter_groups(model, config)}
    assert sorted(groups) == [(1e-4, 0.0), (1e-4, 0.01), (1e-3, 0.0), (1e-3, 0.01)]
    assert sum(len(group) for group in groups.values()) == len(names)  # each parameter once
    encoder_decayed, encoder_kept = groups[(1e-4, 0.01)], groups[(1e-4, 0.0)]
    assert "encoder.embeddings.word_embeddings.weight" in encoder_decayed
    assert "encoder.encoder.layer.0.attention.self.query.weight" in encoder_decayed
    assert "encoder.encoder.layer.0.attention.self.query.bias" in encoder_kept
    assert "encoder.embeddings.LayerNorm.weight" in encoder_kept
    assert all(name.endswith("bias") or "LayerNorm" in name for name in encoder_kept)
    assert not any(name.endswith("bias") or "LayerNorm" in name for name in encoder_decayed)
    assert groups[(1e-3, 0.0)] == ["label_attention.norm.bias", "label_attention.norm.weight",
                                   "label_attention.output_bias", "label_attention.value.bias"]
    assert groups[(1e-3, 0.01)]  # the label queries and projections decay


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


def test_encoder_dropout_is_a_recorded_setting(tmp_path):
    """encoder_dropout=0 switches every dropout of the encoder off and config.json says so; the
    default keeps the encoder's own."""
    import json

    prepared = write_prepared(tmp_path / "prepared", n_train=40, median_words=20)
    train(prepared, tmp_path / "off", TrainConfig(**QUICK, epochs=1, encoder_dropout=0.0))
    train(prepared, tmp_path / "own", TrainConfig(**QUICK, epochs=1))
    off = json.loads((tmp_path / "off" / "config.json").read_text())["encoder"]
    own = json.loads((tmp_path / "own" / "config.json").read_text())["encoder"]
    assert off["hidden_dropout_prob"] == off["attention_probs_dropout_prob"] == 0.0
    assert own["hidden_dropout_prob"] > 0 and own["attention_probs_dropout_prob"] > 0
    from medcoding.model import PLMCA

    model = PLMCA.from_pretrained(tmp_path / "off")
    assert all(m.p == 0.0 for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout))
    with pytest.raises(ConfigError, match="encoder_dropout"):
        TrainConfig(**QUICK, encoder_dropout=1.5)


def test_a_shortened_partly_frozen_encoder_trains_only_its_upper_layers(tmp_path):
    """encoder_layers=1 saves a one-layer encoder that from_pretrained reads back; with
    frozen_layers=1 the embeddings and that layer keep their initial weights while the label
    attention moves, and a depth the encoder lacks is refused."""
    from medcoding.model import PLMCA

    prepared = write_prepared(tmp_path / "prepared", n_train=40, median_words=20)
    train(prepared, tmp_path / "short", TrainConfig(**QUICK, epochs=1, encoder_layers=1))
    short = PLMCA.from_pretrained(tmp_path / "short")
    assert short.encoder.config.num_hidden_layers == len(short.encoder.encoder.layer) == 1

    train(prepared, tmp_path / "frozen", TrainConfig(**QUICK, epochs=1, frozen_layers=1,
                                                    stop_after_steps=1, checkpoint_every=1))
    start = load_file(tmp_path / "frozen.partial" / "model.safetensors")
    train(prepared, tmp_path / "frozen", TrainConfig(**QUICK, epochs=1, frozen_layers=1),
          resume=True)
    end = load_file(tmp_path / "frozen" / "model.safetensors")
    frozen = [name for name in end if ".embeddings." in name or ".layer.0." in name]
    trained = [name for name in end if ".layer.1." in name or "label_attention" in name]
    assert frozen and trained
    assert all(torch.equal(start[name], end[name]) for name in frozen)
    assert sum(not torch.equal(start[name], end[name]) for name in trained) > len(trained) // 2
    with pytest.raises(ValueError, match="frozen_layers=3: the encoder has only 2 layers"):
        train(prepared, tmp_path / "deep", TrainConfig(**QUICK, epochs=1, frozen_layers=3))


def test_document_markers_put_cls_and_sep_around_each_document_once(tmp_path):
    """document_markers=True (the study authors' convention) records [cls id, sep id] in
    config.json; scoring, training batches and explanations then read a document as [CLS] +
    tokens + [SEP]: the same scores as unmarked scoring of hand-marked documents, other scores
    than the same weights reading the bare tokens, and attributions over the text tokens only."""
    from medcoding.encoding import MarkedDocuments, encode_texts, write_token_store
    from medcoding.explain.attribution import attingrad
    from medcoding.model import PLMCA, score_token_arrays
    from medcoding.train import config_from_args, parse_args

    prepared = write_prepared(tmp_path / "prepared", n_train=40, median_words=150)
    train(prepared, tmp_path / "marked", TrainConfig(**QUICK, epochs=1, document_markers=True))
    model = PLMCA.from_pretrained(tmp_path / "marked")
    tokenizer = model.tokenizer
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert model.config.document_markers == [cls_id, sep_id]

    texts = pd.read_parquet(prepared / "val.parquet")["text"].tolist()[:6]
    documents = encode_texts(tokenizer, texts)
    assert max(len(doc) for doc in documents) > 128  # some documents span two windows
    store = MarkedDocuments(write_token_store(tmp_path / "store", tokenizer, texts),
                            (cls_id, sep_id))
    assert (store.lengths() == [len(doc) + 2 for doc in documents]).all()
    assert all(store[i][0] == cls_id and store[i][-1] == sep_id and
               np.array_equal(store[i][1:-1], documents[i]) for i in range(len(documents)))

    marked = score_token_arrays(model, documents, precision="fp32")
    model.config.document_markers = None
    by_hand = score_token_arrays(model, [store[i] for i in range(len(store))], precision="fp32")
    bare = score_token_arrays(model, documents, precision="fp32")
    torch.testing.assert_close(marked, by_hand, atol=1e-6, rtol=0)
    assert float((marked - bare).abs().max()) > 1e-4

    model.config.document_markers = [cls_id, sep_id]
    explanation = attingrad(model, tokenizer, texts[0], [0, 1])
    assert explanation.token_spans.shape == (len(documents[0]), 2)
    np.testing.assert_allclose(explanation.token_scores.sum(axis=1), 1.0, atol=1e-9)

    flags = config_from_args(parse_args(["--data", "d", "--out", "o", "--document-markers"]))
    assert flags.document_markers and not config_from_args(
        parse_args(["--data", "d", "--out", "o"])).document_markers
