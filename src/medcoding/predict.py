"""Scoring with a trained PLM-CA model: top-k suggestions for new notes and prediction files.

Prediction files (``predictions/<name>/<split>.parquet``) hold one row per course: ``course_id``
and ``scores``, a fixed-size list of float16 (``halffloat``) values, one per label in the order of
the label list stored in the file's schema metadata (``medcoding.labels``, JSON). One list column
instead of one column per label keeps files of 1,500 labels small and fast to read; float16
keeps three significant digits of a probability, enough for ranking and thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medcoding.encoding import encode_texts, load_tokenizer
from medcoding.io import atomic_path, read_json
from medcoding.model import PLMCA, load_pretrained, score_token_arrays
from medcoding.modeldir import require_complete
from medcoding.precision import PRECISIONS, resolve

LABELS_KEY = b"medcoding.labels"
PRECISION_KEY = b"medcoding.precision"


def code_title(code: str) -> str:
    """The ICD-10 title of ``code`` from ``medcoding.icd10`` where available, else ``""``."""
    try:
        from medcoding.icd10 import title
    except ImportError:
        return ""
    try:
        return str(title(code) or "")
    except (KeyError, ValueError, LookupError):
        return ""


class EmptyTextWarning(UserWarning):
    """Some texts hold nothing to read; they were scored as the empty document."""


class Coder:
    """A trained model ready to score text: ``Coder.from_pretrained(model_dir)``.

    A text with no token to read (empty, whitespace or NUL only) is scored as the empty
    document: the model's output without evidence, its label prior; an ``EmptyTextWarning``
    says which rows. Scores that are not finite (NaN or infinite weights) raise ``ValueError``.
    ``precision`` (``auto`` | ``bf16`` | ``fp32``, see ``medcoding.precision``) is resolved once
    on the model's device; ``coder.precision`` is the one its scores are computed in.
    """

    def __init__(self, model: PLMCA, tokenizer, labels: list[str], threshold: float = 0.5,
                 max_tokens: int = 10_000, token_budget: int = 32_768, precision: str = "auto",
                 source: str | os.PathLike = "the model"):
        self.source = str(source)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.threshold = threshold
        self.max_tokens = max_tokens
        self.token_budget = token_budget
        self.precision = resolve(precision, next(model.parameters()).device).precision

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, attn_implementation: str = "sdpa",
                        precision: str = "auto") -> Coder:
        """Load model (safetensors), tokenizer, labels and tuned threshold from a model dir.

        Refuses a directory without the completion marker of a finished training run
        (``medcoding.modeldir``) and weights whose hash differs from the one in ``config.json``.
        """
        directory = Path(directory)
        require_complete(directory)
        model = load_pretrained(directory, attn_implementation=attn_implementation)
        labels_path = directory / "labels.json"
        if not labels_path.is_file():
            raise FileNotFoundError(f"{labels_path} not found: {directory} is not a complete "
                                    "model directory; train it with `medcoding train`")
        stored = read_json(labels_path)
        labels = stored["labels"] if isinstance(stored, dict) else stored
        if len(labels) != model.config.n_labels:
            raise ValueError(f"{labels_path}: {len(labels)} labels but the model has "
                             f"{model.config.n_labels} outputs; the directory is inconsistent")
        thresholds_path = directory / "thresholds.json"
        threshold = read_json(thresholds_path)["global"] if thresholds_path.is_file() else 0.5
        return cls(model, load_tokenizer(directory), labels, float(threshold),
                   precision=precision, source=directory)

    def score_texts(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Scores ``[texts, labels]`` (float32) in label-list order."""
        tokens = encode_texts(self.tokenizer, texts, self.max_tokens)
        empty = [row for row, doc in enumerate(tokens) if len(doc) == 0]
        if empty:
            which = ("the note has" if len(texts) == 1 else
                     f"{len(empty)} of {len(texts)} notes have")
            rows = "" if len(texts) == 1 else f"; rows {empty[:10]}"
            warnings.warn(f"{which} nothing to read (empty, whitespace or NUL only{rows}): "
                          "scored as the empty document, the model's prior", EmptyTextWarning,
                          stacklevel=2)
        scores = score_token_arrays(self.model, tokens, self.token_budget, self.precision,
                                    progress)
        scores = scores.numpy().astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
        if len(bad):
            raise ValueError(f"{self.source}: the model gives non-finite scores (NaN or "
                             f"infinite) for {len(bad)} of {len(texts)} texts (rows "
                             f"{bad[:10].tolist()}); its weights are broken: re-train it")
        return scores

    def score(self, frame: pd.DataFrame, progress: bool = False) -> np.ndarray:
        """Scores ``[courses, labels]`` (float32) for a frame with a ``text`` column."""
        if "text" not in frame.columns:
            raise ValueError(f"coder.score needs a 'text' column; got {list(frame.columns)}")
        missing = frame.index[frame["text"].isna()].tolist()
        if missing:
            raise ValueError(f"column 'text' is empty in rows {missing[:5]}; give every course "
                             "a text (an empty string is allowed)")
        return self.score_texts(frame["text"].astype(str).tolist(), progress)

    def suggest(self, text: str, k: int = 10) -> pd.DataFrame:
        """The ``k`` best codes for ``text``: columns ``code, title, score, above_threshold``."""
        scores = self.score_texts([text])[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return pd.DataFrame({
            "code": [self.labels[i] for i in top],
            "title": [code_title(self.labels[i]) for i in top],
            "score": scores[top].astype(float),
            "above_threshold": scores[top] >= self.threshold,
        })


# ----------------------------------------------------------------------------- prediction files


@dataclass
class Predictions:
    course_ids: np.ndarray
    scores: np.ndarray  # [courses, labels] float16
    labels: list[str]


def predictions_path(directory: str | os.PathLike, split: str) -> Path:
    return Path(directory) / f"{split}.parquet"


def save_predictions(directory: str | os.PathLike, split: str, course_ids, scores,
                     labels: list[str], precision: str | None = None) -> Path:
    """Write ``<directory>/<split>.parquet`` (course ids, float16 score lists, label metadata).

    ``precision``, the one the scores were computed in, goes into the metadata when given.
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
    table = table.replace_schema_metadata(metadata)
    target = predictions_path(directory, split)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return target


def load_predictions(directory: str | os.PathLike, split: str) -> Predictions:
    """Read a prediction file written by ``save_predictions``."""
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
    return Predictions(table.column("course_id").to_numpy(zero_copy_only=False),
                       scores.reshape(len(table), len(labels)), labels)


def predict_split(model_dir: str | os.PathLike, prepared_dir: str | os.PathLike, split: str,
                  out_dir: str | os.PathLike, coder: Coder | None = None) -> Path:
    """Score a prepared split and write its prediction file into ``out_dir``."""
    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; prepare the splits with `medcoding prepare`")
    frame = pd.read_parquet(path, columns=["course_id", "text"])
    coder = coder or Coder.from_pretrained(model_dir)
    scores = coder.score(frame, progress=True)
    return save_predictions(out_dir, split, frame["course_id"].to_numpy(), scores, coder.labels,
                            coder.precision)


# ----------------------------------------------------------------------------- command line


def read_notes(path: Path) -> pd.DataFrame:
    """Notes to score: a Parquet file with a ``text`` column, or a ``.txt`` file as one note."""
    if path.suffix == ".txt":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at "
                             f"offset {err.start}); convert it first, e.g. `iconv -f latin1 -t "
                             f"utf-8 {path} > {path.stem}.utf8.txt`") from err
        return pd.DataFrame({"course_id": [path.stem], "text": [text]})
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        if "text" not in frame.columns:
            raise ValueError(f"{path}: no 'text' column (found {list(frame.columns)}); "
                             "put each note's text in a column named 'text'")
        if "course_id" not in frame.columns:
            frame = frame.assign(course_id=np.arange(len(frame)))
        return frame
    raise ValueError(f"{path}: give a .parquet file with a 'text' column or a .txt note")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medcoding predict",
                                     description="score notes with a trained PLM-CA model")
    parser.add_argument("--model", required=True, help="model directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one note's text")
    source.add_argument("--input", type=Path, help="notes.parquet (column 'text') or note.txt")
    source.add_argument("--split", help="score PREPARED/<split>.parquet (val or test)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--prepared", type=Path, help="prepared-split directory (with --split)")
    parser.add_argument("--out", type=Path, help="prediction folder (with --split)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto (default): bfloat16 where the CPU/GPU has it natively, else "
                        "float32; bf16 or fp32 to force one")
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyTextWarning)
        status = _run(parser, args)  # the message is printed after the scores it concerns
    for warning in caught:
        if issubclass(warning.category, EmptyTextWarning):
            print(f"medcoding predict: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    return status


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    coder = Coder.from_pretrained(args.model, precision=args.precision)
    if args.split:
        if args.prepared is None or args.out is None:
            parser.error("--split needs --prepared DIR and --out DIR")
        path = predict_split(args.model, args.prepared, args.split, args.out, coder)
        print(f"wrote {path}")
        return 0
    notes = (pd.DataFrame({"course_id": ["text"], "text": [args.text]}) if args.text is not None
             else read_notes(args.input))
    scores = coder.score(notes)
    for course_id, row in zip(notes["course_id"], scores, strict=True):
        top = np.argsort(-row, kind="stable")[: args.top_k]
        print(f"# {course_id}")
        for index in top:
            code = coder.labels[index]
            print(f"{code:<8} {row[index]:.3f}  {code_title(code)}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
