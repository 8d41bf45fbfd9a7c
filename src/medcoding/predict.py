"""Scoring with a trained PLM-CA model: top-k suggestions for new notes and prediction files.

Prediction files and their format belong to :mod:`medcoding.runs` (``save_predictions``,
``load_predictions``); :func:`predict_split` writes one for a prepared split.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from medcoding.encoding import encode_texts, null_text_rows, split_token_store
from medcoding.model import PLMCA, score_token_arrays
from medcoding.precision import PRECISIONS, resolve
from medcoding.runs import save_predictions


def code_title(code: str) -> str:
    """The ICD-10 title of ``code`` from ``medcoding.icd10``; ``""`` for a code it lacks."""
    from medcoding.icd10 import title

    try:
        return str(title(code) or "")
    except (KeyError, ValueError, LookupError):
        return ""


class EmptyTextWarning(UserWarning):
    """Some texts hold nothing to read; they were scored as the empty document."""


def empty_text_message(lengths: np.ndarray) -> str | None:
    """The :class:`EmptyTextWarning` message for documents of ``lengths`` tokens (``[documents]``),
    naming the first 10 empty rows; None when no document is empty."""
    empty = np.flatnonzero(np.asarray(lengths) == 0).tolist()
    if not empty:
        return None
    which = "the note has" if len(lengths) == 1 else f"{len(empty)} of {len(lengths)} notes have"
    rows = "" if len(lengths) == 1 else f"; rows {empty[:10]}"
    return (f"{which} nothing to read (empty, whitespace or NUL only{rows}): scored as the "
            "empty document, the model's prior")


def non_finite_message(scores: np.ndarray, source: str) -> str | None:
    """The error for the rows of ``scores`` (``[documents, labels]``) holding NaN or infinity,
    naming ``source`` (the model); None when all are finite."""
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if not len(bad):
        return None
    return (f"{source}: the model gives non-finite scores (NaN or infinite) for {len(bad)} of "
            f"{len(scores)} texts (rows {bad[:10].tolist()}); its weights are broken: re-train it")


class Coder:
    """A trained model ready to score text: ``Coder.from_pretrained(model_dir)``.

    A text with no token to read (empty, whitespace or NUL only) is scored as the empty
    document: the model's output without evidence, its label prior; an ``EmptyTextWarning``
    says which rows. Scores that are not finite (NaN or infinite weights) raise ``ValueError``.
    ``precision`` (``auto`` | ``bf16`` | ``fp32``, see ``medcoding.precision``) is resolved once
    on the model's device; ``coder.precision`` is the one its scores are computed in.
    """

    def __init__(self, model: PLMCA, tokenizer=None, labels: list[str] | None = None,
                 threshold: float | None = None, max_tokens: int = 10_000,
                 token_budget: int = 32_768, precision: str = "auto",
                 source: str | os.PathLike = "the model"):
        self.source = str(source)
        self.model = model.eval()
        self.tokenizer = tokenizer if tokenizer is not None else model.tokenizer
        self.labels = list(labels if labels is not None else model.config.labels)
        self.threshold = float(threshold if threshold is not None else model.config.threshold)
        self.level = model.config.level
        self.max_tokens = max_tokens
        self.token_budget = token_budget
        self.precision = resolve(precision, next(model.parameters()).device).precision
        if self.tokenizer is None:
            raise ValueError("Coder needs a tokenizer: pass one or load the model with "
                             "PLMCA.from_pretrained(dir), which reads it")
        if len(self.labels) != model.config.num_labels:
            raise ValueError(f"{self.source}: {len(self.labels)} labels but the model has "
                             f"{model.config.num_labels} outputs")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, attn_implementation: str = "sdpa",
                        precision: str = "auto") -> Coder:
        """A coder for a model directory: model, tokenizer, labels and tuned threshold as
        ``PLMCA.from_pretrained`` reads them (refusing an unfinished directory, an older
        format and weights whose hash differs from the recorded one)."""
        model = PLMCA.from_pretrained(directory, attn_implementation=attn_implementation)
        return cls(model, precision=precision, source=directory)

    def score_texts(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Scores ``[texts, labels]`` (float32) in label-list order; holds every text's token
        ids (see :meth:`score_documents` for a split's memory-mapped ones)."""
        return self.score_documents(encode_texts(self.tokenizer, texts, self.max_tokens),
                                    progress)

    def score_documents(self, documents, progress: bool = False) -> np.ndarray:
        """Scores ``[documents, labels]`` (float32) in label-list order for token ids as
        :func:`medcoding.encoding.encode_texts` gives them (no special tokens: the model adds
        its ``document_markers``, if any): a list of arrays or a memory-mapped ``TokenStore``,
        read a micro-batch at a time. Holds the scores and the documents' lengths.

        Empty documents give an ``EmptyTextWarning`` naming their rows; non-finite scores a
        ``ValueError`` naming the model.
        """
        lengths = (documents.lengths() if hasattr(documents, "lengths")
                   else np.array([len(doc) for doc in documents], dtype=np.int64))
        message = empty_text_message(lengths)
        if message:
            warnings.warn(message, EmptyTextWarning, stacklevel=3)
        scores = score_token_arrays(self.model, documents, self.token_budget, self.precision,
                                    progress)
        scores = scores.numpy().astype(np.float32, copy=False)  # [documents, labels]
        message = non_finite_message(scores, self.source)
        if message:
            raise ValueError(message)
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


def predict_split(model_dir: str | os.PathLike | None, prepared_dir: str | os.PathLike,
                  split: str, out_dir: str | os.PathLike, coder: Coder | None = None) -> Path:
    """Score a prepared split and write its prediction file into ``out_dir``.

    The texts are never read whole: the token ids come from the split's memory-mapped token
    store (:func:`medcoding.encoding.split_token_store`, keyed by the split file's bytes, the
    coder's tokenizer and ``max_tokens``; the store training wrote is reused when those match,
    else the split is tokenized into a new one a record batch at a time) and are scored a
    micro-batch at a time. Holds the course ids and the scores ``[courses, labels]``; the scores
    are those :meth:`Coder.score_texts` gives for the split's texts, bit for bit.
    """
    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; prepare the splits with `medcoding prepare`")
    missing = null_text_rows(path)
    if len(missing):
        raise ValueError(f"{path}: column 'text' is empty in rows {missing[:5].tolist()}; give "
                         "every course a text (an empty string is allowed) and prepare it again")
    course_ids = pd.read_parquet(path, columns=["course_id"])["course_id"].to_numpy()
    coder = coder or Coder.from_pretrained(model_dir)
    store = split_token_store(prepared_dir, split, coder.tokenizer, coder.max_tokens)
    if len(store) != len(course_ids):
        folder = Path(store.ids.filename).parent if store.offsets[-1] else "its token store"
        raise ValueError(f"{path}: {len(course_ids)} courses but its token store {folder} holds "
                         f"{len(store)} documents; delete that folder to tokenize it again")
    scores = coder.score_documents(store, progress=True)  # [courses, labels]
    return save_predictions(out_dir, split, course_ids, scores, coder.labels, coder.precision,
                            coder.level)


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
