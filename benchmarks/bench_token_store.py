"""Benchmark the memory-mapped token store: tokenizing, training steps and scoring, as corpora grow.

    python benchmarks/bench_token_store.py --courses 100000 1000000 [--steps 3]
        [--score-split val] [--score-at 100000] [--data DIR] [--keep]

For each ``--courses`` size: generates about that many synthetic courses and prepares them
(``bench_prepare.py``'s helpers; with ``--data DIR`` the cohort is ``DIR/courses_N`` and its
splits ``DIR/courses_N-prepared``, both reused when present, or ``DIR`` itself when it holds a
cohort and one size is given). Then, each in a fresh process so that the peak resident set size
printed is its own: (a) tokenizes the training and validation splits with MiniLM's tokenizer
into the token store (:func:`medcoding.encoding.split_token_store`, ``$MEDCODING_CACHE`` in the
benchmark's temporary folder), printing seconds, courses/s, tokens and the store's size on
disk; (b) trains MiniLM (batches of 8 documents, embeddings and 3 lower layers frozen) for
``--steps`` optimizer steps through :func:`medcoding.train.fit`, which must read the cached
store (the benchmark fails if it writes a new one); (c) scores ``--score-split`` with
:func:`medcoding.predict.predict_split` and a tiny PLM-CA (random weights, seeded; its tokenizer
fitted to the first 2,048 training texts), which tokenizes the split into a store of its own and
scores it from there, printing seconds and peak RSS, and the peak before scoring (Python, torch
and the model); scoring runs only at the ``--score-at`` sizes (default: the smallest), since it
takes about 5 minutes per 20,000 courses on 2 cores. Target:
training's peak RSS at most 4 GB at 1,000,000 courses, and flat as the corpus grows (the ratio of
the largest size's peak to the smallest's ~1x); scoring's peak is that of a micro-batch, not of
the split.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_prepare import ensure_cohort, run_prepare
from record import record

TARGET_GB_AT_1M = 4.0
SPLITS = ("train", "val")  # the splits training reads


def peak_gb() -> float:
    """Peak resident set size of this process in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def stores(cache: Path) -> list[str]:
    """The token stores in the cache (``tokens/<key>/<split>``)."""
    return sorted(str(path.relative_to(cache)) for path in cache.glob("tokens/*/*")
                  if (path / "offsets.npy").is_file())


def tokenize_child(prepared: Path) -> None:
    """Tokenize the splits into the store under ``$MEDCODING_CACHE``; print figures as JSON."""
    from medcoding.encoding import cache_dir, load_tokenizer, minilm_path, split_token_store

    tokenizer = load_tokenizer(minilm_path())
    figures = {}
    for split in SPLITS:
        started = time.perf_counter()
        store = split_token_store(prepared, split, tokenizer)
        seconds = time.perf_counter() - started
        directory = Path(store.ids.filename).parent if store.offsets[-1] else None
        size = sum(p.stat().st_size for p in directory.iterdir()) if directory else 0
        figures[split] = {"seconds": seconds, "documents": len(store),
                          "tokens": int(store.offsets[-1]), "store_mib": size / 2**20}
    print(json.dumps({**figures, "stores": stores(cache_dir()), "peak_gb": peak_gb()}))


def train_child(prepared: Path, out: Path, steps: int) -> None:
    """Train ``steps`` optimizer steps on ``prepared``; print seconds and peak RSS as JSON."""
    from medcoding.encoding import cache_dir
    from medcoding.train import TrainConfig, fit

    before = stores(cache_dir())
    config = TrainConfig(encoder="minilm", stop_after_steps=steps, epochs=1, batch_size=8,
                         frozen_layers=3, checkpoint_every=0, progress=False)
    started = time.perf_counter()
    result = fit(prepared, out, config, processes=1)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "steps": result.steps, "stores_before": before,
                      "stores_after": stores(cache_dir()), "peak_gb": peak_gb()}))


