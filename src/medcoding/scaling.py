"""The scaling ladder: one model per training size on nested subsets of the training patients,
all scored on the same test courses against the human codes, beside the study's Table 1.

:func:`open_ladder` settles the rungs (sizes capped at the training split) and the test courses
they are scored on (a seeded random subset of test patients, written to
``<run>/ladder_prepared/test.parquet``, or the whole test split); :func:`run_ladder` trains and
scores every rung and adds the training chapter's main model when it saw more patients than the
largest rung; :func:`growth` sets the rise from the smallest to the largest rung beside the
study's rise from its smallest to its largest model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medcoding import evaluation, modeldir, study
from medcoding.fitting import fit_and_score
from medcoding.io import write_parquet
from medcoding.runs import Run

LADDER_COLUMNS = ["model", "train_patients", "threshold", *study.METRIC_NAMES]


@dataclass
class Ladder:
    """The rungs of one run and the test courses they are scored on."""

    run: Run
    sizes: list[int]  # training patients per rung, ascending, capped at ``available``
    available: int  # patients in the training split
    scored_dir: Path  # a folder whose test.parquet holds the courses the rungs are scored on
    codes: pd.Series  # the level-3 human codes of every test course, by course id
    scored_ids: pd.Series  # the course ids the rungs are scored on


def rung_sizes(sizes: Sequence[int], available: int) -> list[int]:
    """The distinct sizes, each capped at the ``available`` training patients, ascending."""
    return sorted({min(int(size), available) for size in sizes})


def ladder_test_courses(test: pd.DataFrame, n_patients: int | None, seed: int) -> pd.DataFrame:
    """The courses of ``n_patients`` test patients drawn at random (seeded; all when None or
    more than there are)."""
    if n_patients is None:
        return test
    patients = test["patient_id"].drop_duplicates().sort_values()
    chosen = patients.sample(min(n_patients, len(patients)), random_state=seed)
    return test[test["patient_id"].isin(chosen)]


def open_ladder(run_dir: str | os.PathLike, sizes: Sequence[int], test_patients: int | None,
                seed: int) -> Ladder:
    """The ladder of ``run_dir``; writes the scored test subset; prints rungs and courses."""
    run = Run(run_dir)
    test = run.load_split("test").set_index("course_id")
    available = run.load_split("train", columns=["patient_id"])["patient_id"].nunique()
    rungs = rung_sizes(sizes, available)
    print(f"{available:,} training patients; rungs: {rungs}")
    scored_dir = run.prepared
    if test_patients is not None:
        scored_dir = run.root / "ladder_prepared"
        write_parquet(scored_dir / "test.parquet",
                      ladder_test_courses(test, test_patients, seed).reset_index())
    scored_ids = pd.read_parquet(scored_dir / "test.parquet", columns=["course_id"])["course_id"]
    print(f"rungs are scored on {len(scored_ids):,} test courses")
    return Ladder(run, rungs, available, scored_dir, test["codes_l3"], scored_ids)


def scored_metrics(ladder: Ladder, name: str, size: int, model: str) -> dict:
    """The study's metrics of model ``name``'s test predictions on the ladder's courses, at its
    tuned threshold: ``model, train_patients, threshold, <metric>...``."""
    scores = ladder.run.load_predictions(name, "test")
    threshold = ladder.run.threshold(name)
    return {"model": model, "train_patients": size, "threshold": threshold,
            **evaluation.evaluate_courses(scores.course_ids, scores.scores, scores.labels,
                                          ladder.codes, threshold, subset=ladder.scored_ids)}


def train_rung(ladder: Ladder, size: int, config) -> dict:
    """Train ``models/ladder_<size>`` on the first ``size`` patients with ``config`` (its
    ``train_size`` replaced), score the ladder's courses, and return the metrics."""
    name = f"ladder_{size}"
    fit_and_score(ladder.run, name, dataclasses.replace(config, train_size=size),
                  splits=("test",), scored_dir=ladder.scored_dir)
    return scored_metrics(ladder, name, size, "ladder")


def run_ladder(ladder: Ladder, config, main_model: str = "main") -> pd.DataFrame:
    """Every rung trained and scored, then the main model when it saw more patients than the
    largest rung (printed): ``LADDER_COLUMNS``, one row per model."""
    rows = [train_rung(ladder, size, config) for size in ladder.sizes]
    summary = modeldir.train_summary(ladder.run.model_dir(main_model))
    main_size = min(summary["config"]["train_size"] or ladder.available, ladder.available)
    if main_size > ladder.sizes[-1]:
        rows.append(scored_metrics(ladder, main_model, main_size, "main model (chapter 2)"))
        print(f"last row: the main model of chapter 2 ({main_size:,} patients, "
              f"{summary['config']['encoder']}, {summary['config']['epochs']} epoch(s)), "
              "scored on the same test courses")
    return pd.DataFrame(rows)[LADDER_COLUMNS]


def metrics_long(table: pd.DataFrame) -> pd.DataFrame:
    """``train_patients, metric, value`` with the study's metric names, for the line plot."""
    long = table.melt(id_vars="train_patients", value_vars=list(study.METRIC_NAMES),
                      var_name="metric", value_name="value")
    return long.assign(metric=long["metric"].map(study.METRIC_NAMES))


def study_level3() -> pd.DataFrame:
    """The study's Table 1 at level 3 in long form, ``metric`` holding the metric's name."""
    theirs = study.table1()
    theirs = theirs[theirs["level"] == "3"]
    return theirs.assign(metric=theirs["metric_name"])


def growth(table: pd.DataFrame) -> pd.DataFrame:
    """Per metric: our smallest and largest rung's values, the study's at its smallest and
    largest level-3 model, and both gains (largest minus smallest)."""
    names = list(study.METRIC_NAMES)
    wide = study.table1_wide()
    smallest, largest = study.table1_level3_columns()[0], study.table1_level3_columns()[-1]
    frame = pd.DataFrame({
        "metric": [study.METRIC_NAMES[name] for name in names],
        "ours_smallest": table.iloc[0][names].to_numpy(dtype=float),
        "ours_largest": table.iloc[-1][names].to_numpy(dtype=float),
        f"study_{smallest}": [wide.loc[study.METRIC_NAMES[n], smallest] for n in names],
        f"study_{largest}": [wide.loc[study.METRIC_NAMES[n], largest] for n in names],
    })
    frame["ours_gain"] = frame["ours_largest"] - frame["ours_smallest"]
    frame["study_gain"] = frame[f"study_{largest}"] - frame[f"study_{smallest}"]
    return frame

