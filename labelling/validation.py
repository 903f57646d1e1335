"""Answers -> labels: what an annotator said, checked before anyone trains on it.

``validate_*`` turn an ``Answer`` (``labelling.convert``) into a ``Label`` with source human,
or give the reason it is rejected; ``answers_agree`` says whether two annotators of one task
said the same.
"""

from __future__ import annotations

import itertools
import re

from earmark.core.records import Entity, Label, LabelSource
from earmark.core.text import normalize
from labelling.convert import Answer, Span


def validate_transcription(answer: Answer, annotator: str) -> tuple[Label | None, str | None]:
    """``(label, None)`` when the transcript can be trained on, else ``(None, reason)``."""
    text = " ".join((answer.text or "").split())
    if not text:
        return None, "empty transcript"
    return Label("", text=text, source=LabelSource.HUMAN, version=annotator), None


def _word_bounds(text: str) -> tuple[set[int], set[int]]:
    starts = {m.start() for m in re.finditer(r"\S+", text)}
    ends = {m.end() for m in re.finditer(r"\S+", text)}
    return starts, ends


def validate_understanding(
    answer: Answer,
    annotator: str,
    intents: tuple[str, ...],
    entity_types: tuple[str, ...],
    confirmed_text: str | None,
) -> tuple[Label | None, str | None]:
    """Check intent and spans against the schema, the text they were drawn on and the transcript.

    ``confirmed_text`` is the utterance's accepted transcript when there is one: spans drawn
    on another text disagree with it. ``(label, None)`` when it can be trained on, else
    ``(None, reason)``: the first problem found.
    """
    text = answer.text or ""
    reason = _intent_problem(answer, intents) or _text_problem(text, confirmed_text)
    if reason:
        return None, reason
    if answer.problems:
        return None, answer.problems[0]
    entities: list[Entity] = []
    for span in answer.spans:
        reason = _span_problem(span, text, entity_types)
        if reason:
            return None, reason
        entities.append(Entity(span.type, span.start, span.end))
    for a, b in itertools.pairwise(entities):
        if b.start < a.end:
            return None, f"spans {a.type} and {b.type} overlap"
    label = Label(
        "",
        text=text,
        intent=answer.intent,
        entities=tuple(entities),
        source=LabelSource.HUMAN,
        version=annotator,
    )
    return label, None


def _intent_problem(answer: Answer, intents: tuple[str, ...]) -> str | None:
    """Why the answer's intent cannot be used (an empty text first), or None."""
    if not (answer.text or "").strip():
        return "empty transcript"
    if answer.intent is None:
        return "no intent chosen"
    if answer.extra_intents:
        return f"more than one intent chosen: {[answer.intent, *answer.extra_intents]}"
    if answer.intent not in intents:
        return f"intent {answer.intent!r} is not in the schema"
    return None


def _text_problem(text: str, confirmed_text: str | None) -> str | None:
    """The spans were drawn on a text other than the confirmed transcript."""
    if confirmed_text is not None and normalize(confirmed_text) != normalize(text):
        return (
            f"transcript and spans disagree: the spans are on {text!r} but the confirmed "
            f"transcript is {confirmed_text!r}"
        )
    return None


def _span_problem(span: Span, text: str, entity_types: tuple[str, ...]) -> str | None:
    """Why one span cannot be used on ``text``: type, bounds, drawn text, word boundaries."""
    if span.type not in entity_types:
        return f"entity type {span.type!r} is not in the schema"
    if not 0 <= span.start < span.end <= len(text):
        return f"span {span.type}[{span.start},{span.end}) is outside the text (length {len(text)})"
    if span.text is not None and span.text != text[span.start : span.end]:
        return (
            f"span {span.type}[{span.start},{span.end}) says {span.text!r} but the text "
            f"there is {text[span.start : span.end]!r}"
        )
    starts, ends = _word_bounds(text)
    if span.start not in starts or span.end not in ends:
        return (
            f"transcript and spans disagree: span {span.type} "
            f"{text[span.start : span.end]!r} cuts through a word"
        )
    return None


def answers_agree(a: Answer, b: Answer) -> bool:
    """Two annotators agree: same normalised transcript; for understanding also intent and spans."""
    if normalize(a.text or "") != normalize(b.text or ""):
        return False
    if a.kind == "understanding":
        return a.intent == b.intent and {(s.type, s.start, s.end) for s in a.spans} == {
            (s.type, s.start, s.end) for s in b.spans
        }
    return True
