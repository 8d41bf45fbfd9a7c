"""PLM-CA at the study's size on a GPU: the naive path against the project's, in one run.

    python benchmarks/bench_gpu.py [--docs 256] [--labels 1500] [--median 1000] [--tiny]

The encoder is built from a BERT-base config (12 layers, hidden 768, random weights: nothing is
downloaded) with 1,500 labels; documents are random word ids with log-normal lengths (median
1,000 tokens, truncated at 10,000 as in the study). Both paths train the same model from the
same weights on the same documents (optimizer steps of 32 documents), then score them:

(a) naive: float32, eager attention, fixed batches of ``--naive-batch`` documents in random
    order, each padded to the longest of its batch, every window (padding too) encoded;
(b) project: the precision ``auto`` picks (bfloat16 on GPUs that have it), SDPA attention,
    length-bucketed token-budget micro-batches, only windows with real tokens encoded.

Prints per path and phase: real (non-padding) tokens/s, the padding share of the encoded
tokens, peak memory (GPU: ``torch.cuda.max_memory_allocated``; CPU: peak RSS of the process) and
model FLOP utilisation (MFU: model FLOPs on real tokens per second over the device's peak dense
bfloat16 FLOP/s, ``--peak-tflops``; on a CPU the peak is a one-second float32 matmul probe).
Targets on one H100/H200: training >= 400,000 real tokens/s, inference >= 1,000,000.
``--tiny`` shrinks everything (2 layers, hidden 64, 50 labels, 16 documents) to check on a CPU
in well under a minute that the script runs; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from bench_throughput import naive_forward  # the CPU benchmark's naive path (sibling script)
from record import record

from medcoding.encoding import BucketBatchSampler, collate, n_chunks, token_budget_batches
from medcoding.model import PLMCA, PLMCAConfig
from medcoding.precision import autocast, resolve

BERT_BASE = {"model_type": "bert", "vocab_size": 30_522, "hidden_size": 768,
             "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "max_position_embeddings": 512, "type_vocab_size": 2}
TINY = {"model_type": "bert", "vocab_size": 1_000, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 512,
        "type_vocab_size": 2}
#: peak dense bfloat16 tensor FLOP/s (TFLOPS) by device name
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
STEP_DOCUMENTS = 32
CHUNK = 128


def documents(n_docs: int, median: int, vocab_size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(median), 0.8, n_docs).astype(int), 20, 10_000)
    return [rng.integers(1000 % vocab_size, vocab_size, size=n).astype(np.int64)
            for n in lengths]


def project_forward(model: PLMCA, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    return model(input_ids, attention_mask)


def encoded_tokens(batch: list[np.ndarray], naive: bool) -> int:
    """Tokens the encoder reads for ``batch``: all windows (naive) or the real ones only."""
    if naive:
        return len(batch) * max(n_chunks(len(doc)) for doc in batch) * CHUNK
    return sum(n_chunks(len(doc)) for doc in batch) * CHUNK


def flops_per_token(model: PLMCA, training: bool) -> float:
    """Model FLOPs per real token: 2 per weight (embeddings excluded), window attention, labels."""
    encoder = model.encoder.config
    embedding = sum(p.numel() for name, p in model.encoder.named_parameters()
                    if "embeddings" in name)
    weights = sum(p.numel() for p in model.encoder.parameters()) - embedding
    weights += model.label_attention.key.weight.numel() + model.label_attention.value.weight.numel()
    attention = 4 * encoder.num_hidden_layers * CHUNK * encoder.hidden_size  # QK^T and AV
    labels = 4 * model.config.num_labels * encoder.hidden_size  # E K^T and A V per token
    forward = 2 * weights + attention + labels
    return 3 * forward if training else forward


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def cpu_peak_tflops(seconds: float = 1.0) -> float:
    """Float32 matmul FLOP/s this CPU reaches in about ``seconds`` (the MFU denominator)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * 1024**3 * count / (time.perf_counter() - started) / 1e12


def train_pass(model, docs, targets, steps, forward, precision, device, naive) -> dict:
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    real = encoded = 0
    synchronize(device)
    started = time.perf_counter()
    for step in steps:
        optimizer.zero_grad(set_to_none=True)
        for batch in step:
            chosen = [docs[i] for i in batch]
            input_ids, attention_mask = collate(chosen)
            real += int(attention_mask.sum())
            encoded += encoded_tokens(chosen, naive)
            with autocast(precision, device):
                logits = forward(model, input_ids.to(device), attention_mask.to(device))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), targets[batch].to(device), reduction="sum"
            ) / (STEP_DOCUMENTS * targets.shape[1])
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    synchronize(device)
    return {"seconds": time.perf_counter() - started, "real": real, "encoded": encoded}


