"""Benchmark records: the headline figures of each benchmark as JSON, and the README table.

A benchmark ends with ``record(name, command, summary, figures)``: ``summary`` is the README
cell, written by the benchmark from what it measured; ``figures`` the numbers behind it. The
record is printed (one ``BENCH {...}`` line) and, when ``$MEDCODING_BENCH_DIR`` is set
(``run_all.py`` sets it to ``benchmarks/results``), written there as ``NAME.json`` with the
machine it ran on. ``run_all.py --readme`` rewrites the README's benchmark table from those
files, so the README shows only figures a benchmark printed; ``tests/test_benchmark_records.py``
fails when the README and the records disagree.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
from pathlib import Path

RECORD_DIR_ENV = "MEDCODING_BENCH_DIR"
START = "<!-- benchmarks:start (written by benchmarks/run_all.py --readme; do not edit) -->"
END = "<!-- benchmarks:end -->"


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (``platform.processor()`` where /proc/cpuinfo cannot be read)."""
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where a benchmark ran: CPU, cores, load average at the end, date (UTC)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_1min": round(load, 1),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")}


def record(name: str, command: str, summary: str, figures: dict) -> dict:
    """Print the benchmark's record and write it to ``$MEDCODING_BENCH_DIR/NAME.json`` if set."""
    entry = {"name": name, "command": command, "summary": summary, "figures": figures,
             "machine": machine()}
    print("BENCH " + json.dumps(entry, sort_keys=True), flush=True)
    directory = os.environ.get(RECORD_DIR_ENV)
    if directory:
        write_record(Path(directory), entry)
    return entry


def write_record(directory: Path, entry: dict) -> Path:
    """Write ``entry`` as ``directory/NAME.json``, whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{entry['name']}.json"
    with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as handle:
        json.dump(entry, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(handle.name, target)
    return target


def read_records(directory: Path, order: list[str]) -> list[dict]:
    """The records in ``directory`` by benchmark in ``order``, then by name (``prepare_2000000``
    after ``prepare_1000000``: a benchmark run at several sizes records each under its own name);
    benchmarks never run are left out."""
    found = [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]

    def rank(entry: dict) -> tuple[int, int, str]:
        base, _, size = entry["name"].rpartition("_")
        if not size.isdigit():  # no size suffix
            base, size = entry["name"], "0"
        return order.index(base) if base in order else len(order), int(size), entry["name"]

    return sorted(found, key=rank)


def readme_table(records: list[dict]) -> str:
    """The README's benchmark table: one row per record, its machine beside its figures."""
    rows = ["| benchmark | figures | machine |", "|---|---|---|"]
    for entry in records:
        where = entry["machine"]
        rows.append(f"| `{entry['command']}` | {entry['summary']} | {where['cpu']}, "
                    f"{where['cores']} cores, load {where['load_1min']}, {where['date']} |")
    return "\n".join(rows)


def replace_section(text: str, table: str, path: str = "README.md") -> str:
    """``text`` with the part between the benchmark markers replaced by ``table``."""
    if START not in text or END not in text:
        raise ValueError(f"{path}: the benchmark markers are missing; put the two lines\n"
                         f"{START}\n{END}\nwhere the benchmark table belongs")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"
