"""The explorer's data for one course: the codes to list and the words each is attributed to.

:func:`build_case` returns the dict :func:`medcoding.explorer.render_page` draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medcoding.explain.attribution import (
    coder_scores,
    encode_for,
    normalised,
    resolve_labels,
    token_attributions,
    word_scores,
    word_spans,
)

MAX_WORDS_PER_CODE = 40
MIN_INTENSITY = 0.05
LEVEL_SUFFIX = {"3": "l3", "full": "full"}  # model level -> prepared-split column suffix


def label_for(code: str, labels: Sequence[str]) -> str | None:
    """The model label that stands for ``code``: itself, its category, or its first sub-code."""
    from medcoding.icd10 import category

    if code in labels:
        return code
    parent = category(code)
    if parent in labels:
        return parent
    return next((label for label in labels if category(label) == parent), None)


def as_list(value) -> list:
    """A list column's value as a list (``None`` or NaN: empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return list(value)


def _case_codes(row, labels: Sequence[str], column: str, level: str) -> list[str]:
    """The codes of ``row[column]`` (``codes_*``/``true_*`` at the model's level) as labels."""
    values = as_list(row.get(f"{column}_{LEVEL_SUFFIX[level]}"))
    mapped = [label_for(str(code), labels) or str(code) for code in values]
    return list(dict.fromkeys(mapped))


def build_case(coder, row, top_k: int = 10, method: str = "attingrad", synthetic: bool = False,
               threshold: float | None = None) -> dict:
    """Everything the explorer page shows for one course (a prepared-split row or mapping).

    Lists the model's ``top_k`` codes, plus the human codes and (synthetic cohorts) the true codes
    wherever the model ranked them, each with its title, probability, rank, markers and its
    attributed words: up to ``MAX_WORDS_PER_CODE`` words whose score is at least
    ``MIN_INTENSITY`` of the code's top word, as ``[word index, intensity]`` with intensity =
    word score / top word score (so 1 is the strongest word). ``words`` holds the character spans
    of every word used by any code. The page decides whether the text itself is written: only
    for ``synthetic`` cases (pass ``medcoding.runs.is_synthetic(PREPARED)``; the default is a
    real cohort). The codes are read at the model's level (``coder.level``).
    """
    from medcoding.predict import code_title

    labels = list(coder.labels)
    text = str(row["text"])
    threshold = float(threshold if threshold is not None else getattr(coder, "threshold", 0.5))
    encoded = encode_for(coder, text)
    if coder.level not in LEVEL_SUFFIX:
        raise ValueError(f"{coder.source}: the model's config.json has level {coder.level!r}, "
                         f"not one of {sorted(LEVEL_SUFFIX)}; re-train it with `medcoding train`")
    human = _case_codes(row, labels, "codes", coder.level)
    truth = _case_codes(row, labels, "true", coder.level) if synthetic else []
    evidence = {}
    if synthetic:
        for code, kind in zip(as_list(row.get("true_full")), as_list(row.get("true_evidence")),
                              strict=False):
            evidence.setdefault(label_for(str(code), labels) or str(code), str(kind))
    all_scores = coder_scores(coder, [text])[0]  # [labels], as the coder scores the split
    ranking = np.argsort(-all_scores, kind="stable")
    rank_of = {int(index): position + 1 for position, index in enumerate(ranking)}
    top = [labels[int(index)] for index in ranking[:top_k]]
    extra = {code for code in human + truth if code in labels and code not in top}
    shown = top + sorted(extra, key=lambda code: rank_of[labels.index(code)])
    indices = resolve_labels(labels, shown)
    _, raw = token_attributions(coder.model, encoded, indices)
    words = word_spans(text)
    per_word = word_scores(encoded.spans, normalised(raw[method]), words)  # [codes, words]
    used: dict[int, int] = {}
    entries = []
    for position, (code, index) in enumerate(zip(shown, indices, strict=True)):
        top = np.argsort(-per_word[position], kind="stable")[:MAX_WORDS_PER_CODE]
        peak = per_word[position, top[0]] if len(top) else 0.0
        kept = [int(w) for w in top if peak > 0 and per_word[position, w] >= MIN_INTENSITY * peak]
        attributions = [[used.setdefault(w, len(used)), round(float(per_word[position, w] / peak),
                                                              4)] for w in kept]
        entries.append({
            "code": code, "title": code_title(code), "score": round(float(all_scores[index]), 4),
            "rank": rank_of[index], "predicted": bool(all_scores[index] >= threshold),
            "human": code in human, "true": code in truth, "evidence": evidence.get(code),
            "attributions": attributions,
        })
    missing = [code for code in human + truth if code not in labels]
    order = sorted(used, key=used.get)
    return {
        "course_id": str(row.get("course_id", "")), "specialty": str(row.get("specialty", "")),
        "department": str(row.get("department", "")), "synthetic": bool(synthetic),
        "method": method, "threshold": threshold, "text": text,
        "words": [[int(words[w, 0]), int(words[w, 1])] for w in order],
        "codes": entries, "human_codes": human, "true_codes": truth,
        "codes_outside_labels": list(dict.fromkeys(missing)),
    }
