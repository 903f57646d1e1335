"""The one JSONL manifest format, used for import, training, evaluation and selection.

One JSON object per line::

    {"id": "u0001", "audio": "audio/u0001.wav", "text": "play taylor swift",
     "intent": "play_music", "entities": [{"type": "artist_name", "start": 5, "end": 17}],
     "speaker": "s03"}

``audio`` is relative to the manifest's folder or absolute; ``text``/``intent``/``entities``
are absent for unlabelled utterances; entity offsets are characters into ``text`` (an
optional ``value`` must equal ``text[start:end]``). Optional provenance: ``source``
(seed|human|model), ``version`` (annotator or model version), ``confidence``; optional
facts: ``duration`` (seconds), ``sample_rate``. Unknown fields are kept in
``Utterance.extra`` and written back unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeGuard

from earmark.core.errors import ManifestError
from earmark.core.fileio import write_jsonl
from earmark.core.records import Entity, Label, LabelSource, Utterance

if TYPE_CHECKING:
    pass

UTTERANCE_KEYS = ("id", "audio", "speaker", "duration", "sample_rate")
LABEL_KEYS = ("text", "intent", "entities", "source", "version", "confidence")
KNOWN_KEYS = frozenset(UTTERANCE_KEYS + LABEL_KEYS)
ENTITY_KEYS = frozenset({"type", "start", "end", "value"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one manifest line; ``str()`` is the message the user sees."""

    path: str
    line: int
    id: str | None
    field: str
    message: str
    code: str = "invalid"  # "invalid" | "duplicate_id" | "audio_not_found"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        who = f" (id {self.id})" if self.id else ""
        return f"{where}{who} field '{self.field}': {self.message}"


@dataclass(frozen=True)
class ManifestRow:
    """One manifest line: the utterance, and its label when the line carries one."""

    utterance: Utterance
    label: Label | None = None

    @property
    def id(self) -> str:
        return self.utterance.id


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_entities(raw: Any, text: str | None, add) -> tuple[Entity, ...]:
    if not isinstance(raw, list):
        add("entities", f"must be a list, got {type(raw).__name__}")
        return ()
    if raw and text is None:
        add("entities", "entities given without 'text'")
        return ()
    out: list[Entity] = []
    for i, ent in enumerate(raw):
        name = f"entities[{i}]"
        if not isinstance(ent, dict):
            add(name, f"must be an object, got {type(ent).__name__}")
            continue
        unknown = sorted(set(ent) - ENTITY_KEYS)
        if unknown:
            add(name, f"unknown key(s) {unknown}; allowed: type, start, end, value")
        etype, start, end = ent.get("type"), ent.get("start"), ent.get("end")
        if not isinstance(etype, str) or not etype:
            add(f"{name}.type", "missing or not a non-empty string")
            continue
        if not _is_int(start) or not _is_int(end):
            add(f"{name}.start/end", f"must be integers, got {start!r} and {end!r}")
            continue
        if text is None:  # unreachable: entities without text returned above
            continue
        if not 0 <= start < end <= len(text):
            add(
                name,
                f"span [{start}, {end}) is outside the text (length {len(text)}) or empty",
            )
            continue
        if "value" in ent and ent["value"] != text[start:end]:
            add(
                f"{name}.value",
                f"{ent['value']!r} does not match text[{start}:{end}] = {text[start:end]!r}",
            )
            continue
        out.append(Entity(etype, start, end))
    spans = sorted(out, key=lambda e: e.start)
    for a, b in itertools.pairwise(spans):
        if b.start < a.end:
            add(
                "entities",
                f"spans {a.type}[{a.start},{a.end}) and {b.type}[{b.start},{b.end}) overlap",
            )
    return tuple(spans)


