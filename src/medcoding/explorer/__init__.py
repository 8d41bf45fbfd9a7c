"""The interactive case explorer: one self-contained HTML page per course (no server, no CDN).

The page shows the course's text on the left and the model's codes on the right; hovering or
focusing a code highlights the words AttInGrad attributes it to. ``template.html``,
``explorer.css`` and ``explorer.js`` are inlined into every page, so it works from disk
(``file://``), inside the built book (as an ``<iframe srcdoc>``) and offline.
"""

from medcoding.explorer.page import build_page, case_page_path, iframe_html, render_page

__all__ = ["build_page", "case_page_path", "iframe_html", "render_page"]
