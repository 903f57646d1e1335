"""Typed records: what audio exists (``Utterance``) apart from what someone said about it (``Label``).

Both are frozen and joined by the utterance id. This module imports nothing heavy so that
``labelling`` and the CLI can use it without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class LabelSource(StrEnum):
    """Where a label came from. Only ``seed`` and ``human`` labels count as human-verified."""

    SEED = "seed"
    HUMAN = "human"
    MODEL = "model"


@dataclass(frozen=True)
class Entity:
    """A typed span of a transcript: ``text[start:end]`` (character offsets, end exclusive)."""

    type: str
    start: int
    end: int

    def value(self, text: str) -> str:
        return text[self.start : self.end]

    def to_dict(self, text: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "start": self.start, "end": self.end}
        if text is not None:
            out["value"] = self.value(text)
        return out


@dataclass(frozen=True)
class Utterance:
    """Facts about one recording. ``speaker`` is private: it never leaves the machine.

    ``audio`` is an absolute path once read from a manifest (relative paths are resolved
    against the manifest's folder). ``extra`` keeps fields earmark does not know about.
    """

    id: str
    audio: str | None = None
    speaker: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def with_(self, **changes: Any) -> Utterance:
        return replace(self, **changes)


@dataclass(frozen=True)
class Label:
    """What someone (seed data, a human annotator or a model) said about an utterance.

    ``version`` is the pseudonymous annotator id for human labels and the model version for
    model labels. ``confidence`` is in [0, 1] when known.
    """

    utterance_id: str
    text: str | None = None
    intent: str | None = None
    entities: tuple[Entity, ...] = ()
    source: LabelSource = LabelSource.SEED
    version: str | None = None
    confidence: float | None = None

    @property
    def is_human(self) -> bool:
        return self.source in (LabelSource.SEED, LabelSource.HUMAN)

    @property
    def has_transcript(self) -> bool:
        return self.text is not None

    @property
    def has_understanding(self) -> bool:
        return self.intent is not None

    def with_(self, **changes: Any) -> Label:
        return replace(self, **changes)

    def entity_values(self) -> list[tuple[str, str]]:
        """``[(type, value), ...]`` in span order; empty when there is no text."""
        if self.text is None:
            return []
        return [(e.type, e.value(self.text)) for e in sorted(self.entities, key=lambda e: e.start)]
