"""The smoke profile end to end: every notebook present, the strict book build, nbval.

This is what CI runs for the book: the smoke profile's notebooks are executed with papermill into
a temporary run directory, the staged book is built with ``-W -n --keep-going``, every figure of
every notebook must be in the HTML, and nbval re-executes the notebooks and finds the same
outputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from medcoding import pipeline

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MEDCODING_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
LAPTOP = {"width": 1366, "height": 768}
#: What a chapter looks like in the browser: parameter cells, code inputs a reader sees without
#: clicking, visible boxes with a horizontal scroll bar other than a table's own, and elements
#: that stick out of the article column (not clipped by a scrolling box inside it).
PAGE_FACTS = """() => {
  const article = document.querySelector("article.bd-article");
  const box = article.getBoundingClientRect();
  const shown = (el) => el.checkVisibility() && el.getClientRects().length > 0;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== article; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + "." + [...el.classList].join(".");
  return {
    article_width: article.clientWidth,
    article_scroll_width: article.scrollWidth,
    page_scroll_width: document.documentElement.scrollWidth,
    viewport_width: window.innerWidth,
    parameter_cells: document.querySelectorAll(
      ".tag_parameters, .tag_injected-parameters").length,
    code_cells: document.querySelectorAll("div.cell").length,
    shown_inputs: [...document.querySelectorAll("div.cell_input")].filter(shown).length,
    collapsed_inputs: document.querySelectorAll("details.above-input:not([open])").length,
    tables: document.querySelectorAll("div.cell_output table").length,
    scrolling_text: [...article.querySelectorAll("pre")]
      .filter((el) => shown(el) && el.scrollWidth > el.clientWidth + 1).map(name),
    sticking_out: [...article.querySelectorAll("*")]
      .filter((el) => shown(el) && !clipped(el)
              && el.getBoundingClientRect().right > box.right + 1).map(name),
  };
}"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory) -> pipeline.RunReport:
    run_dir = tmp_path_factory.mktemp("smoke")
    report = pipeline.run_profile("smoke", root=ROOT, run_dir=run_dir, build=True)
    print(pipeline.summary_table(report))
    return report


def executed_notebooks(report: pipeline.RunReport) -> list[Path]:
    return report.run.executed_notebooks()


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
    html = smoke_book.run.book_html
    assert (html / "index.html").is_file()
    saved = {path.name for path in smoke_book.run.figures.glob("*.png")}
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
    again = pipeline.run_profile("smoke", root=ROOT, run_dir=smoke_book.run.root, build=False)
    assert {step.status for step in again.steps} <= {"skipped", "missing"}


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed "
                    "(apt-get install chromium)")
def test_chapters_read_as_a_report_at_laptop_width(smoke_book: pipeline.RunReport) -> None:
    """No parameter cell, code collapsed, tables as HTML, nothing wider than the column.

    Full-page screenshots of every chapter go to ``test-artifacts/book_NAME.png``.
    """
    from playwright.sync_api import sync_playwright

    chapters = [smoke_book.run.book_html / "notebooks" / f"{nb.stem}.html"
                for nb in executed_notebooks(smoke_book)]
    assert chapters
    ARTIFACTS.mkdir(exist_ok=True)
    facts = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=LAPTOP)
        for chapter in chapters:
            page.goto(chapter.as_uri())
            facts[chapter.stem] = page.evaluate(PAGE_FACTS)
            page.screenshot(path=str(ARTIFACTS / f"book_{chapter.stem}.png"), full_page=True)
        browser.close()
    for name, fact in facts.items():
        assert fact["parameter_cells"] == 0, (name, fact)
        assert fact["shown_inputs"] == 0, (name, fact)
        assert fact["collapsed_inputs"] == fact["code_cells"] > 0, (name, fact)
        assert fact["article_scroll_width"] <= fact["article_width"], (name, fact)
        assert fact["page_scroll_width"] <= fact["viewport_width"], (name, fact)
        assert not fact["scrolling_text"] and not fact["sticking_out"], (name, fact)
    assert sum(fact["tables"] for fact in facts.values()) >= len(facts), facts


#: Chapters with a section that needs the synthetic truth, and what they print without one.
TRUTH_CHAPTERS = ("03_results", "05_specialties", "06_code_frequency", "07_primary_secondary",
                  "08_undercoding", "09_documentation", "10_thresholds")


def test_chapters_skip_their_truth_sections_on_a_cohort_without_truth(
        smoke_book: pipeline.RunReport, tmp_path: Path) -> None:
    """The smoke run's splits without the generator's truth columns, as a real cohort's would
    be: every analysis chapter runs, says the truth is unknown and shows human-code analyses."""
    import pandas as pd
    import papermill

    from medcoding.io import read_json, write_json

    run = tmp_path / "real"
    (run / "prepared").mkdir(parents=True)
    source = smoke_book.run.root
    for split in ("train", "val", "test"):
        frame = pd.read_parquet(source / "prepared" / f"{split}.parquet")
        frame = frame.drop(columns=[c for c in frame.columns
                                    if c.startswith(("true_", "distractor_"))])
        frame.to_parquet(run / "prepared" / f"{split}.parquet")
    (run / "prepared" / "labels.json").write_text(
        (source / "prepared" / "labels.json").read_text())
    manifest = read_json(source / "prepared" / "manifest.json")
    manifest["input_manifest"]["synthetic"] = False
    write_json(run / "prepared" / "manifest.json", manifest)
    (run / "models").symlink_to(source / "models")
    (run / "predictions").mkdir()
    for name in ("main", "full"):
        (run / "predictions" / name).symlink_to(source / "predictions" / name)
    steps, _ = pipeline.discover_steps(ROOT)
    params = pipeline.profile_parameters("smoke", None, ROOT, steps, run)
    for step in [step for step in steps if step.name in TRUTH_CHAPTERS]:
        output = tmp_path / f"{step.name}.ipynb"
        papermill.execute_notebook(str(step.source), str(output),
                                   parameters=pipeline.parameters_for(step.source, params),
                                   cwd=str(step.source.parent), progress_bar=False,
                                   kernel_name="python3")
        text = "".join(output.get("text", "") for cell in nbformat.read(output, 4).cells
                       for output in cell.get("outputs", []))
        assert "This cohort has no known truth" in text, step.name
    baselines = pd.read_csv(run / "tables" / "results_baselines.csv")
    assert set(baselines["reference"]) == {"human"}
    assert "surface-form dictionary" not in set(baselines["model"])  # the generator's bank
    assert {"PLM-CA", "TF-IDF + LR", "frequency prior"} <= set(baselines["model"])
