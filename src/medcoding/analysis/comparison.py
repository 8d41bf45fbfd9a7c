"""PLM-CA beside the baselines on the same test courses, with paired bootstrap intervals.

The baselines of :mod:`medcoding.baselines` (frequency prior, ICD-10 title dictionary, the
generator's surface-form dictionary on a synthetic cohort, TF-IDF + logistic regression trained on
the same human codes) are scored once by :func:`write_baselines` and written as predictions,
``<run_dir>/predictions/<baseline>/test.parquet`` through
:func:`medcoding.runs.save_predictions`,
with their validation-tuned threshold in ``baseline.json`` beside it, so every chapter can load
them like the model's (:func:`load_models`).

:func:`metric_table` gives each model's metrics with the patient-level bootstrap interval of
:func:`medcoding.evaluation.bootstrap_ci`; :func:`paired_differences` the difference between
PLM-CA and each baseline, each resample drawing the same patients for both models (the same
draws as ``bootstrap_ci`` with the same seed), so the interval of a difference is not the
overlap of two intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medcoding.analysis.inputs import AnalysisInputs, global_threshold, load_inputs
from medcoding.io import read_json, write_json

MODEL = "PLM-CA"
#: Baselines in the order the book shows them: name prefix (as :mod:`medcoding.baselines` names
#: it) -> predictions directory.
BASELINE_DIRS = {
    "frequency prior": "baseline_prior",
    "ICD-10 title dictionary": "baseline_icd_titles",
    "surface-form dictionary": "baseline_surface_forms",
    "TF-IDF + LR": "baseline_tfidf_lr",
}
BASELINE_FILE = "baseline.json"
HEADLINE_METRICS = ("f1_micro", "recall@10", "map")
RESAMPLE_BATCH = 50  # as medcoding.evaluation: the same draws for the same seed


def baseline_directory(name: str) -> str:
    """The predictions directory of a baseline named as :mod:`medcoding.baselines` names it."""
    for prefix, directory in BASELINE_DIRS.items():
        if name.startswith(prefix):
            return directory
    raise ValueError(f"unknown baseline {name!r}; known: {list(BASELINE_DIRS)}")


def model_train_patients(run_dir: str | Path, model_name: str = "main") -> int | None:
    """The training patients (``train_size``; None: all) model ``model_name`` of the run used."""
    from medcoding import modeldir

    return modeldir.train_summary(Path(run_dir) / "models" / model_name)["config"]["train_size"]


def write_baselines(run_dir: str | Path, surface_forms: Mapping | None = None,
                    train_patients: int | None = None) -> pd.DataFrame:
    """Score every baseline on ``<run_dir>/prepared``'s test split and write its predictions.

    The prior and TF-IDF + LR learn from the human codes of the first ``train_patients``
    training patients (None: all; the results chapter gives them the main model's, so both
    learn from the same courses); every threshold is tuned on validation against the human
    codes, as PLM-CA's is. ``surface_forms`` (``{category: [phrases]}``) adds the surface-form
    dictionary. Returns one row per baseline: ``baseline, directory, threshold``.
    """
    from medcoding.baselines import score_baselines
    from medcoding.runs import save_predictions

    run_dir = Path(run_dir)
    scored = score_baselines(run_dir / "prepared", surface_forms, train_on="human",
                             train_patients=train_patients)
    if scored.test.course_ids is None:
        raise ValueError(f"{run_dir / 'prepared' / 'test.parquet'} has no course_id column; fix: "
                         "re-run `medcoding prepare`")
    rows = []
    for baseline in scored.baselines:
        directory = run_dir / "predictions" / baseline_directory(baseline.name)
        scores = np.ascontiguousarray(baseline.scores, dtype=np.float32)  # [courses, labels]
        save_predictions(directory, "test", scored.test.course_ids, scores, scored.labels)
        write_json(directory / BASELINE_FILE, {"name": baseline.name, "train_on": "human",
                                               "threshold": float(baseline.threshold)})
        rows.append({"baseline": baseline.name, "directory": directory.name,
                     "threshold": float(baseline.threshold)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Scored:
    """One model's test inputs and decision threshold."""

    name: str
    inputs: AnalysisInputs
    threshold: float

    @property
    def reads_text(self) -> bool:
        """False for a model that scores every course alike (the frequency prior)."""
        scores = self.inputs.scores  # [courses, labels]
        return not bool(np.all(scores.min(axis=0) == scores.max(axis=0)))

    @property
    def ranks(self) -> bool:
        """False for a model whose scores are only 0 or 1 (a dictionary): it orders no labels,
        so a ranking metric (Recall@k) would read its ties in label order."""
        return not bool(np.isin(self.inputs.scores, (0.0, 1.0)).all())


