"""Generation: contract-valid, deterministic for any worker count and row-group size, streamed."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from medcoding.cohort import contract
from medcoding.cohort.synthetic import SyntheticConfig, generate
from medcoding.cohort.synthetic.generator import SCHEMAS, main

SMALL = SyntheticConfig(block_patients=60, row_group_blocks=2)


def _tables(directory) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in SCHEMAS}


def test_same_output_for_any_worker_count_and_row_group_size(tmp_path):
    generate(300, 5, tmp_path / "one", SMALL, progress=False, workers=1)
    generate(300, 5, tmp_path / "two", SMALL, progress=False, workers=2)
    bigger_groups = SyntheticConfig(block_patients=60, row_group_blocks=5)
    generate(300, 5, tmp_path / "groups", bigger_groups, progress=False)
    one, two, groups = (_tables(tmp_path / d) for d in ("one", "two", "groups"))
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(one[name], two[name])
        pd.testing.assert_frame_equal(one[name], groups[name])
    assert pq.ParquetFile(tmp_path / "one" / "notes.parquet").num_row_groups == 3
    assert pq.ParquetFile(tmp_path / "groups" / "notes.parquet").num_row_groups == 1
    generate(300, 6, tmp_path / "other", SMALL, progress=False)
    assert not _tables(tmp_path / "other")["notes"]["text"].equals(one["notes"]["text"])


def test_cohort_passes_the_contract_with_its_synthetic_tables(tmp_path):
    manifest = generate(200, 1, tmp_path, progress=False)
    cohort = contract.load(tmp_path)
    assert cohort.synthetic and cohort.code_system == "who"
    assert manifest["rows"]["courses"] == len(cohort.courses) == manifest["n_courses"]
    assert json.loads((tmp_path / "manifest.json").read_text())["config"] == \
        SyntheticConfig().to_dict()
    assert cohort.coding is not None and cohort.distractors is not None
    assert (cohort.courses["course_id"] // 100 == cohort.courses["patient_id"]).all()
    codes_per_course = cohort.codes.groupby("course_id").size()
    assert codes_per_course.median() == 2  # the study's median of human codes


def test_cli_writes_a_cohort_and_refuses_no_patients(tmp_path, capsys):
    assert main(["--patients", "30", "--seed", "2", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 0
    assert "wrote 30 patients" in capsys.readouterr().out
    assert contract.load(tmp_path / "c").synthetic
    with pytest.raises(ValueError, match="n_patients must be >= 1"):
        generate(0, 1, tmp_path / "x", progress=False)
