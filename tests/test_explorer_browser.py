"""The explorer page in real headless Chromium: loads cleanly, hover and keyboard highlight words.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) driven by the ``playwright`` package. The page
is built from a real (tiny, trained) model's AttInGrad explanation of a course whose suicide
attempt (X60) the human coder missed; its trigger words are "suicidal" and "intent".
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import explain_fixture as fx
import pandas as pd
import pytest

from medcoding import explain, runs
from medcoding.explorer import build_page, iframe_html, render_page

CHROMIUM = Path(os.environ.get("MEDCODING_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"{CHROMIUM} not installed "
                       "(apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    from medcoding.predict import Coder

    with fx.one_thread():
        coder = Coder.from_pretrained(fx.model_dir(tmp_path_factory))
        prepared = fx.prepared_dir(tmp_path_factory)
        test = pd.read_parquet(prepared / "test.parquet")
        row = test[test["true_l3"].map(lambda codes: "X60" in codes)
                   & ~test["codes_l3"].map(lambda codes: "X60" in codes)].iloc[0]
        synthetic = runs.is_synthetic(prepared)
        assert synthetic, "the explain fixture's prepared manifest must say synthetic"
        return explain.build_case(coder, row, top_k=4, synthetic=synthetic)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    """A new page at ``file://path`` plus the list its console errors and page errors go to.

    The page asks for reduced motion, so the highlight has no fade-in and its colour can be read
    at once (with the 80 ms transition, a fast browser reads the transparent start).
    """
    page = browser.new_page(viewport={"width": 1100, "height": 700}, reduced_motion="reduce")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors


def highlighted(scope) -> dict[str, float]:
    """Highlighted words and their intensities, strongest first."""
    pairs = scope.eval_on_selector_all(
        "#note-text .w.hl", "els => els.map(e => [e.textContent, Number(e.dataset.intensity)])")
    return dict(sorted(pairs, key=lambda pair: -pair[1]))


def x60_index(case) -> int:
    return [entry["code"] for entry in case["codes"]].index("X60")


def test_hover_highlights_the_trigger_words(browser, case, tmp_path):
    path = build_page(case, tmp_path / "case.html")
    page, errors = open_page(browser, path)
    assert page.locator(".code-button").count() == len(case["codes"])
    assert highlighted(page) == {}
    button = page.locator(".code-button").nth(x60_index(case))
    button.hover()
    words = highlighted(page)
    assert list(words)[:2] in (["suicidal", "intent"], ["intent", "suicidal"]), words
    assert list(words.values())[0] == 1.0
    background = page.eval_on_selector("#note-text .w.hl[data-intensity='1']",
                                       "el => getComputedStyle(el).backgroundColor")
    assert background.startswith("rgba(46, 160, 67"), background
    assert "X60: strongest words" in page.locator("#explorer-status").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer_hover_x60.png"), full_page=True)
    page.mouse.move(5, 5)
    assert highlighted(page) == {}
    assert errors == []
    page.close()


def test_keyboard_focus_pin_and_escape(browser, case, tmp_path):
    path = build_page(case, tmp_path / "case.html")
    page, errors = open_page(browser, path)
    page.locator("body").focus()
    target = x60_index(case)
    page.keyboard.press("Tab")  # the note text is focusable (scrollable region) ...
    assert page.evaluate("document.activeElement.id") == "note-text"
    for _ in range(target + 1):  # ... then the codes in order
        page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('data-code-index')")
    assert focused == str(target)
    assert set(list(highlighted(page))[:2]) == {"suicidal", "intent"}
    page.keyboard.press("Enter")
    assert page.locator(".code-button").nth(target).get_attribute("aria-pressed") == "true"
    page.keyboard.press("ArrowDown")  # focus moves on, but the pinned code stays lit
    page.locator("h1").click()
    assert set(list(highlighted(page))[:2]) == {"suicidal", "intent"}
    page.locator(".code-button").nth(target).focus()
    page.keyboard.press("Escape")
    assert page.locator(".code-button").nth(target).get_attribute("aria-pressed") == "false"
    assert errors == []
    page.close()


def test_withheld_page_and_book_iframe_load_cleanly(browser, case, tmp_path):
    real = dict(case, synthetic=False)
    page, errors = open_page(browser, build_page(real, tmp_path / "real.html"))
    assert "Note text withheld" in page.locator(".withheld").inner_text()
    page.locator(".code-button").first.hover()
    assert page.locator("#note-text").count() == 0
    assert errors == []
    page.close()
    host = tmp_path / "book.html"
    host.write_text("<!DOCTYPE html><html><body><h1>Gallery</h1>"
                    f"{iframe_html(render_page(case), height=600)}</body></html>",
                    encoding="utf-8")
    page, errors = open_page(browser, host)
    frame = page.frame_locator("iframe")
    frame.locator(".code-button").nth(x60_index(case)).hover()
    inner = page.frames[1]
    assert set(list(highlighted(inner))[:2]) == {"suicidal", "intent"}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer_in_iframe.png"), full_page=True)
    assert errors == []
    page.close()


def test_hover_scrolls_the_note_to_a_word_out_of_view(browser, tmp_path):
    text = "Stable overnight, plan unchanged.\n" * 200 + "Found after a paracetamol overdose."
    start = text.index("paracetamol")
    case = {"course_id": "LONG", "synthetic": True, "text": text,
            "words": [[start, start + len("paracetamol")]],
            "codes": [{"code": "T39", "title": "Poisoning", "score": 0.9, "rank": 1,
                       "attributions": [[0, 1.0]]}]}
    page, errors = open_page(browser, build_page(case, tmp_path / "long.html"))
    assert page.evaluate("document.getElementById('note-text').scrollTop") == 0
    page.locator(".code-button").first.hover()
    visible = page.evaluate("""() => {
        const note = document.getElementById('note-text');
        const word = note.querySelector('.w.hl');
        const n = note.getBoundingClientRect(), w = word.getBoundingClientRect();
        return [note.scrollTop, w.top >= n.top && w.bottom <= n.bottom, window.scrollY];
    }""")
    assert visible[0] > 0 and visible[1] is True and visible[2] == 0, visible
    assert errors == []
    page.close()