def ranking_models(models: Mapping[str, Scored]) -> dict[str, Scored]:
    """The models whose scores rank the labels (PLM-CA, TF-IDF + LR, the prior)."""
    return {name: scored for name, scored in models.items() if scored.ranks}


def load_models(run_dir: str | Path, model_name: str = "main") -> dict[str, Scored]:
    """PLM-CA (``models/<model_name>``) and every baseline written by :func:`write_baselines`.

    Keys are display names, PLM-CA first, then the baselines in :data:`BASELINE_DIRS` order
    (those not written are left out). Every model's rows follow the test split's order.
    """
    run_dir = Path(run_dir)
    models = {MODEL: Scored(MODEL, load_inputs(run_dir, model_name, "test"),
                            global_threshold(run_dir, model_name))}
    for directory in BASELINE_DIRS.values():
        path = run_dir / "predictions" / directory / BASELINE_FILE
        if path.is_file():
            meta = read_json(path)
            name = meta["name"].split(" (")[0]
            models[name] = Scored(name, load_inputs(run_dir, directory, "test"),
                                  float(meta["threshold"]))
    return models


def references(models: Mapping[str, Scored]) -> list[str]:
    """``["human", "truth"]`` on a synthetic cohort, else ``["human"]``."""
    first = next(iter(models.values()))
    return ["human", "truth"] if first.inputs.is_synthetic else ["human"]


