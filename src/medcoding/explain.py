"""AttInGrad explanations of PLM-CA predictions, mapped to words of the original text.

AttInGrad (Edin et al., 2024; the study's ref. 16) scores token ``n`` of a document for code ``c``
as the label-attention weight of that token for the code times the L2 norm of the input embedding
times the gradient of the code's logit with respect to that embedding::

    attingrad[c, n] = A[c, n] * || x_n * d logit_c / d x_n ||_2

``x_n`` is the word embedding of token ``n`` (before position embeddings are added, the input the
model's ``inputs_embeds`` replaces). Two baselines come from the same forward pass:
``attention`` (``A[c, n]`` alone) and ``gradient`` (``|| x_n * d logit_c / d x_n ||_2`` alone).

Normalisation: for each code the token scores are non-negative and divided by their sum over the
document's real tokens, so they **sum to 1** (a distribution over the text; padding gets 0). Word
scores are the sums of their tokens' scores, so they sum to 1 as well. The explorer rescales each
code's word scores to a maximum of 1 for the highlight intensity.

Tokens to words: the text is tokenized exactly as ``medcoding.encoding`` does for the model
(no special tokens, truncated at ``max_tokens``, non-overlapping 128-token windows), with the
tokenizer's character offsets. A *word* is a run of letters/digits (``\\w+``) or a single
punctuation mark; every token belongs to the word holding its first character, so a word whose
word pieces fall into two windows is one word with the summed score of all its pieces.

Cost: one forward pass per document and one backward pass per explained code (the graph is kept
between them). With MiniLM on one CPU thread of a busy 2-core machine: 1.3 s for one code and
6.7 s for twelve codes of a median course (1,557 characters, 346 tokens); 33 s for twelve codes of
a 10,000-character course (1,985 tokens).

Faithfulness (:func:`comprehensiveness`): deleting the ``k`` words a method ranks highest should
lower the code's score more than deleting ``k`` random words (seeded) -- the comprehensiveness
curve of DeYoung et al. (2020), reported per method.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

METHODS = ("attingrad", "attention", "gradient")
RANDOM = "random"
_WORD = re.compile(r"\w+|[^\w\s]")

GALLERY_KINDS = {
    "suicide_undercoded": "an under-coded suicide attempt: true X60-X84, not coded by the human",
    "hypertension_medication": "hypertension found only through medication: true I10, drug",
    "diabetes_e14_e11": "an E14/E11 disagreement: the human coded E14, the truth is E11",
    "heart_failure_no_evidence": "heart failure coded without evidence: human I50, undocumented",
}


@dataclass(frozen=True)
class Encoded:
    """One text as the model reads it, with each real token's character span."""

    input_ids: torch.Tensor  # [1, chunks, chunk_size]
    attention_mask: torch.Tensor  # [1, chunks, chunk_size]
    spans: np.ndarray  # [tokens, 2] character start/end of each real token, in token order


@dataclass(frozen=True)
class Explanation:
    """Attributions of one text for one or more codes (rows of ``token_scores``)."""

    text: str
    method: str
    codes: tuple[str, ...]
    label_indices: tuple[int, ...]
    scores: np.ndarray  # [codes] the model's probability of each code
    token_spans: np.ndarray  # [tokens, 2] character spans of the real tokens
    token_scores: np.ndarray  # [codes, tokens] non-negative, each row sums to 1

    def row(self, code: str | int) -> int:
        """Row of ``code`` (a code or a label index) in ``token_scores``."""
        if code in self.codes:
            return self.codes.index(code)
        if code in self.label_indices:
            return self.label_indices.index(code)
        raise KeyError(f"code {code!r} was not explained; explained codes: {list(self.codes)}")


