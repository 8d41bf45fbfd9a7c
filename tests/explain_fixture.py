"""A small synthetic prepared split and a tiny PLM-CA trained on it, for the explanation tests.

Each level-3 code has two trigger words (``X60``: "suicidal", "intent"; ``T39``: "paracetamol",
...); a course's text mixes filler words with the triggers of its true codes. The human coder
drops some true codes (every second X60, every third I10), so the gallery kinds exist. The model
is the real ``medcoding.model.PLMCA`` with a one-layer BERT, trained for a few hundred steps with
plain AdamW (seconds on CPU), and written with ``PLMCA.save_pretrained`` as a finished model
directory (labels at level 3, threshold 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from prepared_fixture import one_thread

from medcoding.io import write_json, write_parquet

TRIGGERS = {
    "E11": ["metformin", "t2dm"],
    "E14": ["diabetes", "glucose"],
    "I10": ["amlodipine", "hypertension"],
    "I50": ["furosemide", "ejection"],
    "J18": ["pneumonia", "consolidation"],
    "T39": ["paracetamol", "tablets"],
    "X60": ["suicidal", "intent"],
}
LABELS = sorted(TRIGGERS)
FILLER = ("patient admitted ward seen today plan stable observed noted given day night review "
          "nurse doctor reports comfortable tolerated discussed family home").split()
TINY_BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 130}


def course_codes(rng: np.random.Generator) -> list[str]:
    """One to three true codes; an overdose brings T39 and X60 together."""
    codes = set(rng.choice(LABELS, size=int(rng.integers(1, 4)), replace=False).tolist())
    if "X60" in codes:
        codes.add("T39")
    return sorted(codes)


def course_text(rng: np.random.Generator, codes: list[str], n_words: int = 16) -> str:
    words = list(rng.choice(FILLER, size=n_words))
    for code in codes:
        for word in TRIGGERS[code]:
            words.insert(int(rng.integers(0, len(words) + 1)), word)
    return " ".join(words)


def make_split(n_courses: int, prefix: str, seed: int) -> pd.DataFrame:
    """Prepared-split rows (CONTRIBUTING.md) with synthetic truth columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(n_courses):
        truth = course_codes(rng)
        human = [code for code in truth
                 if not (code == "X60" and number % 2 == 0)
                 and not (code == "I10" and number % 3 == 0)]
        human = human or truth[:1]
        evidence = ["drug" if code == "I10" else "listed" for code in truth]
        rows.append({
            "course_id": f"{prefix}{number:04d}", "patient_id": f"P{prefix}{number:04d}",
            "specialty": "internal medicine", "department": "dep1",
            "text": course_text(rng, truth),
            "codes_l3": human, "codes_full": human, "primary_l3": human[0],
            "primary_full": human[0], "patient_rank": number,
            "true_l3": truth, "true_full": truth, "true_evidence": evidence,
            "true_primary_full": truth[0],
        })
    return pd.DataFrame(rows)


def write_prepared(directory: str | Path, n_train: int = 320, n_test: int = 24,
                   synthetic: bool = True, seed: int = 0) -> Path:
    """Write train/val/test Parquet files, ``labels.json`` and a prepared ``manifest.json``."""
    directory = Path(directory)
    splits = {"train": make_split(n_train, "T", seed), "val": make_split(n_test, "V", seed + 1),
              "test": make_split(n_test, "X", seed + 2)}
    for name, frame in splits.items():
        if not synthetic:
            frame = frame.drop(columns=["true_l3", "true_full", "true_evidence",
                                        "true_primary_full"])
        write_parquet(directory / f"{name}.parquet", frame)
    write_json(directory / "labels.json", {"l3": LABELS, "full": LABELS})
    write_json(directory / "manifest.json", {"input_manifest": {"synthetic": synthetic}})
    return directory


def build_model(tokenizer, n_labels: int, seed: int = 0):
    from medcoding.model import PLMCA, PLMCAConfig

    torch.manual_seed(seed)
    encoder = dict(TINY_BERT, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    labels = LABELS if n_labels == len(LABELS) else [f"L{index}" for index in range(n_labels)]
    config = PLMCAConfig(encoder=encoder, id2label=dict(enumerate(labels)), level="3",
                         threshold=0.5, pad_token_id=tokenizer.pad_token_id)
    return PLMCA(config)


def train_model(prepared_dir: str | Path, out_dir: str | Path, steps: int = 200,
                seed: int = 0) -> Path:
    """Train the tiny PLM-CA on the prepared train split; write a model directory.

    Runs on one thread: for a model this small, thread synchronisation costs more than it gives
    (ten times more on a busy 2-core machine). The previous thread count is restored.
    """
    with one_thread():
        return _train_model(Path(prepared_dir), Path(out_dir), steps, seed)


def _train_model(prepared_dir: Path, out_dir: Path, steps: int, seed: int) -> Path:
    from medcoding.encoding import collate, encode_texts, train_wordpiece_tokenizer
    train = pd.read_parquet(prepared_dir / "train.parquet")
    tokenizer = train_wordpiece_tokenizer(train["text"].tolist(), vocab_size=200)
    model = build_model(tokenizer, len(LABELS), seed)
    documents = encode_texts(tokenizer, train["text"].tolist())
    targets = torch.tensor([[code in set(codes) for code in LABELS]
                            for codes in train["true_l3"]], dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        batch = generator.choice(len(documents), size=16, replace=False)
        input_ids, attention_mask = collate([documents[i] for i in batch],
                                            pad_id=tokenizer.pad_token_id)
        logits = model(input_ids, attention_mask)  # [16, labels]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model.save_pretrained(out_dir, tokenizer=tokenizer)


def model_dir(tmp_path_factory) -> Path:
    """The session's trained fixture model (trained once, shared by the test modules)."""
    base = tmp_path_factory.getbasetemp() / "explain_fixture"
    model = base / "model"
    if not (model / "complete.json").is_file():
        write_prepared(base / "prepared")
        train_model(base / "prepared", model)
    return model


def prepared_dir(tmp_path_factory) -> Path:
    model_dir(tmp_path_factory)
    return tmp_path_factory.getbasetemp() / "explain_fixture" / "prepared"