def parse_row(
    obj: Any, *, base_dir: Path, path: str = "<manifest>", line: int = 0
) -> tuple[ManifestRow | None, list[Problem]]:
    """Turn one decoded JSON line into a row, collecting every problem instead of stopping.

    Returns ``(row, problems)``; ``row`` is None when the line is unusable.
    """
    problems: list[Problem] = []
    uid = obj.get("id") if isinstance(obj, dict) else None
    uid_str = uid if isinstance(uid, str) else None

    def add(field: str, message: str) -> None:
        problems.append(Problem(path, line, uid_str, field, message))

    if not isinstance(obj, dict):
        add("<line>", f"must be a JSON object, got {type(obj).__name__}")
        return None, problems
    if not isinstance(uid, str) or not uid.strip():
        add("id", "missing or not a non-empty string")
        return None, problems

    audio = obj.get("audio")
    if audio is not None and (not isinstance(audio, str) or not audio):
        add("audio", f"must be a non-empty path string, got {audio!r}")
        audio = None
    if isinstance(audio, str):
        audio = str(Path(audio) if os.path.isabs(audio) else (base_dir / audio))
    speaker = obj.get("speaker")
    if speaker is not None and not isinstance(speaker, str):
        add("speaker", f"must be a string, got {type(speaker).__name__}")
        speaker = None
    duration = obj.get("duration")
    if duration is not None and (not _is_number(duration) or duration <= 0):
        add("duration", f"must be a positive number of seconds, got {duration!r}")
        duration = None
    sample_rate = obj.get("sample_rate")
    if sample_rate is not None and (not _is_int(sample_rate) or sample_rate <= 0):
        add("sample_rate", f"must be a positive integer, got {sample_rate!r}")
        sample_rate = None

    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        add("text", f"must be a string, got {type(text).__name__}")
        text = None
    intent = obj.get("intent")
    if intent is not None and (not isinstance(intent, str) or not intent):
        add("intent", f"must be a non-empty string, got {intent!r}")
        intent = None
    entities = _check_entities(obj.get("entities", []), text, add)
    source_raw = obj.get("source", LabelSource.SEED.value)
    try:
        source = LabelSource(source_raw)
    except ValueError:
        add("source", f"{source_raw!r} is not one of {[s.value for s in LabelSource]}")
        source = LabelSource.SEED
    version = obj.get("version")
    if version is not None and not isinstance(version, str):
        add("version", f"must be a string, got {type(version).__name__}")
        version = None
    confidence = obj.get("confidence")
    if confidence is not None and (not _is_number(confidence) or not 0 <= confidence <= 1):
        add("confidence", f"must be a number in [0, 1], got {confidence!r}")
        confidence = None

    extra = {k: v for k, v in obj.items() if k not in KNOWN_KEYS}
    utt = Utterance(uid, audio, speaker, duration, sample_rate, MappingProxyType(extra))
    label = None
    if text is not None or intent is not None:
        label = Label(uid, text, intent, entities, source, version, confidence)
    return ManifestRow(utt, label), problems


# Bytes that are not UTF-8 decode (with ``surrogateescape``) to lone surrogates U+DC80-U+DCFF,
# which valid UTF-8 never yields: a line holding one was not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                yield line_no, line


def _not_utf8(line: str) -> str | None:
    """What is wrong with a line read with ``surrogateescape`` if it was not UTF-8, else None."""
    bad = _UNDECODABLE.search(line)
    if bad is None:
        return None
    byte = ord(bad.group()) - 0xDC00
    return (
        f"not valid UTF-8 (byte 0x{byte:02x} at character {bad.start() + 1}); "
        "manifests are UTF-8: re-save the file in that encoding"
    )


