"""Per-utterance scores: what the models said about each pool utterance, one JSONL line each."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from earmark.errors import ManifestError
from earmark.fileio import write_jsonl


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
