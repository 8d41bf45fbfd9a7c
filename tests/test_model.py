"""PLM-CA: padding invariance, attention masking, real-window encoding, the two output layers,
the model directory (save_pretrained / from_pretrained, AutoModel, refusals)."""

import numpy as np
import pytest
import torch
from prepared_fixture import one_thread

from medcoding.encoding import collate, encode_texts, load_encoder_and_tokenizer
from medcoding.model import PLMCA, PLMCAConfig

LABELS = ["A09", "E11", "E66", "I10", "I21", "J18", "R07"]

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
    config = PLMCAConfig(encoder=encoder.config.to_dict(), id2label=dict(enumerate(LABELS)),
                         level="3", threshold=0.4, pad_token_id=tokenizer.pad_token_id)
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


def _training_step(model, documents, attention):
    """Loss and encoder gradients of one training step (dropout on) under one attention kernel."""
    model.set_attention(attention)
    model.train()
    model.zero_grad()
    torch.manual_seed(1)
    logits = model(*collate(documents, min_chunks=4))  # [3, 7]; padded windows included
    targets = torch.zeros_like(logits)
    targets[:, 0] = 1
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.encoder.named_parameters()
             if p.grad is not None}
    model.zero_grad()
    model.eval()
    model.set_attention("eager")
    return loss.detach(), grads


def test_training_under_sdpa_matches_eager_attention(tiny):
    """Training's default kernel (SDPA, ``TrainConfig.attn_implementation``) computes the eager
    reference's loss and gradients, with dropout on and padding windows in the batch."""
    model, _, documents = tiny
    eager_loss, eager_grads = _training_step(model, documents, "eager")
    sdpa_loss, sdpa_grads = _training_step(model, documents, "sdpa")
    torch.testing.assert_close(sdpa_loss, eager_loss, atol=1e-6, rtol=1e-5)
    assert eager_grads.keys() == sdpa_grads.keys() and len(eager_grads) > 10
    for name, grad in eager_grads.items():
        torch.testing.assert_close(sdpa_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


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


def test_save_and_load_give_the_same_model_and_tokenizer(tiny, tmp_path):
    import medcoding

    model, tokenizer, documents = tiny
    assert model.save_pretrained(tmp_path / "m", tokenizer=tokenizer) == tmp_path / "m"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m"]  # the staging folder was renamed into place
    assert {"config.json", "model.safetensors", "tokenizer.json",
            "complete.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    reloaded = medcoding.PLMCA.from_pretrained(tmp_path / "m", attn_implementation="eager")
    assert not reloaded.training
    assert reloaded.config.labels == LABELS and reloaded.config.level == "3"
    assert reloaded.config.threshold == 0.4 and reloaded.config.head == "per_label"
    assert reloaded.tokenizer("obesity bmi")["input_ids"] == tokenizer("obesity bmi")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*collate(documents)), model(*collate(documents)),
                                   atol=0, rtol=0)


def test_auto_classes_load_a_model_directory(tiny, tmp_path):
    from transformers import AutoConfig, AutoModel

    model, tokenizer, documents = tiny
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    assert type(AutoConfig.from_pretrained(tmp_path / "m")) is PLMCAConfig
    auto = AutoModel.from_pretrained(tmp_path / "m", attn_implementation="eager")
    assert type(auto) is PLMCA and auto.tokenizer is not None
    with torch.no_grad():
        torch.testing.assert_close(auto(*collate(documents)), model(*collate(documents)),
                                   atol=0, rtol=0)


def test_from_pretrained_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="medcoding train"):
        PLMCA.from_pretrained(tmp_path / "nothing")


def test_a_directory_of_the_older_format_is_refused(tmp_path):
    from medcoding.io import write_json

    write_json(tmp_path / "config.json", {"encoder": {}, "n_labels": 3, "chunk_size": 128})
    write_json(tmp_path / "labels.json", {"level": "3", "labels": ["A", "B", "C"]})
    write_json(tmp_path / "complete.json", {"complete": True})
    with pytest.raises(ValueError, match="older medcoding.*re-train") as error:
        PLMCA.from_pretrained(tmp_path)
    assert str(tmp_path / "config.json") in str(error.value)


def test_label_query_scale_is_a_saved_setting(tiny, tmp_path):
    model, tokenizer, _ = tiny
    wide = PLMCAConfig(encoder=model.config.encoder, id2label={i: str(i) for i in range(200)},
                       pad_token_id=tokenizer.pad_token_id, label_query_std=1.0)
    torch.manual_seed(0)
    queries = PLMCA(wide).label_attention.label_queries.detach()  # [labels, hidden]
    assert 0.9 < float(queries.std()) < 1.1
    default = model.label_attention.label_queries.detach()
    assert float(default.std()) < 0.03  # the study's 0.02 default
    PLMCA(wide).save_pretrained(tmp_path / "wide", tokenizer=tokenizer)
    assert PLMCA.from_pretrained(tmp_path / "wide").config.label_query_std == 1.0


