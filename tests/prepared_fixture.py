"""A small prepared-split directory (CONTRIBUTING.md, "Prepared splits") for model tests.

Each full code has its own trigger words; a course's text mixes filler words with the triggers
of its codes, so a model can learn the codes from the text while a frequency baseline cannot.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medcoding.io import write_csv, write_json, write_parquet

FULL_CODES = ["A09.9", "E11.9", "E66.0", "E66.9", "I10.0", "I21.0", "I21.9", "J18.9",
              "K35.8", "N39.0", "R07.4", "S72.0"]
FILLER = ("patient admitted ward seen today plan stable observed noted given day night "
          "review nurse doctor reports comfortable tolerated discussed family home").split()


def trigger_words(code: str) -> list[str]:
    """Two made-up words that signal ``code`` (e.g. ``"e660alpha"``)."""
    stem = code.replace(".", "").lower()
    return [f"{stem}alpha", f"{stem}beta"]


def make_course(rng: np.random.Generator, codes: list[str], median_words: int) -> str:
    n_words = max(5, int(rng.lognormal(np.log(median_words), 0.6)))
    words = list(rng.choice(FILLER, size=n_words))
    for code in codes:
        for word in trigger_words(code):
            words.insert(int(rng.integers(0, len(words) + 1)), word)
    return " ".join(words)


def make_split(rng: np.random.Generator, n_patients: int, prefix: str, median_words: int):
    frequency = 1.0 / np.arange(1, len(FULL_CODES) + 1) ** 0.7
    frequency = frequency / frequency.sum()
    rows = []
    for patient in range(n_patients):
        n_codes = int(rng.integers(1, 4))
        codes = sorted(rng.choice(FULL_CODES, size=n_codes, replace=False, p=frequency).tolist())
        l3 = sorted({code.split(".")[0] for code in codes})
        rows.append({
            "course_id": f"{prefix}{patient:05d}",
            "patient_id": f"P{prefix}{patient:05d}",
            "specialty": ["medicine", "surgery"][patient % 2],
            "department": f"dep{patient % 3}",
            "text": make_course(rng, codes, median_words),
            "codes_l3": l3,
            "codes_full": codes,
            "primary_l3": codes[0].split(".")[0],
            "primary_full": codes[0],
            "patient_rank": patient,
        })
    frame = pd.DataFrame(rows)
    order = rng.permutation(len(frame))
    frame["patient_rank"] = np.argsort(order)
    return frame


def write_prepared(directory: str | Path, n_train: int = 160, n_val: int = 40, n_test: int = 40,
                   median_words: int = 120, seed: int = 0) -> Path:
    """Write train/val/test Parquet files, ``labels.json`` and ``flow.csv``; return the folder."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    splits = {"train": make_split(rng, n_train, "T", median_words),
              "val": make_split(rng, n_val, "V", median_words),
              "test": make_split(rng, n_test, "X", median_words)}
    for name, frame in splits.items():
        write_parquet(directory / f"{name}.parquet", frame)
    train = splits["train"]
    write_json(directory / "labels.json", {
        "l3": sorted({code for codes in train["codes_l3"] for code in codes}),
        "full": sorted({code for codes in train["codes_full"] for code in codes}),
    })
    write_csv(directory / "flow.csv", pd.DataFrame(
        {"step": ["fixture"], "courses": [n_train + n_val + n_test],
         "patients": [n_train + n_val + n_test]}))
    return directory


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside the block: for tiny models, thread synchronisation costs
    more than it gives (several times more on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_tiny_model(root: Path, n_test: int = 12, **config) -> Path:
    """``root/prepared`` (96 train, 16 val, ``n_test`` test patients) and ``root/model``, a tiny
    encoder trained on it for 3 epochs; ``config`` overrides TrainConfig keys. Returns ``root``."""
    from medcoding.train import TrainConfig, train

    prepared = write_prepared(root / "prepared", n_train=96, n_val=16, n_test=n_test,
                              median_words=30)
    train(prepared, root / "model", TrainConfig(encoder="tiny", epochs=3, learning_rate=2e-3,
                                                batch_size=16, warmup_fraction=0.0,
                                                progress=False, **config))
    return root
