"""Prediction: Coder, top-k suggestions, prediction files, the predict command."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from prepared_fixture import one_thread, train_tiny_model, trigger_words

from medcoding.predict import Coder, EmptyTextWarning, main, predict_split
from medcoding.runs import load_predictions


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("predict"))


def test_coder_scores_and_suggests(model_dir):
    coder = Coder.from_pretrained(model_dir / "model")
    assert coder.labels == sorted(coder.labels) and len(coder.labels) == 10  # level 3
    test = pd.read_parquet(model_dir / "prepared" / "test.parquet")
    scores = coder.score(test)
    assert scores.shape == (12, 10) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(coder.score(test.iloc[::-1])[::-1], scores, atol=1e-6)
    suggestions = coder.suggest("e660alpha e660beta patient stable", k=4)
    assert list(suggestions.columns) == ["code", "title", "score", "above_threshold"]
    assert len(suggestions) == 4 and suggestions["score"].is_monotonic_decreasing
    assert suggestions["title"].map(type).eq(str).all()
    with pytest.raises(ValueError, match="'text' column"):
        coder.score(pd.DataFrame({"note": ["x"]}))


def test_predict_split_writes_float16_scores(model_dir, tmp_path):
    predict_split(model_dir / "model", model_dir / "prepared", "test", tmp_path)
    loaded = load_predictions(tmp_path, "test")
    assert (loaded.level, loaded.precision) == ("3", Coder.from_pretrained(
        model_dir / "model").precision)
    test = pd.read_parquet(model_dir / "prepared" / "test.parquet")
    assert loaded.course_ids.tolist() == test["course_id"].tolist()
    coder = Coder.from_pretrained(model_dir / "model")
    np.testing.assert_allclose(loaded.scores.astype(np.float32), coder.score(test), atol=1e-3)


def test_predict_command(model_dir, tmp_path, capsys):
    text = " ".join(trigger_words("I21.0") + ["patient", "stable"])
    assert main(["--model", str(model_dir / "model"), "--text", text, "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "# text" and len(lines) == 4
    notes = tmp_path / "notes.parquet"
    pd.DataFrame({"course_id": ["n1", "n2"], "text": [text, "fever"]}).to_parquet(notes)
    assert main(["--model", str(model_dir / "model"), "--input", str(notes)]) == 0
    assert capsys.readouterr().out.count("# n") == 2
    assert main(["--model", str(model_dir / "model"), "--split", "val", "--prepared",
                 str(model_dir / "prepared"), "--out", str(tmp_path / "pred")]) == 0
    assert load_predictions(tmp_path / "pred", "val").scores.shape == (16, 10)


def copy_model(model_dir, tmp_path):
    import shutil

    return Path(shutil.copytree(model_dir / "model", tmp_path / "model"))


def test_empty_texts_are_scored_as_the_empty_document(model_dir, capsys):
    import warnings

    coder = Coder.from_pretrained(model_dir / "model")
    texts = ["", "   \n\t ", "\x00\x00", " ".join(trigger_words("I21.0"))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = coder.score(pd.DataFrame({"text": texts}))
    assert [str(w.message) for w in caught] == [
        "3 of 4 notes have nothing to read (empty, whitespace or NUL only; rows [0, 1, 2]): "
        "scored as the empty document, the model's prior"]
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[1], scores[0])
    np.testing.assert_array_equal(scores[2], scores[0])
    assert np.abs(scores[3] - scores[0]).max() > 0.05  # a real note moves the scores
    assert main(["--model", str(model_dir / "model"), "--text", ""]) == 0
    captured = capsys.readouterr()
    assert "scored as the empty document" in captured.err
    assert captured.out.startswith("# text\n") and len(captured.out.splitlines()) == 11


def test_nan_weights_give_an_error_not_nan_scores(model_dir, tmp_path):
    from medcoding.model import PLMCA

    directory = copy_model(model_dir, tmp_path)
    model = PLMCA.from_pretrained(directory)
    with torch.no_grad():
        model.label_attention.output_bias.fill_(float("nan"))
    model.save_pretrained(directory)  # consistent hash: only the scores can tell
    coder = Coder.from_pretrained(directory)
    with pytest.raises(ValueError, match="non-finite scores") as error:
        coder.score(pd.DataFrame({"text": ["fever"]}))
    assert str(directory) in str(error.value)
    with pytest.raises(ValueError, match=r"non-finite scores \(NaN or infinite\) for 12 of 12"):
        predict_split(directory, model_dir / "prepared", "test", tmp_path / "pred")


def test_an_unfinished_model_directory_is_refused(model_dir, tmp_path):
    directory = copy_model(model_dir, tmp_path)
    (directory / "complete.json").unlink()
    with pytest.raises(ValueError, match="not a finished model directory.*--resume"):
        Coder.from_pretrained(directory)
    with pytest.raises(ValueError, match="not a finished model directory"):
        main(["--model", str(directory), "--text", "fever"])


def test_a_file_that_is_not_utf8_is_named(model_dir, tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes("Patientin mit Übelkeit, 38,5 °C".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8") as error:
        main(["--model", str(model_dir / "model"), "--input", str(note)])
    assert str(note) in str(error.value) and "iconv" in str(error.value)


# ----------------------------------------------------------------------------- predict_split


def captured_scores(monkeypatch) -> list[np.ndarray]:
    """The scores each later ``predict_split`` call hands to ``save_predictions`` (float32,
    before the file's float16), in call order."""
    import medcoding.predict as predict

    calls: list[np.ndarray] = []
    save = predict.save_predictions

    def capture(out_dir, split, course_ids, scores, *args):
        calls.append(scores)
        return save(out_dir, split, course_ids, scores, *args)

    monkeypatch.setattr(predict, "save_predictions", capture)
    return calls


def token_stores(cache: Path) -> list[Path]:
    return sorted(path for path in cache.glob("tokens/*/*") if (path / "offsets.npy").is_file())


def copy_prepared(model_dir, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(model_dir / "prepared", tmp_path / "prepared"))


def test_predict_split_scores_as_score_texts_bit_for_bit(model_dir, tmp_path, monkeypatch):
    from medcoding.runs import save_predictions

    monkeypatch.setenv("MEDCODING_CACHE", str(tmp_path / "cache"))
    coder = Coder.from_pretrained(model_dir / "model")
    coder.token_budget = 512  # 4 windows a micro-batch: the split is scored in several
    test = pd.read_parquet(model_dir / "prepared" / "test.parquet")
    expected = coder.score_texts(test["text"].tolist())  # the whole-split path, float32
    reads = []
    read_parquet = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path, columns=None, **kwargs: (
        reads.append(columns), read_parquet(path, columns=columns, **kwargs))[1])
    calls = captured_scores(monkeypatch)
    written = predict_split(None, model_dir / "prepared", "test", tmp_path / "new", coder)
    assert all(columns is not None and "text" not in columns for columns in reads), reads
    assert calls[0].dtype == np.float32 and np.array_equal(calls[0], expected)
    old = save_predictions(tmp_path / "old", "test", test["course_id"].to_numpy(), expected,
                           coder.labels, coder.precision, coder.level)
    assert written.read_bytes() == old.read_bytes()  # the prediction file, byte for byte
    stores = token_stores(tmp_path / "cache")
    assert len(stores) == 1
    predict_split(None, model_dir / "prepared", "test", tmp_path / "again", coder)  # cached
    assert token_stores(tmp_path / "cache") == stores and np.array_equal(calls[1], expected)


