"""The smart-speaker grammar behind ``earmark corpus synth``: intents, templates, slot values.

The data lives in ``earmark/corpus/data/``: ``intent_templates.yaml`` (intent -> templates)
and ``slot_values.yaml`` (slot -> values); dates and times are generated here. The template
syntax is ``earmark.corpus.template``'s. Intent and entity names follow SLURP
(``scenario_action`` intents, ``artist_name``-style entity types). Texts come out already in
the normalised spoken form (``earmark.core.text.normalize(text) == text``: lower case, numbers and
times in words) and entity spans are character offsets recorded while a template is filled,
never found by searching.

The data is loaded once, at import; a data file that is not a mapping of names to non-empty
lists of strings raises ``CorpusError`` naming the file and the key.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import yaml

from earmark.core.errors import CorpusError
from earmark.core.records import Entity, Label, LabelSource
from earmark.core.text import number_to_words, ordinal_to_words
from earmark.corpus.template import fill as fill_template

# --- generated slot values ---------------------------------------------------------------


def _times() -> tuple[str, ...]:
    """Clock times as spoken: "noon", "half past two", "seven forty five p m", ..."""
    hours = [number_to_words(h) for h in range(1, 13)]
    minutes = ["", "fifteen", "thirty", "forty five", "oh five", "ten", "twenty", "fifty"]
    out: list[str] = ["noon", "midnight"]
    for h in hours:
        out += [f"{h} o'clock", f"half past {h}", f"quarter past {h}", f"quarter to {h}"]
        for m in minutes:
            base = f"{h} {m}".strip()
            out += [f"{base} a m", f"{base} p m"]
            if m:
                out.append(base)
    return tuple(out)


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _dates() -> tuple[str, ...]:
    """Dates as spoken: "tomorrow", "next friday", "january ninth", "the ninth of january", ..."""
    out = [
        "today",
        "tomorrow",
        "the day after tomorrow",
        "this weekend",
        "next weekend",
        "next week",
    ]
    out += list(_DAYS) + [f"this {d}" for d in _DAYS] + [f"next {d}" for d in _DAYS]
    for i, month in enumerate(_MONTHS):
        for day in (1 + i % 5, 9 + i % 7, 17 + i % 5, 21 + i % 8):
            out += [f"{month} {ordinal_to_words(day)}", f"the {ordinal_to_words(day)} of {month}"]
    return tuple(out)


GENERATED_SLOTS: Mapping[str, Callable[[], tuple[str, ...]]] = {"date": _dates, "time": _times}

# --- the data files ----------------------------------------------------------------------

# libyaml's loader where PyYAML has it: the same values, loaded faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_data(name: str) -> dict[Any, Any]:
    """``earmark/corpus/data/{name}`` parsed; ``CorpusError`` unless it is YAML of a mapping."""
    text = resources.files("earmark.corpus.data").joinpath(name).read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise CorpusError(f"{name}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{name}: expected a mapping of names to lists")
    return data


def _strings(name: str, key: object, values: object) -> tuple[str, ...]:
    """``values`` as a tuple; ``CorpusError`` unless a non-empty list of strings under a name."""
    if not isinstance(key, str):
        raise CorpusError(f"{name}: {key!r} is not a name")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise CorpusError(f"{name}: {key} must be a non-empty list of strings")
    return tuple(values)


def load_slot_values() -> dict[str, tuple[str, ...]]:
    """Slot key -> values, in the order of ``slot_values.yaml``.

    An entry that is null there is one of ``GENERATED_SLOTS`` and takes its generated values;
    each generated slot must have an entry.
    """
    name = "slot_values.yaml"
    raw = _read_data(name)
    missing = sorted(set(GENERATED_SLOTS) - set(raw))
    if missing:
        raise CorpusError(f"{name}: no entry for the generated slot(s) {', '.join(missing)}")
    slots: dict[str, tuple[str, ...]] = {}
    for key, values in raw.items():
        if values is None and key in GENERATED_SLOTS:
            slots[key] = GENERATED_SLOTS[key]()
        else:
            slots[key] = _strings(name, key, values)
    return slots


def load_intent_templates() -> dict[str, tuple[str, ...]]:
    """Intent -> templates, in the order of ``intent_templates.yaml``."""
    name = "intent_templates.yaml"
    return {key: _strings(name, key, values) for key, values in _read_data(name).items()}


SLOT_VALUES: Mapping[str, tuple[str, ...]] = load_slot_values()
INTENT_TEMPLATES: Mapping[str, tuple[str, ...]] = load_intent_templates()
INTENTS: tuple[str, ...] = tuple(sorted(INTENT_TEMPLATES))
ENTITY_TYPES: tuple[str, ...] = tuple(sorted({k.split(":")[0] for k in SLOT_VALUES}))

# --- sampling ----------------------------------------------------------------------------


def fill(template: str, rng: random.Random) -> tuple[str, tuple[Entity, ...]]:
    """Fill ``template`` with random choices and ``SLOT_VALUES``; returns ``(text, entities)``
    with exact spans (``earmark.corpus.template.fill``). Raises ``CorpusError`` for a
    malformed template or an unknown slot."""
    return fill_template(template, rng, SLOT_VALUES)


def sample(
    rng: random.Random, intents: Sequence[str] = INTENTS
) -> tuple[str, str, tuple[Entity, ...]]:
    """One utterance: ``(text, intent, entities)``; intents uniform over ``intents`` (every
    intent of the grammar by default), then templates uniform."""
    intent = rng.choice(intents)
    text, entities = fill(rng.choice(INTENT_TEMPLATES[intent]), rng)
    return text, intent, entities


def generate(n: int, seed: int, *, prefix: str = "u") -> list[tuple[str, Label]]:
    """``n`` labelled utterances ``[(id, Label), ...]``, a pure function of ``(n, seed)``.

    Ids are ``{prefix}{index:05d}``; labels are seed labels (text, intent, entities).
    """
    if n < 0:
        raise CorpusError(f"cannot generate {n} utterances")
    rng = random.Random(f"earmark-grammar-{seed}")
    out: list[tuple[str, Label]] = []
    for i in range(n):
        uid = f"{prefix}{i:05d}"
        text, intent, entities = sample(rng)
        out.append((uid, Label(uid, text, intent, entities, LabelSource.SEED)))
    return out