def tiny_coder(prepared: Path):
    """A tiny PLM-CA (random weights, seed 0) for the level-3 labels, wrapped for scoring; its
    tokenizer is fitted to the first 2,048 training texts."""
    import itertools

    import torch

    from medcoding.encoding import tiny_encoder, train_wordpiece_tokenizer
    from medcoding.io import read_json
    from medcoding.model import PLMCA, PLMCAConfig
    from medcoding.predict import Coder
    from medcoding.train import split_texts

    tokenizer = train_wordpiece_tokenizer(itertools.islice(split_texts(prepared, "train"), 2_048))
    encoder = tiny_encoder(len(tokenizer), tokenizer.pad_token_id, seed=0)
    labels = read_json(prepared / "labels.json")["l3"]
    config = PLMCAConfig(encoder=encoder.config.to_dict(), id2label=dict(enumerate(labels)),
                         label2id={label: index for index, label in enumerate(labels)},
                         level="3", pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return Coder(PLMCA(config, encoder), tokenizer, source="the benchmark's tiny model")


def score_child(prepared: Path, out: Path, split: str) -> None:
    """Score ``split`` through ``predict_split``; print seconds, courses and peak RSS as JSON."""
    from medcoding.predict import predict_split
    from medcoding.runs import load_predictions

    coder = tiny_coder(prepared)
    base_gb = peak_gb()
    started = time.perf_counter()
    predict_split(None, prepared, split, out, coder)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "courses": len(load_predictions(out, split).course_ids),
                      "base_gb": base_gb, "peak_gb": peak_gb()}))