def iter_rows(
    path: str | Path, *, check_audio: bool = False
) -> Iterator[tuple[ManifestRow | None, list[Problem]]]:
    """Lazily parse a manifest line by line (flat memory but for the set of ids seen).

    Yields ``(row, problems)`` for every non-blank line; duplicates and missing audio files
    (with ``check_audio``) are reported as problems of the later line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base_dir = path.resolve().parent
    seen: dict[str, int] = {}
    for line_no, line in _lines(path):
        if (message := _not_utf8(line)) is not None:
            yield None, [Problem(str(path), line_no, None, "<line>", message)]
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield None, [Problem(str(path), line_no, None, "<line>", f"not valid JSON: {exc.msg}")]
            continue
        row, problems = parse_row(obj, base_dir=base_dir, path=str(path), line=line_no)
        if row is not None:
            if row.id in seen:
                problems.append(
                    Problem(
                        str(path),
                        line_no,
                        row.id,
                        "id",
                        f"duplicate id (first on line {seen[row.id]})",
                        "duplicate_id",
                    )
                )
                row = None
            else:
                seen[row.id] = line_no
        audio = row.utterance.audio if row is not None else None
        if check_audio and row is not None and audio is not None and not os.path.exists(audio):
            problems.append(
                Problem(
                    str(path),
                    line_no,
                    row.id,
                    "audio",
                    f"file not found: {audio}",
                    "audio_not_found",
                )
            )
        yield row, problems


def validate_manifest(path: str | Path, *, check_audio: bool = True) -> list[Problem]:
    """Every problem of every line, in line order (an empty list means the manifest is valid)."""
    problems: list[Problem] = []
    for _, line_problems in iter_rows(path, check_audio=check_audio):
        problems.extend(line_problems)
    return problems


def _raise_for(path: str | Path, problems: list[Problem]) -> None:
    shown = "\n  ".join(str(p) for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    raise ManifestError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}", problems)


def iter_manifest(path: str | Path, *, check_audio: bool = False) -> Iterator[ManifestRow]:
    """Lazily yield valid rows; raises ``ManifestError`` naming the line at the first problem."""
    for row, problems in iter_rows(path, check_audio=check_audio):
        if problems:
            _raise_for(path, problems)
        if row is not None:
            yield row


def read_manifest(path: str | Path, *, check_audio: bool = False) -> list[ManifestRow]:
    """Read a whole manifest; raises ``ManifestError`` listing every problem if any."""
    rows: list[ManifestRow] = []
    problems: list[Problem] = []
    for row, line_problems in iter_rows(path, check_audio=check_audio):
        problems.extend(line_problems)
        if row is not None and not line_problems:
            rows.append(row)
    if problems:
        _raise_for(path, problems)
    return rows


def row_to_dict(row: ManifestRow, base_dir: Path | None = None) -> dict[str, Any]:
    """The JSON object for a row; audio paths under ``base_dir`` are written relative to it."""
    utt, label = row.utterance, row.label
    out: dict[str, Any] = {"id": utt.id}
    if utt.audio is not None:
        audio = Path(utt.audio)
        if base_dir is not None:
            # a relative path in a record made in code is relative to the working directory;
            # in the file it must be relative to the manifest's folder (or absolute)
            audio = audio.resolve()
            with contextlib.suppress(ValueError):
                audio = audio.relative_to(base_dir.resolve())
        out["audio"] = audio.as_posix()
    if utt.duration is not None:
        out["duration"] = round(float(utt.duration), 4)
    if utt.sample_rate is not None:
        out["sample_rate"] = utt.sample_rate
    if label is not None:
        if label.text is not None:
            out["text"] = label.text
        if label.intent is not None:
            out["intent"] = label.intent
        if label.entities and label.text is not None:
            out["entities"] = [e.to_dict(label.text) for e in label.entities]
        if label.source != LabelSource.SEED:
            out["source"] = label.source.value
        if label.version is not None:
            out["version"] = label.version
        if label.confidence is not None:
            out["confidence"] = round(float(label.confidence), 6)
    if utt.speaker is not None:
        out["speaker"] = utt.speaker
    out.update(utt.extra)
    return out


def write_manifest(path: str | Path, rows: Iterable[ManifestRow]) -> int:
    """Write rows atomically (a crash never leaves half a manifest); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base_dir = path.resolve().parent
    return write_jsonl(path, (row_to_dict(row, base_dir) for row in rows))


def manifest_hash(path: str | Path) -> str:
    """sha256 of the manifest's bytes: recorded with checkpoints to say what they were trained on."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
