"""Run every benchmark at its documented default size, one after another (`make bench`).

    python benchmarks/run_all.py [--quick]

``--quick`` shrinks each benchmark to a size that finishes in about a minute, to check that the
scripts still run; the figures it prints are not comparable with the ones in the README.
Each benchmark prints its own figures and ratios; this script stops at the first that fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, arguments at the documented size, arguments for --quick)
BENCHMARKS = [
    ("bench_generate.py", ["--courses", "100000"], ["--courses", "3000"]),
    ("bench_describe.py", ["--courses", "100000"], ["--courses", "3000"]),
    ("bench_metrics.py", [], ["--documents", "5000", "--labels", "300"]),
    ("bench_throughput.py", [], ["--docs", "8", "--labels", "50"]),
    ("bench_prepare.py", ["--courses", "200000"], ["--courses", "3000"]),
    ("bench_gpu.py", [], ["--tiny"]),  # BERT-base on a GPU; --tiny (and on a CPU): a check
    ("bench_ddp.py", [], ["--encoder", "tiny", "--steps", "4", "--rounds", "1"]),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the scripts")
    args = parser.parse_args(argv)
    for script, full_args, quick_args in BENCHMARKS:
        command = [sys.executable, str(HERE / script), *(quick_args if args.quick else full_args)]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run(command, check=False)
        print(f"=== {script}: exit {completed.returncode}, {time.perf_counter() - started:.0f} s",
              flush=True)
        if completed.returncode:
            return completed.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
