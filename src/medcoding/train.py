"""Training PLM-CA as the study did, on one process or many (``torchrun``), with exact resume.

Defaults follow the study (Methods: Model): binary cross-entropy, AdamW at 5e-5 with a linear
schedule after a warm-up, up to 10 epochs, early stopping after 2 epochs without a better
validation mean average precision (MAP; the best epoch's weights are kept), effective batches of
128 documents (gradient accumulation over micro-batches bounded by a token budget), gradient
clipping at 1.0, documents truncated at 10,000 tokens. ``precision="auto"`` (the default) trains
under bfloat16 autocast where the device runs it natively (CPUs with AVX-512 BF16 or AMX, GPUs
from Ampere on) and in float32 elsewhere; ``"bf16"``/``"fp32"`` force one (see
``medcoding.precision``).
The precision used is recorded in the model's ``config.json``.

One entry point, :func:`fit`, trains from a :class:`TrainConfig` on one process or on N
(``processes=N``, default: one per GPU), launching ``torchrun`` itself for N > 1, so the same
config trains the same model either way. Data parallel (``torchrun --nproc_per_node=N -m
medcoding.train --config CONFIG ...``): each process takes an interleaved share of every step's
128 documents and accumulates its gradients under ``DistributedDataParallel.no_sync()``; the last
micro-batch's backward pass all-reduces them, once per optimizer step (gloo on CPU, NCCL on GPU).
The loss is normalised by the step's global document count (times the number of processes, which
DDP's average divides out), so the update equals a single-process step over the same documents.
Measured against the hand-written single flat all-reduce it replaces (``benchmarks/bench_ddp.py
--encoder minilm --steps 24 --rounds 2``: 2 gloo processes x 1 thread, 2.5 micro-batches per
process and step, on a shared 2-core machine): median 7.35 s per step with DDP, 7.32 s by hand
(ratio 0.996, within the noise of the shared machine), identical weights after the same steps.

Publishing: a run works in ``MODEL_DIR.partial/`` and, once finished, renames it onto
``MODEL_DIR`` with the completion marker ``complete.json`` (``medcoding.modeldir``), so an
interrupted run never touches an existing model; a non-empty ``MODEL_DIR`` needs
``overwrite=True`` (``--overwrite``).

Checkpoints (``MODEL_DIR.partial/checkpoint/``, every ``checkpoint_every`` steps and at each
epoch end): ``model.safetensors`` (current weights), ``best.safetensors`` (best epoch so far),
``optimizer.pt`` (AdamW and scheduler state: tensors and numbers only, read with
``torch.load(weights_only=True)``), ``rng_rank<R>.pt`` (each process's RNG states) and
``state.json`` (epoch, step, best MAP, log rows, the prepared data's fingerprint). Each
checkpoint is written whole into ``checkpoint.staging/`` and swapped in by renaming, so a kill or
a full disk while writing leaves the previous checkpoint intact. The batch plan is a pure
function of seed and epoch, so ``--resume`` continues mid-epoch and, on CPU, ends with exactly
the weights of an uninterrupted run; it refuses other settings or other prepared data.

Model directory (``medcoding.modeldir``): ``config.json`` (the ``PLMCAConfig``: labels, level,
the global threshold tuned for micro F1 on validation, the weights' SHA-256, ...),
``model.safetensors``, tokenizer files, ``train_log.csv``, ``train_summary.json`` and, last,
``complete.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_parameter_names

from medcoding import config as configs
from medcoding import metrics, modeldir
from medcoding import precision as precisions
from medcoding.config import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from medcoding.encoding import (
    BucketBatchSampler,
    collate,
    document_markers,
    load_encoder_and_tokenizer,
    null_text_rows,
    read_with_markers,
    split_token_store,
)
from medcoding.io import atomic_path, read_json, write_json
from medcoding.model import (
    HEADS,
    PLMCA,
    PLMCAConfig,
    load_weights,
    save_weights,
    score_token_arrays,
)
from medcoding.modeldir import check_out_dir, file_sha256, publish, working_dir

LEVEL_COLUMNS = {"3": ("codes_l3", "l3"), "full": ("codes_full", "full")}
#: Settings that depend on the encoder when a config leaves them None (TrainConfig.resolved):
#: the study's for a pretrained encoder, a larger step for the randomly initialised tiny one.
#: (The label queries' initial scale is the study's 0.02 for every encoder: the command line
#: used 1.0 for the tiny encoder, but on the tests' 200-patient set, 5 epochs at 2e-3, that gave
#: validation MAP 0.665 against 1.000 at 0.02, frequency baseline 0.507.)
ENCODER_DEFAULTS = {"learning_rate": {"tiny": 1e-3, None: 5e-5}}
REQUIRED_COLUMNS = ("course_id", "text", "codes_l3", "codes_full", "patient_rank")


@dataclass
class TrainConfig:
    """All training hyper-parameters; defaults are the study's. Keys, types and ranges are
    checked on construction (:mod:`medcoding.config`); ``from_dict`` refuses unknown keys."""

    encoder: str = "minilm"  # minilm | tiny | a local encoder directory
    level: Literal["3", "full"] = "3"
    train_size: PositiveInt | None = None  # training patients (patient_rank < N); None: all
    epochs: PositiveInt = 10
    learning_rate: PositiveFloat | None = None  # None: 5e-5 (the study's); 1e-3 for tiny
    head_learning_rate: PositiveFloat | None = None  # label attention's rate; None: learning_rate
    label_query_std: PositiveFloat = 0.02  # initial scale of the label queries
    head: Literal["per_label", "shared"] = "per_label"  # output layer: one w_c, b_c per code
    # (ours) or one for all codes (the study authors' code)
    encoder_dropout: Fraction | None = None  # encoder's hidden and attention dropout; None: its
    # own (MiniLM 0.1); 0 turns it off (on a CPU 1.59x the tokens/s at 400 default patients)
    encoder_layers: PositiveInt | None = None  # keep the encoder's first N layers; None: all
    frozen_layers: NonNegativeInt = 0  # K > 0: the embeddings and the first K layers stay fixed
    document_markers: bool = False  # [CLS] + document + [SEP], once per document (the study
    # authors' code); False: the document's tokens only
    weight_decay: NonNegativeFloat = 0.01  # not on biases and LayerNorm weights
    warmup_fraction: Fraction = 0.1  # share of all optimizer steps spent warming up linearly
    patience: PositiveInt = 2  # epochs without a better validation MAP before stopping
    batch_size: PositiveInt = 128  # documents per optimizer step (all processes together)
    token_budget: PositiveInt = 16_384  # padded tokens per micro-batch
    eval_token_budget: PositiveInt = 32_768
    max_tokens: PositiveInt = 10_000
    chunk_size: PositiveInt = 128
    grad_clip: PositiveFloat = 1.0
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # medcoding.precision; auto: bf16 if native
    attn_implementation: str = "sdpa"  # encoder attention while training (eager: the reference)
    eval_attn_implementation: str = "sdpa"  # encoder attention while scoring
    seed: NonNegativeInt = 0
    checkpoint_every: NonNegativeInt = 50  # optimizer steps between checkpoints (0: epoch ends)
    stop_after_steps: PositiveInt | None = None  # debug: checkpoint and stop after this many steps
    progress: bool = True

    def __post_init__(self) -> None:
        configs.check(TrainConfig, asdict(self), "TrainConfig")

    @classmethod
    def from_dict(cls, data: dict, source: str = "training config") -> TrainConfig:
        """A config from a mapping (a JSON/YAML file, a profile): unknown keys, wrong types and
        values out of range raise :class:`medcoding.config.ConfigError` naming ``source``."""
        return configs.build(cls, data, source)

    def resolved(self) -> TrainConfig:
        """A copy with the encoder-dependent settings left None filled in (ENCODER_DEFAULTS)."""
        filled = {key: choices.get(self.encoder, choices[None])
                  for key, choices in ENCODER_DEFAULTS.items() if getattr(self, key) is None}
        return dataclasses.replace(self, **filled)


@dataclass
class TrainResult:
    """Where the model is and how training went."""

    model_dir: Path
    best_epoch: int
    best_val_map: float
    threshold: float
    log: pd.DataFrame
    steps: int
    finished: bool
    frequency_baseline_map: float = math.nan
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- data


def split_path(prepared_dir: str | os.PathLike, split: str) -> Path:
    """``PREPARED/<split>.parquet``, checked for the columns training needs (its schema only)
    and for empty texts (the row groups' null counts; the texts are read only when a count is
    missing or not zero, to name the rows)."""
    path = Path(prepared_dir) / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; create prepared splits with `medcoding prepare --data DATA --out "
            f"{prepared_dir}`"
        )
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {names}. "
                         "Re-create it with `medcoding prepare` (CONTRIBUTING.md, Prepared splits)")
    bad_text = null_text_rows(path)
    if len(bad_text):
        courses = pq.read_table(path, columns=["course_id"])["course_id"].take(bad_text[:5])
        raise ValueError(f"{path}: column 'text' is empty in rows {bad_text[:5].tolist()} "
                         f"(course_id {courses.to_pylist()}); fix or drop those courses in "
                         "preprocessing")
    return path


def load_split(prepared_dir: str | os.PathLike, split: str,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One prepared split, checked as :func:`split_path` does; ``columns``: read only these
    (None: all, texts included)."""
    return pd.read_parquet(split_path(prepared_dir, split),
                           columns=None if columns is None else list(columns))


