"""Benchmark ``medcoding describe``: courses per second and peak memory on a generated cohort.

    python benchmarks/bench_describe.py --courses 100000 [--out DIR] [--keep]

Generates about ``--courses`` courses (patients = courses / 2.78) with the synthetic generator,
then describes the cohort and prints the seconds, courses/s, the peak resident memory of the
describe step (over the generator's) and the size of the notes on disk. Notes are read in
batches, so the memory should grow with the number of courses (a few integers each), not with
the text.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from record import record

from medcoding.cohort.synthetic import generate
from medcoding.describe import describe

COURSES_PER_PATIENT = 2.78


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None, help="cohort directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated cohort")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_describe_")) / "data"
    patients = max(1, round(args.courses / COURSES_PER_PATIENT))
    started = time.perf_counter()
    manifest = generate(patients, 1, out, progress=False)
    generated_s = time.perf_counter() - started
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    figures = describe(out)
    seconds = time.perf_counter() - started
    rss_after = peak_rss_mib()
    notes_mib = (out / "notes.parquet").stat().st_size / 2**20
    courses = manifest["n_courses"]
    print(f"cohort: {courses:,} courses, {figures['notes']:,} notes ({notes_mib:,.0f} MiB of "
          f"notes.parquet), generated in {generated_s:.0f} s")
    print(f"describe: {seconds:.1f} s, {courses / seconds:,.0f} courses/s")
    print(f"peak memory: {rss_after:,.0f} MiB after describe, {rss_before:,.0f} MiB after "
          f"generate (describe added {max(0.0, rss_after - rss_before):,.0f} MiB)")
    added = max(0.0, rss_after - rss_before)
    record(f"describe_{args.courses}", f"bench_describe.py --courses {args.courses}",
           f"{courses:,} courses ({notes_mib:,.0f} MiB of notes): {seconds:.1f} s "
           f"({courses / seconds:,.0f} courses/s), describe added {added:,.0f} MiB of peak RSS",
           {"courses": courses, "seconds": round(seconds, 2), "notes_mib": round(notes_mib),
            "rss_added_mib": round(added), "rss_after_mib": round(rss_after)})
    if not args.keep and args.out is None:
        shutil.rmtree(out.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
