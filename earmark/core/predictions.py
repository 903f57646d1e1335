"""What the models said, as records: an ASR hypothesis and an NLU prediction, and their files.

A model's output is not a ``Label`` (what a person or the seed set vouches for): these frozen
records are what ``training`` produces and what the loop, selection and ``labelling`` read,
joined to utterances by id. Like ``earmark.core.records`` they import nothing heavy.

A predictions file holds one JSON object per line, keys in this order (the format of every
run folder's ``*_predictions.jsonl`` and of ``earmark transcribe`` / ``earmark predict nlu``)::

    {"id", "text", "confidence", "model_version",
     "words": [{"word", "confidence", "start", "end"}]}                       # ASRHypothesis
    {"id", "text", "intent", "intent_confidence", "alternatives": [{"intent", "p"}],
     "entities": [{"type", "start", "end", "value", "confidence"}],
     "confidence", "raw_confidence", "model_version"}                         # NLUPrediction

``model_version`` and ``raw_confidence`` are left out when unknown. Values are written as the
records hold them; the models round when they make them (confidences to 6 decimals, word times
to 3), so a file read and written again has the same bytes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

from earmark.core.errors import PredictionError
from earmark.core.fileio import write_jsonl
from earmark.core.records import Entity


class _Fields:
    """Typed values of one decoded JSON object; a missing or wrong one raises
    ``PredictionError`` naming its key (``where`` prefixes the keys of a nested object)."""

    def __init__(self, obj: Any, where: str = "") -> None:
        if not isinstance(obj, dict):
            what = f"'{where.rstrip('.')}'" if where else "the line"
            raise PredictionError(f"{what} must be a JSON object, got {type(obj).__name__}")
        self.obj = obj
        self.where = where

    def _fail(self, key: str, message: str) -> NoReturn:
        raise PredictionError(f"'{self.where}{key}' {message}")

    def _get(self, key: str) -> Any:
        if key not in self.obj:
            self._fail(key, "is missing")
        return self.obj[key]

    def string(self, key: str, *, non_empty: bool = False) -> str:
        value = self._get(key)
        if not isinstance(value, str) or (non_empty and not value.strip()):
            self._fail(key, f"must be a {'non-empty ' if non_empty else ''}string, got {value!r}")
        return value

    def optional_string(self, key: str) -> str | None:
        return None if self.obj.get(key) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self._fail(key, f"must be an integer, got {value!r}")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self._fail(key, f"must be a number, got {value!r}")
        return float(value)

    def unit(self, key: str) -> float:
        """A probability or confidence: a number in [0, 1]."""
        value = self._get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0.0 <= value <= 1.0  # False for NaN too
        ):
            self._fail(key, f"must be a number in [0, 1], got {value!r}")
        return float(value)

    def optional_unit(self, key: str) -> float | None:
        return None if self.obj.get(key) is None else self.unit(key)

    def objects(self, key: str) -> list[tuple[str, Any]]:
        """``(where, item)`` for each item of the list under ``key``; absent reads as empty."""
        value = self.obj.get(key, [])
        if not isinstance(value, list):
            self._fail(key, f"must be a list, got {type(value).__name__}")
        return [(f"{self.where}{key}[{i}].", item) for i, item in enumerate(value)]


# -- ASR -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ASRWord:
    """One hypothesis word: its confidence in [0, 1] and its time in seconds into the audio."""

    word: str
    confidence: float
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "confidence": self.confidence, "start": self.start,
                "end": self.end}  # fmt: skip

    @classmethod
    def from_dict(cls, obj: Any, where: str = "") -> ASRWord:
        f = _Fields(obj, where)
        return cls(f.string("word"), f.unit("confidence"), f.number("start"), f.number("end"))


@dataclass(frozen=True)
class ASRHypothesis:
    """What the recogniser heard in one utterance.

    ``text`` is the hypothesis words joined by spaces; ``confidence`` the calibrated utterance
    confidence in [0, 1] (higher = more sure); ``words`` each word with its confidence and
    times; ``model_version`` the checkpoint's version when known.
    """

    WHAT: ClassVar[str] = "an ASR hypothesis"

    id: str
    text: str
    confidence: float
    words: tuple[ASRWord, ...] = ()
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "confidence": self.confidence}
        if self.model_version is not None:
            out["model_version"] = self.model_version
        out["words"] = [w.to_dict() for w in self.words]
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> ASRHypothesis:
        """The record of one decoded line; ``PredictionError`` names the key that is wrong."""
        f = _Fields(obj)
        return cls(
            id=f.string("id", non_empty=True),
            text=f.string("text"),
            confidence=f.unit("confidence"),
            words=tuple(ASRWord.from_dict(w, where) for where, w in f.objects("words")),
            model_version=f.optional_string("model_version"),
        )


# -- NLU -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentAlternative:
    """One of the most likely intents and its (calibrated) probability."""

    intent: str
    p: float

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "p": self.p}

    @classmethod
    def from_dict(cls, obj: Any, where: str = "") -> IntentAlternative:
        f = _Fields(obj, where)
        return cls(f.string("intent"), f.unit("p"))


@dataclass(frozen=True)
class PredictedEntity:
    """A predicted span of the prediction's text, ``text[start:end] == value`` (character
    offsets, end exclusive), and the probability that the whole span is tagged so."""

    type: str
    start: int
    end: int
    value: str
    confidence: float

    @property
    def entity(self) -> Entity:
        """The span as the ``Entity`` of a label on the same text."""
        return Entity(self.type, self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "end": self.end, "value": self.value,
                "confidence": self.confidence}  # fmt: skip

    @classmethod
    def from_dict(cls, obj: Any, where: str = "") -> PredictedEntity:
        f = _Fields(obj, where)
        return cls(
            f.string("type"), f.integer("start"), f.integer("end"), f.string("value"),
            f.unit("confidence"),
        )  # fmt: skip


@dataclass(frozen=True)
class NLUPrediction:
    """What the NLU understood of one text.

    ``text`` is the normalised text the spans refer to; ``intent`` the most likely intent and
    ``intent_confidence`` its probability; ``alternatives`` the top intents, most likely first;
    ``confidence`` the calibrated utterance confidence in [0, 1] that intent and every entity
    are right, ``raw_confidence`` the score it was calibrated from (when recorded).
    """

    WHAT: ClassVar[str] = "an NLU prediction"

    id: str
    text: str
    intent: str
    intent_confidence: float
    confidence: float
    alternatives: tuple[IntentAlternative, ...] = ()
    entities: tuple[PredictedEntity, ...] = ()
    raw_confidence: float | None = None
    model_version: str | None = None

    def span_problem(self) -> str | None:
        """Why the entities do not fit ``text``: a span outside it or empty, a ``value`` that
        is not the text there, an empty type, two spans that overlap. None when they fit (the
        NLU's own decoding always makes them fit)."""
        for e in self.entities:
            if not e.type:
                return f"the entity at [{e.start}, {e.end}) has no type"
            if not 0 <= e.start < e.end <= len(self.text):
                return (
                    f"{e.type}[{e.start}, {e.end}) is outside the text (length {len(self.text)}) "
                    "or empty"
                )
            if e.value != self.text[e.start : e.end]:
                return f"{e.type} says {e.value!r} but the text there is {self.text[e.start : e.end]!r}"
        spans = sorted(self.entities, key=lambda e: e.start)
        for a, b in itertools.pairwise(spans):
            if b.start < a.end:
                return f"{a.type}[{a.start}, {a.end}) and {b.type}[{b.start}, {b.end}) overlap"
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "intent": self.intent,
            "intent_confidence": self.intent_confidence,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "entities": [e.to_dict() for e in self.entities],
            "confidence": self.confidence,
        }
        if self.raw_confidence is not None:
            out["raw_confidence"] = self.raw_confidence
        if self.model_version is not None:
            out["model_version"] = self.model_version
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> NLUPrediction:
        """The record of one decoded line; ``PredictionError`` names the key that is wrong."""
        f = _Fields(obj)
        return cls(
            id=f.string("id", non_empty=True),
            text=f.string("text"),
            intent=f.string("intent", non_empty=True),
            intent_confidence=f.unit("intent_confidence"),
            confidence=f.unit("confidence"),
            alternatives=tuple(
                IntentAlternative.from_dict(a, where) for where, a in f.objects("alternatives")
            ),
            entities=tuple(
                PredictedEntity.from_dict(e, where) for where, e in f.objects("entities")
            ),
            raw_confidence=f.optional_unit("raw_confidence"),
            model_version=f.optional_string("model_version"),
        )


