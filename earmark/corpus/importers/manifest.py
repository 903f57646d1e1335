"""``manifest``: an earmark JSONL manifest, or a CSV with a header row."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from earmark.core.audio import AudioConfig
from earmark.core.errors import CorpusError
from earmark.core.manifest import KNOWN_KEYS, iter_rows, parse_row
from earmark.core.say import Progress
from earmark.corpus.importers.merge import Candidate, SourceItem, path_id, run_import
from earmark.corpus.importers.report import ImportReport, QuarantineItem

CSV_COLUMNS = ("id", "audio", "text", "intent", "speaker")


def _manifest_candidates(src: Path) -> list[Candidate]:
    out: list[Candidate] = []
    for row, problems in iter_rows(src):
        if problems:
            first = problems[0]
            uid = first.id or f"{src.name}:{first.line}"
            reason = "duplicate_id" if problems[0].code == "duplicate_id" else "invalid_row"
            detail = "; ".join(f"field '{p.field}': {p.message}" for p in problems)
            audio = row.utterance.audio if row is not None else None
            out.append(QuarantineItem(uid, audio, reason, detail, f"{src}:{first.line}"))
        elif row is not None:
            out.append(SourceItem(row))
    return out


def _csv_candidates(src: Path) -> tuple[list[Candidate], list[str]]:
    """Candidates from a CSV, and warnings (columns that are ignored)."""
    base = src.resolve().parent
    out: list[Candidate] = []
    warnings: list[str] = []
    with open(src, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "audio" not in columns:
            raise CorpusError(
                f"{src}: the CSV header has no 'audio' column (found: {', '.join(columns) or 'none'});"
                f" expected columns {', '.join(CSV_COLUMNS)} (only audio is required)"
            )
        # Known manifest fields other than the CSV's would arrive as strings: duration and
        # sample rate are measured from the audio anyway, the rest need JSON (use a manifest).
        ignored = sorted((KNOWN_KEYS - set(CSV_COLUMNS)) & set(columns))
        if ignored:
            warnings.append(
                f"{src}: column(s) {', '.join(ignored)} ignored (a CSV carries "
                f"{', '.join(CSV_COLUMNS)} and extra columns; use a JSONL manifest for the rest)"
            )
        for raw in reader:
            line = reader.line_num
            cells = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            obj: dict[str, Any] = {k: v for k, v in cells.items() if v and k not in ignored}
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
                obj["id"] = path_id(rel)
            row, problems = parse_row(obj, base_dir=base, path=str(src), line=line)
            if problems or row is None:
                detail = "; ".join(f"field '{p.field}': {p.message}" for p in problems)
                out.append(
                    QuarantineItem(str(obj["id"]), obj.get("audio"), "invalid_row", detail, where)
                )
                continue
            out.append(SourceItem(row, where))
    return out, warnings


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
    warnings: list[str] = []
    if path.suffix.lower() == ".csv":
        candidates, warnings = _csv_candidates(path)
    else:
        candidates = _manifest_candidates(path)
    return run_import(
        "manifest", path, out_dir, candidates, config=config, progress=progress, warnings=warnings
    )
