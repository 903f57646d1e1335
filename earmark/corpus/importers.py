"""Importers: bring existing audio and labels into one earmark manifest, idempotently.

Each ``import_x(src, out_dir, ...)`` writes ``out_dir/manifest.jsonl`` and
``out_dir/quarantine.jsonl`` and returns an ``ImportReport``. Source audio is referenced by
absolute path, never copied (it is resampled to 16 kHz when loaded); ``duration`` and
``sample_rate`` are recorded from the file. Every audio file is inspected
(``earmark.core.audio.inspect_audio``); a broken one is quarantined with its reason and never
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
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from earmark.core.audio import AudioConfig, inspect_audio
from earmark.core.errors import AudioError, CorpusError, ManifestError
from earmark.core.fileio import write_jsonl
from earmark.core.manifest import (
    KNOWN_KEYS,
    ManifestRow,
    iter_rows,
    parse_row,
    read_manifest,
    write_manifest,
)
from earmark.core.records import Entity, Label, LabelSource, Utterance
from earmark.core.say import Progress
from earmark.core.text import normalize_labelled

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
    _write_import(report, existing, [row for row, _ in added.values()], quarantine)
    return report


def _write_import(
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
                obj["id"] = _path_id(rel)
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


# --- SLURP -----------------------------------------------------------------------------------


def _compact(text: str) -> str:
    return "".join(text.split()).lower()


def slurp_spans(
    sentence: str, tokens: Sequence[str], spans: Sequence[Sequence[int]]
) -> tuple[list[tuple[int, int] | None], bool]:
    """Map SLURP token spans onto character offsets ``[start, end)`` of ``sentence``.

    Tokens and sentence are compared without whitespace and case ("Friday"/"friday",
    "grassmarket"/"grass market"). When their letters differ (the tokens sometimes carry a
    misspelling: "obaba" for "obama"), a character alignment (difflib) places the span and
    it is widened to whole words of the sentence. Returns ``(offsets, exact)``: ``None`` for
    a span that cannot be placed; ``exact`` is False when the alignment was needed.
    """
    positions = [i for i, ch in enumerate(sentence) if not ch.isspace()]
    letters = "".join(sentence[i] for i in positions).lower()
    bounds: list[tuple[int, int]] = []
    cursor = 0
    for tok in tokens:
        bounds.append((cursor, cursor + len(_compact(tok))))
        cursor += len(_compact(tok))
    joined = "".join(_compact(t) for t in tokens)
    exact = joined == letters
    to_sentence: dict[int, int] = {}
    if exact:
        to_sentence = dict(enumerate(positions))
    else:
        matcher = difflib.SequenceMatcher(None, letters, joined, autojunk=False)
        for a, b, size in matcher.get_matching_blocks():
            for k in range(size):
                to_sentence[b + k] = positions[a + k]
    out: list[tuple[int, int] | None] = []
    for span in spans:
        if not span or min(span) < 0 or max(span) >= len(tokens):
            out.append(None)
            continue
        lo, hi = bounds[min(span)][0], bounds[max(span)][1]
        mapped = [to_sentence[k] for k in range(lo, hi) if k in to_sentence]
        if not mapped:
            out.append(None)
            continue
        start, end = min(mapped), max(mapped) + 1
        while start > 0 and not sentence[start - 1].isspace():
            start -= 1
        while end < len(sentence) and not sentence[end].isspace():
            end += 1
        out.append((start, end))
    return out, exact


def _slurp_item(obj: Any, where: str, recordings: Path | None, warnings: list[str]) -> Candidate:
    """One SLURP line -> a seed-labelled candidate (or a quarantine item naming the problem)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("sentence"), str):
        return QuarantineItem(
            where, None, "invalid_row", "not a SLURP object with a 'sentence'", where
        )
    sid = obj.get("slurp_id")
    uid = f"slurp-{sid}" if sid is not None else f"slurp-{where.rsplit(':', 1)[-1]}"
    sentence, intent = obj["sentence"], obj.get("intent")
    if not isinstance(intent, str) or not intent:
        return QuarantineItem(uid, None, "invalid_row", f"missing 'intent' (slurp_id {sid})", where)
    tokens = [str(t.get("surface", "")) for t in obj.get("tokens", []) if isinstance(t, dict)]
    raw_entities = [e for e in obj.get("entities", []) if isinstance(e, dict)]
    offsets, exact = slurp_spans(sentence, tokens, [e.get("span") or [] for e in raw_entities])
    entities: list[Entity] = []
    for ent, off in zip(raw_entities, offsets, strict=True):
        surfaces = " ".join(tokens[i] for i in ent.get("span") or [] if 0 <= i < len(tokens))
        if off is None:
            warnings.append(
                f"{where} (slurp_id {sid}): entity {ent.get('type')} {surfaces!r} (tokens "
                f"{ent.get('span')}) cannot be placed in the sentence; dropped"
            )
            continue
        entities.append(Entity(str(ent.get("type")), *off))
        if not exact and _compact(sentence[off[0] : off[1]]) != _compact(surfaces):
            warnings.append(
                f"{where} (slurp_id {sid}): tokens {surfaces!r} differ from the sentence; entity "
                f"{ent.get('type')} placed on {sentence[off[0] : off[1]]!r}"
            )
    spans = sorted(entities, key=lambda e: e.start)
    if any(b.start < a.end for a, b in itertools.pairwise(spans)):
        return QuarantineItem(
            uid, None, "invalid_row", f"overlapping entity spans (slurp_id {sid})", where
        )
    text, norm_entities = normalize_labelled(sentence, tuple(spans))
    if not text:
        return QuarantineItem(uid, None, "invalid_row", f"empty sentence (slurp_id {sid})", where)
    audio: Path | None = None
    if recordings is not None:
        names = [r.get("file") for r in obj.get("recordings", []) if isinstance(r, dict)]
        found = [recordings / n for n in names if isinstance(n, str) and (recordings / n).is_file()]
        if not found:
            listed = ", ".join(str(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")
            return QuarantineItem(
                uid,
                None,
                "not_found",
                f"none of the {len(names)} recording(s) listed ({listed or 'none'}) is in "
                f"{recordings}; check --recordings",
                where,
            )
        audio = found[0]
    extra = {"slurp_id": sid, "sentence": sentence}
    return _item(
        uid, audio, where=where, text=text, intent=intent, entities=norm_entities, extra=extra
    )


def import_slurp(
    src: str | Path,
    out_dir: str | Path,
    *,
    recordings: str | Path | None = None,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """SLURP JSONL (e.g. ``devel.jsonl``): one seed-labelled utterance per line.

    id ``slurp-{slurp_id}``; ``text`` is the normalised sentence (``normalize_labelled``), the
    original kept as ``sentence``; ``intent`` as given; entities from token spans
    (``slurp_spans``). Lines whose spans cannot be placed exactly are named in
    ``report.warnings``. With ``recordings`` (SLURP's audio folder), the line's audio is the
    first file of its ``recordings`` list that exists there (one utterance per request, so the
    pool holds each request once); without it, rows have no audio (a text-only NLU corpus).
    """
    path = Path(src)
    if not path.is_file():
        raise CorpusError(f"{path}: SLURP file not found (e.g. slurp/devel.jsonl)")
    rec_dir = None if recordings is None else Path(recordings)
    if rec_dir is not None and not rec_dir.is_dir():
        raise CorpusError(f"{rec_dir}: recordings folder not found")
    warnings: list[str] = []
    candidates: list[Candidate] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                candidates.append(
                    QuarantineItem(
                        f"{path.name}:{line_no}",
                        None,
                        "invalid_row",
                        f"not valid JSON: {exc.msg}",
                        where,
                    )
                )
                continue
            candidates.append(_slurp_item(obj, where, rec_dir, warnings))
    return run_import(
        "slurp", path, out_dir, candidates, config=config, progress=progress, warnings=warnings
    )


# --- FSDD ------------------------------------------------------------------------------------


def import_fsdd(
    src: str | Path,
    out_dir: str | Path,
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """The Free Spoken Digit Dataset: ``src`` is its ``recordings`` folder (or the folder above).

    ``{digit}_{speaker}_{n}.wav`` -> id ``fsdd-{digit}-{speaker}-{n}``, text the digit's name
    ("zero".."nine"), speaker the name (private), no intent. A ``.wav`` named otherwise is
    quarantined (``bad_name``). The audio is 8 kHz and is resampled when loaded.
    """
    root = Path(src)
    if (root / "recordings").is_dir():
        root = root / "recordings"
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder (--format fsdd wants FSDD's recordings folder)")
    parsed: list[tuple[tuple[int, str, int], Candidate]] = []
    for p in root.glob("*.wav"):
        m = FSDD_NAME.match(p.name)
        if m is None:
            detail = "the name is not {digit}_{speaker}_{n}.wav, so the digit spoken is unknown; rename it"
            parsed.append(
                ((10, p.name, 0), QuarantineItem(p.stem, str(p), "bad_name", detail, str(p)))
            )
            continue
        digit, speaker, n = int(m.group(1)), m.group(2), int(m.group(3))
        uid = f"fsdd-{digit}-{speaker}-{n}"
        item = _item(uid, p, where=str(p), speaker=speaker, text=DIGIT_NAMES[digit])
        parsed.append(((digit, speaker, n), item))
    if not parsed:
        raise CorpusError(f"{root}: no .wav files found (expected {{digit}}_{{speaker}}_{{n}}.wav)")
    candidates = [c for _, c in sorted(parsed, key=lambda kv: kv[0])]
    return run_import("fsdd", root, out_dir, candidates, config=config, progress=progress)


IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "folder": import_folder,
    "manifest": import_manifest,
    "slurp": import_slurp,
    "fsdd": import_fsdd,
}
