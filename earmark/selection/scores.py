"""Per-utterance scores: what the models said about each pool utterance, one JSONL line each."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.errors import ManifestError
from earmark.core.fileio import write_jsonl
from earmark.core.predictions import ASRHypothesis, NLUPrediction


@dataclass(frozen=True)
class UtteranceScores:
    """Model outputs for one utterance, all optional (an ASR-only loop has no NLU fields).

    ``asr_confidence``/``nlu_confidence`` are calibrated utterance confidences in [0, 1];
    ``asr_entropy`` is the mean normalised frame entropy in [0, 1]; ``nlu_margin`` is the
    intent probability margin top1 - top2; ``nlu_entropy`` the normalised intent entropy;
    ``embedding`` a fixed-size vector (e.g. mean-pooled encoder states) for diversity.
    """

    id: str
    asr_confidence: float | None = None
    asr_entropy: float | None = None
    nlu_confidence: float | None = None
    nlu_margin: float | None = None
    nlu_entropy: float | None = None
    embedding: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UtteranceScores:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("embedding") is not None:
            kwargs["embedding"] = tuple(float(x) for x in kwargs["embedding"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.embedding is not None:
            out["embedding"] = [round(x, 5) for x in self.embedding]
        return out


def write_scores(path: str | Path, scores: Iterable[UtteranceScores]) -> int:
    """Write scores atomically as JSONL; returns the count."""
    return write_jsonl(path, (s.to_dict() for s in scores))


def read_scores(path: str | Path) -> list[UtteranceScores]:
    out = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(UtteranceScores.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ManifestError(f"{path}:{line_no}: not a scores line: {exc}") from exc
    return out


def text_embedding(text: str, dim: int = 128) -> tuple[float, ...]:
    """Hashed character-trigram counts of a hypothesis, L2-normalised: what ``Diverse`` spreads over.

    Cheap and model-free, so a batch is spread over what was said; two utterances of the same
    phrase land on the same point whoever spoke them.
    """
    vec = np.zeros(dim)
    padded = f"  {text} "
    for i in range(len(padded) - 2):
        vec[zlib.crc32(padded[i : i + 3].encode()) % dim] += 1.0
    norm = np.linalg.norm(vec)
    return tuple((vec / norm if norm else vec).round(5).tolist())


def scores_from_predictions(
    asr: ASRHypothesis | None, nlu: NLUPrediction | None, uid: str
) -> UtteranceScores:
    """Per-utterance scores from one ASR hypothesis and/or NLU prediction.

    ``asr_entropy`` is the mean over words of ``1 - word confidence`` (the word confidence is
    entropy-based), ``nlu_margin`` the gap between the two most likely intents, ``nlu_entropy``
    the normalised entropy of the intent alternatives.
    """
    fields: dict[str, Any] = {"id": uid}
    text = ""
    if asr is not None:
        fields["asr_confidence"] = float(asr.confidence)
        fields["asr_entropy"] = (
            float(np.mean([1 - w.confidence for w in asr.words])) if asr.words else 1.0
        )
        text = asr.text
    if nlu is not None:
        fields["nlu_confidence"] = float(nlu.confidence)
        probs = np.array([a.p for a in nlu.alternatives] or [nlu.intent_confidence])
        fields["nlu_margin"] = float(probs[0] - (probs[1] if len(probs) > 1 else 0.0))
        p = probs / probs.sum() if probs.sum() > 0 else probs
        fields["nlu_entropy"] = float(-(p * np.log(p + 1e-12)).sum() / np.log(max(len(p), 2)))
        text = text or nlu.text
    fields["embedding"] = text_embedding(text)
    return UtteranceScores(**fields)