def encode(tokenizer, text: str, chunk_size: int = 128, max_tokens: int = 10_000) -> Encoded:
    """Token ids in windows (as ``medcoding.encoding`` builds them) plus character spans."""
    from medcoding.encoding import collate

    encoding = tokenizer(str(text), add_special_tokens=False, return_offsets_mapping=True,
                         truncation=False)
    ids = np.asarray(encoding["input_ids"][:max_tokens], dtype=np.int64)
    spans = np.asarray(encoding["offset_mapping"][:max_tokens], dtype=np.int64).reshape(-1, 2)
    input_ids, attention_mask = collate([ids], chunk_size=chunk_size,
                                        pad_id=tokenizer.pad_token_id)
    return Encoded(input_ids, attention_mask, spans)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; use one of {METHODS}")
    return method


def _normalise_rows(values: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (rows that sum to 0 stay 0)."""
    values = np.clip(values, 0.0, None)
    sums = values.sum(axis=1, keepdims=True)
    return np.divide(values, sums, out=np.zeros_like(values), where=sums > 0)


def token_attributions(model, encoded: Encoded, label_indices: Sequence[int]):
    """All three methods' raw token scores for the codes ``label_indices``.

    Returns ``(probabilities [codes], {method: [codes, tokens]})`` over the real tokens, before
    normalisation. One forward pass, one backward pass per code; the model is put in eval mode
    (no dropout) and runs on its own device.
    """
    n_tokens = len(encoded.spans)
    if n_tokens == 0:
        raise ValueError("the text has no tokens, so there is nothing to explain; give a course "
                         "with text")
    model.eval()
    device = next(model.parameters()).device
    input_ids = encoded.input_ids.to(device)  # [1, chunks, T]
    attention_mask = encoded.attention_mask.to(device)  # [1, chunks, T]
    label_indices = [int(index) for index in label_indices]
    with torch.enable_grad():
        with torch.no_grad():
            embeddings = model.input_embeddings()(input_ids)  # [1, chunks, T, h]
        embeddings = embeddings.detach().requires_grad_(True)
        logits, attention = model(input_ids, attention_mask, inputs_embeds=embeddings,
                                  return_attention=True)
        # logits [1, labels], attention [1, labels, chunks*T]
        gradient_norms = []
        for position, label in enumerate(label_indices):
            (gradient,) = torch.autograd.grad(logits[0, label], embeddings,
                                              retain_graph=position < len(label_indices) - 1)
            product = (embeddings.detach() * gradient).flatten(1, 2)  # [1, chunks*T, h]
            gradient_norms.append(product[0, :n_tokens].norm(dim=-1))  # [tokens]
    weights = attention[0, label_indices, :n_tokens].detach().double().cpu().numpy()
    gradients = (torch.stack(gradient_norms).double().cpu().numpy() if gradient_norms
                 else weights * 0)  # [codes, tokens]
    probabilities = torch.sigmoid(logits[0, label_indices].detach()).double().cpu().numpy()
    return probabilities, {"attingrad": weights * gradients, "attention": weights,
                           "gradient": gradients}


def resolve_labels(labels: Sequence[str], codes: Sequence[str | int]) -> list[int]:
    """Label indices of ``codes`` (codes from ``labels`` or integer indices)."""
    indices = []
    for code in codes:
        if isinstance(code, int | np.integer):
            if not 0 <= int(code) < len(labels):
                raise IndexError(f"label index {code} outside 0..{len(labels) - 1}")
            indices.append(int(code))
        elif code in labels:
            indices.append(list(labels).index(code))
        else:
            raise KeyError(f"code {code!r} is not one of the model's {len(labels)} labels "
                           f"(e.g. {list(labels)[:5]}); explain a code the model was trained on")
    return indices


def attingrad(model, tokenizer, text: str, codes: Sequence[str | int] | str | int,
              labels: Sequence[str] | None = None, method: str = "attingrad",
              max_tokens: int = 10_000) -> Explanation:
    """AttInGrad (or, with ``method``, the ``attention``/``gradient`` baseline) for ``codes``.

    ``codes`` are label indices, or codes of ``labels`` (the model's label list, e.g.
    ``coder.labels``). Without ``labels`` the codes must be indices and are named by them. Token
    scores of each code are non-negative and sum to 1 over the text.
    """
    _check_method(method)
    codes = [codes] if isinstance(codes, str | int | np.integer) else list(codes)
    if labels is None:
        labels = [str(index) for index in range(int(model.config.n_labels))]
    indices = resolve_labels(labels, codes)
    encoded = encode(tokenizer, text, model.config.chunk_size, max_tokens)
    probabilities, raw = token_attributions(model, encoded, indices)
    return Explanation(text=str(text), method=method,
                       codes=tuple(labels[index] for index in indices),
                       label_indices=tuple(indices), scores=probabilities,
                       token_spans=encoded.spans, token_scores=_normalise_rows(raw[method]))


def word_spans(text: str) -> np.ndarray:
    """Character spans ``[words, 2]`` of the words of ``text`` (``\\w+`` or a punctuation mark)."""
    spans = [match.span() for match in _WORD.finditer(text)]
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def token_words(token_spans: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Index of the word holding each token's first character ``[tokens]``; -1 if none."""
    if len(words) == 0:
        return np.full(len(token_spans), -1, dtype=np.int64)
    index = np.searchsorted(words[:, 0], token_spans[:, 0], side="right") - 1
    inside = (index >= 0) & (token_spans[:, 0] < words[np.clip(index, 0, None), 1])
    return np.where(inside, index, -1)


def word_scores(token_spans: np.ndarray, token_scores: np.ndarray,
                words: np.ndarray) -> np.ndarray:
    """Sum token scores ``[..., tokens]`` into the words holding them: ``[..., words]``."""
    owner = token_words(token_spans, words)
    scores = np.zeros(token_scores.shape[:-1] + (len(words),))
    np.add.at(scores.T, owner[owner >= 0], token_scores.T[owner >= 0])
    return scores


def word_attributions(explanation: Explanation, code: str | int | None = None) -> pd.DataFrame:
    """Word scores of one explained code: ``DataFrame(start, end, word, score)`` in text order.

    ``code`` defaults to the only (or first) explained code. Every word of the text is listed;
    scores are the sums of the word's token scores (they sum to 1 over the text). A token whose
    first character lies in no word (not expected with BERT-style tokenizers) is kept as its own
    entry with its own span, so no attribution is dropped.
    """
    row = explanation.row(code) if code is not None else 0
    text, tokens = explanation.text, explanation.token_spans
    words = word_spans(text)
    token_row = explanation.token_scores[row]
    frame = pd.DataFrame({"start": words[:, 0], "end": words[:, 1],
                          "score": word_scores(tokens, token_row, words)})
    stray = token_words(tokens, words) < 0
    if stray.any():
        frame = pd.concat([frame, pd.DataFrame({
            "start": tokens[stray, 0], "end": tokens[stray, 1], "score": token_row[stray]})],
            ignore_index=True)
    frame = frame.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
    spans = zip(frame["start"], frame["end"], strict=True)
    frame.insert(2, "word", [text[start:end] for start, end in spans])
    return frame


def delete_words(text: str, spans: np.ndarray) -> str:
    """``text`` with the character ``spans`` removed (the rest kept, spacing as it was)."""
    pieces, position = [], 0
    for start, end in sorted((int(s), int(e)) for s, e in spans):
        pieces.append(text[position:start])
        position = max(position, end)
    pieces.append(text[position:])
    return "".join(pieces)


def _max_tokens(coder) -> int:
    return int(getattr(coder, "max_tokens", 10_000))


def _score_texts(coder, texts: list[str]) -> np.ndarray:
    """``coder.score`` over a list of texts, as a float array ``[texts, labels]``."""
    return np.asarray(coder.score(pd.DataFrame({"text": texts})), dtype=np.float64)


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
        _check_method(name)
    if len(texts) != len(codes):
        raise ValueError(f"comprehensiveness: {len(texts)} texts but {len(codes)} codes; "
                         "give one code to explain per text")
    labels = list(coder.labels)
    indices = resolve_labels(labels, codes)
    plan, variants = [], []
    for case, (text, label) in enumerate(zip(texts, indices, strict=True)):
        encoded = encode(coder.tokenizer, text, coder.model.config.chunk_size, _max_tokens(coder))
        _, raw = token_attributions(coder.model, encoded, [label])
        words = word_spans(str(text))
        rng = np.random.default_rng([seed, case])
        random_order = rng.permutation(len(words))
        for name in [*methods, RANDOM]:
            if name == RANDOM:
                order = random_order
            else:
                per_word = word_scores(encoded.spans, _normalise_rows(raw[name])[0], words)
                order = np.argsort(-per_word, kind="stable")
            for k in ks:
                chosen = words[order[: min(int(k), len(words))]]
                plan.append((case, labels[label], name, int(k), label))
                variants.append(delete_words(str(text), chosen))
    original = _score_texts(coder, [str(text) for text in texts])
    deleted = _score_texts(coder, variants)
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


# --- cases for the explorer ------------------------------------------------------------------

MAX_WORDS_PER_CODE = 40
MIN_INTENSITY = 0.05


def label_level(labels: Sequence[str]) -> str:
    """``"full"`` when the label list holds full codes (any code with a dot), else ``"l3"``."""
    return "full" if any("." in str(label) for label in labels) else "l3"


def label_for(code: str, labels: Sequence[str]) -> str | None:
    """The model label that stands for ``code``: itself, its category, or its first sub-code."""
    from medcoding.icd10 import category

    if code in labels:
        return code
    parent = category(code)
    if parent in labels:
        return parent
    return next((label for label in labels if category(label) == parent), None)


def _as_list(value) -> list:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return list(value)


def _case_codes(row, labels: Sequence[str], column: str) -> list[str]:
    """The codes of ``row[column]`` (``codes_*``/``true_*`` at the labels' level) as labels."""
    values = _as_list(row.get(f"{column}_{label_level(labels)}"))
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
    for ``synthetic`` cases (pass ``is_synthetic(PREPARED)``; the default is a real cohort).
    """
    from medcoding.predict import code_title

    labels = list(coder.labels)
    text = str(row["text"])
    threshold = float(threshold if threshold is not None else getattr(coder, "threshold", 0.5))
    encoded = encode(coder.tokenizer, text, coder.model.config.chunk_size, _max_tokens(coder))
    human = _case_codes(row, labels, "codes")
    truth = _case_codes(row, labels, "true") if synthetic else []
    evidence = {}
    if synthetic:
        for code, kind in zip(_as_list(row.get("true_full")), _as_list(row.get("true_evidence")),
                              strict=False):
            evidence.setdefault(label_for(str(code), labels) or str(code), str(kind))
    all_scores = _score_texts(coder, [text])[0]  # [labels], as the coder scores the split
    ranking = np.argsort(-all_scores, kind="stable")
    rank_of = {int(index): position + 1 for position, index in enumerate(ranking)}
    top = [labels[int(index)] for index in ranking[:top_k]]
    extra = {code for code in human + truth if code in labels and code not in top}
    shown = top + sorted(extra, key=lambda code: rank_of[labels.index(code)])
    indices = resolve_labels(labels, shown)
    _, raw = token_attributions(coder.model, encoded, indices)
    words = word_spans(text)
    per_word = word_scores(encoded.spans, _normalise_rows(raw[method]), words)  # [codes, words]
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


# --- gallery of cases ----------------------------------------------------------------------

def _truth_pairs(row) -> list[tuple[str, str]]:
    """``(full code, evidence)`` pairs of a synthetic row's true codes."""
    return list(zip((str(c) for c in _as_list(row.get("true_full"))),
                    (str(e) for e in _as_list(row.get("true_evidence"))), strict=False))


def gallery_match(row) -> dict[str, str]:
    """The gallery kinds (``GALLERY_KINDS``) a synthetic row belongs to, with the code to show."""
    from medcoding.icd10 import SUICIDE_RELATED, category, in_range

    human_l3 = {category(str(code)) for code in _as_list(row.get("codes_l3"))}
    truth = _truth_pairs(row)
    true_l3 = {category(code) for code, _ in truth}
    found = {}
    suicide = [code for code, _ in truth if in_range(code, SUICIDE_RELATED)]
    if suicide and not any(in_range(code, SUICIDE_RELATED) for code in human_l3):
        found["suicide_undercoded"] = suicide[0]
    hypertension = [code for code, kind in truth if category(code) == "I10" and kind == "drug"]
    if hypertension:
        found["hypertension_medication"] = hypertension[0]
    if "E14" in human_l3 and "E11" in true_l3:
        found["diabetes_e14_e11"] = next(code for code, _ in truth if category(code) == "E11")
    heart = [code for code, kind in truth if category(code) == "I50" and kind == "undocumented"]
    if heart and "I50" in human_l3:
        found["heart_failure_no_evidence"] = heart[0]
    return found


def gallery_pool(test_df: pd.DataFrame, per_kind: int = 20, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_kind`` seeded candidates of each gallery kind (the rows worth scoring)."""
    if "true_full" not in test_df.columns:
        return test_df.iloc[:0]
    matches = test_df.apply(gallery_match, axis=1)
    chosen: list[int] = []
    for kind in GALLERY_KINDS:
        positions = np.flatnonzero(matches.map(lambda found, kind=kind: kind in found).to_numpy())
        rng = np.random.default_rng([seed, list(GALLERY_KINDS).index(kind)])
        chosen += rng.permutation(positions)[:per_kind].tolist()
    return test_df.iloc[sorted(set(chosen))]


def select_gallery_cases(test_df: pd.DataFrame, scores: np.ndarray, labels: Sequence[str],
                         size: int | None = None, seed: int = 0) -> pd.DataFrame:
    """One course per gallery kind, the candidate the model scores highest for the kind's code.

    ``scores`` ``[len(test_df), labels]`` are the model's probabilities for the rows of
    ``test_df`` (a prepared split with truth columns, or a subset such as :func:`gallery_pool`).
    Returns ``DataFrame(kind, description, course_id, code, score, candidates)``, one row per kind
    in ``GALLERY_KINDS`` order; a kind without any candidate has ``course_id`` None and 0
    candidates (small cohorts, or codes outside the model's labels), so the caller can say so.

    ``size`` (default: one per found kind) is the number of cases wanted: fewer keeps the first
    found kinds (missing kinds stay listed with ``course_id`` None); more adds seeded random
    courses (kind ``random``, code: the model's top code), e.g. for a non-synthetic cohort.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(test_df), len(labels)):
        raise ValueError(f"select_gallery_cases: scores have shape {scores.shape}, expected "
                         f"({len(test_df)}, {len(labels)}) = (rows of test_df, labels)")
    matches = test_df.apply(gallery_match, axis=1) if len(test_df) else pd.Series([], dtype=object)
    rows = []
    for kind, description in GALLERY_KINDS.items():
        best = None
        candidates = 0
        for position, found in enumerate(matches):
            label = label_for(found[kind], labels) if kind in found else None
            if label is None:
                continue
            candidates += 1
            score = scores[position, list(labels).index(label)]
            if best is None or score > best[2]:
                best = (test_df["course_id"].iloc[position], label, score)
        rows.append({"kind": kind, "description": description,
                     "course_id": best[0] if best else None, "code": best[1] if best else None,
                     "score": float(best[2]) if best else float("nan"),
                     "candidates": candidates})
    gallery = pd.DataFrame(rows)
    gallery["course_id"] = pd.Series([row["course_id"] for row in rows], dtype=object)  # ids stay
    if size is None:
        return gallery
    found = gallery[gallery["course_id"].notna()]
    keep = set(found.index[: max(int(size), 0)]) | set(gallery.index[gallery["course_id"].isna()])
    gallery = gallery.loc[sorted(keep)]
    extra = int(size) - len(found)
    if extra > 0:
        taken = set(gallery["course_id"].dropna())
        free = np.flatnonzero(~test_df["course_id"].isin(taken).to_numpy())
        picked = np.random.default_rng(seed).permutation(free)[:extra]
        top = scores[picked].argmax(axis=1) if len(picked) else []
        gallery = pd.concat([gallery, pd.DataFrame({
            "kind": "random", "description": "a random test course",
            "course_id": pd.Series(test_df["course_id"].iloc[picked].tolist(), dtype=object),
            "code": [labels[int(index)] for index in top],
            "score": scores[picked, top] if len(picked) else [], "candidates": len(free)})],
            ignore_index=True)
    return gallery.reset_index(drop=True)


# --- command line --------------------------------------------------------------------------

def is_synthetic(prepared_dir: str | Path) -> bool:
    """Whether a prepared split directory comes from a synthetic cohort: the one place that
    decides whether note text may be written into explorer pages.

    Reads the prepared data's own manifest, ``PREPARED/manifest.json``, where ``medcoding
    prepare`` copies the cohort's manifest under ``input_manifest``: synthetic only when
    ``input_manifest.synthetic`` is ``true``. Anything else (no manifest, no such key, a value
    that is not a boolean) counts as a real cohort, so no note text is written unless asked for.
    Nothing outside ``PREPARED`` is read: a run directory's ``data/`` may hold another cohort.
    """
    from medcoding.io import read_json

    manifest = Path(prepared_dir) / "manifest.json"
    if not manifest.is_file():
        return False
    cohort = read_json(manifest).get("input_manifest")
    return isinstance(cohort, dict) and cohort.get("synthetic") is True


def load_case_row(prepared_dir: str | Path, split: str, course_id: str) -> pd.Series:
    """The row of ``course_id`` in ``PREPARED/<split>.parquet`` (a clear error if absent)."""
    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; give --prepared a prepared split directory "
                                "(medcoding prepare) and --split train, val or test")
    frame = pd.read_parquet(path)
    for column in ("course_id", "text"):
        if column not in frame.columns:
            raise ValueError(f"{path}: column {column!r} missing (columns: {list(frame.columns)});"
                             " re-run `medcoding prepare`")
    hits = frame[frame["course_id"].astype(str) == str(course_id)]
    if hits.empty:
        examples = frame["course_id"].astype(str).head(5).tolist()
        raise KeyError(f"{path}: no row with course_id {course_id!r} in column 'course_id' "
                       f"(e.g. {examples}); pick a course of this split or change --split")
    return hits.iloc[0]


def main(argv: list[str] | None = None) -> int:
    """``medcoding explain``: write the explorer page of one course."""
    import time

    parser = argparse.ArgumentParser(
        prog="medcoding explain",
        description="AttInGrad explanation page (self-contained HTML) for one course.")
    parser.add_argument("--model", required=True, help="model directory (medcoding train)")
    parser.add_argument("--case", required=True, help="course_id of the course to explain")
    parser.add_argument("--prepared", required=True, help="prepared split directory")
    parser.add_argument("--split", default="test", help="split holding the course (test)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--top-k", type=int, default=10, help="predicted codes to show (10)")
    parser.add_argument("--method", default="attingrad", choices=METHODS)
    parser.add_argument("--include-text", action="store_true",
                        help="write the note text into the page even for a non-synthetic cohort")
    args = parser.parse_args(argv)

    from medcoding.explorer import build_page
    from medcoding.predict import Coder

    started = time.perf_counter()
    row = load_case_row(args.prepared, args.split, args.case)
    synthetic = is_synthetic(args.prepared)
    coder = Coder.from_pretrained(args.model)
    case = build_case(coder, row, top_k=args.top_k, method=args.method, synthetic=synthetic)
    path = build_page(case, args.out, include_text=args.include_text)
    withheld = "" if synthetic or args.include_text else " (note text withheld: real cohort)"
    print(f"wrote {path}{withheld} in {time.perf_counter() - started:.1f} s")
    return 0
