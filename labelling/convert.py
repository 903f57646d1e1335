"""Our records <-> Label Studio tasks, predictions and annotations (LS JSON stays in this module).

Tasks carry only ``{"ref": <opaque id>, <object data key>: <audio URL or text>}`` plus
predictions, pre-annotations built from the models' records (``earmark.core.predictions``). An annotation comes back as an ``Answer`` (what one annotator said in our terms,
not yet validated); ``labelling.validation`` turns answers into ``Label``\\ s or a rejection
reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from earmark.core.predictions import ASRHypothesis, NLUPrediction, PredictedEntity
from earmark.core.records import Entity
from labelling.configs import Tags

REF_KEY = "ref"


# -- records -> tasks --------------------------------------------------------------------------
def _region_id(prefix: str, i: int) -> str:
    return f"{prefix}{i}"


def transcription_prediction(
    asr: ASRHypothesis, tags: Tags, uncertain_below: float
) -> dict[str, Any]:
    """The model's transcript (editable) and its least sure words as regions on the audio."""
    result: list[dict[str, Any]] = []
    if tags.transcript:
        result.append(
            {
                "id": "asr_text",
                "from_name": tags.transcript,
                "to_name": tags.object_name,
                "type": "textarea",
                "value": {"text": [asr.text]},
            }
        )
    if tags.unsure and tags.unsure_label:
        for i, word in enumerate(asr.words):
            if word.confidence >= uncertain_below:
                continue
            result.append(
                {
                    "id": _region_id("w", i),
                    "from_name": tags.unsure,
                    "to_name": tags.object_name,
                    "type": "labels",
                    "value": {
                        "start": round(word.start, 3),
                        "end": round(max(word.end, word.start + 0.01), 3),
                        "channel": 0,
                        "labels": [tags.unsure_label],
                    },
                }
            )
    return {
        "model_version": asr.model_version or "unknown",
        "score": asr.confidence,
        "result": result,
    }


def understanding_prediction(nlu: NLUPrediction, text: str, tags: Tags) -> dict[str, Any]:
    """Intent pre-selected and entity spans pre-labelled on ``text`` (spans re-anchored by value)."""
    result: list[dict[str, Any]] = []
    if tags.intent and nlu.intent in tags.intents:
        result.append(
            {
                "id": "nlu_intent",
                "from_name": tags.intent,
                "to_name": tags.object_name,
                "type": "choices",
                "value": {"choices": [nlu.intent]},
            }
        )
    if tags.entities:
        for i, ent in enumerate(nlu.entities):
            span = _anchor(ent, nlu.text, text)
            if span is None or ent.type not in tags.entity_types:
                continue
            start, end = span
            result.append(
                {
                    "id": _region_id("e", i),
                    "from_name": tags.entities,
                    "to_name": tags.object_name,
                    "type": "labels",
                    "value": {
                        "start": start,
                        "end": end,
                        "text": text[start:end],
                        "labels": [ent.type],
                    },
                }
            )
    return {
        "model_version": nlu.model_version or "unknown",
        "score": nlu.confidence,
        "result": result,
    }


def _anchor(ent: PredictedEntity, pred_text: str, text: str) -> tuple[int, int] | None:
    """The entity's span in ``text``: its own offsets when the texts agree, else by its value."""
    start, end = ent.start, ent.end
    if pred_text == text:
        return (start, end) if 0 <= start < end <= len(text) else None
    value = ent.value or pred_text[start:end]
    if not value:
        return None
    m = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)
    return (m.start(), m.end()) if m else None


def transcription_task(
    ref: str, audio_url: str, tags: Tags, asr: ASRHypothesis | None, uncertain_below: float
) -> dict[str, Any]:
    task: dict[str, Any] = {"data": {REF_KEY: ref, tags.data_key: audio_url}}
    if asr is not None:
        task["predictions"] = [transcription_prediction(asr, tags, uncertain_below)]
    return task


def understanding_task(
    ref: str, text: str, tags: Tags, nlu: NLUPrediction | None
) -> dict[str, Any]:
    task: dict[str, Any] = {"data": {REF_KEY: ref, tags.data_key: text}}
    if nlu is not None:
        task["predictions"] = [understanding_prediction(nlu, text, tags)]
    return task


