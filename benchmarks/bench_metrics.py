"""Time ``medcoding.metrics.evaluate`` on a study-sized score matrix and report peak extra memory.

The study's test set: 270,000 courses x 2,000 level-3 codes, scores stored as float16. The matrix
here is random (seeded): about 2 true labels per document, low scores for most labels and higher
ones for the true labels, so thresholded predictions are sparse as a trained model's are.

    python benchmarks/bench_metrics.py                    # study size
    python benchmarks/bench_metrics.py --documents 20000  # quick look
    python benchmarks/bench_metrics.py --all              # also tuning, bootstrap, groups

Peak extra memory is the highest resident set size during the call minus the size before it
(sampled every 10 ms), and tracemalloc's peak of NumPy/SciPy/Python allocations.
"""

from __future__ import annotations

import argparse
import threading
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import psutil
import scipy.sparse as sp
from record import record

from medcoding.evaluation import bootstrap_ci, evaluate_by_group
from medcoding.metrics import evaluate, per_label, tune_threshold

CHUNK = 8192


def synthetic_scores(
    n_documents: int, n_labels: int, seed: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``y_true`` [documents, labels] (1 to 3 labels each) and float16 ``scores`` of that shape."""
    rng = np.random.default_rng(seed)
    n_true = rng.integers(1, 4, size=n_documents)  # [documents], mean 2
    frequency = 1.0 / np.arange(1, n_labels + 1)  # Zipf-like code frequencies
    frequency /= frequency.sum()
    indices = rng.choice(n_labels, size=n_true.sum(), p=frequency)
    rows = np.repeat(np.arange(n_documents), n_true)
    y_true = sp.csr_matrix(
        (np.ones(len(indices), dtype=bool), (rows, indices)), shape=(n_documents, n_labels)
    )  # a label drawn twice for one document counts once
    indptr, indices = y_true.indptr, y_true.indices
    scores = np.empty((n_documents, n_labels), dtype=np.float16)
    for start in range(0, n_documents, CHUNK):
        stop = min(start + CHUNK, n_documents)
        uniform = rng.random((stop - start, n_labels), dtype=np.float32)
        squared = uniform * uniform
        block = 0.505 * squared * squared * squared  # mostly near 0, 0.17% above 0.5
        rows = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        cols = indices[indptr[start] : indptr[stop]]
        block[rows, cols] = rng.uniform(0.2, 1.0, size=len(rows))
        scores[start:stop] = block
    return y_true, scores


def measure(call: Callable[[], object]) -> tuple[object, float, float, float, float]:
    """Run ``call``; return its result, wall and CPU seconds, peak RSS delta and tracemalloc
    peak (GB). CPU seconds show the time on an idle machine when other jobs share the cores."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = call()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    done.set()
    sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return result, seconds, cpu_seconds, (peak[0] - baseline) / 1e9, traced_peak / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=270_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--all",
        action="store_true",
        help="also time tune_threshold, per_label, bootstrap_ci (1,000 resamples over patients "
        "of 3 documents) and evaluate_by_group (20 groups)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    y_true, scores = synthetic_scores(args.documents, args.labels, args.seed)
    print(
        f"matrix: {args.documents:,} x {args.labels:,} float16 ({scores.nbytes / 1e9:.2f} GB), "
        f"{y_true.nnz / args.documents:.2f} true labels per document, "
        f"built in {time.perf_counter() - started:.1f} s"
    )
    calls = {"evaluate": lambda: evaluate(y_true, scores, threshold=0.5)}
    if args.all:
        patients = np.arange(args.documents) // 3
        groups = np.arange(args.documents) % 20
        calls["tune_threshold"] = lambda: tune_threshold(y_true, scores)
        calls["per_label"] = lambda: per_label(y_true, scores, threshold=0.5)
        calls["bootstrap_ci"] = lambda: bootstrap_ci(y_true, scores, patients, n_resamples=1000)
        calls["evaluate_by_group"] = lambda: evaluate_by_group(y_true, scores, groups, 0.5)
    timings = {}
    for name, call in calls.items():
        result, seconds, cpu_seconds, rss_gb, traced_gb = measure(call)
        timings[name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
                         "extra_rss_gb": round(rss_gb, 2), "tracemalloc_gb": round(traced_gb, 2)}
        print(
            f"{name}: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU, "
            f"peak extra RSS {rss_gb:.2f} GB, tracemalloc peak {traced_gb:.2f} GB"
        )
        if isinstance(result, dict):
            print("  " + ", ".join(f"{key}={value:.4f}" for key, value in result.items()))
        elif isinstance(result, float):
            print(f"  threshold={result}")
        elif name == "bootstrap_ci":
            print(result.round(4).to_string(index=False))
    summary = "; ".join(f"{name} {t['seconds']:.1f} s, +{t['extra_rss_gb']:.2f} GB RSS"
                        for name, t in timings.items())
    record("metrics", f"bench_metrics.py --documents {args.documents} --labels {args.labels}"
           + (" --all" if args.all else ""),
           f"{args.documents:,} x {args.labels:,} float16 scores: {summary}", timings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
