"""The run directory ``runs/<profile>/``: where every artefact of a profile lies, and the
predictions' file format. Light: it imports neither torch nor transformers.

Layout (:class:`Run`)::

    data/                      contract tables and manifest.json (medcoding generate / import)
    prepared/                  train/val/test.parquet, labels.json, flow.csv, manifest.json
    models/<name>/             model directories (medcoding.modeldir)
    predictions/<name>/        <split>.parquet, the scores of model <name> (format below)
    tables/<name>.csv          every table shown in the book
    figures/<name>.png         every figure
    explorer/<kind>_<id>.html  case explorer pages
    steps/<step>.json          the pipeline's step records (<step>.failed.ipynb: a failed run)
    book/                      the staged book: notebooks/ (executed), _build/html/ (the HTML)

Prediction files (``predictions/<name>/<split>.parquet``) hold one row per course: ``course_id``
and ``scores``, a fixed-size list of float16 (``halffloat``) values, one per label in the order of
the label list stored in the file's schema metadata (``medcoding.labels``, JSON), plus, when the
writer knows them, the precision the scores were computed in (``medcoding.precision``) and the
labels' code level (``medcoding.level``). One list column instead of one column per label keeps
files of 1,500 labels small and fast to read; float16 keeps three significant digits of a
probability, enough for ranking and thresholds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medcoding.io import atomic_path, read_json, write_csv

LABELS_KEY = b"medcoding.labels"
PRECISION_KEY = b"medcoding.precision"
LEVEL_KEY = b"medcoding.level"
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- prediction files


@dataclass
class Predictions:
    course_ids: np.ndarray
    scores: np.ndarray  # [courses, labels] float16
    labels: list[str]
    precision: str | None = None  # what the scores were computed in, where recorded
    level: str | None = None  # the labels' code level ("3" | "full"), where recorded


def predictions_path(directory: str | os.PathLike, split: str) -> Path:
    return Path(directory) / f"{split}.parquet"


def save_predictions(directory: str | os.PathLike, split: str, course_ids, scores,
                     labels: list[str], precision: str | None = None,
                     level: str | None = None) -> Path:
    """Write ``<directory>/<split>.parquet`` (course ids, float16 score lists, label metadata).

    ``precision`` (the one the scores were computed in) and ``level`` go into the metadata when
    given.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    scores = np.asarray(scores, dtype=np.float16)
    course_ids = np.asarray(course_ids)
    if scores.shape != (len(course_ids), len(labels)):
        raise ValueError(f"scores have shape {scores.shape}; expected "
                         f"({len(course_ids)} courses, {len(labels)} labels)")
    flat = pa.array(scores.reshape(-1), type=pa.float16())
    table = pa.table({"course_id": pa.array(course_ids.tolist()),
                      "scores": pa.FixedSizeListArray.from_arrays(flat, len(labels))})
    metadata = {LABELS_KEY: json.dumps(list(labels)).encode()}
    if precision is not None:
        metadata[PRECISION_KEY] = precision.encode()
    if level is not None:
        metadata[LEVEL_KEY] = str(level).encode()
    table = table.replace_schema_metadata(metadata)
    target = predictions_path(directory, split)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


