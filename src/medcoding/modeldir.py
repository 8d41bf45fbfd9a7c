"""A model directory's integrity: the weights' hash, the completion marker, atomic publishing.

A model directory is trusted only when it holds ``complete.json``, written last, after every
other file of a finished training run; ``Coder.from_pretrained`` (and so ``medcoding predict``
and ``medcoding explain``) refuses a directory without it. ``config.json`` records the SHA-256
of ``model.safetensors`` (``weights_sha256``), checked on every load, so a corrupt or replaced
weight file is refused instead of scoring NaN.

Training never writes into the model directory it is asked for: it works in ``MODEL.partial/``
beside it (config, tokenizer, labels and the ``checkpoint/`` that ``--resume`` continues from)
and, once finished, renames that folder onto ``MODEL`` in one step (:func:`publish`). An
interrupted run therefore leaves the previous model untouched and ``MODEL.partial/`` without a
marker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

MARKER = "complete.json"
WEIGHTS = "model.safetensors"
WEIGHTS_HASH_KEY = "weights_sha256"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def working_dir(model_dir: str | os.PathLike) -> Path:
    """Where a training run for ``model_dir`` works until it publishes: ``MODEL.partial``."""
    model_dir = Path(model_dir)
    return model_dir.with_name(f"{model_dir.name}.partial")


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


def mark_complete(directory: str | os.PathLike) -> Path:
    """Write the completion marker: the last file of a finished model directory."""
    from medcoding import __version__
    from medcoding.io import read_json, write_json

    directory = Path(directory)
    config = read_json(directory / "config.json")
    return write_json(directory / MARKER, {"complete": True, "medcoding_version": __version__,
                                           WEIGHTS_HASH_KEY: config.get(WEIGHTS_HASH_KEY)})


def require_complete(directory: str | os.PathLike) -> None:
    """Refuse a model directory without the completion marker (unfinished or not a model)."""
    directory = Path(directory)
    if (directory / MARKER).is_file():
        return
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory {directory} not found; train one with "
                                "`medcoding train --data PREPARED --out MODEL_DIR`")
    raise ValueError(
        f"{directory} is not a finished model directory (no {MARKER}): its training run was "
        "interrupted or is still running; continue it with `medcoding train --resume` "
        "(same --data and --out) or train it again")


def check_weights(directory: str | os.PathLike, expected: str | None) -> None:
    """Refuse ``model.safetensors`` whose SHA-256 differs from ``expected`` (None: unrecorded)."""
    if expected is None:
        return
    path = Path(directory) / WEIGHTS
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"{path}: the weights' SHA-256 {actual[:16]}... differs from the "
            f"{expected[:16]}... recorded in {Path(directory) / 'config.json'}, so the file is "
            "corrupt or was replaced; copy the model directory again or re-train it")


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