# -- files -----------------------------------------------------------------------------------

Prediction = ASRHypothesis | NLUPrediction
PredictionT = TypeVar("PredictionT", ASRHypothesis, NLUPrediction)


def write_predictions(path: str | Path, predictions: Iterable[Prediction]) -> int:
    """Atomically replace ``path`` with one line per record, in order (``earmark.core.fileio``);
    returns the count. ``predictions`` is consumed lazily, so it may be a model's stream."""
    return write_jsonl(path, (p.to_dict() for p in predictions))


def iter_predictions(path: str | Path, kind: type[PredictionT]) -> Iterator[PredictionT]:
    """The ``kind`` records of a predictions file, lazily, in file order (blank lines skipped).

    Raises ``PredictionError`` when the file does not exist, and naming file and line (and
    the id when it can be read) for a line that is not UTF-8, not JSON or not a ``kind``.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"predictions file not found: {path}")
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if raw.strip():
                yield _parse_line(raw, kind, path, n)


def read_predictions(path: str | Path, kind: type[PredictionT]) -> dict[str, PredictionT]:
    """``{utterance id: record}`` of a predictions file (see ``iter_predictions``)."""
    return {p.id: p for p in iter_predictions(path, kind)}


def _parse_line(raw: bytes, kind: type[PredictionT], path: Path, n: int) -> PredictionT:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PredictionError(f"{path}:{n}: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PredictionError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
    try:
        return kind.from_dict(obj)
    except PredictionError as exc:
        uid = obj.get("id") if isinstance(obj, dict) else None
        who = f" (id {uid})" if isinstance(uid, str) else ""
        raise PredictionError(f"{path}:{n}{who}: not {kind.WHAT}: {exc}") from None