def test_predict_split_reads_the_store_training_wrote(model_dir, tmp_path):
    from medcoding.encoding import cache_dir

    stores = token_stores(cache_dir())  # the session's cache: training's train and val stores
    assert stores
    predict_split(model_dir / "model", model_dir / "prepared", "val", tmp_path)
    assert token_stores(cache_dir()) == stores


def test_a_changed_split_is_tokenized_again(model_dir, tmp_path, monkeypatch):
    from medcoding.io import write_parquet

    monkeypatch.setenv("MEDCODING_CACHE", str(tmp_path / "cache"))
    prepared = copy_prepared(model_dir, tmp_path)
    coder = Coder.from_pretrained(model_dir / "model")
    calls = captured_scores(monkeypatch)
    predict_split(None, prepared, "test", tmp_path / "before", coder)
    test = pd.read_parquet(prepared / "test.parquet")
    test.loc[0, "text"] = " ".join(trigger_words("I21.0") * 3)  # same size, new words
    write_parquet(prepared / "test.parquet", test)
    predict_split(None, prepared, "test", tmp_path / "after", coder)
    assert len(token_stores(tmp_path / "cache")) == 2
    assert np.array_equal(calls[1], coder.score_texts(test["text"].tolist()))
    assert not np.array_equal(calls[1][0], calls[0][0])


