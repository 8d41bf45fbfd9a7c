"""The training chapter's tables: the epochs of each trained level, the tuned threshold, the
time spent, and this profile's set-up beside the study's.

``models`` maps a level (``"3"``, ``"full"``) to its model directory, as the training chapter
trains them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from medcoding import modeldir, study

LOG_COLUMNS = ["level", "epoch", "loss", "val_map", "val_f1_micro"]


def training_log(models: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """Every level's ``train_log.csv`` (one row per epoch) with a ``level`` column."""
    return pd.concat([modeldir.train_log(directory).assign(level=level)
                      for level, directory in models.items()], ignore_index=True)


def curves(log: pd.DataFrame) -> pd.DataFrame:
    """Loss, val MAP and val micro F1 per epoch in long form, one ``series`` per level and
    quantity (``"level 3: loss"``), for the line plot."""
    long = log.melt(id_vars=["level", "epoch"], value_vars=LOG_COLUMNS[2:], var_name="quantity",
                    value_name="value")
    return long.assign(series="level " + long["level"] + ": " + long["quantity"])


def summaries(models: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """Per level: best epoch and its val MAP, the frequency baseline's val MAP, the tuned
    threshold and the number of labels."""
    rows = []
    for level, directory in models.items():
        summary = modeldir.train_summary(directory)
        model = modeldir.info(directory)
        rows.append({"level": level, "best_epoch": summary["best_epoch"],
                     "best_val_map": summary["best_val_map"],
                     "frequency_baseline_val_map": summary["frequency_baseline_val_map"],
                     "threshold": model.threshold, "labels": len(model.labels)})
    return pd.DataFrame(rows)


def timing(log: pd.DataFrame) -> pd.DataFrame:
    """Per level: epochs run, seconds in all and mean real tokens per second."""
    return (log.groupby("level")
            .agg(epochs=("epoch", "max"), seconds=("seconds", "sum"),
                 tokens_per_s=("tokens_per_s", "mean"))
            .reset_index())


def encoder_dropout_text(encoder_dropout: float | None) -> str:
    """How a profile's ``encoder_dropout`` reads in the set-up table."""
    return "the encoder's own" if encoder_dropout is None else f"{encoder_dropout:g}"


def encoder_layers_text(encoder_layers: int | None, frozen_layers: int) -> str:
    """How a profile's ``encoder_layers`` and ``frozen_layers`` read in the set-up table."""
    kept = "all" if encoder_layers is None else f"first {encoder_layers}"
    if frozen_layers == 0:
        return f"{kept}, all trained"
    return f"{kept}; embeddings and first {frozen_layers} frozen"


def settings_beside_study(encoder: str | Path, train_size: int | None, epochs: int,
                          batch_size: int, learning_rate: float, patience: int,
                          encoder_dropout: float | None, encoder_layers: int | None = None,
                          frozen_layers: int = 0) -> pd.DataFrame:
    """``setting, this book, the study`` (all text): the profile's training set-up beside the
    study's (its dropout is not stated; BERT's own is 0.1; it fine-tunes all 12 layers)."""
    rows = [
        ("encoder", encoder, "Danish BERT-base"),
        ("training patients", "all" if train_size is None else f"{train_size:,}",
         f"{study.COHORT['train_patients']:,}"),
        ("epochs", epochs, study.TRAINING["epochs"]),
        ("batch size", batch_size, study.TRAINING["batch_size"]),
        ("learning rate", learning_rate, study.TRAINING["learning_rate"]),
        ("patience", patience, study.TRAINING["patience"]),
        ("encoder dropout", encoder_dropout_text(encoder_dropout), "not stated"),
        ("encoder layers", encoder_layers_text(encoder_layers, frozen_layers),
         "all 12, all trained"),
    ]
    return pd.DataFrame(rows, columns=["setting", "this book", "the study"]).astype(str)
