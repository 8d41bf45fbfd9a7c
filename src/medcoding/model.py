"""PLM-CA: a pretrained encoder read in 128-token windows plus label-wise cross-attention.

Shapes (B documents, C windows, T = chunk_size = 128 tokens, N = C * T, h hidden, L labels):

1. The encoder reads the windows as independent sequences. Only windows holding at least one
   real token are gathered and encoded; the token states are scattered back and padding windows
   stay zero::

       input_ids, attention_mask  [B, C, T] -> real windows [R, T] -> encoder -> [R, T, h]
       -> H [B, N, h]

2. Label-wise cross-attention with learned label queries ``E`` [L, h]::

       K = H W_k                       [B, N, h]   (no bias)
       V = H W_v + b_v                 [B, N, h]
       A = softmax_N(E K^T)            [B, L, N]   padding tokens masked before the softmax and
                                                   set to exactly zero after it
       Y = LayerNorm(A V)              [B, L, h]
       logit_c = w_c . Y_c + b_c       [B, L]

   Each label has its own output vector ``w_c`` (``output_weight`` [L, h]) and bias ``b_c``, as in
   the reference PLM-CA code, so a label can read its attended summary in its own direction.

Because padding tokens get zero attention and padding windows are never encoded, appending
padding (tokens or whole windows) leaves a document's logits unchanged; the reference
implementation of the study attended to padding.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn


@dataclass
class PLMCAConfig:
    """Everything needed to rebuild a PLM-CA model without its weights.

    ``encoder`` is the encoder's Hugging Face config as a dict (or a local directory holding a
    ``config.json``); ``attn_implementation`` is the encoder attention kernel (``eager`` or
    ``sdpa``), which can be switched on a built model with ``set_attention``; ``precision`` the
    resolved precision it was trained in (``None`` in models saved before it was recorded).
    """

    encoder: dict | str
    n_labels: int
    chunk_size: int = 128
    pad_token_id: int = 0
    attn_implementation: str = "eager"
    label_query_std: float = 0.02  # initial scale of the label queries E
    precision: str | None = None  # what it was trained in (bf16 | fp32; medcoding.precision)

    def encoder_dict(self) -> dict:
        if isinstance(self.encoder, dict):
            return dict(self.encoder)
        return json.loads((Path(self.encoder) / "config.json").read_text(encoding="utf-8"))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["encoder"] = self.encoder_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PLMCAConfig:
        """The config from ``config.json`` (keys of the model directory, such as the weights'
        hash, are not model settings and are left out)."""
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def encoder_from_config(config: PLMCAConfig):
    """A randomly initialised encoder of the architecture in ``config.encoder``."""
    from transformers import AutoConfig, AutoModel

    os.environ["HF_HUB_OFFLINE"] = "1"
    encoder_dict = config.encoder_dict()
    model_type = encoder_dict.pop("model_type")
    encoder_config = AutoConfig.for_model(model_type, **encoder_dict)
    try:
        return AutoModel.from_config(encoder_config, add_pooling_layer=False,
                                     attn_implementation=config.attn_implementation)
    except TypeError:
        return AutoModel.from_config(encoder_config, attn_implementation=config.attn_implementation)


class LabelCrossAttention(nn.Module):
    """Label-wise cross-attention over all token states of a document (see module docstring)."""

    def __init__(self, hidden: int, n_labels: int, query_std: float = 0.02):
        super().__init__()
        self.label_queries = nn.Parameter(torch.randn(n_labels, hidden) * query_std)  # E [L, h]
        self.key = nn.Linear(hidden, hidden, bias=False)  # W_k
        self.value = nn.Linear(hidden, hidden)  # W_v, b_v
        self.norm = nn.LayerNorm(hidden)
        self.output_weight = nn.Parameter(torch.randn(n_labels, hidden) * 0.02)  # w [L, h]
        self.output_bias = nn.Parameter(torch.zeros(n_labels))  # b [L]

    def forward(self, states: torch.Tensor, token_mask: torch.Tensor):
        """``states`` [B, N, h], ``token_mask`` [B, N] -> logits [B, L], attention [B, L, N]."""
        keys = self.key(states)  # [B, N, h]
        values = self.value(states)  # [B, N, h]
        scores = torch.einsum("lh,bnh->bln", self.label_queries.to(keys.dtype), keys)  # [B, L, N]
        padding = ~token_mask.bool()[:, None, :]  # [B, 1, N]
        scores = scores.masked_fill(padding, torch.finfo(scores.dtype).min)
        attention = torch.softmax(scores.float(), dim=-1).masked_fill(padding, 0.0)  # [B, L, N]
        attended = torch.bmm(attention.to(values.dtype), values)  # [B, L, h]
        summary = self.norm(attended)  # [B, L, h]
        logits = (summary * self.output_weight).sum(-1) + self.output_bias  # [B, L]
        return logits.float(), attention


class PLMCA(nn.Module):
    """Pretrained-language-model encoder with label-wise cross-attention (PLM-CA)."""

    def __init__(self, config: PLMCAConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else encoder_from_config(config)
        hidden = self.encoder.config.hidden_size
        self.label_attention = LabelCrossAttention(hidden, config.n_labels,
                                                   config.label_query_std)

    def input_embeddings(self) -> nn.Module:
        """The encoder's word-embedding module (for gradients with respect to input embeddings)."""
        return self.encoder.get_input_embeddings()

    def set_attention(self, implementation: str) -> None:
        """Switch the encoder's attention kernel (``eager`` or ``sdpa``); weights are unchanged."""
        self.encoder.set_attn_implementation(implementation)
        self.config.attn_implementation = implementation

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        """Logits ``[batch, labels]``; with ``return_attention`` also ``[batch, labels, chunks*T]``.

        ``input_ids`` and ``attention_mask`` are ``[batch, chunks, T]``; ``inputs_embeds``
        ``[batch, chunks, T, hidden]`` replaces the word-embedding lookup when given.
        """
        batch, chunks, width = attention_mask.shape
        window_mask = attention_mask.reshape(batch * chunks, width)  # [B*C, T]
        real = window_mask.any(dim=1).nonzero().squeeze(1)  # [R]
        if real.numel() == 0:  # only empty documents: no window to encode, every state is zero
            hidden = self.encoder.config.hidden_size
            states = self.label_attention.output_bias.new_zeros(batch, chunks * width, hidden)
            logits, attention = self.label_attention(states, attention_mask.reshape(batch, -1))
            return (logits, attention) if return_attention else logits
        if inputs_embeds is not None:
            embeds = inputs_embeds.reshape(batch * chunks, width, -1)[real]  # [R, T, h]
            encoded = self.encoder(inputs_embeds=embeds, attention_mask=window_mask[real])
        else:
            ids = input_ids.reshape(batch * chunks, width)[real]  # [R, T]
            encoded = self.encoder(input_ids=ids, attention_mask=window_mask[real])
        real_states = encoded.last_hidden_state  # [R, T, h]
        states = real_states.new_zeros(batch * chunks, width, real_states.shape[-1])
        states = states.index_copy(0, real, real_states)  # [B*C, T, h]
        states = states.reshape(batch, chunks * width, -1)  # [B, N, h]
        token_mask = attention_mask.reshape(batch, chunks * width)  # [B, N]
        logits, attention = self.label_attention(states, token_mask)
        if return_attention:
            return logits, attention
        return logits


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """The model's state dict as safetensors, written atomically."""
    from safetensors.torch import save_file

    from medcoding.io import atomic_path

    tensors = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    return Path(path)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load safetensors weights into ``model`` (strict: every tensor must match by name)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: cannot read the weights ({err}); the file is corrupt or "
                         "truncated: copy the model directory again or re-train it") from err
    model.load_state_dict(tensors, strict=True)
    return model


