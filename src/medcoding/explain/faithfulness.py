"""Faithfulness of the attributions: the comprehensiveness curve (DeYoung et al., 2020).

Deleting the ``k`` words a method ranks highest should lower the code's score more than
deleting ``k`` random words (seeded); :func:`comprehensiveness` reports the mean drop per method
and ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medcoding import readings
from medcoding.explain.attribution import (
    METHODS,
    check_method,
    coder_scores,
    encode_for,
    normalised,
    resolve_labels,
    token_attributions,
    word_scores,
    word_spans,
)

RANDOM = "random"


def delete_words(text: str, spans: np.ndarray) -> str:
    """``text`` with the character ``spans`` removed (the rest kept, spacing as it was)."""
    pieces, position = [], 0
    for start, end in sorted((int(s), int(e)) for s, e in spans):
        pieces.append(text[position:start])
        position = max(position, end)
    pieces.append(text[position:])
    return "".join(pieces)


def comprehensiveness(coder, texts: Sequence[str], codes: Sequence[str],
                      ks: Sequence[int] = (1, 3, 5, 10),
                      method: str | Sequence[str] = METHODS, seed: int = 0,
                      per_case: bool = False) -> pd.DataFrame:
    """Score drop of each code when its top-k attributed words are deleted, per method and k.

    For text ``i`` and its code ``codes[i]`` the drop is ``p(code | text) - p(code | text without
    the k words)``, scored by ``coder.score``. Rows for each method in ``method`` and for the
    ``random`` baseline (k words drawn without replacement, seeded by ``seed`` and the case
    index), ``k`` capped at the text's word count. Returns the tidy summary ``DataFrame(method, k,
    mean_score_drop, sem, n_cases)``; ``per_case=True`` returns the drops of every case instead
    (``case, code, method, k, score, score_deleted, score_drop``).
    """
    methods = [method] if isinstance(method, str) else list(method)
    for name in methods:
        check_method(name)
    if len(texts) != len(codes):
        raise ValueError(f"comprehensiveness: {len(texts)} texts but {len(codes)} codes; "
                         "give one code to explain per text")
    labels = list(coder.labels)
    indices = resolve_labels(labels, codes)
    plan, variants = [], []
    for case, (text, label) in enumerate(zip(texts, indices, strict=True)):
        encoded = encode_for(coder, text)
        _, raw = token_attributions(coder.model, encoded, [label])
        words = word_spans(str(text))
        rng = np.random.default_rng([seed, case])
        random_order = rng.permutation(len(words))
        for name in [*methods, RANDOM]:
            if name == RANDOM:
                order = random_order
            else:
                per_word = word_scores(encoded.spans, normalised(raw[name])[0], words)
                order = np.argsort(-per_word, kind="stable")
            for k in ks:
                chosen = words[order[: min(int(k), len(words))]]
                plan.append((case, labels[label], name, int(k), label))
                variants.append(delete_words(str(text), chosen))
    original = coder_scores(coder, [str(text) for text in texts])
    deleted = coder_scores(coder, variants)
    rows = [{"case": case, "code": code, "method": name, "k": k,
             "score": original[case, label], "score_deleted": deleted[row, label]}
            for row, (case, code, name, k, label) in enumerate(plan)]
    drops = pd.DataFrame(rows)
    drops["score_drop"] = drops["score"] - drops["score_deleted"]
    if per_case:
        return drops
    summary = drops.groupby(["method", "k"], sort=False)["score_drop"].agg(
        mean_score_drop="mean", sem="sem", n_cases="count").reset_index()
    return summary


def sample_courses(n_courses: int, size: int, seed: int) -> np.ndarray:
    """``min(size, n_courses)`` distinct course positions drawn at random (seeded), ascending."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_courses, size=min(size, n_courses), replace=False))


def faithfulness_reading(faithfulness: pd.DataFrame, n_courses: int) -> str:
    """What the comprehensiveness table says at its largest ``k``: each method's mean drop
    against random words', and whether the highlights can be read as the model's evidence.

    A direction is stated only when the 95% interval of the difference of two mean drops (normal,
    from their standard errors; conservative, since both are measured on the same courses)
    excludes 0 (:func:`medcoding.readings.direction`); otherwise the reading says the data cannot
    tell them apart."""
    table = faithfulness.set_index(["method", "k"])
    k = int(faithfulness["k"].max())
    drop = table["mean_score_drop"].xs(k, level="k")
    sem = table["sem"].xs(k, level="k")

    def difference(first: str, second: str) -> tuple[float, float, float]:
        estimate = float(drop[first] - drop[second])
        margin = 1.96 * float(np.hypot(sem[first], sem[second]))
        return estimate, estimate - margin, estimate + margin

    text = (f"Deleting the {k} words each method ranks highest lowers the model's score for its "
            f"top code by {drop['attingrad']:.3f} on average with AttInGrad, "
            f"{drop['attention']:.3f} with attention alone and "
            f"{drop['gradient']:.3f} with the input gradient alone, against "
            f"{drop[RANDOM]:.3f} for {k} random words ({n_courses} courses). ")
    estimate, low, high = difference("attingrad", RANDOM)
    versus_random = (f"AttInGrad minus random: {readings.interval(estimate, low, high)}")
    sign = readings.direction(low, high)
    if sign < 0:
        return text + (f"Here the highlighted words matter less than random ones ({versus_random})"
                       ": the model has not learnt its evidence well enough for the highlights "
                       "to be read as such.")
    if sign == 0:
        return text + (f"Here the data cannot tell the highlighted words from random ones "
                       f"({versus_random}), so the highlights cannot be read as the model's "
                       "evidence on this run.")
    ranked = sorted(METHODS, key=lambda method: -drop[method])
    _, low, high = difference(ranked[0], ranked[1])
    methods = (f"the most faithful of the three here is {ranked[0]}."
               if readings.direction(low, high) > 0 else
               "the data cannot tell the three methods apart (the interval of the difference "
               "between the two most faithful holds 0).")
    return text + (f"The highlighted words carry the prediction more than random words do "
                   f"({versus_random}), so the explorer's highlights can be read as the model's "
                   f"evidence, as the study did; " + methods)