def score_pass(model, docs, batches, forward, precision, device, naive) -> dict:
    model.eval()
    real = encoded = 0
    synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode(), autocast(precision, device):
        for batch in batches:
            chosen = [docs[i] for i in batch]
            input_ids, attention_mask = collate(chosen)
            real += int(attention_mask.sum())
            encoded += encoded_tokens(chosen, naive)
            forward(model, input_ids.to(device), attention_mask.to(device))
    synchronize(device)
    return {"seconds": time.perf_counter() - started, "real": real, "encoded": encoded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--labels", type=int, default=1500)
    parser.add_argument("--median", type=int, default=1000)
    parser.add_argument("--naive-batch", type=int, default=8, help="documents per naive batch")
    parser.add_argument("--token-budget", type=int, default=65_536,
                        help="padded tokens per micro-batch of the project's path")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak dense bf16 TFLOPS for MFU (default: by device name)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model on 16 documents")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.tiny:
        print("no CUDA device: BERT-base at this size needs a GPU; running --tiny instead")
        args.tiny = True
    encoder = dict(TINY if args.tiny else BERT_BASE)
    if args.tiny:
        args.docs, args.labels, args.median, args.token_budget = 16, 50, 300, 4096
    chosen = resolve("auto", device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        peak_note = f"{peak:.0f} TFLOPS bf16 dense" if peak else "unknown (give --peak-tflops)"
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
        peak = args.peak_tflops or cpu_peak_tflops()
        peak_note = f"{peak:.2f} TFLOPS (fp32 matmul probe)"
    print(f"device {name}; peak {peak_note}; precision auto -> {chosen.precision} "
          f"({chosen.reason})", flush=True)

    config = PLMCAConfig(encoder=encoder, num_labels=args.labels, attn_implementation="eager")
    torch.manual_seed(0)
    model = PLMCA(config).to(device)
    initial = {key: value.detach().clone() for key, value in model.state_dict().items()}
    docs = documents(args.docs, args.median, encoder["vocab_size"])
    lengths = [len(doc) for doc in docs]
    targets = (torch.rand(args.docs, args.labels, generator=torch.Generator().manual_seed(0))
               < 10 / args.labels).float()
    order = np.random.default_rng(0).permutation(args.docs).tolist()
    naive_batches = [order[i:i + args.naive_batch] for i in range(0, args.docs, args.naive_batch)]
    per_step = max(1, STEP_DOCUMENTS // args.naive_batch)
    naive_steps = [naive_batches[i:i + per_step] for i in range(0, len(naive_batches), per_step)]
    project_steps = BucketBatchSampler(lengths, STEP_DOCUMENTS, args.token_budget).steps()
    project_scoring = token_budget_batches(range(args.docs), lengths, 2 * args.token_budget)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"PLM-CA {params:.1f}M parameters, {args.labels} labels; {args.docs} documents, "
          f"{sum(lengths):,} real tokens, median {int(np.median(lengths)):,}, "
          f"max {max(lengths):,}", flush=True)

    results = {}
    for label, forward, precision, attention, train_steps, scoring, naive in [
        ("a naive", naive_forward, "fp32", "eager", naive_steps, naive_batches, True),
        ("b project", project_forward, chosen.precision, "sdpa", project_steps,
         project_scoring, False),
    ]:
        model.load_state_dict(initial)
        model.set_attention(attention)
        warm = train_steps[0][:1]
        train_pass(model, docs, targets, [warm], forward, precision, device, naive)  # warm-up
        model.load_state_dict(initial)
        for phase in ("train", "score"):
            reset_peak(device)
            if phase == "train":
                figures = train_pass(model, docs, targets, train_steps, forward, precision,
                                     device, naive)
            else:
                figures = score_pass(model, docs, scoring, forward, precision, device, naive)
            rate = figures["real"] / figures["seconds"]
            mfu = rate * flops_per_token(model, phase == "train") / (peak * 1e12) if peak else 0
            results[(label, phase)] = rate
            padding = 1 - figures["real"] / figures["encoded"]
            print(f"{label:<10} {precision:<5} {attention:<5} {phase:<5} {rate:>12,.0f} real "
                  f"tok/s   padding {padding:>5.1%}   peak {peak_gb(device):6.2f} GB   "
                  f"MFU {mfu:6.1%}   ({figures['seconds']:.1f} s)", flush=True)
    for phase, target in (("train", 400_000), ("score", 1_000_000)):
        ratio = results[("b project", phase)] / results[("a naive", phase)]
        print(f"ratio b/a {phase:<5} {ratio:5.2f}x   project {results[('b project', phase)]:,.0f}"
              f" real tok/s (target on one H100/H200: >= {target:,})")
    rates = {f"{label} {phase}": round(rate) for (label, phase), rate in results.items()}
    size = "tiny model, a check only" if args.tiny else "BERT-base"
    record("gpu", "bench_gpu.py" + (" --tiny" if args.tiny else ""),
           f"{name} ({size}): training naive {rates['a naive train']:,}, project "
           f"{rates['b project train']:,} real tokens/s; inference {rates['a naive score']:,} "
           f"and {rates['b project score']:,}", {"device": name, "tokens_per_s": rates})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
