"""What an import leaves behind: ``out_dir``'s manifest and quarantine, and the report.

``read_existing`` and ``read_quarantine`` load what an earlier import wrote into ``out_dir``;
``write_import`` writes both files back, atomically, and fills in the report's counts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earmark.core.errors import CorpusError, ManifestError
from earmark.core.fileio import write_jsonl
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest

MANIFEST_NAME = "manifest.jsonl"
QUARANTINE_NAME = "quarantine.jsonl"


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


def read_existing(out_dir: Path) -> list[ManifestRow]:
    """The rows of ``out_dir``'s manifest (none if absent); raises ``CorpusError`` if it is
    damaged, before anything is written."""
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


def read_quarantine(path: Path) -> dict[str, QuarantineItem]:
    """The quarantine at ``path`` by ``QuarantineItem.key`` (empty if absent)."""
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


def write_import(
    report: ImportReport,
    existing: list[ManifestRow],
    added: list[ManifestRow],
    quarantine: dict[str, QuarantineItem],
) -> None:
    """Write the manifest (``existing`` then ``added``) and the quarantine, atomically, and
    record the counts in ``report``. A quarantined id that is now in the manifest is dropped
    from the quarantine, unless it was quarantined as a ``duplicate_id``."""
    report.imported = len(added)
    report.total_rows = write_manifest(report.manifest, [*existing, *added])
    kept = {row.id for row in existing} | {row.id for row in added}
    write_jsonl(
        report.quarantine,
        (
            q.to_dict()
            for q in quarantine.values()
            if q.reason == "duplicate_id" or q.id not in kept
        ),
    )