def metric_table(models: Mapping[str, Scored], n_resamples: int, seed: int,
                 metrics: Sequence[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """``model, reference, metric, estimate, low, high, threshold`` for every model and
    reference, intervals from :func:`medcoding.evaluation.bootstrap_ci` over test patients."""
    from medcoding.evaluation import bootstrap_ci

    rows = []
    for name, scored in models.items():
        groups = scored.inputs.split["patient_id"].to_numpy()
        for reference in references(models):
            table = bootstrap_ci(scored.inputs.reference(reference), scored.inputs.scores,
                                 groups=groups, n_resamples=n_resamples, seed=seed,
                                 threshold=scored.threshold)
            table = table[table["metric"].isin(metrics)]
            rows.append(table.assign(model=name, reference=reference,
                                     threshold=scored.threshold))
    frame = pd.concat(rows, ignore_index=True)
    return frame[["model", "reference", "metric", "estimate", "low", "high", "threshold"]]


def _per_patient(scored: Scored, reference: str, groups: np.ndarray, patients: int):
    from medcoding.metrics import document_counts

    counts = document_counts(scored.inputs.reference(reference), scored.inputs.scores,
                             scored.threshold, per_document=True)
    indicator = _indicator(groups, patients)
    return counts.combine(indicator)


def _indicator(groups: np.ndarray, patients: int):
    import scipy.sparse as sp

    documents = len(groups)
    return sp.csr_matrix((np.ones(documents), (groups, np.arange(documents))),
                         shape=(patients, documents))


def paired_differences(models: Mapping[str, Scored], n_resamples: int, seed: int,
                       metrics: Sequence[str] = HEADLINE_METRICS, base: str = MODEL,
                       confidence: float = 0.95) -> pd.DataFrame:
    """``base`` minus every other model, per reference and metric, with a paired interval.

    Columns ``model, reference, metric, base_estimate, model_estimate, difference, low, high``.
    Each resample draws test patients with replacement (the draws of
    :func:`medcoding.evaluation.bootstrap_ci` for ``seed``) and scores both models on the same
    patients; the interval is the centred one of ``bootstrap_ci``: the estimate plus the
    quantiles of the resampled differences around their mean.
    """
    from medcoding.metrics import metrics_from_counts

    if base not in models:
        raise ValueError(f"no model {base!r} among {list(models)}")
    first = models[base].inputs.split["patient_id"]
    for name, scored in models.items():
        if not scored.inputs.split["course_id"].equals(models[base].inputs.split["course_id"]):
            raise ValueError(f"{name} is scored on other courses than {base}; fix: score both "
                             "on the same prepared test split")
    groups, patients = pd.factorize(first, sort=True)
    tail = (1 - confidence) / 2
    rows = []
    for reference in references(models):
        per_patient = {name: _per_patient(scored, reference, groups, len(patients))
                       for name, scored in models.items()}
        estimates = {name: metrics_from_counts(counts.total())
                     for name, counts in per_patient.items()}
        resampled = {name: {metric: [] for metric in metrics} for name in models}
        rng = np.random.default_rng(seed)
        for start in range(0, n_resamples, RESAMPLE_BATCH):
            batch = min(RESAMPLE_BATCH, n_resamples - start)
            drawn = rng.integers(0, len(patients), size=(batch, len(patients)))  # [batch, draws]
            offsets = np.arange(batch)[:, None] * len(patients)
            weights = np.bincount((drawn + offsets).ravel(), minlength=batch * len(patients))
            weights = weights.reshape(batch, -1)  # [batch, patients]
            for name, counts in per_patient.items():
                values = metrics_from_counts(counts.combine(weights))
                for metric in metrics:
                    resampled[name][metric].append(values[metric])
        for name in models:
            if name == base:
                continue
            for metric in metrics:
                base_value = float(estimates[base][metric][0])
                value = float(estimates[name][metric][0])
                samples = (np.concatenate(resampled[base][metric])
                           - np.concatenate(resampled[name][metric]))  # [resamples]
                samples = samples[np.isfinite(samples)]
                difference = base_value - value
                if len(samples):
                    spread = np.quantile(samples - samples.mean(), [tail, 1 - tail])
                    low, high = difference + spread
                else:
                    low = high = np.nan
                rows.append({"model": name, "reference": reference, "metric": metric,
                             "base_estimate": base_value, "model_estimate": value,
                             "difference": difference, "low": float(low), "high": float(high)})
    return pd.DataFrame(rows, columns=["model", "reference", "metric", "base_estimate",
                                       "model_estimate", "difference", "low", "high"])


def headline(table: pd.DataFrame, metric: str = "f1_micro") -> pd.DataFrame:
    """One row per model, one column per reference: ``estimate (low to high)`` of ``metric``."""
    chosen = table[table["metric"] == metric]
    cells = chosen.assign(value=[f"{e:.3f} ({lo:.3f} to {hi:.3f})" for e, lo, hi in
                                 zip(chosen["estimate"], chosen["low"], chosen["high"],
                                     strict=True)])
    wide = cells.pivot(index="model", columns="reference", values="value")
    wide = wide.loc[list(dict.fromkeys(chosen["model"]))]
    wide.columns = [f"{metric} vs {reference}" for reference in wide.columns]
    return wide.reset_index()


def called(name: str) -> str:
    """A baseline's name inside a sentence: ``the frequency prior``, ``TF-IDF + LR``."""
    return name if name.startswith("TF-IDF") else f"the {name}"


def reading(differences: pd.DataFrame, metric: str = "f1_micro",
            measure: str = "micro F1") -> str:
    """One sentence per baseline and reference from :func:`paired_differences`
    (:func:`medcoding.readings.compare`)."""
    from medcoding import readings

    sentences = []
    for reference, group in differences[differences["metric"] == metric].groupby(
            "reference", sort=False):
        against = "the human codes" if reference == "human" else "the true codes"
        parts = [readings.compare(MODEL, called(row["model"]), row["difference"], row["low"],
                                  row["high"], measure)
                 for _, row in group.iterrows()]
        text = " ".join(parts)
        if text.startswith("The "):
            text = "t" + text[1:]
        sentences.append(f"Against {against}: {text}")
    return " ".join(sentences)


def summary_text(run_dir: str | Path) -> str:
    """The headline table (Markdown) and its readings in micro F1 and MAP, from the tables the
    results chapter wrote (``tables/results_baselines.csv``,
    ``tables/results_baseline_differences.csv``): the text for a README or a report, generated
    from a run, never typed."""
    tables = Path(run_dir) / "tables"
    paths = [tables / "results_baselines.csv", tables / "results_baseline_differences.csv"]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; fix: run the results chapter "
                                    f"(notebooks/03_results) for {run_dir}")
    scores, differences = (pd.read_csv(path) for path in paths)
    wide = headline(scores)
    lines = ["| " + " | ".join(wide.columns) + " |", "|" + "---|" * len(wide.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |"
              for row in wide.itertuples(index=False)]
    return ("\n".join(lines) + "\n\n" + reading(differences) + "\n\nIn mean average precision, "
            "the threshold-free ranking measure: " + reading(differences, "map", "MAP") + "\n")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m medcoding.analysis.comparison",
        description="Print the headline table (PLM-CA and the baselines, micro F1 with 95% "
                    "intervals against the human codes and the truth) and its reading from a "
                    "run's results tables.")
    parser.add_argument("run_dir", type=Path, help="a run directory, e.g. runs/default")
    args = parser.parse_args(argv)
    try:
        print(summary_text(args.run_dir), end="")
    except FileNotFoundError as error:
        print(f"medcoding comparison: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