def load_predictions(directory: str | os.PathLike, split: str) -> Predictions:
    """Read a prediction file written by :func:`save_predictions`."""
    import pyarrow.parquet as pq

    path = predictions_path(directory, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; write it with `medcoding predict --split "
                                f"{split} --model MODEL --prepared PREPARED --out {directory}`")
    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    if LABELS_KEY not in metadata or "scores" not in table.column_names:
        raise ValueError(f"{path} is not a medcoding prediction file (no 'scores' column or "
                         "label metadata); re-create it with `medcoding predict --split`")
    labels = json.loads(metadata[LABELS_KEY])
    column = table.column("scores").combine_chunks()
    scores = column.flatten().to_numpy(zero_copy_only=False).astype(np.float16)
    optional = {key: metadata[raw].decode() if raw in metadata else None
                for key, raw in (("precision", PRECISION_KEY), ("level", LEVEL_KEY))}
    return Predictions(table.column("course_id").to_numpy(zero_copy_only=False),
                       scores.reshape(len(table), len(labels)), labels, **optional)


# ----------------------------------------------------------------------------- prepared data


def is_synthetic(prepared_dir: str | os.PathLike) -> bool:
    """Whether a prepared split directory comes from a synthetic cohort: the one place that
    decides whether note text may be written into explorer pages.

    Reads the prepared data's own manifest, ``PREPARED/manifest.json``, where ``medcoding
    prepare`` copies the cohort's manifest under ``input_manifest``: synthetic only when
    ``input_manifest.synthetic`` is ``true``. Anything else (no manifest, no such key, a value
    that is not a boolean) counts as a real cohort, so no note text is written unless asked for.
    Nothing outside ``PREPARED`` is read: a run directory's ``data/`` may hold another cohort.
    """
    manifest = Path(prepared_dir) / "manifest.json"
    if not manifest.is_file():
        return False
    cohort = read_json(manifest).get("input_manifest")
    return isinstance(cohort, dict) and cohort.get("synthetic") is True


def load_course(prepared_dir: str | os.PathLike, split: str, course_id: str) -> pd.Series:
    """The row of ``course_id`` in ``PREPARED/<split>.parquet`` (a clear error if absent)."""
    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; give --prepared a prepared split directory "
                                "(medcoding prepare) and --split train, val or test")
    frame = pd.read_parquet(path)
    for column in ("course_id", "text"):
        if column not in frame.columns:
            raise ValueError(f"{path}: column {column!r} missing (columns: {list(frame.columns)});"
                             " re-run `medcoding prepare`")
    hits = frame[frame["course_id"].astype(str) == str(course_id)]
    if hits.empty:
        examples = frame["course_id"].astype(str).head(5).tolist()
        raise KeyError(f"{path}: no row with course_id {course_id!r} in column 'course_id' "
                       f"(e.g. {examples}); pick a course of this split or change --split")
    return hits.iloc[0]


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Run:
    """The artefacts of one profile under ``root`` (``runs/<profile>``)."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    def __fspath__(self) -> str:  # a Run goes wherever a run directory's path does
        return str(self.root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def explorer(self) -> Path:
        return self.root / "explorer"

    @property
    def steps(self) -> Path:
        return self.root / "steps"

    @property
    def book(self) -> Path:
        return self.root / "book"

    @property
    def book_notebooks(self) -> Path:
        """``book/notebooks``, the executed notebooks the book is built from."""
        return self.book / "notebooks"

    @property
    def book_html(self) -> Path:
        """``book/_build/html``, the built book (``index.html`` is its first page)."""
        return self.book / "_build" / "html"

    def executed_notebooks(self) -> list[Path]:
        """The executed notebooks, in chapter order."""
        return sorted(self.book_notebooks.glob("*.ipynb"))

    def step_record(self, step: str) -> Path:
        """``steps/<step>.json``, the pipeline's record of the step's last successful run."""
        return self.steps / f"{step}.json"

    def failed_notebook(self, step: str) -> Path:
        """``steps/<step>.failed.ipynb``, the partly executed notebook of a failed step."""
        return self.steps / f"{step}.failed.ipynb"

    def split_path(self, split: str) -> Path:
        """``prepared/<split>.parquet``."""
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        return self.prepared / f"{split}.parquet"

    def load_split(self, split: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A prepared split (a clear error naming ``medcoding prepare`` when it is missing)."""
        path = self.split_path(split)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; fix: run `medcoding prepare` for "
                                    "this run directory")
        return pd.read_parquet(path, columns=columns)

    def is_synthetic(self) -> bool:
        """Whether the prepared cohort is synthetic (see :func:`is_synthetic`)."""
        return is_synthetic(self.prepared)

    def cohort_dir(self) -> Path:
        """The contract directory the prepared splits came from (``data_dir`` of
        ``prepared/manifest.json``, written by ``medcoding prepare``)."""
        path = self.prepared / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; fix: run `medcoding prepare` for "
                                    "this run directory")
        return Path(json.loads(path.read_text(encoding="utf-8"))["data_dir"])

    def model_dir(self, name: str) -> Path:
        """``models/<name>``, a model directory (:mod:`medcoding.modeldir`)."""
        return self.models / name

    def model_info(self, name: str):
        """The settings of model ``name`` (labels, level, threshold, ...) without torch."""
        from medcoding import modeldir

        return modeldir.info(self.model_dir(name))

    def threshold(self, name: str) -> float:
        """Model ``name``'s global decision threshold, tuned on validation at training time."""
        return self.model_info(name).threshold

    def predictions_dir(self, name: str) -> Path:
        """``predictions/<name>``, the folder of model ``name``'s prediction files."""
        return self.root / "predictions" / name

    def has_predictions(self, name: str, split: str = "test") -> bool:
        return predictions_path(self.predictions_dir(name), split).is_file()

    def save_predictions(self, name: str, split: str, course_ids, scores, labels: list[str],
                         precision: str | None = None, level: str | None = None) -> Path:
        return save_predictions(self.predictions_dir(name), split, course_ids, scores, labels,
                                precision, level)

    def load_predictions(self, name: str, split: str = "test") -> Predictions:
        return load_predictions(self.predictions_dir(name), split)

    def table_path(self, name: str) -> Path:
        return self.tables / f"{Path(name).stem}.csv"

    def write_table(self, frame: pd.DataFrame, name: str) -> Path:
        """``tables/<name>.csv``, written atomically."""
        return write_csv(self.table_path(name), frame)

    def figure_path(self, name: str) -> Path:
        return self.figures / f"{Path(name).stem}.png"

    def explorer_page(self, kind: str, course_id) -> Path:
        """``explorer/<kind>_<course id>.html``, a file name that stays inside the folder."""
        from medcoding.explorer.page import case_page_path

        return case_page_path(self.explorer, kind, course_id)
