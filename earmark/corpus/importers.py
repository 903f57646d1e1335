"""Importers: bring existing audio and labels into one earmark manifest, idempotently.

Each ``import_x(src, out_dir, ...)`` writes ``out_dir/manifest.jsonl`` and
``out_dir/quarantine.jsonl`` and returns an ``ImportReport``. Source audio is referenced by
absolute path, never copied (it is resampled to 16 kHz when loaded); ``duration`` and
``sample_rate`` are recorded from the file. Every audio file is inspected
(``earmark.audio.inspect_audio``); a broken one is quarantined with its reason and never
stops the import. Re-running into an existing ``out_dir`` keeps every row already there,
skips ids already present, and never duplicates an id ("nothing already imported is lost").

Formats:

- ``folder``: every audio file under a folder (recursive), unlabelled; ids from the path.
- ``manifest``: an earmark JSONL manifest, or a CSV with a header (``audio`` required;
  ``id``, ``text``, ``intent``, ``speaker`` optional, other columns kept as extra fields).
- ``slurp``: SLURP JSONL (text, intent, entities from token spans); audio when the
  recordings folder is given.
- ``fsdd``: the Free Spoken Digit Dataset (``{digit}_{speaker}_{n}.wav``).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from earmark.audio import AudioConfig, inspect_audio
from earmark.errors import AudioError, CorpusError, ManifestError
from earmark.manifest import ManifestRow, iter_rows, parse_row, read_manifest, write_manifest
from earmark.records import Entity, Label, LabelSource, Utterance
from earmark.text import normalize_labelled

MANIFEST_NAME = "manifest.jsonl"
QUARANTINE_NAME = "quarantine.jsonl"
FORMATS = ("folder", "manifest", "slurp", "fsdd")
#: File endings the folder importer picks up (what libsndfile reads).
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64"}
)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")

#: ``progress(done, total)`` is called once per source item.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class QuarantineItem:
    """One source item left out of the manifest: why, and where it came from."""

    id: str
    audio: str | None
    reason: str
    detail: str
    where: str | None = None

    @property
    def key(self) -> str:
        """Quarantine entries are replaced by key on re-import (duplicates keep their place)."""
        return f"{self.id}@{self.where}" if self.reason == "duplicate_id" else self.id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "audio": self.audio}
        out.update(reason=self.reason, detail=self.detail)
        if self.where is not None:
            out["where"] = self.where
        return out


@dataclass
class ImportReport:
    """What one import did. ``imported`` counts rows added by this run."""

    format: str
    source: str
    manifest: Path
    quarantine: Path
    imported: int = 0
    already_present: int = 0
    total_rows: int = 0
    quarantined: list[QuarantineItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> Counter[str]:
        """Quarantined items of this run per reason code."""
        return Counter(item.reason for item in self.quarantined)


def _path_id(rel: str) -> str:
    """A stable id from a relative path: ``spk1/a b.wav`` -> ``spk1__a_b.wav-<sha1[:8]>``.

    Folders become ``__``; characters outside ``[A-Za-z0-9._-]`` become ``_`` and, because that
    loses information, the id then ends with a hash of the path, keeping ids unique.
    """
    parts = Path(rel).as_posix().strip("/").split("/")
    slug = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)
    if slug != "__".join(parts):
        slug += "-" + hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return slug


# --- the shared import step ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceItem:
    """A row an importer proposes, with ``where`` it came from (file or ``file:line``)."""

    row: ManifestRow
    where: str | None = None


Candidate = SourceItem | QuarantineItem


def _read_existing(out_dir: Path) -> list[ManifestRow]:
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return []
    try:
        return read_manifest(path)
    except ManifestError as exc:
        raise CorpusError(
            f"{path} already exists and has problems, so importing into it could lose rows; "
            f"fix it (see `earmark corpus check {path}`) or choose another --out. Nothing was "
            f"written.\n{exc}"
        ) from exc


def _read_quarantine(path: Path) -> dict[str, QuarantineItem]:
    out: dict[str, QuarantineItem] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
                item = QuarantineItem(
                    str(obj["id"]), obj.get("audio"), obj["reason"], obj["detail"], obj.get("where")
                )
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # our own file; a damaged line is rebuilt by the next import
            out[item.key] = item
    return out


def _write_jsonl(path: Path, objects: Iterable[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for obj in objects:
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _with_audio_facts(row: ManifestRow, config: AudioConfig) -> ManifestRow:
    """The row with duration and sample rate from its audio; raises ``AudioError``."""
    if row.utterance.audio is None:
        return row
    info = inspect_audio(row.utterance.audio, config=config)
    utt = row.utterance.with_(duration=round(info.duration, 4), sample_rate=info.sample_rate)
    return ManifestRow(utt, row.label)


def run_import(
    fmt: str,
    source: str | Path,
    out_dir: str | Path,
    candidates: Sequence[Candidate],
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
    warnings: Sequence[str] = (),
) -> ImportReport:
    """Merge ``candidates`` into ``out_dir``'s manifest; the step every importer ends with.

    Rows whose id is already in the manifest are skipped without touching their audio; new
    rows are inspected and kept or quarantined; a second row with an id seen in this run is
    quarantined as ``duplicate_id``. Both files are written atomically.
    """
    config = config or AudioConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ImportReport(fmt, str(source), out / MANIFEST_NAME, out / QUARANTINE_NAME)
    report.warnings.extend(warnings)
    existing = _read_existing(out)
    present = {row.id for row in existing}
    quarantine = _read_quarantine(report.quarantine)
    added: dict[str, tuple[ManifestRow, str | None]] = {}
    for done, cand in enumerate(candidates, start=1):
        if progress is not None:
            progress(done, len(candidates))
        item: QuarantineItem | None = None
        if isinstance(cand, QuarantineItem):
            item = cand
        elif cand.row.id in present:
            report.already_present += 1
        elif cand.row.id in added:
            first = added[cand.row.id][1] or "an earlier item"
            item = QuarantineItem(
                cand.row.id,
                cand.row.utterance.audio,
                "duplicate_id",
                f"the id is already used by {first}; give each item a unique id",
                cand.where,
            )
        else:
            try:
                row = _with_audio_facts(cand.row, config)
            except AudioError as exc:
                item = QuarantineItem(cand.row.id, exc.path, exc.reason, exc.detail, cand.where)
            else:
                added[row.id] = (row, cand.where)
                quarantine.pop(row.id, None)
        if item is not None:
            quarantine[item.key] = item
            report.quarantined.append(item)
    report.imported = len(added)
    report.total_rows = write_manifest(
        report.manifest, [*existing, *(row for row, _ in added.values())]
    )
    kept = present | set(added)
    _write_jsonl(
        report.quarantine,
        (q.to_dict() for q in quarantine.values() if q.reason == "duplicate_id" or q.id not in kept),
    )
    return report


def _item(
    uid: str,
    audio: Path | None,
    *,
    where: str | None = None,
    speaker: str | None = None,
    text: str | None = None,
    intent: str | None = None,
    entities: tuple[Entity, ...] = (),
    extra: dict[str, Any] | None = None,
) -> SourceItem:
    """A labelled (seed) or unlabelled candidate; audio as an absolute path."""
    audio_str = None if audio is None else os.path.abspath(audio)
    utt = Utterance(uid, audio_str, speaker, extra=MappingProxyType(dict(extra or {})))
    label = None
    if text is not None or intent is not None:
        label = Label(uid, text, intent, entities, LabelSource.SEED)
    return SourceItem(ManifestRow(utt, label), where)


# --- folder ----------------------------------------------------------------------------------


def import_folder(
    src: str | Path,
    out_dir: str | Path,
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Every audio file under ``src`` (recursive, hidden files skipped) as an unlabelled pool.

    Ids come from the path relative to ``src`` (``_path_id``), so re-importing finds them.
    """
    root = Path(src)
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder (--format folder wants a folder of audio files)")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and not p.is_dir()
    )
    if not files:
        raise CorpusError(
            f"{root}: no audio files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})"
        )
    candidates: list[Candidate] = [
        _item(_path_id(p.relative_to(root).as_posix()), p, where=str(p)) for p in files
    ]
    return run_import("folder", root, out_dir, candidates, config=config, progress=progress)


