"""PLM-CA: a pretrained encoder read in 128-token windows plus label-wise cross-attention.

Shapes (B documents, C windows, T = chunk_size = 128 tokens, N = C * T, h hidden, L labels):

1. The encoder reads the windows as independent sequences. Only windows holding at least one
   real token are gathered and encoded; the token states are scattered back and padding windows
   stay zero::

       input_ids, attention_mask  [B, C, T] -> real windows [R, T] -> encoder -> [R, T, h]
       -> H [B, N, h]

   By default the windows hold the document's tokens only: no ``[CLS]`` or ``[SEP]`` is added,
   neither per window nor per document. ``config.document_markers`` (``[cls id, sep id]``, set
   by ``TrainConfig(document_markers=True)``) reads each document as ``[CLS]`` + tokens +
   ``[SEP]``, once per document, as the study authors' code does
   (:func:`medcoding.encoding.read_with_markers`).

2. Label-wise cross-attention with learned label queries ``E`` [L, h]::

       K = H W_k                       [B, N, h]   (no bias)
       V = H W_v + b_v                 [B, N, h]
       A = softmax_N(E K^T)            [B, L, N]   padding tokens masked before the softmax and
                                                   set to exactly zero after it
       Y = LayerNorm(A V)              [B, L, h]
       logit_c = w_c . Y_c + b_c       [B, L]

   The output layer (``config.head``) is ``"per_label"`` by default: each label has its own
   output vector ``w_c`` (``output_weight`` [L, h]) and bias ``b_c`` (``output_bias`` [L]), so
   a label can read its attended summary in its own direction. ``"shared"`` is the study
   authors' layer: one vector and one bias for every label (``output_weight`` [1, h],
   ``output_bias`` [1]), so labels differ only through their queries ``E``.

Because padding tokens get zero attention and padding windows are never encoded, appending
padding (tokens or whole windows) leaves a document's logits unchanged; the reference
implementation of the study attended to padding.

The model is a Hugging Face model: :class:`PLMCAConfig` (model type ``plmca``) holds the
encoder's config, the labels (``id2label``), the code level, the window size, the output layer,
the decision threshold tuned on validation, the training precision and the weights' SHA-256;
``PLMCA.save_pretrained(dir, tokenizer=...)`` and ``PLMCA.from_pretrained(dir)`` write and read
a whole model directory (config, safetensors weights, tokenizer) by the rules of
:mod:`medcoding.modeldir`. Importing :mod:`medcoding` registers both classes with
``AutoConfig`` and ``AutoModel``, so ``AutoModel.from_pretrained(dir)`` works as well.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

HEADS = ("per_label", "shared")
MODEL_TYPE = "plmca"


class PLMCAConfig(PreTrainedConfig):
    """Everything needed to rebuild and use a PLM-CA model without its weights.

    ``encoder`` is the encoder's Hugging Face config as a dict (with its ``model_type``);
    ``id2label`` the label list (``labels`` gives it in output order); ``level`` the code level
    the labels are at (``"3"`` categories or ``"full"`` codes); ``chunk_size`` the window width;
    ``label_query_std`` the initial scale of the label queries; ``head`` the output layer
    (``"per_label"`` or ``"shared"``, see the module docstring); ``document_markers`` the
    ``[cls id, sep id]`` put around each document (None: none, the default); ``threshold`` the
    global decision threshold (tuned on validation by ``medcoding train``); ``precision`` the one it
    was trained in (``bf16`` | ``fp32``, :mod:`medcoding.precision`); ``weights_sha256`` the
    SHA-256 of ``model.safetensors``, written by ``save_pretrained`` and checked on load.
    The encoder attention kernel is Hugging Face's own setting (``attn_implementation=`` in
    ``from_pretrained``, ``model.set_attn_implementation``).
    """

    model_type = MODEL_TYPE

    encoder: dict | None = None
    level: str | None = None
    chunk_size: int = 128
    label_query_std: float = 0.02
    head: str = "per_label"
    document_markers: list[int] | None = None
    threshold: float = 0.5
    precision: str | None = None
    weights_sha256: str | None = None
    pad_token_id: int | None = 0

    @property
    def labels(self) -> list[str]:
        """The labels in output order (``id2label`` as a list)."""
        return [self.id2label[index] for index in range(self.num_labels)]

    def encoder_config(self):
        """The encoder's config as a Hugging Face config object."""
        settings = dict(self.encoder or {})
        if "model_type" not in settings:
            raise ValueError("PLMCAConfig.encoder needs the encoder's config with its "
                             f"'model_type' (got keys {sorted(settings)[:8]})")
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class LabelCrossAttention(nn.Module):
    """Label-wise cross-attention over all token states of a document (see module docstring)."""

    def __init__(self, hidden: int, n_labels: int, query_std: float = 0.02,
                 head: str = "per_label"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"PLM-CA output layer {head!r} is not one of {HEADS}")
        outputs = n_labels if head == "per_label" else 1
        self.label_queries = nn.Parameter(torch.randn(n_labels, hidden) * query_std)  # E [L, h]
        self.key = nn.Linear(hidden, hidden, bias=False)  # W_k
        self.value = nn.Linear(hidden, hidden)  # W_v, b_v
        self.norm = nn.LayerNorm(hidden)
        self.output_weight = nn.Parameter(torch.randn(outputs, hidden) * 0.02)  # w [L or 1, h]
        self.output_bias = nn.Parameter(torch.zeros(outputs))  # b [L or 1]

    @torch.no_grad()
    def set_prior(self, prior_logits: torch.Tensor) -> None:
        """Start the biases at the labels' training log-odds ``prior_logits`` [L].

        A shared bias starts at the log-odds of the labels' mean frequency.
        """
        if self.output_bias.numel() == prior_logits.numel():
            self.output_bias.copy_(prior_logits)
        else:
            mean = torch.sigmoid(prior_logits.double()).mean()
            self.output_bias.fill_(float(torch.logit(mean)))

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


