"""Figure 1: model-human agreement (micro F1) per department and the median per specialty.

The study computes micro F1 for each department with at least 100 test courses and shows, per
specialty, the median over its departments (53% child and adolescent psychiatry to 91% clinical
neurophysiology).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medcoding import evaluation
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

