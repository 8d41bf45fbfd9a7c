"""Prediction: Coder, top-k suggestions, prediction files, the predict command."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from prepared_fixture import one_thread, train_tiny_model, trigger_words

from medcoding.predict import Coder, main, predict_split
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
