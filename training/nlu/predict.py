"""Prediction: normalised text -> intent with alternatives, entities with spans, confidence.

``NLUModel.predict([(id, text), ...])`` is what the loop calls (``predict`` loads a checkpoint
first). Each prediction is an ``earmark.core.predictions.NLUPrediction``: ``text`` (the
normalised text the spans refer to), ``intent``, ``intent_confidence``, the top 3
``alternatives``, ``entities`` with spans, value and confidence, ``confidence``,
``raw_confidence`` and ``model_version``.

Entities are decoded on whole words of the normalised text (the best tag path that obeys
BIO, by Viterbi), so ``text[start:end] == value`` always holds. ``confidence`` is the calibrated utterance confidence of
``training.nlu.calibration``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from earmark.core.predictions import IntentAlternative, NLUPrediction, PredictedEntity
from earmark.core.text import normalize
from training.nlu.calibration import raw_utterance_score, utterance_confidence
from training.nlu.model import JointNLU, Temperatures, load_model
from training.nlu.schema import OUTSIDE, LabelSchema
from training.nlu.tokenize import (
    allowed_transitions,
    decode_words,
    encode,
    first_token_of_words,
    viterbi,
    words_to_entity,
)


@dataclass(frozen=True)
class RawOutput:
    """Uncalibrated model output for one text: ``(n_intents,)`` and ``(n_words, n_tags)`` logits."""

    intent_logits: torch.Tensor
    word_tag_logits: torch.Tensor


@torch.no_grad()
def infer(
    model: JointNLU, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 64
) -> list[RawOutput]:
    """Run the model on normalised texts (eval mode); one ``RawOutput`` per text."""
    was_training = model.training
    model.eval()
    outputs: list[RawOutput] = []
    n_tags = len(model.schema.tags)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        batch, word_ids = encode(tokenizer, chunk, max_length=model.settings.max_length)
        intent_logits, tag_logits = model(batch["input_ids"], batch["attention_mask"])
        for i, text in enumerate(chunk):
            n_words = len(text.split())
            words = torch.zeros(n_words, n_tags)
            words[:, 0] = 20.0  # words cut off by max_length decode as O
            for w, pos in first_token_of_words(word_ids[i]).items():
                if w < n_words:
                    words[w] = tag_logits[i, pos]
            outputs.append(RawOutput(intent_logits[i].float(), words))
    model.train(was_training)
    return outputs


def decode(
    uid: str,
    text: str,
    raw: RawOutput,
    schema: LabelSchema,
    temps: Temperatures,
    model_version: str,
) -> NLUPrediction:
    """The prediction of one normalised text (see the module docstring); probabilities and
    confidences are rounded to 6 decimals, as the predictions files hold them."""
    probs = torch.softmax(raw.intent_logits / temps.intent, dim=-1)
    top = torch.argsort(probs, descending=True)[:3].tolist()
    log_probs = torch.log_softmax(raw.word_tag_logits / temps.tag, dim=-1)
    path = viterbi(log_probs, *allowed_transitions(schema.tags))
    tags = [schema.tags[j] for j in path]
    word_conf = [float(log_probs[w, j].exp()) for w, j in enumerate(path)]
    entities: list[PredictedEntity] = []
    entity_conf: list[float] = []
    for etype, first, stop in decode_words(tags):
        ent = words_to_entity(text, etype, first, stop)
        conf = float(torch.tensor(word_conf[first:stop]).prod())
        entity_conf.append(conf)
        entities.append(
            PredictedEntity(
                type=etype,
                start=ent.start,
                end=ent.end,
                value=text[ent.start : ent.end],
                confidence=round(conf, 6),
            )
        )
    o_conf = [c for c, t in zip(word_conf, tags, strict=True) if t == OUTSIDE]
    raw_score = raw_utterance_score(probs.tolist(), entity_conf, o_conf)
    return NLUPrediction(
        id=uid,
        text=text,
        intent=schema.intents[top[0]],
        intent_confidence=round(float(probs[top[0]]), 6),
        alternatives=tuple(
            IntentAlternative(schema.intents[j], round(float(probs[j]), 6)) for j in top
        ),
        entities=tuple(entities),
        confidence=round(
            utterance_confidence(raw_score, temps.utterance_scale, temps.utterance_shift), 6
        ),
        raw_confidence=round(raw_score, 6),
        model_version=model_version,
    )


class NLUModel:
    """A loaded NLU checkpoint, following the ``training.model.Model`` contract."""

    kind = "nlu"

    def __init__(self, model: JointNLU, tokenizer: Any, model_version: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_version = model_version

    @classmethod
    def load(cls, checkpoint_dir: str | Path) -> NLUModel:
        from training.checkpoint import read_meta

        meta = read_meta(checkpoint_dir, kind="nlu")
        model, tokenizer = load_model(checkpoint_dir)
        return cls(model, tokenizer, meta.model_version)

    def predict_texts(
        self, texts: Iterable[tuple[str, str]], *, batch_size: int = 64
    ) -> Iterator[NLUPrediction]:
        """Predictions for ``(id, text)`` pairs, in order; texts are normalised first."""
        it = iter(texts)
        while chunk := list(itertools.islice(it, 256)):
            norm = [normalize(t) for _, t in chunk]
            raws = infer(self.model, self.tokenizer, norm, batch_size=batch_size)
            for (uid, _), text, raw in zip(chunk, norm, raws, strict=True):
                yield decode(
                    uid,
                    text,
                    raw,
                    self.model.schema,
                    self.model.settings.temperatures,
                    self.model_version,
                )

    def predict(
        self, texts: Iterable[tuple[str, str]], /, *, on_bad_audio: Any = None
    ) -> Iterator[NLUPrediction]:
        """The ``Model`` contract: ``predict_texts`` on ``(id, text)`` pairs (the loop passes
        what the ASR heard, or a row's own text); ``on_bad_audio`` is never called (the NLU
        reads no audio)."""
        return self.predict_texts(texts)

    def save(self, directory: str | Path) -> None:
        from earmark.core.errors import CheckpointError
        from training.checkpoint import CheckpointMeta, read_meta, write_meta
        from training.nlu.model import save_model

        save_model(self.model, self.tokenizer, directory)
        try:
            meta = read_meta(directory, kind="nlu")
        except CheckpointError:
            meta = CheckpointMeta(kind="nlu", model_version=self.model_version, config={})
        write_meta(directory, meta)


def predict(
    checkpoint_dir: str | Path, texts: Iterable[tuple[str, str]]
) -> Iterator[NLUPrediction]:
    """Predict ``(id, text)`` pairs with the NLU checkpoint in ``checkpoint_dir`` (lazily)."""
    return NLUModel.load(checkpoint_dir).predict_texts(texts)
