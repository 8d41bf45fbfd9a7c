"""One run's evaluation split, the model's scores and the code lists, held together for analyses.

Every analysis in :mod:`medcoding.analysis` reads an :class:`AnalysisInputs`: the prepared split
(one row per course, in the same order as the score rows), the score matrix, the label vocabulary,
the human codes as a boolean matrix and, for synthetic cohorts, the true codes as a second matrix.
Training-split code counts (how often each code occurs, how often as a secondary diagnosis) come
with it, because two of the study's figures are drawn against them.

:func:`load_inputs` builds it from a run directory (through :mod:`medcoding.runs`, so no torch is
imported); :func:`from_frames` builds it from in-memory frames and arrays (tests and notebooks
that already hold them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from medcoding.metrics import label_matrix
from medcoding.runs import Run

LEVELS = ("l3", "full")
TRUTH_COLUMNS = ("true_l3", "true_full", "true_evidence", "true_primary_full")
_CODE_COLUMN = {"l3": "codes_l3", "full": "codes_full"}
_PRIMARY_COLUMN = {"l3": "primary_l3", "full": "primary_full"}
_TRUE_COLUMN = {"l3": "true_l3", "full": "true_full"}


@dataclass(frozen=True)
class AnalysisInputs:
    """Scores and codes of one evaluation split, row-aligned.

    split: prepared rows of the evaluated courses, index 0..n-1 in score order.
    scores: float32 ``[courses, labels]``, columns in ``labels`` order.
    labels: the label vocabulary (codes seen in training) at ``level``.
    y_human: bool CSR ``[courses, labels]``, the human codes.
    y_truth: bool CSR ``[courses, labels]``, the true codes (synthetic cohorts), else ``None``.
    train_codes: training rows with the human code list and primary code at ``level``
        (columns ``codes``, ``primary``); empty when the training split is not given.
    level: ``"l3"`` (categories) or ``"full"`` (full codes).
    source: where the inputs came from, for messages.
    """

    split: pd.DataFrame
    scores: np.ndarray
    labels: list[str]
    y_human: sp.csr_matrix
    y_truth: sp.csr_matrix | None
    train_codes: pd.DataFrame
    level: str
    source: str

    @property
    def is_synthetic(self) -> bool:
        """True when the split carries the generator's true codes."""
        return self.y_truth is not None

    @property
    def code_column(self) -> str:
        return _CODE_COLUMN[self.level]

    @property
    def primary_column(self) -> str:
        return _PRIMARY_COLUMN[self.level]

    @property
    def true_column(self) -> str:
        return _TRUE_COLUMN[self.level]

    @property
    def label_index(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def reference(self, name: str) -> sp.csr_matrix:
        """The label matrix to score against: ``"human"`` codes or the synthetic ``"truth"``."""
        if name == "human":
            return self.y_human
        if name == "truth":
            if self.y_truth is None:
                raise ValueError(f"{self.source}: reference 'truth' needs the synthetic cohort's "
                                 f"{self.true_column} column; fix: use reference='human'")
            return self.y_truth
        raise ValueError(f"reference {name!r} is not 'human' or 'truth'; fix: pass one of those")

    def train_frequency(self) -> pd.DataFrame:
        """Per label: training courses holding it and the share where it is not the primary.

        Columns ``label, train_count, train_secondary, secondary_share`` (share NaN when the
        label never occurs in training rows given here).
        """
        return training_frequency(self.train_codes, self.labels)


def training_frequency(train_codes: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Count each label's training courses and its secondary occurrences (code != primary).

    ``train_codes`` has columns ``codes`` (list of codes per course) and ``primary``. A code
    listed twice in one course counts once.
    """
    counts = dict.fromkeys(labels, 0)
    secondary = dict.fromkeys(labels, 0)
    for codes, primary in zip(train_codes["codes"], train_codes["primary"], strict=True):
        for code in set(codes):
            if code in counts:
                counts[code] += 1
                secondary[code] += int(code != primary)
    frame = pd.DataFrame({
        "label": labels,
        "train_count": [counts[label] for label in labels],
        "train_secondary": [secondary[label] for label in labels],
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["secondary_share"] = frame["train_secondary"] / frame["train_count"].where(
            frame["train_count"] > 0)
    return frame


def _as_list(codes) -> list[str]:
    if codes is None or (isinstance(codes, float) and np.isnan(codes)):
        return []
    return list(codes)


def from_frames(
    split: pd.DataFrame,
    scores: np.ndarray,
    labels: list[str],
    train: pd.DataFrame | None = None,
    level: str = "l3",
    source: str = "in-memory frames",
) -> AnalysisInputs:
    """Build inputs from a prepared split (rows in score order), scores and labels.

    ``train`` is the prepared training split (only its code and primary columns are read).
    """
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {LEVELS}; fix: pass level='l3' or 'full'")
    scores = np.asarray(scores, dtype=np.float32)  # [courses, labels]
    if scores.ndim != 2 or scores.shape != (len(split), len(labels)):
        raise ValueError(
            f"{source}: scores have shape {scores.shape} but the split has {len(split)} courses "
            f"and there are {len(labels)} labels; fix: pass scores as [courses, labels] in the "
            "split's row order")
    _require_columns(split, ["course_id", _CODE_COLUMN[level], _PRIMARY_COLUMN[level]], source)
    split = split.reset_index(drop=True)
    synthetic = _TRUE_COLUMN[level] in split.columns
    y_truth = label_matrix(split[_TRUE_COLUMN[level]].map(_as_list), labels) if synthetic else None
    if train is None:
        train_codes = pd.DataFrame({"codes": pd.Series([], dtype=object),
                                    "primary": pd.Series([], dtype=object)})
    else:
        _require_columns(train, [_CODE_COLUMN[level], _PRIMARY_COLUMN[level]], f"{source} (train)")
        train_codes = pd.DataFrame({"codes": train[_CODE_COLUMN[level]].map(_as_list).to_numpy(),
                                    "primary": train[_PRIMARY_COLUMN[level]].to_numpy()})
    return AnalysisInputs(
        split=split, scores=scores, labels=list(labels),
        y_human=label_matrix(split[_CODE_COLUMN[level]].map(_as_list), labels), y_truth=y_truth,
        train_codes=train_codes, level=level, source=source)


def _require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; present: {list(frame.columns)}; fix: pass a "
            "split written by `medcoding prepare` (see CONTRIBUTING.md, Prepared splits)")


def load_inputs(
    run_dir: str | Path, model_name: str = "main", split: str = "test", level: str | None = None
) -> AnalysisInputs:
    """Load ``run_dir/prepared/{split}.parquet``, the training split and the model's predictions.

    The predictions (``run_dir/predictions/{model_name}``, written by ``medcoding predict``) must
    cover every course of the split; their rows are reordered to the split's order. ``level``
    defaults to the one the prediction file records (``"3"`` is read as ``"l3"``) and, in files
    that record none, to the labels' own: ``"full"`` when they hold full codes (``E66.0``).
    """
    run = Run(run_dir)
    split_path, train_path = run.split_path(split), run.split_path("train")
    predictions_dir = run.predictions_dir(model_name)
    for path, fix in [(split_path, "run `medcoding prepare`"),
                      (train_path, "run `medcoding prepare`"),
                      (predictions_dir, f"run `medcoding predict ... --split {split}`")]:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; fix: {fix} for this run directory")
    predictions = run.load_predictions(model_name, split)
    if level is None and predictions.level is not None:
        level = {"3": "l3"}.get(predictions.level, predictions.level)
    if level is None:
        level = "full" if any("." in label for label in predictions.labels) else "l3"
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {LEVELS}; fix: pass level='l3' or 'full'")
    frame = pd.read_parquet(split_path)
    train = pd.read_parquet(train_path, columns=[_CODE_COLUMN[level], _PRIMARY_COLUMN[level]])
    order = _align(frame["course_id"], predictions.course_ids, split_path, predictions_dir)
    scores = np.asarray(predictions.scores)[order]  # [courses, labels]
    return from_frames(frame, scores, list(predictions.labels), train=train, level=level,
                       source=f"{split_path} + {predictions_dir}")


def _align(split_ids: pd.Series, predicted_ids, split_path: Path, predictions_dir: Path):
    """Row of the predictions for each course of the split (every course must be predicted)."""
    position = pd.Series(np.arange(len(predicted_ids)), index=pd.Index(predicted_ids))
    if not position.index.is_unique:
        duplicated = position.index[position.index.duplicated()][:5].tolist()
        raise ValueError(f"{predictions_dir}: course ids predicted twice, e.g. {duplicated}; "
                         "fix: re-run `medcoding predict`")
    missing = split_ids[~split_ids.isin(position.index)]
    if len(missing):
        raise ValueError(
            f"{predictions_dir} lacks {len(missing)} course(s) of {split_path}, e.g. "
            f"{missing.head(5).tolist()}; fix: re-run `medcoding predict` on this split")
    return position.loc[split_ids.to_numpy()].to_numpy()


def global_threshold(run_dir: str | Path, model_name: str = "main") -> float:
    """The model's global decision threshold, tuned on validation at training time.

    Read from the config of ``run_dir/models/{model_name}`` (``medcoding.modeldir.info``).
    """
    return Run(run_dir).threshold(model_name)