def save_pretrained(model: PLMCA, directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (with the weights' SHA-256) of ``model``."""
    from medcoding.io import write_json
    from medcoding.modeldir import WEIGHTS, WEIGHTS_HASH_KEY, file_sha256

    directory = Path(directory)
    save_weights(model, directory / WEIGHTS)
    write_json(directory / "config.json", {**model.config.to_dict(),
                                           WEIGHTS_HASH_KEY: file_sha256(directory / WEIGHTS)})
    return directory


def load_pretrained(directory: str | os.PathLike, attn_implementation: str | None = None) -> PLMCA:
    """Rebuild a PLM-CA model from ``config.json`` and ``model.safetensors`` (no pickle)."""
    directory = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory / name} not found: {directory} is not a PLM-CA model directory; "
                "train one with `medcoding train --data PREPARED --out MODEL_DIR`"
            )
    data = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    config = PLMCAConfig.from_dict(data)
    if attn_implementation is not None:
        config.attn_implementation = attn_implementation
    from medcoding.modeldir import WEIGHTS_HASH_KEY, check_weights

    check_weights(directory, data.get(WEIGHTS_HASH_KEY))
    model = PLMCA(config)
    load_weights(model, directory / "model.safetensors")
    return model.eval()


def score_token_arrays(
    model: PLMCA,
    documents: list,
    token_budget: int = 32_768,
    precision: str = "auto",
    progress: bool = False,
) -> torch.Tensor:
    """Sigmoid scores ``[documents, labels]`` (float32, input order) for tokenized documents.

    Documents are sorted by length and scored in micro-batches of at most ``token_budget``
    padded tokens, under ``torch.inference_mode`` and, where ``precision`` resolves to ``bf16``
    (``medcoding.precision``: ``auto`` does where the device has native bfloat16), bfloat16
    autocast.
    """
    from tqdm.auto import tqdm

    from medcoding import precision as precisions
    from medcoding.encoding import collate, token_budget_batches

    chunk_size = model.config.chunk_size
    lengths = [len(doc) for doc in documents]
    batches = token_budget_batches(range(len(documents)), lengths, token_budget, chunk_size)
    device = next(model.parameters()).device
    resolved = precisions.resolve(precision, device).precision
    scores = torch.zeros(len(documents), model.config.n_labels)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), precisions.autocast(resolved, device):
        for batch in tqdm(batches, desc="scoring", disable=not progress, leave=False):
            input_ids, attention_mask = collate([documents[i] for i in batch], chunk_size,
                                                model.config.pad_token_id)
            logits = model(input_ids.to(device), attention_mask.to(device))  # [batch, labels]
            scores[torch.as_tensor(batch)] = torch.sigmoid(logits.float()).cpu()
    model.train(was_training)
    return scores
