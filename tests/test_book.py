"""The smoke profile end to end: every notebook present, the strict book build, nbval.

This is what CI runs for the book: the smoke profile's notebooks are executed with papermill into
a temporary run directory, the staged book is built with ``-W -n --keep-going``, every figure of
every notebook must be in the HTML, and nbval re-executes the notebooks and finds the same
outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from medcoding import pipeline

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory) -> pipeline.RunReport:
    run_dir = tmp_path_factory.mktemp("smoke")
    report = pipeline.run_profile("smoke", root=ROOT, run_dir=run_dir, build=True)
    print(pipeline.summary_table(report))
    return report


def executed_notebooks(report: pipeline.RunReport) -> list[Path]:
    return sorted((report.run_dir / "book" / "notebooks").glob("*.ipynb"))


def png_outputs(notebook: Path) -> int:
    cells = nbformat.read(notebook, as_version=4).cells
    return sum("image/png" in output.get("data", {})
               for cell in cells for output in cell.get("outputs", []))


def test_every_present_notebook_runs(smoke_book: pipeline.RunReport) -> None:
    failures = [step.message for step in smoke_book.steps if step.status == "failed"]
    assert not failures, failures[0]
    ran = [step.name for step in smoke_book.steps if step.status == "ran"]
    present = [path.stem for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert ran == present and "01_cohort" in ran


def test_book_builds_strictly_with_every_figure(smoke_book: pipeline.RunReport) -> None:
    assert smoke_book.book_returncode == 0, "jupyter-book build -W -n --keep-going failed"
    html = smoke_book.run_dir / "book" / "_build" / "html"
    assert (html / "index.html").is_file()
    saved = {path.name for path in (smoke_book.run_dir / "figures").glob("*.png")}
    assert saved, "no figure was saved under <run_dir>/figures"
    for notebook in executed_notebooks(smoke_book):
        page = (html / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
        images = re.findall(r'<img[^>]+src="\.\./(_images/[^"]+\.png)"', page)
        assert len(images) == png_outputs(notebook), notebook.name
        for image in images:
            assert (html / image).stat().st_size > 1000, image


def test_nbval_reproduces_every_output(smoke_book: pipeline.RunReport) -> None:
    assert pipeline.validate_notebooks(executed_notebooks(smoke_book), ROOT) == 0


def test_a_second_run_skips_everything(smoke_book: pipeline.RunReport) -> None:
    again = pipeline.run_profile("smoke", root=ROOT, run_dir=smoke_book.run_dir, build=False)
    assert {step.status for step in again.steps} <= {"skipped", "missing"}
