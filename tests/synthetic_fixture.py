"""One synthetic cohort shared by the tests/test_synthetic_*.py modules (generated once per run)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pandas as pd

from medcoding.cohort import contract
from medcoding.cohort.synthetic import generate

N_PATIENTS = 2500
SEED = 7


@functools.cache
def cohort_dir() -> Path:
    out = Path(tempfile.mkdtemp(prefix="synthetic_"))
    generate(N_PATIENTS, SEED, out, progress=False)
    return out


@functools.cache
def cohort() -> contract.Cohort:
    return contract.load(cohort_dir())


@functools.cache
def texts() -> pd.Series:
    """Concatenated note text per course."""
    return cohort().notes.groupby("course_id")["text"].agg("\n".join)