class PLMCA(PreTrainedModel):
    """Pretrained-language-model encoder with label-wise cross-attention (PLM-CA).

    ``PLMCA(config)`` builds a randomly initialised encoder of ``config.encoder``'s
    architecture; ``PLMCA(config, encoder)`` wraps a loaded (pretrained) one. The label
    attention is initialised where it is created (queries at ``config.label_query_std``), never
    by Hugging Face's ``_init_weights``, and an encoder passed in keeps its weights.
    ``tokenizer`` is the tokenizer ``from_pretrained`` read (``save_pretrained`` writes it).
    """

    config_class = PLMCAConfig
    base_model_prefix = "plmca"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: PLMCAConfig, encoder: nn.Module | None = None):
        super().__init__(config)
        if encoder is None:
            encoder_config = config.encoder_config()
            kwargs = {"attn_implementation": config._attn_implementation}
            try:
                encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False, **kwargs)
            except TypeError:
                encoder = AutoModel.from_config(encoder_config, **kwargs)
        else:
            config._attn_implementation = encoder.config._attn_implementation
        self.encoder = encoder
        self.label_attention = LabelCrossAttention(
            self.encoder.config.hidden_size, config.num_labels, config.label_query_std,
            config.head)
        self.tokenizer = None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing to do: the label attention is initialised in its ``__init__`` (see class)."""

    def input_embeddings(self) -> nn.Module:
        """The encoder's word-embedding module (for gradients with respect to input embeddings)."""
        return self.encoder.get_input_embeddings()

    def set_attn_implementation(self, attn_implementation: str, **kwargs) -> None:
        """Switch the encoder's attention kernel (``eager`` or ``sdpa``); weights are unchanged.

        The label attention has no kernel to choose, so only the encoder's is switched.
        """
        self.encoder.set_attn_implementation(attn_implementation, **kwargs)
        self.config._attn_implementation = self.encoder.config._attn_implementation

    def set_attention(self, implementation: str) -> None:
        """``set_attn_implementation`` under the name training calls."""
        self.set_attn_implementation(implementation)

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

    def save_pretrained(self, save_directory: str | os.PathLike, tokenizer=None,
                        publish: bool = True, **kwargs) -> Path:
        """Write the model directory: config (with the weights' SHA-256), weights, tokenizer.

        ``tokenizer`` defaults to ``self.tokenizer``. With ``publish`` (the default) the files
        are written into a staging folder beside ``save_directory`` that is then marked
        complete and renamed onto it (an existing model there is replaced only then);
        ``publish=False`` writes into ``save_directory`` itself without the completion marker
        (a training run's ``MODEL.partial``, published by ``medcoding.modeldir.publish``).
        Safetensors only; other keyword arguments go to Hugging Face's ``save_pretrained``.
        """
        from medcoding import modeldir

        target = Path(save_directory)
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer
        work = modeldir.staging_dir(target) if publish else target
        work.mkdir(parents=True, exist_ok=True)
        with modeldir.quiet_transformers():
            super().save_pretrained(work, safe_serialization=True, **kwargs)
        modeldir.record_weights_hash(work, self.config)
        if tokenizer is not None:
            modeldir.save_tokenizer(tokenizer, work)
        return modeldir.publish(work, target) if publish else target

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args,
                        attn_implementation: str | None = None, **kwargs) -> PLMCA:
        """Load a finished model directory (a local folder; nothing is downloaded).

        Refuses a folder without the completion marker, a ``config.json`` of another format
        (an older medcoding: re-train) and weights whose SHA-256 differs from the recorded one
        (``medcoding.modeldir.check``); every tensor must match by name and shape. The model
        is returned in eval mode with ``model.tokenizer`` read from the folder.
        """
        from medcoding import modeldir
        from medcoding.encoding import load_tokenizer

        directory = Path(pretrained_model_name_or_path)
        modeldir.check(directory)
        kwargs.update(local_files_only=True, use_safetensors=True, output_loading_info=True)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        with modeldir.quiet_transformers():
            model, info = super().from_pretrained(directory, *model_args, **kwargs)
        problems = {key: sorted(map(str, info.get(key) or ()))[:5] for key in
                    ("missing_keys", "unexpected_keys", "mismatched_keys")}
        problems = {key: value for key, value in problems.items() if value}
        if problems or info.get("error_msgs"):
            raise ValueError(f"{directory / modeldir.WEIGHTS}: the weights do not fit the "
                             f"model of {directory / modeldir.CONFIG} ({problems or info}); copy "
                             "the model directory again or re-train it")
        model.tokenizer = load_tokenizer(directory)
        return model.eval()


