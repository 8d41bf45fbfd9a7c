"""The explorer page: self-contained, accessible markup, and no note text for real cohorts."""

from __future__ import annotations

import html
import json
import re

import pytest

from medcoding.explorer import build_page, case_page_path, iframe_html, render_page
from medcoding.explorer.page import WITHHELD_MESSAGE

SECRET = "Mrs Jensen took 30-40 tablets of paracetamol with suicidal intent.\nNo prior attempts."


def make_case(synthetic: bool, text: str = SECRET) -> dict:
    """A hand-built case: X60 points at 'suicidal' (1) and 'intent' (0.5), T39 at 'paracetamol'."""
    spans = {word: [text.index(word), text.index(word) + len(word)]
             for word in ("suicidal", "intent", "paracetamol", "tablets")}
    return {
        "course_id": "C0042", "specialty": "emergency medicine", "department": "ED North",
        "synthetic": synthetic, "method": "attingrad", "threshold": 0.4, "text": text,
        "words": [spans["suicidal"], spans["intent"], spans["paracetamol"], spans["tablets"]],
        "codes": [
            {"code": "T39", "title": "Poisoning by nonopioid analgesics", "score": 0.91,
             "rank": 1, "predicted": True, "human": True, "true": True, "evidence": "listed",
             "attributions": [[2, 1.0], [3, 0.3]]},
            {"code": "X60", "title": "Intentional self-poisoning", "score": 0.22, "rank": 2,
             "predicted": False, "human": False, "true": True, "evidence": "listed",
             "attributions": [[0, 1.0], [1, 0.5]]},
        ],
        "human_codes": ["T39"], "true_codes": ["T39", "X60"], "codes_outside_labels": ["Y45"],
    }


def embedded_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      page, re.S)
    return json.loads(match.group(1))


def test_page_is_self_contained_and_lists_codes_accessibly():
    page = render_page(make_case(synthetic=True))
    assert "http://" not in page and "https://" not in page
    assert re.search(r"<script[^>]*\bsrc=", page) is None
    assert "<link" not in page
    assert page.count("<script") == 2  # the JSON data and the inline explorer script
    buttons = re.findall(r'<button type="button" class="code-button"[^>]*>', page)
    assert len(buttons) == 2
    assert 'aria-label="X60 Intentional self-poisoning, score 0.220, rank 2, true code"' in page
    assert 'aria-label="T39 Poisoning by nonopioid analgesics, score 0.910, rank 1, predicted, ' \
           'human-coded, true code"' in page
    assert all('aria-pressed="false"' in button for button in buttons)
    assert 'role="status" aria-live="polite"' in page
    assert "true (listed)" in page and ">human</span>" in page and ">predicted</span>" in page
    assert "Y45" in page  # codes the model has no label for are named, not dropped
    assert "ED North" in page and "threshold 0.40" in page


def test_synthetic_text_is_written_with_attributed_words_wrapped():
    page = render_page(make_case(synthetic=True))
    assert '<span class="w" data-w="0">suicidal</span>' in page
    assert '<span class="w" data-w="2">paracetamol</span>' in page
    assert "Mrs Jensen took 30-40" in page
    data = embedded_data(page)
    assert data["codes"][1] == {"code": "X60", "attributions": [[0, 1.0], [1, 0.5]]}


def test_real_cohort_page_holds_no_note_text_unless_asked(tmp_path):
    path = build_page(make_case(synthetic=False), tmp_path / "case.html")
    raw = path.read_bytes()
    for piece in ("Jensen", "paracetamol", "suicidal", "tablets", "No prior attempts"):
        assert piece.encode() not in raw
        assert piece.lower().encode() not in raw.lower()
    assert html.escape(WITHHELD_MESSAGE).encode() in raw
    assert b"T39" in raw and b"X60" in raw  # the codes are still listed
    assert embedded_data(raw.decode())["codes"][0]["attributions"] == []
    included = build_page(make_case(synthetic=False), tmp_path / "with_text.html",
                          include_text=True).read_bytes()
    assert b"Mrs Jensen took" in included and b"Note text withheld" not in included


def test_text_is_escaped_and_cannot_close_the_script():
    text = "He wrote </script><script>alert(1)</script> & left, suicidal intent tablets paracetamol"
    page = render_page(make_case(synthetic=True, text=text))
    assert page.count("<script") == 2
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert "&amp; left" in page


def test_overlapping_words_are_refused():
    case = make_case(synthetic=True)
    case["words"][1] = [case["words"][0][0] + 2, case["words"][0][1] + 3]
    with pytest.raises(ValueError, match="overlaps"):
        render_page(case)


def test_case_without_codes_is_refused_with_the_fix():
    case = make_case(synthetic=True)
    del case["codes"]
    with pytest.raises(KeyError, match="build_case"):
        render_page(case)


def test_iframe_embeds_the_whole_page_escaped():
    page = render_page(make_case(synthetic=True))
    frame = iframe_html(page, title="Gallery: suicide attempt", height=500)
    assert frame.startswith('<div class="medcoding-explorer"><iframe srcdoc="')
    assert "height:500px" in frame
    assert "<script" not in frame  # every tag is escaped inside srcdoc
    assert html.unescape(re.search(r'srcdoc="(.*?)" title', frame, re.S).group(1)) == page


def test_page_file_names_from_course_ids_stay_in_the_folder(tmp_path):
    folder = tmp_path / "run" / "explorer"
    ids = ["x/../../../escaped", "..", ".hidden", "a b/c", "x-escaped", "C0042", "/etc/passwd"]
    paths = [case_page_path(folder, "random", course_id) for course_id in ids]
    for course_id, path in zip(ids, paths, strict=True):
        build_page(dict(make_case(synthetic=False), course_id=course_id), path)
        assert path.resolve().parent == folder.resolve(), (course_id, path)
        assert path.name.startswith("random_") and path.suffix == ".html"
    assert len(set(paths)) == len(ids)  # ids that differ keep pages apart
    assert paths[5].name == "random_C0042.html"  # a plain id is kept as it is
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == len(ids) and all(p.parent.name == "explorer" for p in written)
