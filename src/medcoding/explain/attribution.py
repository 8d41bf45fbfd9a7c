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
(no special tokens, truncated at ``max_tokens``, non-overlapping 128-token windows; ``[CLS]`` and
``[SEP]`` around the document for a model with ``document_markers``), with the tokenizer's
character offsets. The markers hold no text, so they get no score: each code's distribution is
over the text's tokens. A *word* is a run of letters/digits (``\\w+``) or a single
punctuation mark; every token belongs to the word holding its first character, so a word whose
word pieces fall into two windows is one word with the summed score of all its pieces.

Cost: one forward pass per document and one backward pass per explained code (the graph is kept
between them). With MiniLM on one CPU thread of a busy 2-core machine: 1.3 s for one code and
6.7 s for twelve codes of a median course (1,557 characters, 346 tokens); 33 s for twelve codes of
a 10,000-character course (1,985 tokens).

Faithfulness is checked in :mod:`medcoding.explain.faithfulness`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

METHODS = ("attingrad", "attention", "gradient")
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Encoded:
    """One text as the model reads it, with each real token's character span."""

    input_ids: torch.Tensor  # [1, chunks, chunk_size]
    attention_mask: torch.Tensor  # [1, chunks, chunk_size]
    spans: np.ndarray  # [tokens, 2] character start/end of each real token, in token order
    first: int = 0  # position of the first text token (1 after a [CLS] marker)


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


def encode(tokenizer, text: str, chunk_size: int = 128, max_tokens: int = 10_000,
           markers: Sequence[int] | None = None) -> Encoded:
    """Token ids in windows (as ``medcoding.encoding`` builds them, with the model's
    ``document_markers`` if given) plus the text tokens' character spans."""
    from medcoding.encoding import collate, read_with_markers

    encoding = tokenizer(str(text), add_special_tokens=False, return_offsets_mapping=True,
                         truncation=False)
    ids = np.asarray(encoding["input_ids"][:max_tokens], dtype=np.int64)
    spans = np.asarray(encoding["offset_mapping"][:max_tokens], dtype=np.int64).reshape(-1, 2)
    input_ids, attention_mask = collate(read_with_markers([ids], markers), chunk_size=chunk_size,
                                        pad_id=tokenizer.pad_token_id)
    return Encoded(input_ids, attention_mask, spans, first=1 if markers else 0)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; use one of {METHODS}")
    return method


def normalised(values: np.ndarray) -> np.ndarray:
    """Raw token scores ``[codes, tokens]`` as each code's distribution over the tokens: rows
    clipped at 0 and divided by their sums (rows that sum to 0 stay 0)."""
    values = np.clip(values, 0.0, None)
    sums = values.sum(axis=1, keepdims=True)
    return np.divide(values, sums, out=np.zeros_like(values), where=sums > 0)


def token_attributions(model, encoded: Encoded, label_indices: Sequence[int]):
    """All three methods' raw token scores for the codes ``label_indices``.

    Returns ``(probabilities [codes], {method: [codes, tokens]})`` over the real tokens, before
    normalisation. One forward pass, one backward pass per code; the model is put in eval mode
    (no dropout) and runs on its own device.
    """
    text_tokens = slice(encoded.first, encoded.first + len(encoded.spans))  # markers left out
    if len(encoded.spans) == 0:
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
            gradient_norms.append(product[0, text_tokens].norm(dim=-1))  # [tokens]
    weights = attention[0, label_indices, text_tokens].detach().double().cpu().numpy()
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
    check_method(method)
    codes = [codes] if isinstance(codes, str | int | np.integer) else list(codes)
    if labels is None:
        labels = [str(index) for index in range(int(model.config.num_labels))]
    indices = resolve_labels(labels, codes)
    encoded = encode(tokenizer, text, model.config.chunk_size, max_tokens,
                     model.config.document_markers)
    probabilities, raw = token_attributions(model, encoded, indices)
    return Explanation(text=str(text), method=method,
                       codes=tuple(labels[index] for index in indices),
                       label_indices=tuple(indices), scores=probabilities,
                       token_spans=encoded.spans, token_scores=normalised(raw[method]))


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


def encode_for(coder, text: str) -> Encoded:
    """``text`` encoded as ``coder`` reads it (its tokenizer, window size and token limit)."""
    return encode(coder.tokenizer, text, coder.model.config.chunk_size,
                  int(getattr(coder, "max_tokens", 10_000)), coder.model.config.document_markers)


def coder_scores(coder, texts: list[str]) -> np.ndarray:
    """``coder.score`` over a list of texts, as a float array ``[texts, labels]``."""
    return np.asarray(coder.score(pd.DataFrame({"text": texts})), dtype=np.float64)