def run_child(arguments: list[str], cache: Path, what: str) -> dict:
    completed = subprocess.run([sys.executable, __file__, *arguments], check=False,
                               capture_output=True, text=True,
                               env={**os.environ, "MEDCODING_CACHE": str(cache)})
    if completed.returncode:
        raise SystemExit(f"{what} failed:\n{completed.stderr[-5000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cohort_dirs(data: Path | None, scratch: Path, courses: int, several: bool) -> tuple[Path, Path]:
    """The cohort and prepared-split folders for ``courses`` (see the module docstring)."""
    if data is not None and (data / "manifest.json").is_file():
        if several:
            raise SystemExit(f"--data {data} holds one cohort; give one --courses size, or a "
                             "folder for one cohort per size")
        cohort = data
    else:
        cohort = (data or scratch) / f"courses_{courses}"
    return cohort, cohort.with_name(f"{cohort.name}-prepared")


def measure(courses: int, args: argparse.Namespace, scratch: Path, score: bool) -> dict:
    """Generate, prepare, tokenize, train and (``score``) score at one size; the figures of
    each part (the scoring ones None when not scored)."""
    cohort, prepared = cohort_dirs(args.data, scratch, courses, len(args.courses) > 1)
    generated = ensure_cohort(cohort, courses, args.seed, args.workers)
    if generated:
        print(f"{courses:,}: generated in {generated:.0f} s", flush=True)
    courses_in = json.loads((cohort / "manifest.json").read_text())["n_courses"]
    if not (prepared / "train.parquet").is_file():
        figures = run_prepare(cohort, prepared, None)
        print(f"{courses:,}: prepared in {figures['seconds']:.0f} s (peak RSS "
              f"{figures['peak_gb']:.2f} GB)", flush=True)
    cache = scratch / f"cache_{courses}"
    tokenized = run_child(["--tokenize-child", str(prepared)], cache, "tokenizing")
    trained = run_child(["--train-child", str(prepared), str(scratch / f"model_{courses}"),
                         str(args.steps)], cache, "training")
    if trained["stores_after"] != trained["stores_before"]:
        raise SystemExit(f"training wrote token stores of its own: {trained['stores_after']} "
                         f"(the tokenizing process wrote {trained['stores_before']})")
    if trained["steps"] != args.steps:
        raise SystemExit(f"training stopped after {trained['steps']} steps, not {args.steps}")
    scored = (run_child(["--score-child", str(prepared), str(scratch / f"scores_{courses}"),
                         args.score_split], cache, "scoring") if score
              else {"courses": None, "seconds": None, "peak_gb": None, "base_gb": None})
    train = tokenized["train"]
    return {"courses": courses_in, "train_courses": train["documents"],
            "train_tokens": train["tokens"], "tokenize_seconds": round(train["seconds"], 2),
            "tokenize_courses_per_s": round(train["documents"] / train["seconds"]),
            "store_mib": round(train["store_mib"] + tokenized["val"]["store_mib"], 1),
            "val_tokenize_seconds": round(tokenized["val"]["seconds"], 2),
            "tokenize_peak_gb": round(tokenized["peak_gb"], 3),
            "train_seconds": round(trained["seconds"], 2), "train_steps": trained["steps"],
            "train_peak_gb": round(trained["peak_gb"], 3),
            "score_split": args.score_split, "score_courses": scored["courses"],
            **{f"score_{key}": None if scored[key] is None else round(scored[key], digits)
               for key, digits in (("seconds", 2), ("peak_gb", 3), ("base_gb", 3))}}


def scoring_text(run: dict) -> str:
    """``; scoring N val courses S s, peak RSS G GB (B GB before)`` or nothing if not scored."""
    if run["score_courses"] is None:
        return ""
    return (f"; scoring {run['score_courses']:,} {run['score_split']} courses (tiny model) "
            f"{run['score_seconds']:.1f} s, peak RSS {run['score_peak_gb']:.2f} GB "
            f"({run['score_base_gb']:.2f} GB before scoring)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--courses", type=int, nargs="+", default=[100_000],
                        help="corpus sizes (several show whether memory stays flat)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps to train")
    parser.add_argument("--score-split", default="val", choices=("train", "val", "test"),
                        help="the split predict_split scores with the tiny model")
    parser.add_argument("--score-at", type=int, nargs="+", default=None,
                        help="the --courses sizes at which to score (default: the smallest)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="generator processes")
    parser.add_argument("--data", type=Path, help="folder of cohorts and their prepared splits "
                        "(generated and prepared when missing, reused otherwise)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the token stores and trained models (their folder is printed)")
    parser.add_argument("--tokenize-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--train-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--score-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tokenize_child:
        tokenize_child(args.tokenize_child)
        return 0
    if args.train_child:
        prepared, out, steps = args.train_child
        train_child(Path(prepared), Path(out), int(steps))
        return 0
    if args.score_child:
        prepared, out, split = args.score_child
        score_child(Path(prepared), Path(out), split)
        return 0
    sizes = sorted(set(args.courses))
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(tempfile.mkdtemp(prefix="bench_token_store_") if args.keep else temporary)
        runs = []
        score_at = set(args.score_at or sizes[:1])
        for courses in sizes:
            figures = measure(courses, args, scratch, courses in score_at)
            runs.append(figures)
            print(f"{figures['courses']:,} courses ({figures['train_courses']:,} in training): "
                  f"tokenize {figures['tokenize_seconds']:.1f} s "
                  f"({figures['tokenize_courses_per_s']:,} courses/s), "
                  f"{figures['train_tokens']:,} tokens, store {figures['store_mib']:,.1f} MiB "
                  f"(train + val), peak RSS {figures['tokenize_peak_gb']:.2f} GB; "
                  f"{figures['train_steps']} training steps {figures['train_seconds']:.1f} s, "
                  f"peak RSS {figures['train_peak_gb']:.2f} GB{scoring_text(figures)}",
                  flush=True)
        if args.keep:
            print(f"token stores and models kept in {scratch}")
    first, last = runs[0], runs[-1]
    ratios = {key: last[key] / first[key] for key in ("tokenize_peak_gb", "train_peak_gb")}
    print(f"peak RSS {last['courses']:,} / {first['courses']:,} courses "
          f"({last['courses'] / first['courses']:.1f}x the corpus): tokenizing "
          f"{ratios['tokenize_peak_gb']:.2f}x, training {ratios['train_peak_gb']:.2f}x "
          f"(flat: ~1x); target: training peak RSS <= {TARGET_GB_AT_1M:.0f} GB at 1,000,000 "
          "courses", flush=True)
    sizes_text = " ".join(str(courses) for courses in sizes)
    record(f"token_store_{sizes[-1]}",
           f"bench_token_store.py --courses {sizes_text} --steps {args.steps}",
           "; ".join(f"{run['courses']:,} courses: tokenize {run['tokenize_seconds']:.1f} s "
                     f"({run['tokenize_courses_per_s']:,} courses/s, {run['store_mib']:,.1f} "
                     f"MiB store), peak RSS {run['tokenize_peak_gb']:.2f} GB; {run['train_steps']} "
                     f"steps {run['train_seconds']:.1f} s, peak RSS {run['train_peak_gb']:.2f} GB"
                     f"{scoring_text(run)}" for run in runs)
           + (f"; training peak {ratios['train_peak_gb']:.2f}x from smallest to largest"
              if len(runs) > 1 else "")
           + f" (target <= {TARGET_GB_AT_1M:.0f} GB at 1,000,000 courses)",
           {"steps": args.steps, "runs": runs,
            "peak_ratio_tokenize": round(ratios["tokenize_peak_gb"], 3),
            "peak_ratio_train": round(ratios["train_peak_gb"], 3)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
