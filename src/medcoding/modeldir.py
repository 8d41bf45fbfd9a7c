"""The model directory, one artefact: its files, its integrity and how it is published.

A model directory is a Hugging Face model folder anyone can copy::

    config.json        PLMCAConfig: model_type "plmca", encoder config, id2label, level,
                       chunk_size, head, threshold, precision and weights_sha256
    model.safetensors  the weights (safetensors only; no pickle is ever read)
    tokenizer files    tokenizer.json, tokenizer_config.json, ...
    train_log.csv      one row per epoch (written by ``medcoding train``)
    train_summary.json best epoch, validation MAP, frequency baseline, training settings
    complete.json      the completion marker, written last

``medcoding.model.PLMCA.save_pretrained`` and ``PLMCA.from_pretrained`` write and read it; this
module holds the rules they follow, so it is the one place that knows the layout:

- a directory is trusted only when it holds ``complete.json``, written last, after every other
  file; :func:`check` (and so ``from_pretrained``, ``medcoding predict`` and ``medcoding
  explain``) refuses a directory without it;
- ``config.json`` records the SHA-256 of ``model.safetensors``, checked on every load, so a
  corrupt or replaced weight file is refused instead of scoring NaN;
- a ``config.json`` without ``"model_type": "plmca"`` (written by medcoding before the model
  became a Hugging Face model, with ``labels.json`` and ``thresholds.json`` beside it) is
  refused with the advice to re-train;
- nothing is written into the directory asked for: ``save_pretrained`` writes a staging folder
  beside it, and training works in ``MODEL.partial/`` (config, tokenizer and the
  ``checkpoint/`` that ``--resume`` continues from); once finished, :func:`publish` writes the
  marker and renames the folder onto ``MODEL`` in one step, so an interrupted run leaves the
  previous model untouched.

:func:`info` reads a finished directory's settings (labels, level, threshold, ...) without
importing torch, for analyses and notebooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER = "complete.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_HASH_KEY = "weights_sha256"
TRAIN_LOG = "train_log.csv"
TRAIN_SUMMARY = "train_summary.json"
MODEL_TYPE = "plmca"
TRAIN_HINT = "`medcoding train --data PREPARED --out MODEL_DIR`"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ----------------------------------------------------------------------------- writing


def working_dir(model_dir: str | os.PathLike) -> Path:
    """Where a training run for ``model_dir`` works until it publishes: ``MODEL.partial``."""
    model_dir = Path(model_dir)
    return model_dir.with_name(f"{model_dir.name}.partial")


def staging_dir(model_dir: str | os.PathLike) -> Path:
    """A new empty folder beside ``model_dir`` for ``save_pretrained`` to write into."""
    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=f".{model_dir.name}.saving."))
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)  # mkdtemp makes 0700; a model directory is an ordinary folder
    return staging


def check_out_dir(model_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to train into a non-empty ``model_dir`` unless ``overwrite`` is given."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        raise FileExistsError(f"--out {model_dir} is a file; give a directory for the model")
    if model_dir.is_dir() and any(model_dir.iterdir()) and not overwrite:
        what = "a model" if (model_dir / MARKER).is_file() else "files"
        raise FileExistsError(
            f"--out {model_dir} already holds {what}; give --overwrite to replace it once the "
            "new model is finished (it stays untouched until then), or choose another --out")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and load reports inside the block (restored after)."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def record_weights_hash(directory: str | os.PathLike, config) -> Path:
    """Set ``config.weights_sha256`` to the hash of ``directory/model.safetensors`` and write
    ``config.json`` (renamed into place)."""
    from medcoding.io import write_text

    directory = Path(directory)
    setattr(config, WEIGHTS_HASH_KEY, file_sha256(directory / WEIGHTS))
    return write_text(directory / CONFIG, config.to_json_string())


def save_tokenizer(tokenizer, directory: str | os.PathLike) -> None:
    """Tokenizer files into ``directory``, each renamed into place (never half written)."""
    directory = Path(directory)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".tokenizer.") as staging:
        tokenizer.save_pretrained(staging)
        for path in Path(staging).iterdir():
            os.replace(path, directory / path.name)


def write_training_record(directory: str | os.PathLike, log, summary: dict) -> None:
    """``train_log.csv`` (a DataFrame, one row per epoch) and ``train_summary.json``."""
    from medcoding.io import write_csv, write_json

    write_csv(Path(directory) / TRAIN_LOG, log)
    write_json(Path(directory) / TRAIN_SUMMARY, summary)


def mark_complete(directory: str | os.PathLike) -> Path:
    """Write the completion marker: the last file of a finished model directory."""
    from medcoding import __version__
    from medcoding.io import read_json, write_json

    directory = Path(directory)
    config = read_json(directory / CONFIG)
    return write_json(directory / MARKER, {"complete": True, "medcoding_version": __version__,
                                           WEIGHTS_HASH_KEY: config.get(WEIGHTS_HASH_KEY)})


def publish(work: str | os.PathLike, model_dir: str | os.PathLike) -> Path:
    """Mark ``work`` complete and rename it onto ``model_dir``; an old model is removed after.

    Each rename is atomic: at every moment ``model_dir`` is either the old model or the new
    one (or, between the two renames, absent), never a mixture.
    """
    work, model_dir = Path(work), Path(model_dir)
    mark_complete(work)
    retired = model_dir.with_name(f".{model_dir.name}.replaced")
    if retired.exists():
        shutil.rmtree(retired)
    if model_dir.exists():
        os.rename(model_dir, retired)
    os.rename(work, model_dir)
    shutil.rmtree(retired, ignore_errors=True)
    return model_dir


# ----------------------------------------------------------------------------- reading


def require_complete(directory: str | os.PathLike) -> None:
    """Refuse a model directory without the completion marker (unfinished or not a model)."""
    directory = Path(directory)
    if (directory / MARKER).is_file():
        return
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory {directory} not found; train one with "
                                f"{TRAIN_HINT}")
    raise ValueError(
        f"{directory} is not a finished model directory (no {MARKER}): its training run was "
        "interrupted or is still running; continue it with `medcoding train --resume` "
        "(same --data and --out) or train it again")


def read_config(directory: str | os.PathLike) -> dict:
    """``config.json`` of a model directory as a dict, refused unless it is a PLM-CA config."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {Path(directory)} is not a PLM-CA model "
                                f"directory; train one with {TRAIN_HINT}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not readable JSON ({err}); copy the model directory again "
                         "or re-train it") from err
    if not isinstance(config, dict) or config.get("model_type") != MODEL_TYPE:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise ValueError(
            f"{path}: model_type is {found!r}, not {MODEL_TYPE!r}: the directory was written by "
            "an older medcoding (config, labels.json and thresholds.json as separate files) or "
            f"is not a PLM-CA model; re-train it with {TRAIN_HINT}")
    return config


