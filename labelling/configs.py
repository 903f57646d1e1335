"""The two projects' label configs: rendered from ``configs/studio/*.xml`` for a schema, and read back.

Everything else finds tag names here, from the label config itself (as the Label Studio ML
backend does), never from constants: the ``Audio``/``Text`` object; ``Labels`` on the audio
(the model's uncertain words) or on the text (entity types); the multiple-choice ``Choices``
(flags, stored by their ``alias`` codes); the single-choice ``Choices`` (intent); the first
``TextArea`` is the transcript and a later one the annotator's comment.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

import yaml

from earmark.core.errors import StudioError
from earmark.core.manifest import iter_manifest

TEMPLATES = Path(__file__).resolve().parents[1] / "configs" / "studio"
Kind = Literal["transcription", "understanding"]
KINDS: tuple[Kind, ...] = ("transcription", "understanding")
SELECT_LAYOUT_ABOVE = 12  # more intents than this: a drop-down instead of radio buttons


@dataclass(frozen=True)
class Schema:
    """The intents and entity types annotators may choose from."""

    intents: tuple[str, ...]
    entity_types: tuple[str, ...]


def schema_from_manifests(paths: Iterable[str | Path]) -> Schema:
    """Intents and entity types used by the labelled rows of the given manifests (sorted)."""
    intents: set[str] = set()
    types: set[str] = set()
    for path in paths:
        for row in iter_manifest(path):
            if row.label is None:
                continue
            if row.label.intent:
                intents.add(row.label.intent)
            types.update(e.type for e in row.label.entities)
    return Schema(tuple(sorted(intents)), tuple(sorted(types)))


def schema_from_file(path: str | Path) -> Schema:
    """A YAML or JSON file ``{intents: [...], entity_types: [...]}``."""
    path = Path(path)
    if not path.is_file():
        raise StudioError(f"schema file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("intents"), list):
        raise StudioError(f"{path}: expected a mapping with a list 'intents' (and 'entity_types')")
    return Schema(
        tuple(str(i) for i in data["intents"]), tuple(str(t) for t in data.get("entity_types", []))
    )


def merge_schemas(*schemas: Schema) -> Schema:
    intents = sorted({i for s in schemas for i in s.intents})
    types = sorted({t for s in schemas for t in s.entity_types})
    return Schema(tuple(intents), tuple(types))


def render(kind: Kind, schema: Schema, templates: Path = TEMPLATES) -> str:
    """The label config XML of one project for ``schema``."""
    text = (templates / f"{kind}.xml").read_text()
    if kind == "understanding":
        if not schema.intents:
            raise StudioError(
                "the schema has no intents: give labelled manifests or a schema file to "
                "`earmark studio setup`"
            )
        labels = "\n".join(f"    <Label value={quoteattr(t)}/>" for t in schema.entity_types)
        choices = "\n".join(f"    <Choice value={quoteattr(i)}/>" for i in schema.intents)
        layout = ' layout="select"' if len(schema.intents) > SELECT_LAYOUT_ABOVE else ""
        text = (
            text.replace("{{ENTITY_LABELS}}", labels)
            .replace("{{INTENT_CHOICES}}", choices)
            .replace("{{INTENT_LAYOUT}}", layout)
        )
    return text.strip()


def instructions(kind: Kind, templates: Path = TEMPLATES) -> str:
    return (templates / f"{kind}_instructions.html").read_text().strip()


@dataclass(frozen=True)
class Tags:
    """Tag names and values of one project, read from its label config."""

    kind: Kind
    object_name: str  # the Audio or Text tag
    data_key: str  # the task data field it shows ($audio -> "audio")
    transcript: str | None  # TextArea holding the transcript (transcription only)
    comment: str | None  # TextArea for the annotator's comment
    flags: str | None  # multiple-choice Choices
    flag_codes: dict[str, str]  # alias (stored) -> value (shown)
    intent: str | None  # single-choice Choices
    intents: tuple[str, ...]
    entities: str | None  # Labels on the Text
    entity_types: tuple[str, ...]
    unsure: str | None  # Labels on the Audio (the model's uncertain words)
    unsure_label: str | None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def parse(label_config: str) -> Tags:
    """Find the tags of a transcription or understanding label config (see the module doc)."""
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as exc:
        raise StudioError(f"label config is not valid XML: {exc}") from exc
    elements = list(root.iter())
    audio = next((e for e in elements if e.tag == "Audio"), None)
    text = next((e for e in elements if e.tag == "Text"), None)
    obj = audio if audio is not None else text
    if obj is None:
        raise StudioError("label config has neither an <Audio> nor a <Text> tag")
    kind: Kind = "transcription" if audio is not None else "understanding"
    name = obj.get("name", "")
    areas = [e.get("name", "") for e in elements if e.tag == "TextArea"]
    choices = [e for e in elements if e.tag == "Choices"]
    flags = next((c for c in choices if c.get("choice") == "multiple"), None)
    intent = next((c for c in choices if c.get("choice", "single") != "multiple"), None)
    labels = [e for e in elements if e.tag == "Labels"]
    ents = next((lb for lb in labels if lb.get("toName") == name and kind == "understanding"), None)
    unsure = next(
        (lb for lb in labels if lb.get("toName") == name and kind == "transcription"), None
    )

    def values(tag: ET.Element | None, child: str) -> tuple[str, ...]:
        return tuple(c.get("value", "") for c in tag.iter(child)) if tag is not None else ()

    transcript = areas[0] if kind == "transcription" and areas else None
    comment_areas = areas[1:] if kind == "transcription" else areas
    return Tags(
        kind=kind,
        object_name=name,
        data_key=obj.get("value", "").lstrip("$"),
        transcript=transcript,
        comment=comment_areas[-1] if comment_areas else None,
        flags=flags.get("name") if flags is not None else None,
        flag_codes={
            str(c.get("alias") or c.get("value", "")): c.get("value", "")
            for c in (flags.iter("Choice") if flags is not None else [])
        },
        intent=intent.get("name") if intent is not None else None,
        intents=values(intent, "Choice"),
        entities=ents.get("name") if ents is not None else None,
        entity_types=values(ents, "Label"),
        unsure=unsure.get("name") if unsure is not None else None,
        unsure_label=(values(unsure, "Label") or (None,))[0],
    )
