"""medcoding.runs: the run layout, prediction files, the synthetic flag and course rows."""

from __future__ import annotations

import explain_fixture as fx
import numpy as np
import pandas as pd
import pytest

from medcoding.runs import Run, is_synthetic, load_course, load_predictions, save_predictions


def test_run_paths_and_tables(tmp_path):
    from medcoding import figures

    run = Run(tmp_path)
    assert run.model_dir("main") == tmp_path / "models" / "main"
    assert run.predictions_dir("main") == tmp_path / "predictions" / "main"
    assert run.split_path("test") == tmp_path / "prepared" / "test.parquet"
    with pytest.raises(ValueError, match="split 'holdout'"):
        run.split_path("holdout")
    with pytest.raises(FileNotFoundError, match="medcoding prepare"):
        run.load_split("test")
    frame = pd.DataFrame({"metric": ["f1"], "value": [0.123456]})
    shown = figures.table(frame, tmp_path, "results")
    assert shown["value"].tolist() == [0.123]  # rounded for display
    assert pd.read_csv(tmp_path / "tables" / "results.csv")["value"].tolist() == [0.123456]
    assert [p.name for p in (tmp_path / "tables").iterdir()] == ["results.csv"]
    assert run.explorer_page("gallery", "x/../y").parent == tmp_path / "explorer"
    run.save_predictions("m", "test", ["a"], np.array([[0.25]]), ["E11"], level="3")
    assert run.has_predictions("m") and not run.has_predictions("m", "val")
    assert run.load_predictions("m").scores.tolist() == [[0.25]]


def test_save_and_load_predictions_round_trip(tmp_path):
    scores = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    labels = ["E66", "I10", "J18"]
    path = save_predictions(tmp_path, "test", ["a", "b", "c", "d", "e"], scores, labels)
    assert path == tmp_path / "test.parquet"
    assert [p.name for p in tmp_path.iterdir()] == ["test.parquet"]  # no temporary files left
    loaded = load_predictions(tmp_path, "test")
    assert loaded.labels == labels and loaded.course_ids.tolist() == list("abcde")
    assert loaded.scores.dtype == np.float16 and loaded.scores.shape == (5, 3)
    np.testing.assert_array_equal(loaded.scores, scores.astype(np.float16))
    with pytest.raises(ValueError, match="expected"):
        save_predictions(tmp_path, "val", ["a"], scores, labels)
    with pytest.raises(FileNotFoundError, match="medcoding predict"):
        load_predictions(tmp_path, "val")
    assert (loaded.precision, loaded.level) == (None, None)
    save_predictions(tmp_path, "val", ["a"], scores[:1], labels, precision="bf16", level="full")
    assert (load_predictions(tmp_path, "val").precision,
            load_predictions(tmp_path, "val").level) == ("bf16", "full")


def test_synthetic_is_read_from_the_prepared_manifest_only(tmp_path):
    """A real cohort prepared into a run directory whose data/ still holds an earlier synthetic
    cohort (``make book``, then ``-p cohort_dir data/contract``) is real: no text in pages."""
    from medcoding.io import write_json

    prepared = tmp_path / "run" / "prepared"
    prepared.mkdir(parents=True)
    write_json(tmp_path / "run" / "data" / "manifest.json", {"synthetic": True})
    assert is_synthetic(prepared) is False  # no prepared manifest: unknown means real
    write_json(prepared / "manifest.json", {"input_manifest": {"synthetic": False}})
    assert is_synthetic(prepared) is False
    for unclear in ({}, {"synthetic": True}, {"input_manifest": {"synthetic": "yes"}},
                    {"input_manifest": None}):
        write_json(prepared / "manifest.json", unclear)
        assert is_synthetic(prepared) is False, unclear
    write_json(prepared / "manifest.json", {"input_manifest": {"synthetic": True}})
    assert is_synthetic(prepared) is True


def test_prepare_writes_what_is_synthetic_reads(tmp_path):
    from medcoding.cohort.preprocess import prepare
    from medcoding.cohort.synthetic import generate

    generate(60, 0, tmp_path / "data")
    prepare(tmp_path / "data", tmp_path / "prepared")
    assert is_synthetic(tmp_path / "prepared") is True


def test_missing_course_names_file_column_and_examples(tmp_path):
    prepared = fx.write_prepared(tmp_path / "prepared", n_train=8, n_test=4)
    with pytest.raises(KeyError, match=r"test.parquet: no row with course_id 'nope'.*X0000"):
        load_course(prepared, "test", "nope")
    with pytest.raises(FileNotFoundError, match="--split"):
        load_course(prepared, "holdout", "X0000")