def check_weights(directory: str | os.PathLike, expected: str | None) -> None:
    """Refuse ``model.safetensors`` whose SHA-256 differs from ``expected``."""
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the model directory is incomplete; copy it "
                                f"again or re-train it with {TRAIN_HINT}")
    if expected is None:
        raise ValueError(f"{Path(directory) / CONFIG} records no {WEIGHTS_HASH_KEY}, so the "
                         f"weights cannot be checked; re-train the model with {TRAIN_HINT}")
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"{path}: the weights' SHA-256 {actual[:16]}... differs from the "
            f"{expected[:16]}... recorded in {Path(directory) / CONFIG}, so the file is "
            "corrupt or was replaced; copy the model directory again or re-train it")


def check(directory: str | os.PathLike) -> dict:
    """Everything :func:`PLMCA.from_pretrained` refuses: no marker, another config format,
    weights that differ from their recorded hash. Returns the config dict."""
    require_complete(directory)
    config = read_config(directory)
    check_weights(directory, config.get(WEIGHTS_HASH_KEY))
    return config


@dataclass(frozen=True)
class ModelInfo:
    """A finished model directory's settings, read without torch (see :func:`info`)."""

    directory: Path
    labels: list[str]
    level: str | None
    threshold: float
    chunk_size: int
    head: str
    precision: str | None
    encoder_type: str | None


def info(directory: str | os.PathLike) -> ModelInfo:
    """The settings of a finished model directory (marker and format checked, weights not)."""
    directory = Path(directory)
    require_complete(directory)
    config = read_config(directory)
    labels = config.get("id2label") or {}
    return ModelInfo(
        directory=directory, labels=[labels[str(index)] for index in range(len(labels))],
        level=config.get("level"), threshold=float(config.get("threshold", 0.5)),
        chunk_size=int(config.get("chunk_size", 128)), head=config.get("head", "per_label"),
        precision=config.get("precision"),
        encoder_type=(config.get("encoder") or {}).get("model_type"))


def train_log(directory: str | os.PathLike):
    """``train_log.csv`` of a finished model: one row per epoch (loss, val_map, ...)."""
    import pandas as pd

    require_complete(directory)
    path = Path(directory) / TRAIN_LOG
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the model was not trained by "
                                f"`medcoding train` (only it writes the training log)")
    return pd.read_csv(path)


def train_summary(directory: str | os.PathLike) -> dict:
    """``train_summary.json`` of a finished model (best epoch, val MAP, settings)."""
    require_complete(directory)
    path = Path(directory) / TRAIN_SUMMARY
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the model was not trained by "
                                f"`medcoding train` (only it writes the training summary)")
    return json.loads(path.read_text(encoding="utf-8"))
