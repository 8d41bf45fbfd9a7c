"""Benchmark the synthetic generator: courses per second, peak memory, long-tail and coding rates.

    python benchmarks/bench_generate.py --courses 1000000 [--workers N] [--out DIR]

Generates about ``--courses`` courses (patients = courses / 2.78, the v2 generator's mean),
prints courses/s and the peak resident memory of this process, then measures on the output
the number of level-3 categories, their frequency range, and the coded share of truly present
X60-X84, E66, I10-I15 (secondary) and primary diagnoses, reading the Parquet files one row
group at a time. Ends with a record (``benchmarks/record.py``) of the speed and memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from record import record

from medcoding import icd10
from medcoding.cohort.synthetic import generate

COURSES_PER_PATIENT = 2.78
RANGES = ("X60-X84", "E66", "I10-I15", "I50", "E11", "N18")


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pairs(path: Path, columns: list[str]):
    parquet = pq.ParquetFile(path)
    for index in range(parquet.num_row_groups):
        yield parquet.read_row_group(index, columns=columns).to_pylist()


def measure(out: Path) -> dict[str, object]:
    """Long tail and coder rates of a generated cohort, streamed by row group."""
    coded: set[tuple[int, str]] = set()
    coded_courses: set[int] = set()
    categories: Counter[str] = Counter()
    for rows in _pairs(out / "codes.parquet", ["course_id", "code"]):
        for row in rows:
            coded_courses.add(row["course_id"])
            code = row["code"]
            if icd10.is_valid(code):
                coded.add((row["course_id"], code[:3]))
                categories[code[:3]] += 1
    in_range = {spec: set(icd10.range_categories(spec)) for spec in RANGES}
    hits = {spec: [0, 0] for spec in (*RANGES, "primary", "secondary")}
    for rows in _pairs(out / "truth.parquet", ["course_id", "code", "is_primary"]):
        for row in rows:
            if row["course_id"] not in coded_courses:
                continue
            category = row["code"][:3]
            found = (row["course_id"], category) in coded
            keys = ["primary" if row["is_primary"] else "secondary"]
            if not row["is_primary"]:
                keys += [spec for spec in RANGES if category in in_range[spec]]
            for key in keys:
                hits[key][0] += found
                hits[key][1] += 1
    counts = sorted(categories.values())
    return {
        "level3_categories": len(counts),
        "frequency_min": counts[0],
        "frequency_max": counts[-1],
        "categories_over_100": sum(c >= 100 for c in counts),
        "coded_share": {k: (round(a / b, 3) if b else None, b) for k, (a, b) in hits.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--courses", type=int, default=100_000)
    parser.add_argument("--patients", type=int, help="overrides --courses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="generator processes")
    parser.add_argument("--out", help="output directory (default: a temporary one)")
    parser.add_argument("--no-measure", action="store_true", help="skip the rate measurements")
    args = parser.parse_args(argv)
    patients = args.patients or round(args.courses / COURSES_PER_PATIENT)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        started, cpu_started = time.perf_counter(), time.process_time()
        manifest = generate(patients, args.seed, out, progress=sys.stderr.isatty(),
                            workers=args.workers)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        courses = manifest["n_courses"]
        size = sum(p.stat().st_size for p in out.glob("*.parquet")) / 2**20
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += children.ru_utime + children.ru_stime
        print(f"patients {patients}  courses {courses}  workers {args.workers}  "
              f"wall {seconds:.1f} s  courses/s {courses / seconds:,.0f}  "
              f"CPU {cpu:.1f} s ({courses / cpu:,.0f} courses per CPU-second)  "
              f"peak RSS {peak_rss_mib():,.0f} MiB (largest worker "
              f"{children.ru_maxrss / 1024:,.0f} MiB)  output {size:,.0f} MiB")
        if not args.no_measure:
            for key, value in measure(out).items():
                print(f"{key}: {value}")
    record(f"generate_{args.courses}", f"bench_generate.py --courses {args.courses}"
           + (f" --workers {args.workers}" if args.workers > 1 else ""),
           f"{courses:,} courses: {seconds:.1f} s ({courses / seconds:,.0f} courses/s) on "
           f"{args.workers} process(es), peak RSS {peak_rss_mib():,.0f} MiB, {size:,.0f} MiB of "
           "Parquet",
           {"courses": courses, "patients": patients, "workers": args.workers,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mib": round(peak_rss_mib()), "output_mib": round(size)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
