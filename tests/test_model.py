"""PLM-CA: padding invariance, attention masking, real-window encoding, save/load."""

import numpy as np
import pytest
import torch
from prepared_fixture import one_thread

from medcoding.encoding import collate, encode_texts, load_encoder_and_tokenizer
from medcoding.model import PLMCA, PLMCAConfig, load_pretrained, save_pretrained

TEXTS = ["chest pain radiating to the left arm troponin raised " * 30,
         "obesity bmi 41 counselled on diet",
         "pneumonia treated with antibiotics, fever settled " * 8]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tiny():
    encoder, tokenizer = load_encoder_and_tokenizer("tiny", TEXTS, seed=0)
    config = PLMCAConfig(encoder=encoder.config.to_dict(), n_labels=7,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = PLMCA(config, encoder).eval()
    return model, tokenizer, encode_texts(tokenizer, TEXTS)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_padding_windows_and_tokens_do_not_change_logits(tiny, attention):
    model, _, documents = tiny
    model.set_attention(attention)
    with torch.no_grad():
        for doc in documents:
            alone = model(*collate([doc]))
            padded = model(*collate([doc], min_chunks=len(doc) // 128 + 4))
            assert padded.shape == alone.shape == (1, 7)
            torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
        batched = model(*collate(documents))  # shorter documents padded to the longest
        one_by_one = torch.cat([model(*collate([doc])) for doc in documents])
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=0)
    model.set_attention("eager")


def test_attention_is_zero_on_padding_and_sums_to_one(tiny):
    model, _, documents = tiny
    input_ids, attention_mask = collate(documents, min_chunks=5)
    with torch.no_grad():
        logits, attention = model(input_ids, attention_mask, return_attention=True)
    assert attention.shape == (3, 7, 5 * 128)
    token_mask = attention_mask.reshape(3, 1, -1).expand_as(attention).bool()
    assert (attention[~token_mask] == 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 7))


def test_only_windows_with_real_tokens_are_encoded(tiny):
    model, _, documents = tiny
    seen = []
    handle = model.encoder.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["input_ids"].shape[0]),
        with_kwargs=True)
    try:
        with torch.no_grad():
            model(*collate(documents, min_chunks=6))
    finally:
        handle.remove()
    real_windows = sum(-(-len(doc) // 128) for doc in documents)
    assert seen == [real_windows] and real_windows < 3 * 6


def test_inputs_embeds_match_input_ids(tiny):
    model, _, documents = tiny
    input_ids, attention_mask = collate(documents)
    with torch.no_grad():
        from_ids = model(input_ids, attention_mask)
        embeds = model.input_embeddings()(input_ids)  # [batch, chunks, 128, hidden]
        from_embeds = model(input_ids, attention_mask, inputs_embeds=embeds)
    torch.testing.assert_close(from_embeds, from_ids)


def test_empty_document_gives_finite_logits_and_gradients(tiny):
    model, _, _ = tiny
    input_ids, attention_mask = collate([np.array([], dtype=np.int64), np.arange(5, 40)])
    logits = model(input_ids, attention_mask)
    logits.sum().backward()
    assert torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)


def test_save_and_load_give_the_same_logits(tiny, tmp_path):
    model, _, documents = tiny
    save_pretrained(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    reloaded = load_pretrained(tmp_path, attn_implementation="eager")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*collate(documents)), model(*collate(documents)),
                                   atol=0, rtol=0)


def test_load_pretrained_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="medcoding train"):
        load_pretrained(tmp_path)


def test_label_query_scale_is_a_saved_setting(tiny, tmp_path):
    model, tokenizer, _ = tiny
    wide = PLMCAConfig(encoder=model.config.encoder_dict(), n_labels=200,
                       pad_token_id=tokenizer.pad_token_id, label_query_std=1.0)
    torch.manual_seed(0)
    queries = PLMCA(wide).label_attention.label_queries.detach()  # [labels, hidden]
    assert 0.9 < float(queries.std()) < 1.1
    assert float(model.label_attention.label_queries.std()) < 0.03  # the study's 0.02 default
    old_style = wide.to_dict()
    del old_style["label_query_std"]  # a model directory written before the setting existed
    assert PLMCAConfig.from_dict(old_style).label_query_std == 0.02
    save_pretrained(PLMCA(wide), tmp_path / "wide")
    assert load_pretrained(tmp_path / "wide").config.label_query_std == 1.0


def test_replaced_weights_are_refused_by_their_hash(tiny, tmp_path):
    from safetensors.torch import save_file

    model, _, _ = tiny
    save_pretrained(model, tmp_path)
    tensors = {name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point()
               else tensor for name, tensor in model.state_dict().items()}
    save_file({name: t.contiguous() for name, t in tensors.items()},
              str(tmp_path / "model.safetensors"))  # a valid file, but not the saved weights
    with pytest.raises(ValueError, match="SHA-256.*corrupt or was replaced") as error:
        load_pretrained(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(error.value)


def test_truncated_weights_name_the_file(tiny, tmp_path):
    import json

    model, _, _ = tiny
    save_pretrained(model, tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="SHA-256") as error:
        load_pretrained(tmp_path)
    assert str(weights) in str(error.value)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["weights_sha256"]  # a directory written before the hash was recorded
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="cannot read the weights") as error:
        load_pretrained(tmp_path)
    assert str(weights) in str(error.value)


def test_a_batch_of_empty_documents_scores_the_empty_document(tiny):
    model, _, documents = tiny
    empty = np.zeros(0, dtype=np.int32)
    head = model.label_attention
    # no token: attention is all zero, so Y = LayerNorm(0) = its bias and logit_c = w_c . b + b_c
    expected = (head.norm.bias[None, :] * head.output_weight).sum(-1) + head.output_bias
    with torch.no_grad():
        alone = model(*collate([empty, empty]))  # [2, labels]
        mixed = model(*collate([documents[1], empty]))
    torch.testing.assert_close(alone, expected.expand(2, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed[1], expected, atol=1e-6, rtol=0)