AutoConfig.register(MODEL_TYPE, PLMCAConfig, exist_ok=True)
AutoModel.register(PLMCAConfig, PLMCA, exist_ok=True)


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


def score_token_arrays(
    model: PLMCA,
    documents: list,
    token_budget: int = 32_768,
    precision: str = "auto",
    progress: bool = False,
) -> torch.Tensor:
    """Sigmoid scores ``[documents, labels]`` (float32, input order) for tokenized documents.

    Documents are sorted by length and scored in micro-batches of at most ``token_budget``
    padded tokens (each with the model's ``document_markers``, if any), under
    ``torch.inference_mode`` and, where ``precision`` resolves to ``bf16``
    (``medcoding.precision``: ``auto`` does where the device has native bfloat16), bfloat16
    autocast.
    """
    from tqdm.auto import tqdm

    from medcoding import precision as precisions
    from medcoding.encoding import collate, read_with_markers, token_budget_batches

    chunk_size = model.config.chunk_size
    documents = read_with_markers(documents, model.config.document_markers)
    # a token store (marked or not) knows its lengths without reading a document
    lengths = (documents.lengths().tolist() if hasattr(documents, "lengths")
               else [len(doc) for doc in documents])
    batches = token_budget_batches(range(len(documents)), lengths, token_budget, chunk_size)
    device = next(model.parameters()).device
    resolved = precisions.resolve(precision, device).precision
    scores = torch.zeros(len(documents), model.config.num_labels)
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
