"""Train one model of a run and score splits with it: the one call of the training chapter
(``models/main``, ``models/full``) and of every rung of the scaling ladder.

:func:`fit_and_score` trains ``config`` on the run's prepared splits into ``models/<name>``
(one process per GPU when there are several, :func:`medcoding.train.fit`) and writes
``predictions/<name>/<split>.parquet`` for each split asked for, read from ``scored_dir``
(default: the run's ``prepared/``; the ladder scores a subset of the test patients).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from medcoding.runs import Run


def fit_and_score(run_dir: str | os.PathLike, name: str, config,
                  splits: Sequence[str] = ("val", "test"),
                  scored_dir: str | os.PathLike | None = None) -> Path:
    """Train ``models/<name>`` with ``config`` (a :class:`medcoding.train.TrainConfig`), replacing
    an earlier model of that name, and score ``splits``; returns the model directory."""
    from medcoding import predict, train

    run = Run(run_dir)
    model_dir = train.fit(run.prepared, run.model_dir(name), config, overwrite=True).model_dir
    for split in splits:
        predict.predict_split(model_dir, scored_dir or run.prepared, split,
                              run.predictions_dir(name))
    return model_dir
