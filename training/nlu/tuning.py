"""Measured on dev: the score that picks the best epoch, and the calibration after training."""

from __future__ import annotations

import math
from typing import Any

import torch

from earmark.core.predictions import NLUPrediction
from training.nlu import calibration
from training.nlu.data import Example
from training.nlu.model import JointNLU, Temperatures
from training.nlu.predict import RawOutput, decode, infer
from training.nlu.tokenize import word_tags


def dev_score(scores: dict[str, Any]) -> float:
    """Model selection: mean of intent accuracy and entity F1 (intent alone without entities)."""
    acc, f1 = scores["intent_accuracy"].value, scores["entity_f1"].value
    return acc if math.isnan(f1) else (acc + f1) / 2


def predict_examples(
    model: JointNLU, tokenizer: Any, examples: list[Example], version: str
) -> tuple[list[RawOutput], list[NLUPrediction]]:
    raws = infer(model, tokenizer, [e.text for e in examples])
    temps = model.settings.temperatures
    preds = [
        decode(e.id, e.text, r, model.schema, temps, version)
        for e, r in zip(examples, raws, strict=True)
    ]
    return raws, preds


def calibrate(model: JointNLU, tokenizer: Any, dev: list[Example], version: str) -> Temperatures:
    """Fit the intent and tag temperatures, then the utterance-confidence map, on dev."""
    raws = infer(model, tokenizer, [e.text for e in dev])
    intents = model.schema.intent_index()
    t_intent = calibration.fit_temperature(
        torch.stack([r.intent_logits for r in raws]), torch.tensor([intents[e.intent] for e in dev])
    )
    word_logits = [r.word_tag_logits for r in raws if r.word_tag_logits.shape[0]]
    word_targets = [torch.tensor(word_tags(e, model.schema)) for e in dev if e.text]
    t_tag = (
        calibration.fit_temperature(torch.cat(word_logits), torch.cat(word_targets))
        if word_logits
        else 1.0
    )
    temps = Temperatures(intent=t_intent, tag=t_tag)
    preds = [
        decode(e.id, e.text, r, model.schema, temps, version)
        for e, r in zip(dev, raws, strict=True)
    ]
    correct = [
        p.intent == e.intent
        and sorted((x.type, x.start, x.end) for x in p.entities)
        == sorted((x.type, x.start, x.end) for x in e.entities)
        for e, p in zip(dev, preds, strict=True)
    ]
    scale, shift = calibration.fit_utterance_map(
        [p.raw_confidence or 0.0 for p in preds],
        correct,  # decode always records it
    )
    return Temperatures(t_intent, t_tag, scale, shift)
