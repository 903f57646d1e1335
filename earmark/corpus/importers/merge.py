"""The shared import step: candidates from any format merged into ``out_dir``'s manifest.

A format turns its source into ``Candidate``s (a ``SourceItem`` to import, or a
``QuarantineItem`` naming why not) and ends with ``run_import``. ``source_item`` builds a
candidate; ``path_id`` is the id scheme for files named only by their path.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from earmark.core.audio import AudioConfig, inspect_audio
from earmark.core.errors import AudioError
from earmark.core.fileio import private_dir
from earmark.core.manifest import ManifestRow
from earmark.core.records import Entity, Label, LabelSource, Utterance
from earmark.core.say import Progress
from earmark.corpus.importers.report import (
    MANIFEST_NAME,
    QUARANTINE_NAME,
    ImportReport,
    QuarantineItem,
    read_existing,
    read_quarantine,
    write_import,
)


@dataclass(frozen=True)
class SourceItem:
    """A row an importer proposes, with ``where`` it came from (file or ``file:line``)."""

    row: ManifestRow
    where: str | None = None


Candidate = SourceItem | QuarantineItem


def path_id(rel: str) -> str:
    """A stable id from a relative path: ``spk1/a b.wav`` -> ``spk1__a_b.wav-<sha1[:8]>``.

    Folders become ``__``; characters outside ``[A-Za-z0-9._-]`` become ``_`` and, because that
    loses information, the id then ends with a hash of the path, keeping ids unique.
    """
    parts = Path(rel).as_posix().strip("/").split("/")
    slug = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)
    if slug != "__".join(parts):
        slug += "-" + hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return slug


def source_item(
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
    quarantined as ``duplicate_id``. Both files are written atomically. ``progress(done,
    total)`` is called once per candidate.
    """
    config = config or AudioConfig()
    out = Path(out_dir)
    private_dir(out)  # audio and labels: its owner's only
    report = ImportReport(fmt, str(source), out / MANIFEST_NAME, out / QUARANTINE_NAME)
    report.warnings.extend(warnings)
    existing = read_existing(out)
    present = {row.id for row in existing}
    quarantine = read_quarantine(report.quarantine)
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
    write_import(report, existing, [row for row, _ in added.values()], quarantine)
    return report
