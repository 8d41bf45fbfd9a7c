"""Benchmark records (``benchmarks/record.py``) and the README table written from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import record  # noqa: E402
import run_all  # noqa: E402


def entry(name: str, summary: str) -> dict:
    return {"name": name, "command": f"bench_{name}.py", "summary": summary, "figures": {},
            "machine": {"cpu": "AMD EPYC", "cores": 2, "load_1min": 0.3, "date": "2026-12-02"}}


def test_records_are_read_in_benchmark_order_then_by_size(tmp_path: Path) -> None:
    for name in ("prepare_2000000", "zzz_unknown", "prepare_1000000", "generate_100000"):
        record.write_record(tmp_path, entry(name, name))
    assert not list(tmp_path.glob("*.tmp"))  # written whole, then renamed
    names = [found["name"] for found in record.read_records(tmp_path, list(run_all.BENCHMARKS))]
    assert names == ["generate_100000", "prepare_1000000", "prepare_2000000", "zzz_unknown"]


def test_the_table_shows_each_summary_beside_its_machine() -> None:
    table = record.readme_table([entry("metrics", "3,000 documents: 0.4 s")])
    assert table.splitlines() == [
        "| benchmark | figures | machine |", "|---|---|---|",
        "| `bench_metrics.py` | 3,000 documents: 0.4 s | AMD EPYC, 2 cores, load 0.3, 2026-12-02 |"]


def test_the_section_between_the_markers_is_replaced_and_nothing_else() -> None:
    text = f"intro\n{record.START}\nold rows\n{record.END}\noutro\n"
    assert record.replace_section(text, "new rows") == (
        f"intro\n{record.START}\nnew rows\n{record.END}\noutro\n")
    with pytest.raises(ValueError, match="NOTES.md: the benchmark markers are missing"):
        record.replace_section("no markers here", "rows", "NOTES.md")


def test_a_benchmark_run_writes_the_record_it_prints(tmp_path: Path) -> None:
    """``bench_generate.py`` on a tiny cohort, as ``run_all.py`` runs it (records to a folder)."""
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_generate.py"), "--courses", "60",
         "--no-measure"],
        capture_output=True, text=True, check=True,
        env={**os.environ, record.RECORD_DIR_ENV: str(tmp_path)}, cwd=tmp_path)
    printed = [json.loads(line[len("BENCH "):]) for line in completed.stdout.splitlines()
               if line.startswith("BENCH ")]
    written = json.loads((tmp_path / "generate_60.json").read_text())
    assert printed == [written]
    assert written["figures"]["courses"] > 0 and written["figures"]["seconds"] > 0
    assert f"{written['figures']['courses']:,} courses" in written["summary"]
    assert written["machine"]["cores"] == os.cpu_count()


def test_the_readme_table_is_the_one_the_records_give() -> None:
    """The README shows only figures a benchmark recorded (``run_all.py --readme`` writes it)."""
    stored = record.read_records(run_all.RESULTS, list(run_all.BENCHMARKS))
    assert stored, f"no benchmark records in {run_all.RESULTS}; run `make bench`"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(record.START, 1)[1].split(record.END, 1)[0].strip()
    assert section == record.readme_table(stored), "README out of date: run_all.py --readme"


def test_the_quick_benchmarks_run_end_to_end(tmp_path: Path) -> None:
    """``run_all.py --quick`` on the benchmarks that finish in seconds here (the GPU script falls
    back to its tiny CPU model), so a change to the package cannot break a benchmark unnoticed;
    their records go to a temporary folder, never to the README."""
    readme = (ROOT / "README.md").read_bytes()
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "gpu", "ddp",
         "metrics"], capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    ran = [line for line in completed.stdout.splitlines() if line.startswith("=== ")
           and ": exit 0," in line]
    assert [line.split()[1] for line in ran] == ["bench_gpu.py:", "bench_ddp.py:",
                                                 "bench_metrics.py:"]
    assert (ROOT / "README.md").read_bytes() == readme
