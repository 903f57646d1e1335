"""The template syntax of the built-in grammar: parse a template, fill it with random choices.

Small on purpose:

- ``{type}`` a slot filled from ``slot_values[type]`` and labelled as entity ``type``;
  ``{type:list}`` labels entity ``type`` but draws from ``slot_values["type:list"]``.
- ``(a|b|c)`` one alternative, uniformly; an empty alternative ``(|x)`` is allowed.
- ``[x]`` optional, taken half of the time.

Groups nest and may contain slots. Words are rejoined with single spaces, so optional parts
never leave double spaces behind. A malformed template or a slot without values raises
``CorpusError`` naming it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from earmark.core.errors import CorpusError
from earmark.core.records import Entity


@dataclass(frozen=True)
class _Slot:
    entity: str  # the entity type written to the label
    values: str  # the key of the slot values drawn from


@dataclass(frozen=True)
class _Choice:
    options: tuple[tuple[object, ...], ...]  # each option is a sequence of parts
    optional: bool


_TOKEN = re.compile(r"\{[a-z_:]+\}|[()\[\]|]|[^{}()\[\]|]+")


def _parse(template: str) -> tuple[object, ...]:
    """Template -> nested parts: ``str`` (literal), ``_Slot`` or ``_Choice``."""
    tokens = _TOKEN.findall(template)
    if "".join(tokens) != template:
        raise CorpusError(f"template {template!r}: unexpected characters")
    pos = 0

    def sequence(closers: str) -> tuple[list[tuple[object, ...]], str | None]:
        nonlocal pos
        options: list[tuple[object, ...]] = []
        parts: list[object] = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok in ("(", "["):
                inner, closer = sequence(")" if tok == "(" else "]")
                if closer != (")" if tok == "(" else "]"):
                    raise CorpusError(f"template {template!r}: unbalanced {tok!r}")
                parts.append(_Choice(tuple(inner), optional=tok == "["))
            elif tok == "|":
                options.append(tuple(parts))
                parts = []
            elif tok in (")", "]"):
                if tok not in closers:
                    raise CorpusError(f"template {template!r}: unexpected {tok!r}")
                options.append(tuple(parts))
                return options, tok
            elif tok.startswith("{"):
                key = tok[1:-1]
                parts.append(_Slot(key.split(":")[0], key))
            else:
                parts.append(tok)
        options.append(tuple(parts))
        return options, None

    options, closer = sequence("")
    if closer is not None or len(options) != 1:
        raise CorpusError(f"template {template!r}: '|' outside a group or unbalanced brackets")
    return options[0]


@cache
def _parsed(template: str) -> tuple[object, ...]:
    return _parse(template)


def _expand(
    parts: Sequence[object],
    rng: random.Random,
    slot_values: Mapping[str, Sequence[str]],
    out: list[tuple[str | None, str]],
) -> None:
    """Append ``(entity type or None, text)`` pieces for ``parts`` to ``out``, drawing from ``rng``."""
    for part in parts:
        if isinstance(part, str):
            out.append((None, part))
        elif isinstance(part, _Slot):
            values = slot_values.get(part.values)
            if not values:
                raise CorpusError(f"slot {{{part.values}}} has no values in SLOT_VALUES")
            out.append((part.entity, rng.choice(values)))
        elif isinstance(part, _Choice):
            if part.optional:
                if rng.random() < 0.5:
                    for option in part.options:
                        _expand(option, rng, slot_values, out)
            else:
                _expand(rng.choice(part.options), rng, slot_values, out)


def fill(
    template: str, rng: random.Random, slot_values: Mapping[str, Sequence[str]]
) -> tuple[str, tuple[Entity, ...]]:
    """Fill ``template`` with random choices from ``rng`` and values from ``slot_values``;
    returns ``(text, entities)`` with exact spans.

    Literal pieces are split into words and everything is rejoined with single spaces; an
    entity's span is recorded as its value is appended, so ``text[start:end]`` is the value.
    """
    pieces: list[tuple[str | None, str]] = []
    _expand(_parsed(template), rng, slot_values, pieces)
    words: list[str] = []
    entities: list[Entity] = []
    length = 0
    for etype, piece in pieces:
        chunks = [piece] if etype is not None else piece.split()
        for chunk in chunks:
            start = length + (1 if words else 0)
            words.append(chunk)
            length = start + len(chunk)
            if etype is not None:
                entities.append(Entity(etype, start, length))
    return " ".join(words), tuple(entities)
