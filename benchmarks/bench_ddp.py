"""Data-parallel gradient exchange: DistributedDataParallel with no_sync() against one all-reduce.

Two processes (gloo, one thread each unless --threads) train the same PLM-CA from the same
weights on the same documents with gradient accumulation (token-budget micro-batches, as
``medcoding.train`` plans them), once per way of summing the gradients over the processes:

(a) ddp: ``DistributedDataParallel`` (what ``medcoding.train`` uses), ``no_sync()`` on every
    micro-batch but the last, whose backward pass all-reduces the gradients in buckets;
(b) manual: the hand-written exchange ``medcoding.train`` had before: after the last backward pass,
    every gradient and the step loss are concatenated into one flat tensor, all-reduced once and
    copied back.

The two alternate over ``--rounds`` rounds (a, b, b, a, ...) so that load from other programs
falls on both alike. Prints the median and mean seconds per optimizer step of each, the ratio
manual/ddp and the largest weight difference between the two after the same steps (float
summation order only).

    python benchmarks/bench_ddp.py [--encoder minilm|tiny] [--steps 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from medcoding.encoding import BucketBatchSampler, collate, load_encoder_and_tokenizer
from medcoding.model import PLMCA, PLMCAConfig


def manual_all_reduce(model: torch.nn.Module, loss_sum: torch.Tensor) -> torch.Tensor:
    """The removed ``medcoding.train.all_reduce_step``: one flat all-reduce of every gradient."""
    params = [param for param in model.parameters() if param.requires_grad]
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    flat = torch.cat([param.grad.reshape(-1) for param in params] + [loss_sum.reshape(1)])
    dist.all_reduce(flat)
    offset = 0
    for param in params:
        param.grad.copy_(flat[offset : offset + param.numel()].view_as(param))
        offset += param.numel()
    return flat[-1]


def run_mode(mode, base, documents, targets, plan, step_sizes, world_size):
    """Train a copy of ``base`` on ``plan``; per-step seconds and the final weights."""
    model = copy.deepcopy(base)  # a fresh module: no hooks of an earlier DDP wrapper
    torch.manual_seed(dist.get_rank())
    parallel = DistributedDataParallel(model) if mode == "ddp" else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    n_labels = targets.shape[1]
    seconds = []
    model.train()
    for step, batches in enumerate(plan):
        dist.barrier()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros(())
        for index, batch in enumerate(batches):
            syncs = parallel is None or index == len(batches) - 1
            with contextlib.nullcontext() if syncs else parallel.no_sync():
                input_ids, attention_mask = collate([documents[i] for i in batch])
                forward = model if parallel is None else parallel
                logits = forward(input_ids, attention_mask)  # [batch, labels]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, targets[batch], reduction="sum") / (step_sizes[step] * n_labels)
                (loss * (world_size if parallel is not None else 1)).backward()
            loss_sum += loss.detach()
        if parallel is None:
            manual_all_reduce(model, loss_sum)
        else:
            dist.all_reduce(loss_sum)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds, {name: tensor.clone() for name, tensor in model.state_dict().items()}


def worker(rank: int, args: argparse.Namespace, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    encoder, tokenizer = load_encoder_and_tokenizer(
        args.encoder, ["words for a tokenizer of the tiny encoder"] * 4, seed=0)
    config = PLMCAConfig(encoder=encoder.config.to_dict(), num_labels=args.labels,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = PLMCA(config, encoder)
    rng = np.random.default_rng(0)
    n_docs = args.steps * args.batch_size
    lengths = np.clip(rng.lognormal(np.log(args.median_tokens), 0.6, n_docs).astype(int), 20,
                      10_000)
    vocab = len(tokenizer)
    documents = [rng.integers(5, vocab, size=n).astype(np.int64) for n in lengths]
    targets = torch.from_numpy((rng.random((n_docs, args.labels)) < 0.02).astype(np.float32))
    sampler = BucketBatchSampler(lengths, args.batch_size, args.token_budget, 128, 0, True,
                                 rank, 2)
    plan = sampler.steps()
    step_sizes = [len(documents) for documents in sampler.step_documents()]
    times: dict[str, list[float]] = {"ddp": [], "manual": []}
    weights = {}
    for round_index in range(args.rounds):
        order = ("ddp", "manual") if round_index % 2 == 0 else ("manual", "ddp")
        for mode in order:
            seconds, weights[mode] = run_mode(mode, model, documents, targets, plan,
                                              step_sizes, 2)
            times[mode] += seconds
    if rank == 0:
        difference = max(float((weights["ddp"][name] - weights["manual"][name]).abs().max())
                         for name in weights["ddp"])
        micro = [len(batches) for batches in plan]
        Path(out).write_text(json.dumps({"times": times, "difference": difference,
                                         "micro_batches": float(np.mean(micro)),
                                         "parameters": sum(p.numel()
                                                           for p in model.parameters())}))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm", help="minilm | tiny | a local directory")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per round and mode")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="documents per step (both)")
    parser.add_argument("--token-budget", type=int, default=1024, help="padded tokens per "
                        "micro-batch (small, so each process accumulates over several)")
    parser.add_argument("--median-tokens", type=int, default=300)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="threads per process")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "result.json")
        mp.spawn(worker, args=(args, port, out), nprocs=2, join=True)
        result = json.loads(Path(out).read_text())
    print(f"{args.encoder}: {result['parameters']:,} parameters, 2 processes x {args.threads} "
          f"thread(s), gloo; {args.steps} steps x {args.rounds} rounds per mode, "
          f"{result['micro_batches']:.1f} micro-batches per process and step")
    medians = {}
    for mode, seconds in result["times"].items():
        medians[mode] = float(np.median(seconds))
        print(f"  {mode:<7} median {medians[mode]:.3f} s/step, mean {np.mean(seconds):.3f} s/step "
              f"over {len(seconds)} steps")
    print(f"  manual / ddp (median s/step): {medians['manual'] / medians['ddp']:.3f} "
          "(> 1: DDP is faster)")
    print(f"  largest weight difference after the same steps: {result['difference']:.2e}")


if __name__ == "__main__":
    main()
