"""Figure 1: model-human agreement (micro F1) per department and the median per specialty.

The study computes micro F1 for each department with at least 100 test courses and shows, per
specialty, the median over its departments (53% child and adolescent psychiatry to 91% clinical
neurophysiology).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medcoding import evaluation
from medcoding.analysis.comparison import MODEL
from medcoding.analysis.inputs import AnalysisInputs


def department_f1(
    inputs: AnalysisInputs, threshold: float | np.ndarray = 0.5, min_courses: int = 100,
    reference: str = "human",
) -> pd.DataFrame:
    """Micro F1 of every department against ``reference`` (``"human"`` or ``"truth"``).

    Returns one row per department, sorted by F1 (best first): ``specialty, department, courses,
    f1_micro, included`` where ``included`` is ``courses >= min_courses``. F1 is computed for
    every department (small ones too), so an analyst sees what the minimum leaves out.
    """
    keys = inputs.split[["specialty", "department"]].astype(str)
    group = keys["specialty"] + "\x1f" + keys["department"]  # one group per (specialty, dept)
    by_group = evaluation.evaluate_by_group(inputs.reference(reference), inputs.scores,
                                            group.to_numpy(), threshold=threshold, ks=(5,))
    names = by_group["group"].str.split("\x1f", n=1, expand=True)
    table = pd.DataFrame({"specialty": names[0], "department": names[1],
                          "courses": by_group["n_documents"].astype(int),
                          "f1_micro": by_group["f1_micro"].astype(float)})
    table["included"] = table["courses"] >= min_courses
    return table.sort_values(["f1_micro", "department"], ascending=[False, True],
                             ignore_index=True)


def specialty_medians(departments: pd.DataFrame) -> pd.DataFrame:
    """Median department F1 per specialty over the included departments, best first.

    Columns ``specialty, departments, courses, median_f1, min_f1, max_f1``; empty (with those
    columns) when no department reaches the minimum.
    """
    included = departments[departments["included"]]
    table = (included.groupby("specialty")
             .agg(departments=("department", "size"), courses=("courses", "sum"),
                  median_f1=("f1_micro", "median"), min_f1=("f1_micro", "min"),
                  max_f1=("f1_micro", "max"))
             .reset_index())
    return table.sort_values(["median_f1", "specialty"], ascending=[False, True],
                             ignore_index=True)


def beside_study(medians: pd.DataFrame) -> pd.DataFrame:
    """The study's extreme specialties (:data:`medcoding.study.SPECIALTY_RANGE`) with our median
    for the same specialty (NaN where ours has none), then our lowest and highest."""
    from medcoding import study

    lookup = medians.assign(key=medians["specialty"].str.lower().str.replace("_", " "))
    lookup = lookup.set_index("key")["median_f1"]
    beside = study.SPECIALTY_RANGE.rename(columns={"f1_micro": "study_median_f1"})
    beside["our_median_f1"] = beside["specialty"].str.lower().map(lookup)
    beside["our_rank"] = beside["specialty"].str.lower().map(
        {key: rank + 1 for rank, key in enumerate(lookup.index)})
    beside["our_specialties"] = len(medians)
    return beside


def specialty_range(medians: pd.DataFrame) -> dict:
    """Lowest and highest specialty median: ``{"low": (specialty, f1), "high": (...)}``.

    ``None`` values when no specialty is included.
    """
    if medians.empty:
        return {"low": None, "high": None, "specialties": 0}
    best, worst = medians.iloc[0], medians.iloc[-1]
    return {"low": (worst["specialty"], float(worst["median_f1"])),
            "high": (best["specialty"], float(best["median_f1"])),
            "specialties": len(medians)}



# --------------------------------------------------------------------------- explanations

#: The study's explanations of the spread, as department-level factors (see department_factors).
FACTORS = {
    "secondary_share": "the share of secondary codes",
    "comorbidity": "the number of conditions per course",
    "completeness": "the coder's completeness",
}


def _lists(values) -> list[list[str]]:
    return [[] if codes is None else list(codes) for codes in values]


def department_factors(inputs: AnalysisInputs, threshold: float | np.ndarray = 0.5,
                       min_courses: int = 100) -> pd.DataFrame:
    """Per included department: micro F1 against the human codes and the study's explanations.

    Columns ``specialty, department, courses, f1_micro, secondary_share`` (share of the
    department's codes that are not the primary), ``comorbidity`` (codes per course) and, on a
    synthetic cohort, ``completeness`` (share of the true codes the coder coded); the first two
    count true codes on a synthetic cohort, human codes otherwise.
    """
    departments = department_f1(inputs, threshold, min_courses)
    departments = departments[departments["included"]].drop(columns="included")
    split = inputs.split
    if inputs.is_synthetic:
        codes = _lists(split[inputs.true_column])
        primary = split["true_primary_full"].map(
            lambda code: code[:3] if isinstance(code, str) and inputs.level == "l3" else code)
    else:
        codes = _lists(split[inputs.code_column])
        primary = split[inputs.primary_column]
    per_course = pd.DataFrame({
        "specialty": split["specialty"].astype(str).to_numpy(),
        "department": split["department"].astype(str).to_numpy(),
        "codes": [len(set(c)) for c in codes],
        "secondary": [len(set(c) - {p}) for c, p in zip(codes, primary, strict=True)],
    })
    if inputs.is_synthetic:
        human = _lists(split[inputs.code_column])
        per_course["coded"] = [len(set(t) & set(h)) for t, h in zip(codes, human, strict=True)]
    sums = per_course.groupby(["specialty", "department"]).sum(numeric_only=True)
    factors = pd.DataFrame({
        "secondary_share": sums["secondary"] / sums["codes"].where(sums["codes"] > 0),
        "comorbidity": sums["codes"] / per_course.groupby(["specialty", "department"]).size()})
    if inputs.is_synthetic:
        factors["completeness"] = sums["coded"] / sums["codes"].where(sums["codes"] > 0)
    return departments.merge(factors.reset_index(), on=["specialty", "department"], how="left")


def associations(factors: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                 outcome: str = "f1_micro") -> pd.DataFrame:
    """Pearson correlation of department F1 with each factor, with a 95% bootstrap interval
    over departments (departments drawn with replacement; percentile interval).

    Columns ``factor, departments, correlation, low, high``; NaN with fewer than three
    departments or a factor that does not vary.
    """
    from medcoding.analysis.association import correlation

    rows = []
    for factor in [name for name in FACTORS if name in factors.columns]:
        found = correlation(factors[outcome], factors[factor], n_resamples, seed)
        rows.append({"factor": factor, "departments": found["n"],
                     "correlation": found["correlation"], "low": found["low"],
                     "high": found["high"]})
    return pd.DataFrame(rows, columns=["factor", "departments", "correlation", "low", "high"])


def association_reading(table: pd.DataFrame) -> str:
    """One sentence per factor (:func:`medcoding.readings.association`)."""
    from medcoding import readings

    return " ".join(
        readings.association("department micro F1", FACTORS[row["factor"]], row["correlation"],
                             row["low"], row["high"], fmt=".2f").replace(
            " (", f" (correlation over {row['departments']} departments: ", 1)
        for _, row in table.iterrows())


def spread_reading(medians: pd.DataFrame, min_courses: int) -> str:
    """The spread of the specialty medians, ours and the study's, in words from the numbers."""
    from medcoding import study

    theirs = study.SPECIALTY_RANGE.sort_values("f1_micro")
    study_text = (f"the study's ranged from {theirs['f1_micro'].iloc[0]:.0%} "
                  f"({theirs['specialty'].iloc[0].lower()}) to {theirs['f1_micro'].iloc[-1]:.0%} "
                  f"({theirs['specialty'].iloc[-1].lower()})")
    if medians.empty:
        return (f"No department has {min_courses} or more test courses, so the specialties "
                f"cannot be compared on this test set; {study_text}.")
    if len(medians) == 1:
        only = medians.iloc[0]
        return (f"Only one specialty ({only['specialty']}) has departments with at least "
                f"{min_courses} test courses (median micro F1 {only['median_f1']:.0%}), so the "
                f"spread cannot be compared; {study_text}.")
    extremes = specialty_range(medians)
    (low_name, low), (high_name, high) = extremes["low"], extremes["high"]
    beside = beside_study(medians).dropna(subset=["our_rank"])
    ranks = "".join(f" {row['specialty']} ranks {int(row['our_rank'])} of "
                    f"{int(row['our_specialties'])}." for _, row in beside.iterrows())
    return (f"Across {extremes['specialties']} specialties the median department micro F1 "
            f"ranges from {low:.0%} ({low_name}) to {high:.0%} ({high_name}); {study_text}."
            f"{ranks} The medians rest on few departments each and carry no interval, so the "
            "order of neighbouring specialties is not a finding.")


# --------------------------------------------------------------------------- baselines

def department_f1_by_model(models, min_courses: int = 100,
                           reference: str = "human") -> pd.DataFrame:
    """:func:`department_f1` for every model (``models``: name ->
    :class:`medcoding.analysis.comparison.Scored`), each at its own threshold, stacked with a
    leading ``model`` column."""
    return pd.concat([department_f1(scored.inputs, scored.threshold, min_courses,
                                    reference).assign(model=name)
                      for name, scored in models.items()], ignore_index=True)[
        ["model", "specialty", "department", "courses", "f1_micro", "included"]]


def medians_by_model(departments: pd.DataFrame) -> pd.DataFrame:
    """:func:`specialty_medians` per model of :func:`department_f1_by_model`, in the order of
    the first model's medians (best first): ``model, specialty, departments, courses,
    median_f1, min_f1, max_f1``."""
    frames = [specialty_medians(group.drop(columns="model")).assign(model=name)
              for name, group in departments.groupby("model", sort=False)]
    if not frames:
        return pd.DataFrame(columns=["model", "specialty", "departments", "courses",
                                     "median_f1", "min_f1", "max_f1"])
    table = pd.concat(frames, ignore_index=True)  # model by model, as ``departments`` lists
    order = {name: rank for rank, name in enumerate(frames[0]["specialty"])}
    table["rank"] = table["specialty"].map(order)
    table = table.sort_values("rank", kind="stable", ignore_index=True)
    return table[["model", "specialty", "departments", "courses", "median_f1", "min_f1",
                  "max_f1"]]


def baseline_agreement(departments: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                       base: str = MODEL) -> pd.DataFrame:
    """Over the included departments, ``base`` beside each baseline: the mean department F1 of
    both and their difference (95% interval from resampling departments, the same draw for
    both), and the correlation of their department F1 (bootstrap interval). A high correlation
    says the departments that are hard for ``base`` are hard for the baseline too.

    Columns ``model, departments, base_mean_f1, model_mean_f1, difference, low, high,
    correlation, correlation_low, correlation_high``.
    """
    from medcoding.analysis.association import correlation
    from medcoding.analysis.paired import ratio_difference

    included = departments[departments["included"]]
    wide = included.pivot_table(index=["specialty", "department"], columns="model",
                                values="f1_micro", aggfunc="first")
    columns = ["model", "departments", "base_mean_f1", "model_mean_f1", "difference", "low",
               "high", "correlation", "correlation_low", "correlation_high"]
    if base not in wide.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    for name in [model for model in departments["model"].unique() if model != base]:
        pair = wide[[base, name]].dropna()
        ones = np.ones(len(pair))
        paired = ratio_difference((pair[base].to_numpy(), ones), (pair[name].to_numpy(), ones),
                                  np.arange(len(pair)), n_resamples, seed)
        related = correlation(pair[base], pair[name], n_resamples, seed)
        rows.append({"model": name, "departments": len(pair), "base_mean_f1": paired["first"],
                     "model_mean_f1": paired["second"], "difference": paired["difference"],
                     "low": paired["low"], "high": paired["high"],
                     "correlation": related["correlation"], "correlation_low": related["low"],
                     "correlation_high": related["high"]})
    return pd.DataFrame(rows, columns=columns)


def baseline_reading(agreement: pd.DataFrame, base: str = MODEL) -> str:
    """Per baseline: whether ``base`` scores higher in the mean department, and whether the
    same departments are hard for both (:func:`baseline_agreement`)."""
    from medcoding import readings
    from medcoding.analysis.comparison import called

    if agreement.empty:
        return ("No department has enough test courses to set the baselines beside "
                f"{base} by department.")
    parts = [f"Over the {agreement['departments'].max()} departments with enough test courses:"]
    for _, row in agreement.iterrows():
        name = called(row["model"])
        parts.append(readings.compare(base, name, row["difference"], row["low"], row["high"],
                                      "mean department micro F1"))
        together = readings.direction(row["correlation_low"], row["correlation_high"])
        shown = (f"correlation {row['correlation']:.2f}, 95% CI {row['correlation_low']:.2f} to "
                 f"{row['correlation_high']:.2f}")
        if together > 0:
            parts.append(f"The departments where {base} agrees less with the coders are also "
                         f"those where {name} does ({shown}), so part of the spread comes with "
                         f"the courses and their coding rather than with {base}.")
        else:
            parts.append(f"Whether the departments that are hard for {base} are also hard for "
                         f"{name} the data cannot tell ({shown}).")
    return " ".join(parts)
