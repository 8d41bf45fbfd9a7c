"""Run every benchmark at its documented default size, one after another (`make bench`).

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--readme]

Each benchmark prints its figures and ratios and ends with a record (``benchmarks/record.py``);
a full-size run writes the records to ``benchmarks/results/NAME.json`` and then rewrites the
README's benchmark table from them. ``--only throughput prepare`` runs just those (their rows
are replaced, the others kept); ``--readme`` only rewrites the table from the stored records.
``--quick`` shrinks each benchmark to a size that finishes in about a minute, to check that the
scripts still run; its records go to a temporary folder and never reach the README.
This script stops at the first benchmark that fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import RECORD_DIR_ENV, read_records, readme_table, replace_section

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"

#: name: (script, arguments at the documented size, arguments for --quick)
BENCHMARKS = {
    "generate": ("bench_generate.py", ["--courses", "100000"], ["--courses", "3000"]),
    "describe": ("bench_describe.py", ["--courses", "100000"], ["--courses", "3000"]),
    "metrics": ("bench_metrics.py", [], ["--documents", "5000", "--labels", "300"]),
    "throughput": ("bench_throughput.py", [], ["--docs", "8", "--labels", "50"]),
    "prepare": ("bench_prepare.py", ["--courses", "200000"], ["--courses", "3000"]),
    # tokenizing into the memory-mapped store and 3 training steps; peak RSS across sizes
    "token_store": ("bench_token_store.py", ["--courses", "100000", "1000000"],
                    ["--courses", "1000", "3000", "--steps", "1"]),
    # BERT-base on a GPU; --tiny (and on a CPU): a check that the script runs
    "gpu": ("bench_gpu.py", [], ["--tiny"]),
    "ddp": ("bench_ddp.py", [], ["--encoder", "tiny", "--steps", "4", "--rounds", "1"]),
}


def update_readme(results: Path = RESULTS, readme: Path = README) -> None:
    """Rewrite the README's benchmark table from the records in ``results``."""
    table = readme_table(read_records(results, list(BENCHMARKS)))
    readme.write_text(replace_section(readme.read_text(), table, str(readme)))
    print(f"{readme}: benchmark table rewritten from {results}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the scripts")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--readme", action="store_true",
                        help="only rewrite the README's table from benchmarks/results")
    args = parser.parse_args(argv)
    if args.readme:
        update_readme()
        return 0
    records = Path(tempfile.mkdtemp(prefix="bench_quick_")) if args.quick else RESULTS
    environment = {**os.environ, RECORD_DIR_ENV: str(records)}
    for name in args.only or list(BENCHMARKS):
        script, full_args, quick_args = BENCHMARKS[name]
        command = [sys.executable, str(HERE / script), *(quick_args if args.quick else full_args)]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run(command, check=False, env=environment)
        print(f"=== {script}: exit {completed.returncode}, {time.perf_counter() - started:.0f} s",
              flush=True)
        if completed.returncode:
            return completed.returncode
    if not args.quick:
        update_readme()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