def split_texts(prepared_dir: str | os.PathLike, split: str,
                rows: np.ndarray | None = None) -> Iterator[str]:
    """The texts of a split's ``rows`` (ascending row numbers; None: all), read lazily one
    record batch at a time, so that only a consumer that needs them (the tiny encoder's
    tokenizer) reads them, and never all at once."""
    parquet = pq.ParquetFile(Path(prepared_dir) / f"{split}.parquet")
    start = 0
    for batch in parquet.iter_batches(batch_size=2_048, columns=["text"]):
        texts = batch.column(0)
        if rows is None:
            yield from texts.to_pylist()
        else:
            wanted = rows[(rows >= start) & (rows < start + len(texts))] - start
            yield from texts.take(wanted).to_pylist()
        start += len(texts)


def split_label_matrix(path: Path, column: str, labels: Sequence[str]) -> sp.csr_matrix:
    """``metrics.label_matrix`` of a split's code column, built from its Arrow buffers without a
    Python string per code (the same matrix: boolean, codes outside ``labels`` left out, each
    code once per row, column indices sorted)."""
    codes = pq.read_table(path, columns=[column])[column].combine_chunks()
    if codes.null_count or not pa.types.is_list(codes.type):  # let label_matrix name the rows
        return metrics.label_matrix(codes.to_pylist(), labels)
    if len(set(labels)) != len(labels):
        return metrics.label_matrix([], labels)  # refuses the duplicates
    offsets = codes.offsets.to_numpy()  # [documents + 1]
    values = codes.flatten()  # [codes]
    columns = pc.index_in(values, value_set=pa.array(list(labels), type=values.type))
    rows = np.repeat(np.arange(len(codes), dtype=np.int64), np.diff(offsets))
    known = columns.is_valid().to_numpy(zero_copy_only=False)
    keys = np.unique(rows[known] * len(labels)
                     + columns.filter(columns.is_valid()).to_numpy().astype(np.int64))
    indices = keys % len(labels)
    indptr = np.searchsorted(keys // len(labels), np.arange(len(codes) + 1))
    return sp.csr_matrix((np.ones(len(keys), dtype=bool), indices, indptr),
                         shape=(len(codes), len(labels)))


def load_labels(prepared_dir: str | os.PathLike, level: str) -> list[str]:
    """The label vocabulary of ``level`` (``"3"`` or ``"full"``) from ``labels.json``."""
    if level not in LEVEL_COLUMNS:
        raise ValueError(f"level must be '3' or 'full', got {level!r}")
    path = Path(prepared_dir) / "labels.json"
    vocabularies = read_json(path)
    key = LEVEL_COLUMNS[level][1]
    if key not in vocabularies or not vocabularies[key]:
        raise ValueError(f"{path}: no label list under {key!r}; re-run `medcoding prepare`")
    return list(vocabularies[key])


def training_rows(patient_rank: np.ndarray, train_size: int | None) -> np.ndarray:
    """The rows of the nested subset of the first ``train_size`` patients by ``patient_rank``."""
    if train_size is None:
        return np.arange(len(patient_rank))
    rows = np.flatnonzero(patient_rank < train_size)
    if len(rows) == 0:
        raise ValueError(f"--train-size {train_size} selects no training course "
                         f"(patient_rank ranges {patient_rank.min()}..{patient_rank.max()})")
    return rows


def training_subset(frame: pd.DataFrame, train_size: int | None) -> pd.DataFrame:
    """The nested subset of the first ``train_size`` patients by ``patient_rank``."""
    if train_size is None:
        return frame.reset_index(drop=True)
    rows = training_rows(frame["patient_rank"].to_numpy(), train_size)
    return frame.iloc[rows].reset_index(drop=True)


# ----------------------------------------------------------------------------- metrics


def label_frequency(targets) -> np.ndarray:
    """Share of the documents holding each label ``[labels]`` (float64) of a boolean
    ``[documents, labels]`` matrix, dense or sparse: each label's document count (exact) over the
    document count, as ``targets.mean(axis=0)`` of the dense array gives it."""
    counts = np.asarray(targets.sum(axis=0), dtype=np.int64).ravel()  # [labels]
    return counts / targets.shape[0]


def frequency_baseline_map(train_targets, val_targets) -> float:
    """MAP (``medcoding.metrics``, ties included) of ranking every document's labels by their
    training frequency (``train_targets``: dense or sparse)."""
    frequency = np.asarray(label_frequency(train_targets), dtype=np.float32)  # [labels]
    scores = np.broadcast_to(frequency, (val_targets.shape[0], len(frequency)))
    return metrics.evaluate(val_targets, scores, ks=())["map"]


# ----------------------------------------------------------------------------- processes


@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes() -> Processes:
    """Join the ``torchrun`` process group if launched by it; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world_size, device)


def broadcast_floats(values: list[float], processes: Processes) -> list[float]:
    if processes.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=processes.device
                          if processes.device.type == "cuda" else "cpu")
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


# ----------------------------------------------------------------------------- checkpoints




def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _sibling(directory: Path, role: str) -> Path:
    return directory.with_name(f"{directory.name}.{role}")


def resolve_checkpoint(directory: Path) -> Path | None:
    """The whole checkpoint to resume from: ``directory``, or the previous one when a run was
    killed between the two renames of a swap; None without a checkpoint."""
    for candidate in (directory, _sibling(directory, "previous")):
        if (candidate / "state.json").is_file():
            return candidate
    return None


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict,
                    processes: Processes, new_best: bool = False) -> None:
    """Write a whole checkpoint into ``directory.staging`` and swap it in for ``directory``.

    Every process writes its RNG state; the main process the weights (``best.safetensors``: the
    current weights when ``new_best``, else the previous checkpoint's), the optimizer and, last,
    ``state.json``. Then ``directory`` becomes ``directory.previous`` and the staging folder
    ``directory`` (two renames); the previous checkpoint is removed.
    """
    staging, previous = _sibling(directory, "staging"), _sibling(directory, "previous")
    if processes.main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    if processes.world_size > 1:
        dist.barrier()
    with atomic_path(staging / f"rng_rank{processes.rank}.pt") as tmp:
        torch.save(rng_state(), tmp)
    if processes.world_size > 1:
        dist.barrier()
    if processes.main:
        save_weights(model, staging / "model.safetensors")
        current = resolve_checkpoint(directory)
        if new_best:
            save_weights(model, staging / "best.safetensors")
        elif current is not None and (current / "best.safetensors").is_file():
            try:  # the file is never written in place, so the two names can share it
                os.link(current / "best.safetensors", staging / "best.safetensors")
            except OSError:  # a file system without hard links
                shutil.copyfile(current / "best.safetensors", staging / "best.safetensors")
        with atomic_path(staging / "optimizer.pt") as tmp:
            torch.save({"optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict()}, tmp)
        write_json(staging / "state.json", state)
        if directory.exists():
            shutil.rmtree(previous, ignore_errors=True)
            os.rename(directory, previous)
        os.rename(staging, directory)
        shutil.rmtree(previous, ignore_errors=True)
    if processes.world_size > 1:
        dist.barrier()


def data_fingerprint(prepared_dir: str | os.PathLike) -> str:
    """SHA-256 over the files training reads: ``labels.json``, ``train`` and ``val`` splits."""
    names = ("labels.json", "train.parquet", "val.parquet")
    return hashlib.sha256("".join(file_sha256(Path(prepared_dir) / name)
                                  for name in names).encode()).hexdigest()


def check_same_data(saved: dict, fingerprint: str, prepared_dir, checkpoint_dir: Path) -> None:
    """Refuse to resume on prepared data other than the interrupted run's."""
    if saved.get("data_fingerprint", fingerprint) != fingerprint:
        raise ValueError(
            f"--resume from {checkpoint_dir}: the prepared data in {prepared_dir} differ from "
            "the data the interrupted run trained on (labels.json, train or val split changed);"
            " resume with the same --data, or train anew without --resume")


def load_checkpoint(directory: Path, model, optimizer, scheduler, processes: Processes) -> dict:
    load_weights(model, directory / "model.safetensors")
    saved = torch.load(directory / "optimizer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(torch.load(directory / f"rng_rank{processes.rank}.pt", weights_only=True))
    return read_json(directory / "state.json")


# ----------------------------------------------------------------------------- training


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """AdamW groups: the encoder at ``learning_rate``, the label attention (trained from scratch)
    at ``head_learning_rate``; each split into weights decayed by ``weight_decay`` and biases and
    LayerNorm weights, not decayed (the usual transformers practice, as ``Trainer`` does).

    With few optimiser steps (a CPU budget) a freshly initialised head learns far too slowly at a
    pretrained encoder's rate; ``head_learning_rate`` lets a profile speed it up. Groups without
    parameters are left out.
    """
    decayed = {name for name in get_parameter_names(model, [torch.nn.LayerNorm])
               if "bias" not in name}
    head_rate = config.head_learning_rate or config.learning_rate
    groups = []
    for part, rate in (("encoder", config.learning_rate), ("label_attention", head_rate)):
        named = [(f"{part}.{name}", param)
                 for name, param in getattr(model, part).named_parameters()]
        for decay, keep in ((config.weight_decay, True), (0.0, False)):
            params = [param for name, param in named
                      if (name in decayed) == keep and param.requires_grad]
            if params:
                groups.append({"params": params, "lr": rate, "weight_decay": decay})
    return groups


def prior_logits(targets) -> np.ndarray:
    """Log-odds of each label's training frequency, clipped to [1e-4, 1 - 1e-4]; float32
    (``targets``: boolean ``[documents, labels]``, dense or sparse)."""
    prior = np.clip(label_frequency(targets), 1e-4, 1 - 1e-4)
    return np.log(prior / (1 - prior)).astype(np.float32)


def build_model(config: TrainConfig, out_dir: Path, train_texts: Iterable[str],
                train_targets: sp.csr_matrix | np.ndarray, labels: Sequence[str], resume: bool,
                processes: Processes):
    """A new model and tokenizer (saved to ``out_dir``), or the ones a resumed run saved.

    ``train_texts`` (any iterable, e.g. :func:`split_texts`' lazy one) is read only to fit the
    tiny encoder's tokenizer; a pretrained encoder and a resumed run leave it untouched.

    A new model's output biases start at the log-odds of the labels' training frequencies (a
    shared bias at that of their mean frequency), so training starts from the frequency
    baseline instead of spending its first epochs (at a learning rate of 5e-5, every one)
    moving 1,000 biases from 0 to about -5.
    """
    from medcoding.encoding import load_tokenizer

    if resume:
        model_config = PLMCAConfig.from_pretrained(out_dir,
                                                   attn_implementation=config.attn_implementation)
        return PLMCA(model_config), load_tokenizer(out_dir)
    encoder, tokenizer = load_encoder_and_tokenizer(
        config.encoder, train_texts if config.encoder == "tiny" else None, seed=config.seed,
        attn_implementation=config.attn_implementation)
    if config.encoder_layers is not None:
        keep_first_layers(encoder, config.encoder_layers)
    if config.encoder_dropout is not None:
        set_encoder_dropout(encoder, config.encoder_dropout)
    model_config = PLMCAConfig(encoder=encoder.config.to_dict(),
                               id2label=dict(enumerate(labels)),
                               label2id={label: index for index, label in enumerate(labels)},
                               level=config.level, chunk_size=config.chunk_size,
                               pad_token_id=tokenizer.pad_token_id,
                               label_query_std=config.label_query_std, head=config.head,
                               document_markers=(document_markers(tokenizer)
                                                 if config.document_markers else None))
    torch.manual_seed(config.seed)
    model = PLMCA(model_config, encoder)
    model.label_attention.set_prior(torch.from_numpy(prior_logits(train_targets)))
    if processes.main:
        model.save_pretrained(out_dir, tokenizer=tokenizer, publish=False)
    return model, tokenizer


def batch_targets(targets: sp.csr_matrix, batch: Sequence[int],
                  device: torch.device) -> torch.Tensor:
    """The dense float32 target rows ``[batch, labels]`` of a micro-batch's documents (in the
    batch's order) from the sparse ``[documents, labels]`` training targets: only a micro-batch's
    rows are ever dense, so the targets' memory grows with the codes, not documents x labels."""
    rows = targets[np.asarray(batch, dtype=np.int64)].toarray()  # [batch, labels] bool
    return torch.from_numpy(rows.astype(np.float32)).to(device)


def encoder_layer_stack(encoder: torch.nn.Module, setting: str,
                        layers: int) -> torch.nn.ModuleList:
    """The transformer layers of a BERT-style encoder (``encoder.encoder.layer``), refused with
    one line naming ``setting`` when there is no such stack or it has fewer than ``layers``."""
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(stack, torch.nn.ModuleList):
        raise ValueError(f"{type(encoder).__name__}: encoder_layers and frozen_layers need a "
                         "BERT-style encoder (encoder.layer); leave them at None and 0")
    if layers > len(stack):
        raise ValueError(f"{setting}={layers}: the encoder has only {len(stack)} layers")
    return stack


def keep_first_layers(encoder: torch.nn.Module, layers: int) -> None:
    """Drop every transformer layer of ``encoder`` after the first ``layers`` and record the new
    depth in its config, so the saved model is the smaller one."""
    stack = encoder_layer_stack(encoder, "encoder_layers", layers)
    encoder.encoder.layer = stack[:layers]
    encoder.config.num_hidden_layers = layers


def freeze_lower_layers(encoder: torch.nn.Module, layers: int) -> None:
    """Stop training the embeddings and the first ``layers`` transformer layers of ``encoder``.

    Nothing below the first trained layer needs a gradient, so autograd records none of it:
    the frozen part costs one forward pass per token instead of a forward and a backward.
    """
    if layers == 0:
        return
    stack = encoder_layer_stack(encoder, "frozen_layers", layers)
    embeddings = getattr(encoder, "embeddings", None) or encoder.get_input_embeddings()
    for module in (embeddings, *stack[:layers]):
        module.requires_grad_(False)


def set_encoder_dropout(encoder: torch.nn.Module, probability: float) -> None:
    """Set every dropout of ``encoder`` to ``probability`` and record it in its config (so the
    saved model, a resumed run and ``config.json`` say what training used)."""
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(encoder.config, name):
            setattr(encoder.config, name, probability)
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = probability


def validate(model: PLMCA, config: TrainConfig, val_tokens,
             val_targets) -> tuple[float, float, np.ndarray]:
    """Validation MAP, micro F1 at 0.5 (``medcoding.metrics``) and the scores
    ``[documents, labels]`` they came from."""
    model.set_attention(config.eval_attn_implementation)
    scores = score_token_arrays(model, val_tokens, config.eval_token_budget,
                                model.config.precision).numpy()  # [documents, labels]
    model.set_attention(config.attn_implementation)
    values = metrics.evaluate(val_targets, scores, 0.5, ks=())
    return values["map"], values["f1_micro"], scores


RESUME_MAY_CHANGE = {"stop_after_steps", "progress", "checkpoint_every", "epochs", "patience"}


def check_resumable(saved: dict, current: dict, checkpoint_dir: Path) -> None:
    """Refuse to resume with settings that would change the batch plan or the optimisation."""
    changed = {key: (saved.get(key), value) for key, value in current.items()
               if key not in RESUME_MAY_CHANGE and saved.get(key) != value}
    if changed:
        raise ValueError(f"--resume from {checkpoint_dir}: settings differ from the interrupted "
                         f"run (saved, now): {changed}; resume with the same settings or start "
                         "a new model directory")


def train(prepared_dir: str | os.PathLike, out_dir: str | os.PathLike,
          config: TrainConfig | None = None, resume: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train PLM-CA on ``prepared_dir``; publish the finished model directory as ``out_dir``.

    Works in ``out_dir.partial`` (see the module docstring); a non-empty ``out_dir`` is refused
    unless ``overwrite``, and is replaced only when the new model is finished.
    """
    config = (config or TrainConfig()).resolved()
    processes = start_processes()
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    work = working_dir(out_dir)
    checkpoint_dir = work / "checkpoint"
    fingerprint = data_fingerprint(prepared_dir)
    if resume:
        found = resolve_checkpoint(checkpoint_dir)
        if found is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {checkpoint_dir}; start "
                                    "without --resume")
        check_same_data(read_json(found / "state.json"), fingerprint, prepared_dir, found)
    elif processes.main and work.exists():
        shutil.rmtree(work)  # an earlier interrupted run, not resumed: start afresh
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    labels = load_labels(prepared_dir, config.level)
    code_column = LEVEL_COLUMNS[config.level][0]
    # only the columns used: codes and patient ranks; texts only for the tiny encoder's
    # tokenizer, read lazily (the token ids come from the memory-mapped token store)
    train_path, val_path = split_path(prepared_dir, "train"), split_path(prepared_dir, "val")
    train_rows = training_rows(pq.read_table(train_path, columns=["patient_rank"])
                               ["patient_rank"].to_numpy(), config.train_size)
    # [documents, labels] bool CSR: dense float rows are made per micro-batch (batch_targets)
    train_targets = split_label_matrix(train_path, code_column, labels)[train_rows]
    model, tokenizer = build_model(config, work, split_texts(prepared_dir, "train", train_rows),
                                   train_targets, labels, resume, processes)
    freeze_lower_layers(model.encoder, config.frozen_layers)  # a resumed model as well
    model.to(processes.device)
    model.config.precision = precisions.resolve(config.precision, processes.device).precision
    torch.manual_seed(config.seed + processes.rank)  # dropout differs between processes

    # token ids, tokenized once per split and tokenizer, memory-mapped (encoding.cache_dir())
    train_tokens = read_with_markers(split_token_store(prepared_dir, "train", tokenizer,
                                                       config.max_tokens).subset(train_rows),
                                     model.config.document_markers)
    val_tokens = split_token_store(prepared_dir, "val", tokenizer, config.max_tokens)
    val_targets = split_label_matrix(val_path, code_column, labels)  # CSR
    baseline_map = frequency_baseline_map(train_targets, val_targets)

    sampler = BucketBatchSampler(train_tokens.lengths(), config.batch_size,
                                 config.token_budget, config.chunk_size, config.seed, True,
                                 processes.rank, processes.world_size)
    total_steps = len(sampler) * config.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_fraction * total_steps), total_steps)
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_map": -1.0,
             "best_epoch": -1, "bad_epochs": 0, "log": [], "epoch_loss_sum": 0.0,
             "epoch_tokens": 0, "epoch_seconds": 0.0, "config": asdict(config),
             "data_fingerprint": fingerprint}
    best_val_scores = None  # [documents, labels] of the best epoch scored in this process
    if resume:
        state = load_checkpoint(resolve_checkpoint(checkpoint_dir), model, optimizer, scheduler,
                                processes)
        check_resumable(state["config"], asdict(config), checkpoint_dir)
    # one all-reduce per optimizer step: DDP (which first broadcasts rank 0's weights and
    # buffers) syncs on the last micro-batch's backward; `model` stays the plain module
    parallel = (DistributedDataParallel(model, device_ids=[processes.device]
                                        if processes.device.type == "cuda" else None)
                if processes.world_size > 1 else None)

    n_labels = len(labels)
    stopped_early = False
    for epoch in range(state["epoch"], config.epochs):
        if state["bad_epochs"] >= config.patience:
            break
        sampler.set_epoch(epoch)
        plan = sampler.steps()
        steps_documents = sampler.step_documents()
        step_sizes = [len(documents) for documents in steps_documents]
        model.train()
        bar = tqdm(total=len(plan), initial=state["step_in_epoch"], desc=f"epoch {epoch + 1}",
                   disable=not (config.progress and processes.main), leave=False)
        for step_index in range(state["step_in_epoch"], len(plan)):
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros((), device=processes.device)
            real_tokens = 0
            # a process whose share of the step is empty still joins DDP's all-reduce, with a
            # zero-weighted pass over one document of the step
            batches = plan[step_index] or [[steps_documents[step_index][0]]]
            weight = 1.0 if plan[step_index] else 0.0
            scale = processes.world_size / (step_sizes[step_index] * n_labels)  # DDP averages
            for index, batch in enumerate(batches):
                syncs = parallel is None or index == len(batches) - 1
                with contextlib.nullcontext() if syncs else parallel.no_sync():
                    input_ids, attention_mask = collate([train_tokens[i] for i in batch],
                                                        config.chunk_size, tokenizer.pad_token_id)
                    real_tokens += int(attention_mask.sum()) if weight else 0
                    with precisions.autocast(model.config.precision, processes.device):
                        logits = (model if parallel is None else parallel)(
                            input_ids.to(processes.device),
                            attention_mask.to(processes.device))  # [batch, labels]
                    loss = weight * torch.nn.functional.binary_cross_entropy_with_logits(
                        logits.float(), batch_targets(train_targets, batch, processes.device),
                        reduction="sum")
                    (loss * scale).backward()
                loss_sum += loss.detach() / (step_sizes[step_index] * n_labels)
            if processes.world_size > 1:
                dist.all_reduce(loss_sum)
            step_loss = float(loss_sum)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            seconds = time.perf_counter() - started
            state["global_step"] += 1
            state["step_in_epoch"] = step_index + 1
            state["epoch_loss_sum"] += step_loss
            state["epoch_tokens"] += real_tokens * processes.world_size
            state["epoch_seconds"] += seconds
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}",
                            tok_s=f"{real_tokens * processes.world_size / seconds:,.0f}")
            at_limit = (config.stop_after_steps is not None
                        and state["global_step"] >= config.stop_after_steps)
            if at_limit or (config.checkpoint_every
                            and state["global_step"] % config.checkpoint_every == 0):
                save_checkpoint(checkpoint_dir, model, optimizer, scheduler, state, processes)
            if at_limit:
                bar.close()
                return TrainResult(work, state["best_epoch"], state["best_map"], math.nan,
                                   pd.DataFrame(state["log"]), state["global_step"], False,
                                   baseline_map)
        bar.close()

        val_map, val_f1, val_scores = 0.0, 0.0, None
        if processes.main:
            val_map, val_f1, val_scores = validate(model, config, val_tokens, val_targets)
        val_map, val_f1 = broadcast_floats([val_map, val_f1], processes)
        row = {"epoch": epoch + 1, "loss": state["epoch_loss_sum"] / max(1, len(plan)),
               "val_map": val_map, "val_f1_micro": val_f1,
               "seconds": state["epoch_seconds"],
               "tokens_per_s": state["epoch_tokens"] / max(state["epoch_seconds"], 1e-9)}
        state["log"].append(row)
        if processes.main:
            print(f"epoch {epoch + 1}: loss {row['loss']:.4f}  val MAP {val_map:.4f}  "
                  f"F1@0.5 {val_f1:.4f}  {row['seconds']:.0f} s  {row['tokens_per_s']:,.0f} tok/s"
                  f"  (frequency baseline MAP {baseline_map:.4f})", file=sys.stderr)
        new_best = val_map > state["best_map"]
        if new_best:
            state.update(best_map=val_map, best_epoch=epoch + 1, bad_epochs=0)
            best_val_scores = val_scores  # the best weights' scores: finish() tunes on them
        else:
            state["bad_epochs"] += 1
        state.update(epoch=epoch + 1, step_in_epoch=0, epoch_loss_sum=0.0, epoch_tokens=0,
                     epoch_seconds=0.0)
        save_checkpoint(checkpoint_dir, model, optimizer, scheduler, state, processes, new_best)
        if state["bad_epochs"] >= config.patience:
            stopped_early = True
            break

    threshold = finish(model, config, work, checkpoint_dir, state, val_tokens, val_targets,
                       baseline_map, stopped_early, processes, best_val_scores)
    if processes.main:
        publish(work, out_dir)
    if processes.world_size > 1:
        dist.barrier()
    return TrainResult(out_dir, state["best_epoch"], state["best_map"], threshold,
                       pd.DataFrame(state["log"]), state["global_step"], True, baseline_map,
                       {"stopped_early": stopped_early})


def finish(model, config, out_dir, checkpoint_dir, state, val_tokens, val_targets,
           baseline_map, stopped_early, processes, best_val_scores=None) -> float:
    """Restore the best epoch, tune the threshold, write the model directory's files.

    ``best_val_scores``: the validation scores of the best epoch when this process computed
    them (the same weights, so the same numbers); None (a run resumed after its best epoch)
    scores validation again.
    """
    load_weights(model, resolve_checkpoint(checkpoint_dir) / "best.safetensors")
    threshold = 0.5
    if processes.main:
        if best_val_scores is None:
            _, _, best_val_scores = validate(model, config, val_tokens, val_targets)
        threshold = metrics.tune_threshold(val_targets, best_val_scores)
        model.config.threshold = threshold
        model.save_pretrained(out_dir, publish=False)  # config with threshold and weights' hash
        modeldir.write_training_record(out_dir, pd.DataFrame(
            state["log"], columns=["epoch", "loss", "val_map", "val_f1_micro", "seconds",
                                   "tokens_per_s"]), {
            "best_epoch": state["best_epoch"], "best_val_map": state["best_map"],
            "frequency_baseline_val_map": baseline_map, "threshold": threshold,
            "steps": state["global_step"], "stopped_early": stopped_early,
            "config": asdict(config)})
        for role in ("staging", "previous"):
            shutil.rmtree(_sibling(checkpoint_dir, role), ignore_errors=True)
    return threshold


def remove_checkpoint(out_dir: str | os.PathLike) -> None:
    """Delete a finished run's checkpoint folder (weights, optimizer and RNG states)."""
    shutil.rmtree(Path(out_dir) / "checkpoint", ignore_errors=True)


# ----------------------------------------------------------------------------- orchestration


def default_processes() -> int:
    """One process per GPU when there are several, else one."""
    return max(1, torch.cuda.device_count())


def fit(prepared_dir: str | os.PathLike, out_dir: str | os.PathLike,
        config: TrainConfig | None = None, processes: int | None = None, resume: bool = False,
        overwrite: bool = False, keep_checkpoint: bool = False) -> TrainResult:
    """Train ``config`` on ``prepared_dir`` into ``out_dir`` on ``processes`` processes.

    ``processes``: None (default) one per GPU (:func:`default_processes`); 1 trains in this
    process (:func:`train`); N > 1 launches ``torchrun --standalone --nproc_per_node=N -m
    medcoding.train --config CONFIG.json`` with the whole config and waits for it (its log is
    printed to stderr; a failure raises ``RuntimeError`` with the end of it). Either way the
    checkpoint folder of a finished run is removed unless ``keep_checkpoint``.
    """
    config = config or TrainConfig()
    processes = default_processes() if processes is None else int(processes)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        result = train(prepared_dir, out_dir, config, resume=resume, overwrite=overwrite)
        if result.finished and not keep_checkpoint:
            remove_checkpoint(result.model_dir)
        return result
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    with tempfile.TemporaryDirectory(prefix="medcoding-train-") as scratch:
        config_path = Path(scratch) / "config.json"
        write_json(config_path, asdict(config))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "medcoding.train",
                   "--data", str(prepared_dir), "--out", str(out_dir), "--config", str(config_path)]
        command += ["--resume"] * resume + ["--overwrite"] * overwrite
        command += ["--keep-checkpoint"] * keep_checkpoint
        completed = subprocess.run(command, capture_output=True, text=True)
    print(completed.stdout + completed.stderr, file=sys.stderr, end="")
    if completed.returncode != 0:
        raise RuntimeError(f"training on {processes} processes failed (exit status "
                           f"{completed.returncode}): {' '.join(command)}\n"
                           f"{completed.stderr[-3000:]}")
    return read_result(out_dir)


def read_result(out_dir: str | os.PathLike) -> TrainResult:
    """The :class:`TrainResult` of a run from its files: the finished model directory's
    ``train_summary.json`` and ``train_log.csv``, else the interrupted run's checkpoint state."""
    out_dir = Path(out_dir)
    if (out_dir / "train_summary.json").is_file():
        summary = read_json(out_dir / "train_summary.json")
        return TrainResult(out_dir, summary["best_epoch"], summary["best_val_map"],
                           summary["threshold"], pd.read_csv(out_dir / "train_log.csv"),
                           summary["steps"], True, summary["frequency_baseline_val_map"],
                           {"stopped_early": summary["stopped_early"]})
    work = working_dir(out_dir)
    found = resolve_checkpoint(work / "checkpoint")
    if found is None:
        raise FileNotFoundError(f"{out_dir}: neither a finished model (train_summary.json) nor "
                                f"a checkpoint in {work / 'checkpoint'}; train it first")
    state = read_json(found / "state.json")
    return TrainResult(work, state["best_epoch"], state["best_map"], math.nan,
                       pd.DataFrame(state["log"]), state["global_step"], False)


# ----------------------------------------------------------------------------- command line

#: Command-line flags that set a TrainConfig key (flag destination -> key).
FLAG_KEYS = {"encoder": "encoder", "level": "level", "train_size": "train_size",
             "epochs": "epochs", "lr": "learning_rate", "label_query_std": "label_query_std",
             "head_lr": "head_learning_rate", "head": "head",
             "encoder_dropout": "encoder_dropout", "encoder_layers": "encoder_layers",
             "frozen_layers": "frozen_layers", "document_markers": "document_markers",
             "batch_size": "batch_size",
             "token_budget": "token_budget", "patience": "patience", "seed": "seed",
             "precision": "precision", "checkpoint_every": "checkpoint_every",
             "stop_after_steps": "stop_after_steps"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    tiny = TrainConfig(encoder="tiny").resolved()
    study = TrainConfig().resolved()
    parser = argparse.ArgumentParser(prog="medcoding train", description=__doc__.split("\n")[0],
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--data", required=True, help="prepared-split directory")
    parser.add_argument("--out", required=True,
                        help="model directory to publish when finished (the run works in "
                        "OUT.partial/ until then)")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON or YAML file of TrainConfig keys (medcoding.train.TrainConfig);"
                        " the flags below override it")
    parser.add_argument("--overwrite", action="store_true", default=False,
                        help="replace a non-empty --out once the new model is finished")
    parser.add_argument("--encoder", help=f"minilm | tiny | local path (default "
                        f"{defaults.encoder})")
    parser.add_argument("--level", choices=["3", "full"], help="default 3")
    parser.add_argument("--train-size", type=int,
                        help="train on the first N patients (patient_rank < N)")
    parser.add_argument("--epochs", type=int, help=f"default {defaults.epochs}")
    parser.add_argument("--lr", type=float,
                        help=f"learning rate (default {study.learning_rate}, the study's; "
                        f"{tiny.learning_rate} for the randomly initialised tiny encoder)")
    parser.add_argument("--label-query-std", type=float,
                        help=f"initial scale of the label queries (default "
                        f"{defaults.label_query_std})")
    parser.add_argument("--head", choices=HEADS,
                        help="output layer: per_label (default; one vector and bias per code) or "
                        "shared (one for all codes, as the study authors' code)")
    parser.add_argument("--encoder-dropout", type=float,
                        help="dropout of the encoder's hidden states and attention (default: the "
                        "encoder's own; 0 turns it off, faster on a CPU)")
    parser.add_argument("--encoder-layers", type=int,
                        help="keep the encoder's first N transformer layers (default: all)")
    parser.add_argument("--frozen-layers", type=int,
                        help="do not train the embeddings and the first K layers (default 0)")
    parser.add_argument("--document-markers", action="store_true",
                        help="read each document as [CLS] + text + [SEP], once per document, as "
                        "the study authors' code (default: the text's tokens only)")
    parser.add_argument("--head-lr", type=float,
                        help="learning rate of the label-attention head (default: --lr)")
    parser.add_argument("--batch-size", type=int, help=f"default {defaults.batch_size}")
    parser.add_argument("--token-budget", type=int, help=f"default {defaults.token_budget}")
    parser.add_argument("--patience", type=int, help=f"default {defaults.patience}")
    parser.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    parser.add_argument("--precision", choices=precisions.PRECISIONS,
                        help="auto (default): bfloat16 autocast where the CPU (AVX-512 BF16, AMX) "
                        "or GPU has it natively, else float32; bf16 or fp32 to force one")
    parser.add_argument("--no-bf16", action="store_const", const="fp32", dest="precision",
                        help="the same as --precision fp32")
    parser.add_argument("--checkpoint-every", type=int,
                        help=f"default {defaults.checkpoint_every}")
    parser.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", default=False,
                        help="continue from OUT.partial/checkpoint (same --data and settings)")
    parser.add_argument("--keep-checkpoint", action="store_true", default=False,
                        help="keep MODEL/checkpoint after a finished run")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """``--config``'s keys, then the flags given, as one strictly checked :class:`TrainConfig`."""
    import yaml

    values, source = {}, "command line"
    if args.config is not None:
        if not args.config.is_file():
            raise FileNotFoundError(f"--config {args.config}: no such file; fix: give a JSON or "
                                    "YAML file of TrainConfig keys")
        values = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        source = f"{args.config} (or the command line)"
        if not isinstance(values, dict):
            raise configs.ConfigError(f"{args.config}: expected a mapping of TrainConfig keys; "
                                      "fix: write one 'key: value' per line")
    given = {key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if hasattr(args, flag)}
    return TrainConfig.from_dict({**values, **given}, source)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from_args(args)
    started = time.perf_counter()
    result = train(args.data, args.out, config, resume=args.resume, overwrite=args.overwrite)
    if start_processes().main:
        if result.finished and not args.keep_checkpoint:
            remove_checkpoint(args.out)
        state = "finished" if result.finished else f"stopped after {result.steps} steps"
        print(f"{state}: best epoch {result.best_epoch}, val MAP {result.best_val_map:.4f} "
              f"(frequency baseline {result.frequency_baseline_map:.4f}), threshold "
              f"{result.threshold:.2f}, {time.perf_counter() - started:.0f} s -> "
              f"{result.model_dir}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