def test_an_encoder_passed_in_keeps_its_weights(tiny):
    model, _, _ = tiny
    encoder = model.encoder
    before = {name: tensor.clone() for name, tensor in encoder.state_dict().items()}
    wrapped = PLMCA(PLMCAConfig(encoder=model.config.encoder, id2label={0: "A"}), encoder)
    for name, tensor in wrapped.encoder.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_the_shared_head_has_one_vector_and_bias_for_all_codes(tiny, tmp_path):
    model, tokenizer, documents = tiny
    config = PLMCAConfig(**{**model.config.to_dict(), "head": "shared"})
    torch.manual_seed(0)
    shared = PLMCA(config).eval()
    head = shared.label_attention
    hidden = shared.encoder.config.hidden_size
    assert head.output_weight.shape == (1, hidden) and head.output_bias.shape == (1,)
    assert sum(p.numel() for p in shared.parameters()) == (
        sum(p.numel() for p in model.parameters()) - (len(LABELS) - 1) * (hidden + 1))
    with torch.no_grad():
        logits, attention = shared(*collate(documents), return_attention=True)
        head.label_queries[:] = head.label_queries[0]  # same query: the codes cannot differ
        same = shared(*collate(documents))
    assert logits.shape == (3, len(LABELS)) and float(logits.std(dim=1).min()) > 0
    torch.testing.assert_close(same, same[:, :1].expand_as(same), atol=1e-6, rtol=0)
    prior = torch.logit(torch.tensor([0.1, 0.2, 0.3, 0.05, 0.05, 0.1, 0.2]))
    head.set_prior(prior)  # a shared bias starts at the log-odds of the mean frequency
    mean_log_odds = float(torch.logit(torch.tensor(1 / 7)))  # the frequencies' mean is 1/7
    assert float(head.output_bias.detach()) == pytest.approx(mean_log_odds)
    shared.save_pretrained(tmp_path / "shared", tokenizer=tokenizer)
    reloaded = PLMCA.from_pretrained(tmp_path / "shared")  # sdpa, as PLMCA(config) built it
    assert reloaded.config.head == "shared"
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*collate(documents)), shared(*collate(documents)),
                                   atol=0, rtol=0)
    with pytest.raises(ValueError, match="output layer 'both'"):
        PLMCA(PLMCAConfig(**{**model.config.to_dict(), "head": "both"}))


def test_replaced_weights_are_refused_by_their_hash(tiny, tmp_path):
    from safetensors.torch import save_file

    model, tokenizer, _ = tiny
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    tensors = {name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point()
               else tensor for name, tensor in model.state_dict().items()}
    save_file({name: t.contiguous() for name, t in tensors.items()},
              str(tmp_path / "m" / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="SHA-256.*corrupt or was replaced") as error:
        PLMCA.from_pretrained(tmp_path / "m")
    assert str(tmp_path / "m" / "model.safetensors") in str(error.value)


def test_truncated_or_unrecorded_weights_are_refused(tiny, tmp_path):
    import json

    model, tokenizer, _ = tiny
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="SHA-256") as error:
        PLMCA.from_pretrained(tmp_path / "m")
    assert str(weights) in str(error.value)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    del config["weights_sha256"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="records no weights_sha256.*re-train"):
        PLMCA.from_pretrained(tmp_path / "m")


def test_an_unfinished_directory_is_refused(tiny, tmp_path):
    model, tokenizer, _ = tiny
    model.save_pretrained(tmp_path / "m", tokenizer=tokenizer, publish=False)
    assert not (tmp_path / "m" / "complete.json").exists()
    with pytest.raises(ValueError, match="not a finished model directory"):
        PLMCA.from_pretrained(tmp_path / "m")


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


def test_training_publishes_the_chosen_output_layer(tmp_path):
    from prepared_fixture import train_tiny_model

    from medcoding import modeldir
    from medcoding.predict import Coder

    root = train_tiny_model(tmp_path, head="shared")
    coder = Coder.from_pretrained(root / "model")
    assert coder.model.config.head == modeldir.info(root / "model").head == "shared"
    assert coder.model.label_attention.output_weight.shape[0] == 1
    assert coder.level == "3" and coder.labels == modeldir.info(root / "model").labels
    summary = modeldir.train_summary(root / "model")
    assert summary["config"]["head"] == "shared" and summary["threshold"] == coder.threshold
    coder.model.set_attention("eager")
    assert coder.model.encoder.config._attn_implementation == "eager"

