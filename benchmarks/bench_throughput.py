"""Training and inference throughput of PLM-CA: a naive reference path against the project's.

(a) naive: float32, eager attention, fixed batches in random order, every document padded to the
    longest of its batch, every window (padding windows too) through the encoder;
(b) project: the precision ``auto`` picks here (bfloat16 autocast where the CPU has native
    bfloat16, else float32; ``medcoding.precision``), SDPA attention for training and
    inference, length-bucketed token-budget micro-batches, only windows with real tokens encoded;
(c) the project's path in the other precision, to show what the choice is worth on this CPU;
(d) the default profile's training: (b) with the encoder's embeddings and first
    ``--frozen-layers`` layers fixed (``medcoding.train.freeze_lower_layers``; 3) and the
    encoder's dropout set to ``--dropout`` (``medcoding.train.set_encoder_dropout``; 0.0), as
    ``params/default.yaml`` trains (both levers measured there for validation MAP too); its
    inference is (b)'s (no dropout, nothing to freeze), so only its training is measured.

Both train the same model from the same weights on the same documents (random MiniLM word ids,
log-normal lengths with median ~400 tokens, as the synthetic cohort's courses) and score them.
Prints real (non-padding) tokens/s, the ratios b/a and c/a and the peak resident memory, and
estimates the minutes per epoch of MiniLM on 5,000 training courses.

    python benchmarks/bench_throughput.py [--docs 64] [--labels 200] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from record import record

from medcoding.encoding import (
    BucketBatchSampler,
    collate,
    load_encoder_and_tokenizer,
    token_budget_batches,
)
from medcoding.model import PLMCA, PLMCAConfig
from medcoding.precision import autocast, resolve
from medcoding.train import freeze_lower_layers, set_encoder_dropout


def synthetic_documents(n_docs: int, median: int, vocab_size: int, seed: int):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), 0.6, n_docs).astype(int), 20, 10_000)
    return [rng.integers(1000, vocab_size, size=n).astype(np.int64) for n in lengths]


def naive_forward(model: PLMCA, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Every window, padding windows included, through the encoder."""
    batch, chunks, width = input_ids.shape
    states = model.encoder(input_ids=input_ids.reshape(-1, width),
                           attention_mask=attention_mask.reshape(-1, width)).last_hidden_state
    logits, _ = model.label_attention(states.reshape(batch, chunks * width, -1),
                                      attention_mask.reshape(batch, -1))
    return logits


def naive_plan(n_docs: int, docs_per_batch: int, seed: int) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n_docs).tolist()
    return [order[i : i + docs_per_batch] for i in range(0, n_docs, docs_per_batch)]


