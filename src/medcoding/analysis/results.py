"""The results chapter's Table 1: every metric at each level, with intervals, beside the study.

:func:`level_metrics` scores the level-3 model (``main``) and, when it was trained, the full-code
model (``full``) on the test split against the human codes and (synthetic) the truth, with
patient-level bootstrap intervals at the validation-tuned threshold. :func:`table1` lays them out
as the study prints its Table 1, with the study's largest models beside them;
:func:`beside_study` is the level-3 rows for the figure.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medcoding import study
from medcoding.analysis.inputs import global_threshold, load_inputs

LEVELS = {"3": "main", "full": "full"}


def level_metrics(run_dir: str | Path, n_resamples: int, seed: int) -> pd.DataFrame:
    """``metric, estimate, low, high, resampled_mean, level, reference, threshold, unseen``:
    the study's metrics for each trained level and reference (``unseen`` counts the test code
    occurrences outside the label vocabulary, which no model can predict)."""
    from medcoding.evaluation import bootstrap_ci

    run_dir = Path(run_dir)
    rows = []
    for level, name in LEVELS.items():
        if not (run_dir / "predictions" / name).is_dir():
            continue
        inputs = load_inputs(run_dir, name, "test")
        threshold = global_threshold(run_dir, name)
        wanted = ["human", "truth"] if inputs.is_synthetic else ["human"]
        for reference in wanted:
            column = inputs.code_column if reference == "human" else inputs.true_column
            known = set(inputs.labels)
            unseen = sum(code not in known for codes in inputs.split[column]
                         for code in (codes if codes is not None else []))
            table = bootstrap_ci(inputs.reference(reference), inputs.scores,
                                 groups=inputs.split["patient_id"].to_numpy(),
                                 n_resamples=n_resamples, seed=seed, threshold=threshold)
            rows.append(table.assign(level=level, reference=reference, threshold=threshold,
                                     unseen=unseen))
    if not rows:
        raise FileNotFoundError(f"{run_dir / 'predictions'} holds neither 'main' nor 'full'; "
                                "fix: run the training chapter first")
    results = pd.concat(rows, ignore_index=True)
    return results[results["metric"].isin(study.METRIC_NAMES)].reset_index(drop=True)


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as the study prints it: one row per metric, ``estimate (low to high)`` per level
    and reference, then the study's largest level-3 and level-5 models."""
    cells = results.assign(
        value=[f"{e:.3f} ({lo:.3f} to {hi:.3f})" for e, lo, hi in
               zip(results["estimate"], results["low"], results["high"], strict=True)],
        column="ours, level " + results["level"] + ", vs " + results["reference"])
    table = cells.pivot(index="metric", columns="column", values="value")
    table = table.loc[list(study.METRIC_NAMES)]
    table["study, level 3 (1.8M)"] = [f"{v:.3f}" for v in study.headline("3").values()]
    table["study, level 5 (1M)"] = [f"{v:.3f}" for v in study.headline("full").values()]
    table.index = [study.METRIC_NAMES[metric] for metric in table.index]
    table.columns.name = None
    return table


def beside_study(results: pd.DataFrame) -> pd.DataFrame:
    """Level 3 against human codes, ours with intervals beside the study's values:
    ``name, source, estimate, low, high``."""
    ours = results[(results["level"] == "3") & (results["reference"] == "human")]
    ours = ours.assign(source="ours", name=ours["metric"].map(study.METRIC_NAMES))
    values = study.headline("3")
    theirs = pd.DataFrame({"metric": list(values), "estimate": list(values.values())})
    theirs = theirs.assign(low=theirs["estimate"], high=theirs["estimate"], source="the study",
                           name=theirs["metric"].map(study.METRIC_NAMES))
    return pd.concat([ours, theirs], ignore_index=True)[["name", "source", "estimate", "low",
                                                         "high"]]


def human_vs_truth(results: pd.DataFrame) -> pd.DataFrame:
    """Per level and metric: the estimate against human codes and against the truth, and the
    difference (synthetic cohorts; empty without truth rows)."""
    if "truth" not in set(results["reference"]):
        return pd.DataFrame(columns=["level", "metric", "human", "truth", "truth_minus_human"])
    gap = results.pivot_table(index=["level", "metric"], columns="reference",
                              values="estimate").reset_index()
    gap["truth_minus_human"] = gap["truth"] - gap["human"]
    gap["metric"] = pd.Categorical(gap["metric"], list(study.METRIC_NAMES), ordered=True)
    gap = gap.sort_values(["level", "metric"]).reset_index(drop=True)
    gap.columns.name = None
    return gap


OURS, REFERENCE = "ours (all labels, >=)", "reference (present labels, >)"


def conventions(inputs, threshold: float) -> pd.DataFrame:
    """The study's metrics of ``inputs`` (an :class:`~medcoding.analysis.inputs.AnalysisInputs`)
    against the human codes under our scoring conventions and the reference implementation's
    (:func:`medcoding.evaluation.conventions_courses`): one row per metric, one column each."""
    from medcoding.evaluation import conventions_courses

    codes = inputs.split.set_index("course_id")[inputs.code_column]
    table = conventions_courses(inputs.split["course_id"].to_numpy(), inputs.scores,
                                inputs.labels, codes, threshold)
    return table[table["metric"].isin(["n_labels", *study.METRIC_NAMES])].reset_index(drop=True)


def conventions_reading(table: pd.DataFrame) -> str:
    """What the reference implementation's conventions change, from :func:`conventions`."""
    rows = table.set_index("metric")
    metrics = rows.drop(index="n_labels")
    change = (metrics[REFERENCE] - metrics[OURS]).astype(float)
    unchanged = [study.METRIC_NAMES[name] for name in change.index if abs(change[name]) < 5e-4]
    moved = change[change.abs() >= 5e-4]
    text = (f"Scored as the reference implementation scores (only the "
            f"{int(rows.loc['n_labels', REFERENCE]):,} labels present in the test courses instead "
            f"of all {int(rows.loc['n_labels', OURS]):,}, and a code predicted when its score is "
            "above the threshold rather than at or above it), ")
    if moved.empty:
        return text + "no metric changes by 0.0005 or more."
    largest = moved.abs().idxmax()
    text += (f"{len(moved)} of {len(change)} metrics change by 0.0005 or more, "
             f"{study.METRIC_NAMES[largest]} most: {metrics.loc[largest, REFERENCE]:.3f} against "
             f"our {metrics.loc[largest, OURS]:.3f}")
    if unchanged:
        text += f"; unchanged: {', '.join(unchanged)}"
    return text + "."
