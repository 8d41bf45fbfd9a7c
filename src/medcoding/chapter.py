"""The shared set-up of an analysis chapter: one call opens the run's test split and model.

``chapter = open_chapter(run_dir, model_name)`` applies the figure style, loads the test split
with the model's scores (:func:`medcoding.analysis.inputs.load_inputs`) and the decision threshold
tuned on validation, and prints one line saying what was loaded. ``chapter.table``,
``chapter.save`` and ``chapter.show`` are :func:`medcoding.figures.table`,
:func:`medcoding.figures.save` and :func:`medcoding.figures.show` (save, show, close) for the
run; :meth:`Chapter.without_truth` is the one message a chapter prints when a section needs the
synthetic truth and the cohort has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medcoding import figures
from medcoding.analysis.inputs import AnalysisInputs, global_threshold, load_inputs
from medcoding.runs import Run


@dataclass
class Chapter:
    """One chapter's run directory, test inputs and decision threshold."""

    run: Path
    test: AnalysisInputs
    threshold: float
    model_name: str = "main"

    @property
    def synthetic(self) -> bool:
        """True when the test split carries the generator's truth."""
        return self.test.is_synthetic

    def table(self, frame: pd.DataFrame, name: str, digits: int = 3) -> pd.DataFrame:
        """:func:`medcoding.figures.table` for this run."""
        return figures.table(frame, self.run, name, digits)

    def save(self, fig, name: str) -> Path:
        """:func:`medcoding.figures.save` for this run."""
        return figures.save(fig, self.run, name)

    def show(self, fig, name: str) -> Path:
        """:func:`medcoding.figures.show` for this run: save, show and close ``fig``."""
        return figures.show(fig, self.run, name)

    def split(self, name: str) -> AnalysisInputs:
        """Another split (``"val"``) of the same model."""
        return load_inputs(self.run, self.model_name, name)

    def cohort_dir(self) -> Path:
        """The contract directory the run's splits were prepared from."""
        return Run(self.run).cohort_dir()

    def coding(self) -> pd.DataFrame | None:
        """The cohort's ``coding`` table (the coder's reasons; None where it has none)."""
        from medcoding.analysis.undercoding import read_coding

        return read_coding(self.cohort_dir())

    def models(self) -> dict:
        """PLM-CA and the baselines the results chapter wrote, name -> scored test inputs
        (:func:`medcoding.analysis.comparison.load_models`)."""
        from medcoding.analysis.comparison import load_models

        models = load_models(self.run, self.model_name)
        if len(models) == 1:
            raise FileNotFoundError(f"{self.run / 'predictions'} holds no baseline predictions; "
                                    "fix: run notebooks/03_results first (it scores and writes "
                                    "the baselines)")
        return models

    def without_truth(self, what: str) -> str:
        """The message of a section that needs the truth on a cohort without one (printed)."""
        message = (f"This cohort has no known truth (it is not synthetic), so {what} cannot be "
                   "computed: the section is skipped.")
        print(message)
        return message


def open_chapter(run_dir: str | Path, model_name: str = "main", split: str = "test") -> Chapter:
    """Style, test inputs and threshold of ``run_dir``'s model; prints what was loaded."""
    figures.apply_style()
    pd.set_option("display.width", 120)
    run = Path(run_dir)
    test = load_inputs(run, model_name, split)
    threshold = global_threshold(run, model_name)
    print(f"{len(test.split):,} {split} courses, {len(test.labels):,} labels ({test.level}), "
          f"decision threshold {threshold:.2f} (tuned on validation), "
          f"synthetic cohort with known truth: {test.is_synthetic}")
    return Chapter(run, test, threshold, model_name)