def train_pass(model, documents, targets, micro_batches, forward, precision: str):
    """One optimizer step per 32 documents; returns (wall seconds, process CPU seconds)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    for step in micro_batches:
        optimizer.zero_grad(set_to_none=True)
        for batch in step:
            input_ids, attention_mask = collate([documents[i] for i in batch])
            with autocast(precision, "cpu"):
                logits = forward(model, input_ids, attention_mask)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), targets[batch], reduction="sum") / (32 * targets.shape[1])
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - started, time.process_time() - cpu_started


def score_pass(model, documents, batches, forward, precision: str):
    model.eval()
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.inference_mode(), autocast(precision, "cpu"):
        for batch in batches:
            forward(model, *collate([documents[i] for i in batch]))
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--median", type=int, default=400)
    parser.add_argument("--token-budget", type=int, default=16_384)
    parser.add_argument("--naive-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--frozen-layers", type=int, default=3,
                        help="layers kept fixed in path (d), as the default profile (default 3)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="the project's precision in (b) and (d) (default: what auto picks "
                             "here; ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 stands in "
                             "for a CPU without native bfloat16, and auto then picks fp32)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="encoder dropout in path (d), as the default profile (default 0.0)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    encoder, _ = load_encoder_and_tokenizer("minilm")
    config = PLMCAConfig(encoder=encoder.config.to_dict(), num_labels=args.labels)
    torch.manual_seed(0)
    model = PLMCA(config, encoder)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    documents = synthetic_documents(args.docs, args.median, encoder.config.vocab_size, seed=0)
    real_tokens = sum(len(doc) for doc in documents)
    targets = (torch.rand(args.docs, args.labels, generator=torch.Generator().manual_seed(0))
               < 2 / args.labels).float()
    lengths = [len(doc) for doc in documents]

    naive_batches = naive_plan(args.docs, args.naive_batch, seed=0)
    naive_steps = [naive_batches[i : i + 32 // args.naive_batch]
                   for i in range(0, len(naive_batches), 32 // args.naive_batch)]
    sampler = BucketBatchSampler(lengths, batch_size=32, token_budget=args.token_budget)
    project_steps = sampler.steps()
    score_batches = token_budget_batches(range(args.docs), lengths, 2 * args.token_budget)

    def project_forward(m, input_ids, attention_mask):
        return m(input_ids, attention_mask)

    chosen = resolve(args.precision, "cpu")
    other = "fp32" if chosen.bf16 else "bf16"
    print(f"precision auto -> {chosen.precision}: {chosen.reason}")
    rows, cpu_rows = {}, {}
    for name, forward, precision, train_steps, scoring, attention in [
        ("a naive", naive_forward, "fp32", naive_steps, naive_batches, "eager"),
        ("b project", project_forward, chosen.precision, project_steps, score_batches, "sdpa"),
        ("c project", project_forward, other, project_steps, score_batches, "sdpa"),
    ]:
        model.load_state_dict(initial)
        model.set_attention(attention)
        train_wall, train_cpu = train_pass(model, documents, targets, train_steps, forward,
                                           precision)
        model.set_attention(attention)
        score_wall, score_cpu = score_pass(model, documents, scoring, forward, precision)
        rows[name] = (real_tokens / train_wall, real_tokens / score_wall)
        cpu_rows[name] = (real_tokens / train_cpu, real_tokens / score_cpu)
        print(f"{name:<10} {precision:<5} train {rows[name][0]:>8,.0f} tok/s   inference "
              f"{rows[name][1]:>8,.0f} tok/s   (wall {train_wall:.1f} s, {score_wall:.1f} s; "
              f"per CPU-second: {cpu_rows[name][0]:,.0f} and {cpu_rows[name][1]:,.0f} tok)",
              flush=True)
    model.load_state_dict(initial)
    model.set_attention("sdpa")
    freeze_lower_layers(model.encoder, args.frozen_layers)
    set_encoder_dropout(model.encoder, args.dropout)
    frozen_wall, _ = train_pass(model, documents, targets, project_steps, project_forward,
                                chosen.precision)
    frozen_rate = real_tokens / frozen_wall
    print(f"d project  {chosen.precision:<5} train {frozen_rate:>8,.0f} tok/s   with the "
          f"embeddings and {args.frozen_layers} lower layers frozen, dropout {args.dropout:g} "
          f"(the default profile; wall {frozen_wall:.1f} s)",
          flush=True)
    ratio_train = rows["b project"][0] / rows["a naive"][0]
    ratio_frozen = frozen_rate / rows["a naive"][0]
    ratio_score = rows["b project"][1] / rows["a naive"][1]
    cpu_ratio_train = cpu_rows["b project"][0] / cpu_rows["a naive"][0]
    cpu_ratio_score = cpu_rows["b project"][1] / cpu_rows["a naive"][1]
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"ratio b/a  train {ratio_train:.2f}x (target >= 2.0)   inference {ratio_score:.2f}x "
          f"(target >= 3); per CPU-second {cpu_ratio_train:.2f}x and {cpu_ratio_score:.2f}x")
    print(f"ratio c/a  train {rows['c project'][0] / rows['a naive'][0]:.2f}x   inference "
          f"{rows['c project'][1] / rows['a naive'][1]:.2f}x   (the project's path in {other})")
    print(f"ratio d/a  train {ratio_frozen:.2f}x   (d/b {frozen_rate / rows['b project'][0]:.2f}x: "
          f"{args.frozen_layers} layers frozen, dropout {args.dropout:g}; target >= 7)")
    print(f"peak RSS {peak_gb:.2f} GB (target < 6)   threads {torch.get_num_threads()}   "
          f"{args.docs} documents, {real_tokens:,} real tokens, {args.labels} labels")
    mean_tokens = real_tokens / args.docs
    minutes = 5000 * mean_tokens / rows["b project"][0] / 60
    validation = 5000 * mean_tokens / rows["b project"][1] / 60
    print(f"MiniLM, 5,000 training courses of {mean_tokens:.0f} tokens: {minutes:.1f} min per "
          f"epoch of training (+{validation:.1f} min to score 5,000 validation courses)")
    naive, project, other_path = rows["a naive"], rows["b project"], rows["c project"]
    record("throughput", f"bench_throughput.py --docs {args.docs} --labels {args.labels}",
           f"training: naive fp32 {naive[0]:,.0f}, project {chosen.precision} {project[0]:,.0f}, "
           f"project {other} {other_path[0]:,.0f} real tokens/s ({ratio_train:.1f}x and "
           f"{other_path[0] / naive[0]:.1f}x the naive path); inference {naive[1]:,.0f}, "
           f"{project[1]:,.0f} and {other_path[1]:,.0f} ({ratio_score:.1f}x, "
           f"{other_path[1] / naive[1]:.1f}x); the default profile's training "
           f"({args.frozen_layers} layers frozen, dropout {args.dropout:g}) {frozen_rate:,.0f} "
           f"({ratio_frozen:.1f}x); "
           f"peak RSS {peak_gb:.2f} GB",
           {"train_tokens_per_s": {k: round(v[0]) for k, v in rows.items()},
            "score_tokens_per_s": {k: round(v[1]) for k, v in rows.items()},
            "frozen_layers": args.frozen_layers, "frozen_dropout": args.dropout,
            "frozen_train_tokens_per_s": round(frozen_rate),
            "ratio_train": round(ratio_train, 2), "ratio_score": round(ratio_score, 2),
            "ratio_train_frozen": round(ratio_frozen, 2),
            "precision": chosen.precision, "threads": torch.get_num_threads(),
            "peak_rss_gb": round(peak_gb, 2)})


if __name__ == "__main__":
    main()
