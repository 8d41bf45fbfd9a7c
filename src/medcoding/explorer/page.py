"""Render an explorer case (``medcoding.explain.build_case``) into a self-contained HTML page.

Privacy: the note text (and the attributed words, which are pieces of it) is written only when
the case is synthetic or the caller passes ``include_text=True``; otherwise the page lists the
codes and says why the text is missing, and no byte of the text is in the file.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from importlib import resources
from pathlib import Path

from medcoding.io import write_text

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
WITHHELD_MESSAGE = (
    "Note text withheld: this cohort is not synthetic, so no clinical text is written into the "
    "page. On a machine cleared for the data, rebuild the page with --include-text "
    "(build_page(..., include_text=True)) to see the highlighted words."
)


def _asset(name: str) -> str:
    return resources.files("medcoding.explorer").joinpath(name).read_text(encoding="utf-8")


def _script_json(data: dict) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` characters survive literally."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _note_html(text: str, words: list[list[int]]) -> str:
    """The text with each attributed word wrapped in ``<span class="w" data-w="INDEX">``."""
    pieces, position = [], 0
    for index, (start, end) in sorted(enumerate(words), key=lambda item: item[1][0]):
        if start < position:
            raise ValueError(f"explorer case: word {index} {start}-{end} overlaps the word "
                             f"before it (ends at {position}); words must not overlap")
        pieces.append(html.escape(text[position:start]))
        pieces.append(f'<span class="w" data-w="{index}">{html.escape(text[start:end])}</span>')
        position = end
    pieces.append(html.escape(text[position:]))
    return "".join(pieces)


def _badges(entry: dict) -> str:
    badges = []
    if entry.get("predicted"):
        badges.append('<span class="badge predicted" title="score at or above the threshold">'
                      "predicted</span>")
    if entry.get("human"):
        badges.append('<span class="badge human" title="coded by the human coder">human</span>')
    if entry.get("true"):
        evidence = entry.get("evidence")
        detail = f" ({html.escape(str(evidence))})" if evidence else ""
        badges.append('<span class="badge true" title="truly present (synthetic truth), '
                      f'evidence in the text{detail}">true{detail}</span>')
    return "".join(badges)


def _code_item(index: int, entry: dict, interactive: bool) -> str:
    code = html.escape(str(entry["code"]))
    title = html.escape(str(entry.get("title") or ""))
    score = float(entry.get("score", 0.0))
    marks = [word for word, flag in (("predicted", entry.get("predicted")),
                                     ("human-coded", entry.get("human")),
                                     ("true code", entry.get("true"))) if flag]
    label = f"{code} {title}, score {score:.3f}, rank {entry.get('rank', '?')}"
    label += "".join(f", {mark}" for mark in marks)
    controls = ' aria-controls="note-text"' if interactive else ""
    return (
        f'<li><button type="button" class="code-button" data-code-index="{index}" '
        f'aria-pressed="false" aria-label="{label}"{controls}>'
        f'<span class="code-line"><span class="code">{code}</span>'
        f'<span class="score">{score:.3f}</span></span>'
        f'<span class="title">{title or code}</span>'
        f'<span class="bar" aria-hidden="true"><span style="width:{100 * score:.1f}%"></span>'
        f"</span><span class=\"badges\">{_badges(entry)}</span></button></li>"
    )


def render_page(case: dict, include_text: bool = False) -> str:
    """The page of ``case`` as an HTML string (see the module docstring for the text rule)."""
    for key in ("course_id", "codes"):
        if key not in case:
            raise KeyError(f"explorer case is missing {key!r}; build it with "
                           "medcoding.explain.build_case")
    show_text = bool(case.get("synthetic")) or include_text
    codes = case["codes"]
    if show_text:
        note = (f'<div id="note-text" class="note-text" tabindex="0" aria-label="Clinical note">'
                f'{_note_html(str(case.get("text", "")), case.get("words", []))}</div>')
        attributions = [entry.get("attributions", []) for entry in codes]
    else:
        note = f'<p class="withheld" role="note">{html.escape(WITHHELD_MESSAGE)}</p>'
        attributions = [[] for _ in codes]
    outside = case.get("codes_outside_labels") or []
    outside_note = (f'<p class="outside">Human or true codes the model has no label for: '
                    f'{html.escape(", ".join(outside))}</p>' if outside else "")
    course = html.escape(str(case["course_id"]))
    context = " · ".join(html.escape(str(case[key])) for key in ("specialty", "department")
                         if case.get(key))
    header = (f"<h1>Course {course}</h1><p class=\"meta\">{context}"
              f"{' · ' if context else ''}method {html.escape(str(case.get('method', '')))}"
              f" · threshold {float(case.get('threshold', 0.5)):.2f}"
              f"{' · synthetic case' if case.get('synthetic') else ''}</p>")
    items = "".join(_code_item(index, entry, show_text) for index, entry in enumerate(codes))
    values = {
        "title": f"Course {course}: explanations",
        "style": _asset("explorer.css"),
        "header": header,
        "note": note,
        "codes": f'<ul class="codes">{items}</ul>{outside_note}',
        "data": _script_json({"codes": [{"code": str(entry["code"]), "attributions": pairs}
                                        for entry, pairs in zip(codes, attributions,
                                                                strict=True)]}),
        "script": _asset("explorer.js"),
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _asset("template.html"))


def case_page_path(directory: str | os.PathLike, kind: str, course_id) -> Path:
    """``directory/KIND_COURSEID.html``, a file name that stays inside ``directory``.

    Course ids come from the cohort and may hold anything (``x/../../escaped``): a part other
    than letters, digits, ``-`` and ``_`` is replaced by ``-`` and the name gets the first 8 hex
    digits of the SHA-256 of ``KIND``/``COURSEID``, so different ids never share a page.
    """
    raw = f"{kind}_{course_id}"
    safe = _UNSAFE.sub("-", raw).strip("-")[:100] or "case"
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return Path(directory) / f"{safe}.html"


def build_page(case: dict, out_path: str | os.PathLike, include_text: bool = False) -> Path:
    """Write the page of ``case`` to ``out_path`` atomically and return the path."""
    return write_text(out_path, render_page(case, include_text))


def iframe_html(page: str, title: str = "Case explorer", height: int = 640) -> str:
    """An ``<iframe srcdoc>`` holding ``page``, to show it in a notebook or the built book.

    The page travels inside the notebook output, so the book needs no extra files copied. The
    frame sits in a ``<div>`` (IPython warns about bare ``<iframe>`` HTML).
    """
    return (f'<div class="medcoding-explorer"><iframe srcdoc="{html.escape(page, quote=True)}" '
            f'title="{html.escape(title)}" style="width:100%;height:{int(height)}px;'
            'border:1px solid #d0d7de;border-radius:6px" loading="lazy"></iframe></div>')
