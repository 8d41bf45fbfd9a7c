"""Benchmark `prepare` at scale: wall time, courses/s and peak resident memory.

    python benchmarks/bench_prepare.py --courses 2000000 [--data DIR] [--keep] [--reference FILE]

Generates about ``--courses`` synthetic courses into ``--data`` (reused when it already holds a
cohort; default: a temporary folder), then runs :func:`medcoding.cohort.preprocess.prepare` in a
fresh process, so the peak resident set size printed is preparation's alone. Target: at most
3 GB at 2,000,000 courses and time linear in the courses (compare courses/s across sizes).
``--reference FILE`` runs another copy of ``preprocess.py`` (e.g. ``git show
main:src/medcoding/cohort/preprocess.py > /tmp/old.py``) on the same cohort for comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import record

COURSES_PER_PATIENT = 2.78
TARGET_GB_AT_2M = 3.0


def child(data: Path, out: Path, module_path: str | None) -> None:
    """Run prepare here and print its seconds and this process's peak RSS as JSON."""
    if module_path:
        spec = importlib.util.spec_from_file_location("reference_preprocess", module_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        prepare = module.prepare
    else:
        from medcoding.cohort.preprocess import prepare
    started = time.perf_counter()
    result = prepare(data, out)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "courses_in": int(result.flow["courses_before"].iloc[0]),
                      "courses_out": int(result.flow["courses_after"].iloc[-1]),
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))


def run_prepare(data: Path, out: Path, reference: str | None) -> dict:
    command = [sys.executable, __file__, "--child", str(data), str(out)]
    if reference:
        command += ["--reference", reference]
    completed = subprocess.run(command, check=False, capture_output=True, text=True)
    if completed.returncode:
        raise SystemExit(f"prepare failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def ensure_cohort(data: Path, courses: int, seed: int, workers: int) -> float:
    """Generate the cohort unless ``data`` already holds one; return the seconds it took."""
    if (data / "manifest.json").is_file():
        return 0.0
    from medcoding.cohort.synthetic import generate

    started = time.perf_counter()
    generate(round(courses / COURSES_PER_PATIENT), seed, data, progress=False, workers=workers)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--courses", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="generator processes")
    parser.add_argument("--data", type=Path, help="cohort folder (generated if empty)")
    parser.add_argument("--keep", action="store_true", help="keep the prepared output")
    parser.add_argument("--reference", help="another preprocess.py to run on the same cohort")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.reference)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch) / "data"
        generated = ensure_cohort(data, args.courses, args.seed, args.workers)
        size = sum(p.stat().st_size for p in data.glob("*.parquet")) / 2**30
        if generated:
            print(f"generated in {generated:.0f} s", flush=True)
        runs = [("project", None)] + ([("reference", args.reference)] if args.reference else [])
        for name, module in runs:
            out = (data.parent if args.keep else Path(scratch)) / f"prepared-{name}"
            figures = run_prepare(data, out, module)
            courses = figures["courses_in"]
            print(f"{name:<9} {courses:,} courses ({size:.2f} GiB of Parquet) -> "
                  f"{figures['courses_out']:,} kept: {figures['seconds']:.1f} s, "
                  f"{courses / figures['seconds']:,.0f} courses/s, peak RSS "
                  f"{figures['peak_gb']:.2f} GB (target <= {TARGET_GB_AT_2M:.0f} GB at 2,000,000 "
                  "courses, time linear in courses)", flush=True)
            if name == "project":
                record(f"prepare_{args.courses}", f"bench_prepare.py --courses {args.courses}",
                       f"{courses:,} courses: {figures['seconds']:.0f} s "
                       f"({courses / figures['seconds']:,.0f} courses/s), peak RSS "
                       f"{figures['peak_gb']:.2f} GB (target <= {TARGET_GB_AT_2M:.0f} GB at "
                       "2,000,000 courses)", {**figures, "parquet_gib": round(size, 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