def test_document_markers_are_added_once_as_for_texts(model_dir, tmp_path, monkeypatch):
    from medcoding.encoding import (
        document_markers,
        encode_texts,
        read_with_markers,
        split_token_store,
    )

    monkeypatch.setenv("MEDCODING_CACHE", str(tmp_path / "cache"))
    coder = Coder.from_pretrained(model_dir / "model")
    texts = pd.read_parquet(model_dir / "prepared" / "test.parquet")["text"].tolist()
    store = split_token_store(model_dir / "prepared", "test", coder.tokenizer, coder.max_tokens)
    encoded = encode_texts(coder.tokenizer, texts, coder.max_tokens)
    assert len(store) == len(encoded)  # the store holds encode_texts' ids: unmarked
    assert all(np.array_equal(store[row], ids) for row, ids in enumerate(encoded))
    unmarked = coder.score_texts(texts)
    markers = document_markers(coder.tokenizer)
    coder.model.config.document_markers = markers  # the model adds them when it reads
    expected = coder.score_texts(texts)
    calls = captured_scores(monkeypatch)
    predict_split(None, model_dir / "prepared", "test", tmp_path, coder)
    assert np.array_equal(calls[0], expected)
    assert not np.array_equal(expected, unmarked)  # markers change the scores, and so would
    twice = coder.score_documents(read_with_markers(store, markers))  # marking them twice
    assert not np.array_equal(twice, expected)


def test_predict_split_warns_of_empty_texts_and_refuses_missing_ones(model_dir, tmp_path,
                                                                     monkeypatch):
    import warnings

    from medcoding.io import write_parquet

    monkeypatch.setenv("MEDCODING_CACHE", str(tmp_path / "cache"))
    prepared = copy_prepared(model_dir, tmp_path)
    test = pd.read_parquet(prepared / "test.parquet")
    test.loc[[1, 4], "text"] = ["", " \n\x00 "]
    write_parquet(prepared / "test.parquet", test)
    coder = Coder.from_pretrained(model_dir / "model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = coder.score_texts(test["text"].tolist())
        calls = captured_scores(monkeypatch)
        predict_split(None, prepared, "test", tmp_path / "pred", coder)
    messages = [str(w.message) for w in caught if issubclass(w.category, EmptyTextWarning)]
    assert messages == ["2 of 12 notes have nothing to read (empty, whitespace or NUL only; "
                        "rows [1, 4]): scored as the empty document, the model's prior"] * 2
    assert np.array_equal(calls[0], expected)
    test.loc[3, "text"] = None
    write_parquet(prepared / "test.parquet", test)
    with pytest.raises(ValueError, match=r"'text' is empty in rows \[3\]") as error:
        predict_split(None, prepared, "test", tmp_path / "pred", coder)
    assert str(prepared / "test.parquet") in str(error.value)