# -- our answers -> annotation results (the simulated annotator; round-trip tests) -------------
def _flag_results(tags: Tags, flags: tuple[str, ...], comment: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if flags and tags.flags:
        out.append(
            {
                "id": "flags",
                "from_name": tags.flags,
                "to_name": tags.object_name,
                "type": "choices",
                "value": {"choices": list(flags)},
            }
        )
    if comment and tags.comment:
        out.append(
            {
                "id": "comment",
                "from_name": tags.comment,
                "to_name": tags.object_name,
                "type": "textarea",
                "value": {"text": [comment]},
            }
        )
    return out


def transcription_result(
    text: str, tags: Tags, flags: tuple[str, ...] = (), comment: str | None = None
) -> list[dict[str, Any]]:
    out = []
    if tags.transcript:
        out.append(
            {
                "id": "transcript",
                "from_name": tags.transcript,
                "to_name": tags.object_name,
                "type": "textarea",
                "value": {"text": [text]},
            }
        )
    return out + _flag_results(tags, flags, comment)


def understanding_result(
    text: str,
    intent: str | None,
    entities: tuple[Entity, ...] | list[Entity],
    tags: Tags,
    flags: tuple[str, ...] = (),
    comment: str | None = None,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if intent is not None and tags.intent:
        out.append(
            {
                "id": "intent",
                "from_name": tags.intent,
                "to_name": tags.object_name,
                "type": "choices",
                "value": {"choices": [intent]},
            }
        )
    for i, ent in enumerate(entities):
        out.append(
            {
                "id": _region_id("e", i),
                "from_name": tags.entities,
                "to_name": tags.object_name,
                "type": "labels",
                "value": {
                    "start": ent.start,
                    "end": ent.end,
                    "text": text[ent.start : ent.end],
                    "labels": [ent.type],
                },
            }
        )
    return out + _flag_results(tags, flags, comment)


# -- annotations -> answers --------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """An entity span as the annotator drew it (not yet checked against the text)."""

    type: str
    start: int
    end: int
    text: str | None


@dataclass(frozen=True)
class Answer:
    """What one annotator said in one annotation, in our terms (unvalidated)."""

    kind: str
    cancelled: bool
    text: str | None = None  # transcript typed, or the task's text for understanding
    intent: str | None = None
    spans: tuple[Span, ...] = ()
    flags: tuple[str, ...] = ()
    comment: str | None = None
    extra_intents: tuple[str, ...] = field(default=())
    problems: tuple[str, ...] = ()  # what could not be read (a region without offsets...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cancelled": self.cancelled,
            "text": self.text,
            "intent": self.intent,
            "spans": [s.__dict__ for s in self.spans],
            "flags": list(self.flags),
            "comment": self.comment,
            "extra_intents": list(self.extra_intents),
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        return cls(
            kind=d["kind"],
            cancelled=d["cancelled"],
            text=d.get("text"),
            intent=d.get("intent"),
            spans=tuple(Span(**s) for s in d.get("spans", [])),
            flags=tuple(d.get("flags", [])),
            comment=d.get("comment"),
            extra_intents=tuple(d.get("extra_intents", [])),
            problems=tuple(d.get("problems", [])),
        )


def _texts(item: dict[str, Any]) -> list[str]:
    return [str(t) for t in (item.get("value", {}).get("text") or [])]


def _offset(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_annotation(annotation: dict[str, Any], task_data: dict[str, Any], tags: Tags) -> Answer:
    """Read one annotation's ``result`` with the project's tags.

    Never raises on what an annotator drew: what cannot be read (an entity region without
    integer ``start``/``end``) goes into ``Answer.problems``, and validation rejects it.
    """
    cancelled = bool(annotation.get("was_cancelled"))
    text: str | None = None
    intents: list[str] = []
    spans: list[Span] = []
    flags: list[str] = []
    comment: str | None = None
    problems: list[str] = []
    for item in annotation.get("result") or []:
        name, value = item.get("from_name"), item.get("value") or {}
        if name == tags.transcript and tags.transcript:
            text = " ".join(_texts(item))
        elif name == tags.comment and tags.comment:
            comment = " ".join(_texts(item)) or None
        elif name == tags.flags and tags.flags:
            flags.extend(str(c) for c in value.get("choices", []))
        elif name == tags.intent and tags.intent:
            intents.extend(str(c) for c in value.get("choices", []))
        elif name == tags.entities and tags.entities:
            start, end = _offset(value.get("start")), _offset(value.get("end"))
            for label in value.get("labels", []):
                if start is None or end is None:
                    problems.append(f"entity region {label} has no start/end offsets in the text")
                    continue
                spans.append(Span(str(label), start, end, value.get("text")))
    if tags.kind == "understanding":
        text = str(task_data.get(tags.data_key, ""))
    return Answer(
        kind=tags.kind,
        cancelled=cancelled,
        text=text,
        intent=intents[0] if intents else None,
        spans=tuple(sorted(spans, key=lambda s: (s.start, s.end))),
        flags=tuple(sorted(set(flags))),
        comment=comment,
        extra_intents=tuple(intents[1:]),
        problems=tuple(problems),
    )