# --- manifest / CSV --------------------------------------------------------------------------

CSV_COLUMNS = ("id", "audio", "text", "intent", "speaker")


def _manifest_candidates(src: Path) -> list[Candidate]:
    out: list[Candidate] = []
    for row, problems in iter_rows(src):
        if problems:
            first = problems[0]
            uid = first.id or f"{src.name}:{first.line}"
            reason = "duplicate_id" if problems[0].message.startswith("duplicate id") else "invalid_row"
            detail = "; ".join(f"field '{p.field}': {p.message}" for p in problems)
            audio = row.utterance.audio if row is not None else None
            out.append(QuarantineItem(uid, audio, reason, detail, f"{src}:{first.line}"))
        elif row is not None:
            out.append(SourceItem(row))
    return out


def _csv_candidates(src: Path) -> list[Candidate]:
    base = src.resolve().parent
    out: list[Candidate] = []
    with open(src, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "audio" not in columns:
            raise CorpusError(
                f"{src}: the CSV header has no 'audio' column (found: {', '.join(columns) or 'none'});"
                f" expected columns {', '.join(CSV_COLUMNS)} (only audio is required)"
            )
        for raw in reader:
            line = reader.line_num
            cells = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            obj: dict[str, Any] = {k: v for k, v in cells.items() if v}
            where = f"{src}:{line}"
            if "id" not in obj:
                if "audio" not in obj:
                    out.append(
                        QuarantineItem(
                            f"{src.name}:{line}", None, "invalid_row", "no id and no audio", where
                        )
                    )
                    continue
                full = Path(os.path.normpath(base / obj["audio"]))
                rel = full.relative_to(base).as_posix() if full.is_relative_to(base) else str(full)
                obj["id"] = _path_id(rel)
            row, problems = parse_row(obj, base_dir=base, path=str(src), line=line)
            if problems or row is None:
                detail = "; ".join(f"field '{p.field}': {p.message}" for p in problems)
                out.append(QuarantineItem(str(obj["id"]), obj.get("audio"), "invalid_row", detail, where))
                continue
            out.append(SourceItem(row, where))
    return out


def import_manifest(
    src: str | Path,
    out_dir: str | Path,
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """An earmark JSONL manifest, or a CSV (``.csv``) with a header row.

    Lines that fail validation are quarantined (``invalid_row``) with every problem named.
    Relative audio paths are resolved against ``src``'s folder and written relative to
    ``out_dir`` when under it, absolute otherwise. CSV ids are generated from the audio path
    when the ``id`` column is missing or empty.
    """
    path = Path(src)
    if not path.is_file():
        raise CorpusError(f"{path}: manifest not found (--format manifest wants a .jsonl or .csv)")
    if path.suffix.lower() == ".csv":
        candidates = _csv_candidates(path)
    else:
        candidates = _manifest_candidates(path)
    return run_import("manifest", path, out_dir, candidates, config=config, progress=progress)
