"""``earmark forget``: remove utterances (a speaker's, listed ones, a manifest's) from a run.

What goes, for every utterance picked:

- its rows in every JSONL file under the run folder: the corpus manifests when they live there
  (pool, seed, dev, test, answers), each round's training manifests, predictions, scores and
  selections, the quarantine, and the studio state (``labelling.forget``);
- its audio files under the run folder;
- on the Label Studio server: its tasks (annotations and predictions with them) and uploaded
  audio (``labelling.forget.forget_in_studio``); the audit log gets a ``forgotten`` event;
- checkpoints trained with it cannot unlearn it: each round whose training manifests held it
  gets a ``forgotten.json`` marker, later rounds warm-start from the newest unmarked checkpoint
  (or the base), and ``retrain`` trains the last round again at once without it.

Manifests outside the run folder (a corpus kept elsewhere, a base model's training data) are
not changed: the receipt names them and how many of the utterances each holds.

Kill-safe and idempotent: the ids to forget are noted first in ``forget/pending.json`` (0600,
removed at the end), so a run killed half way finishes the job when run again (a speaker's
rows may already be gone from the manifest that named the speaker); a run with nothing left
to remove says so. After removing, every file under the run folder is scanned for the ids and
for the audio (by a hash of its samples, whatever the file's format); what still holds them
is in the receipt (``forget/receipt-<time>.json``, counts and file names, never ids).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from earmark.core.errors import EarmarkError
from earmark.core.fileio import private_dir, write_json
from earmark.core.say import Say, quiet
from earmark.loop.state import RunFolder
from labelling.client import StudioClient
from labelling.forget import StudioRemoval, drop_rows, forget_in_studio, row_id
from labelling.state import State

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
MARKER = "forgotten.json"  # in a round folder: its checkpoints saw forgotten utterances


@dataclass(frozen=True)
class Target:
    """What to forget: a speaker's utterances, listed ids, and/or the ids of a manifest."""

    speaker: str | None = None
    utterances: tuple[str, ...] = ()
    manifest: Path | None = None

    def __post_init__(self) -> None:
        if not (self.speaker or self.utterances or self.manifest):
            raise EarmarkError("forget what? give --speaker, --utterance or --manifest")

    def ids_of_manifest(self) -> set[str]:
        if self.manifest is None:
            return set()
        if not self.manifest.is_file():
            raise EarmarkError(f"{self.manifest}: no such manifest")
        return {i for row in _rows(self.manifest) if (i := row_id(row))}


@dataclass
class Receipt:
    """What ``forget`` did, in counts and file names (relative to the run), never ids."""

    run: str
    at: str
    utterances: int = 0
    removed_rows: dict[str, int] = field(default_factory=dict)
    removed_audio: int = 0
    studio: dict[str, Any] = field(default_factory=dict)
    marked_checkpoints: list[str] = field(default_factory=list)
    retrained: list[str] = field(default_factory=list)
    outside_run: dict[str, int] = field(default_factory=dict)  # manifest -> utterances held
    not_removed: list[str] = field(default_factory=list)  # what could not be, and why
    still_held_by: list[str] = field(default_factory=list)  # files the final scan found

    def nothing_done(self) -> bool:
        counts = [self.studio.get(k, 0) for k in ("tasks", "uploads", "upload_files")]
        return not (self.removed_rows or self.removed_audio or any(counts))

    def summary(self) -> str:
        if self.utterances == 0 or self.nothing_done():
            return "nothing to forget: no file under the run folder or task holds these utterances"
        lines = [
            f"forgot {self.utterances} utterance(s): {sum(self.removed_rows.values())} rows in "
            f"{len(self.removed_rows)} file(s), {self.removed_audio} audio file(s); Label "
            f"Studio: {self.studio.get('tasks', 0)} task(s), {self.studio.get('uploads', 0)} "
            f"upload(s), {self.studio.get('upload_files', 0)} uploaded file(s)"
        ]
        lines += [f"marked (trained with them): {c}" for c in self.marked_checkpoints]
        lines += [f"retrained without them: {c}" for c in self.retrained]
        lines += [
            f"not changed, outside the run: {m} holds {n}" for m, n in self.outside_run.items()
        ]
        lines += [f"not removed: {x}" for x in self.not_removed]
        lines += [f"still held by: {x}" for x in self.still_held_by]
        return "\n".join(lines)


def forget(
    run_dir: str | Path,
    target: Target,
    *,
    connect: Callable[[Path], StudioClient] | None = None,
    retrain: Callable[[RunFolder, Say], list[str]] | None = None,
    say: Say = quiet,
) -> Receipt:
    """Forget ``target``'s utterances in the run at ``run_dir`` (see the module's docstring).

    ``connect`` opens a client for the run's Label Studio (needed only when something was
    pushed there; its failure stops everything before anything is removed). ``retrain``
    trains the last round again and returns the checkpoints it wrote.
    """
    run = RunFolder(run_dir)
    if not run.root.is_dir():
        raise EarmarkError(f"{run.root}: no such run folder")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    receipt = Receipt(run=str(run.root), at=stamp)
    with run.lock():
        pending = run.root / "forget" / "pending.json"
        uids, audio = _find(run, target, pending)
        receipt.utterances = len(uids)
        if uids:
            private_dir(pending.parent)
            write_json(pending, sorted(uids))  # the to-do survives a kill until it is done
        fingerprints = {fp for p in audio if (fp := _fingerprint(p))}
        studio = State.of(run.root)
        if uids and (studio.pushed.exists() or studio.projects_json.exists()):
            if connect is None:
                raise EarmarkError("the run has Label Studio tasks: forget needs its server")
            say(f"removing {len(uids)} utterance(s) from Label Studio")
            with connect(run.root) as client:
                removal = forget_in_studio(client, run.root, uids)
            receipt.studio = _studio(removal)
            receipt.removed_rows.update(removal.rows)
            if removal.data_dir is None:
                receipt.not_removed.append(
                    "uploaded audio files: the server's data folder is not on this machine "
                    "(Label Studio deletes an upload's record, not its file): delete them there"
                )
            elif removal.tasks and not removal.vacuumed:
                receipt.not_removed.append("the server's database was busy: not vacuumed")
        rounds_seen = _drop_run_rows(run, uids, receipt)
        receipt.removed_audio = _delete_audio(run, audio)
        _mark_checkpoints(run, rounds_seen, len(uids), receipt)
        _outside(run, uids, receipt)
        if retrain is not None and not receipt.nothing_done():
            receipt.retrained = retrain(run, say)
        receipt.still_held_by = _scan(run, uids, fingerprints)
        if not receipt.nothing_done():  # a repeated run leaves no second receipt
            out = run.root / "forget" / f"receipt-{stamp}.json"
            write_json(out, asdict(receipt))
        pending.unlink(missing_ok=True)
    return receipt


# -- finding what to forget ---------------------------------------------------------------------
def _files(run: RunFolder, pattern: str) -> Iterator[Path]:
    """Files under the run folder, the Label Studio server's own data folder left out."""
    data = State.of(run.root).paths.data_dir
    for path in sorted(run.root.rglob(pattern)):
        if path.is_file() and data not in path.parents and path.parent.name != "forget":
            yield path


def _rows(path: Path) -> Iterator[Any]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _data_manifests(run: RunFolder) -> list[Path]:
    """The corpus manifests of the run's config (wherever they are)."""
    if not run.config.is_file():
        return []
    data = json.loads(run.config.read_text()).get("data", {})
    keys = ("seed", "pool", "dev", "test", "answers")
    return [Path(data[k]) for k in keys if data.get(k) and Path(data[k]).is_file()]


def _find(run: RunFolder, target: Target, pending: Path) -> tuple[set[str], set[Path]]:
    """The ids to forget (a pending run's included) and the audio files of their rows."""
    uids = set(target.utterances) | target.ids_of_manifest()
    if pending.is_file():
        uids |= set(json.loads(pending.read_text()))
    audio: set[Path] = set()
    for path in [*_files(run, "*.jsonl"), *_data_manifests(run)]:
        for row in _rows(path):
            uid = row_id(row)
            if uid is None:
                continue
            if target.speaker is not None and row.get("speaker") == target.speaker:
                uids.add(uid)
            if uid in uids and isinstance(row.get("audio"), str):
                p = Path(row["audio"])
                audio.add((p if p.is_absolute() else path.parent / p).resolve())
    return uids, audio


def _fingerprint(path: Path) -> str | None:
    """A hash of the samples (16-bit), equal for the same audio in another container."""
    try:
        data, sr = sf.read(path, dtype="int16", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    return hashlib.sha256(data.tobytes() + str(sr).encode()).hexdigest()


# -- removing ---------------------------------------------------------------------------------
def _drop_run_rows(run: RunFolder, uids: set[str], receipt: Receipt) -> set[Path]:
    """Rows of ``uids`` out of every JSONL file of the run outside ``studio/`` (done by
    ``forget_in_studio``); returns the round folders whose training manifests held some."""
    studio = State.of(run.root).paths.root
    rounds: set[Path] = set()
    if not uids:
        return rounds
    for path in _files(run, "*.jsonl"):
        if studio in path.parents:
            continue
        removed = drop_rows(path, lambda row: row_id(row) in uids)
        if removed:
            receipt.removed_rows[str(path.relative_to(run.root))] = removed
            if path.name.startswith(("train_", "human_", "pseudo_")):
                rounds.add(path.parent)
    return rounds


def _delete_audio(run: RunFolder, audio: set[Path]) -> int:
    root, n = run.root.resolve(), 0
    for path in sorted(audio):
        if root in path.parents and path.is_file():
            path.unlink()
            n += 1
    return n


def _mark_checkpoints(run: RunFolder, rounds: set[Path], n: int, receipt: Receipt) -> None:
    for rf in run.rounds():
        if rf.dir not in rounds and not (rf.dir / MARKER).is_file():
            continue
        names = json.loads(rf.checkpoints.read_text()) if rf.checkpoints.is_file() else {}
        if rf.dir in rounds:
            marker = {"utterances_forgotten": n, "at": receipt.at, "checkpoints": names}
            write_json(rf.dir / MARKER, marker)
        receipt.marked_checkpoints += [str(Path(p)) for p in names.values()]


def is_marked(round_dir: Path) -> bool:
    """Whether a round's checkpoints were trained with utterances forgotten since."""
    return (round_dir / MARKER).is_file()


def _outside(run: RunFolder, uids: set[str], receipt: Receipt) -> None:
    root = run.root.resolve()
    for path in _data_manifests(run):
        if root in path.resolve().parents:
            continue
        held = sum(1 for row in _rows(path) if row_id(row) in uids)
        if held:
            receipt.outside_run[str(path)] = held
    if receipt.outside_run:
        receipt.not_removed.append(
            "manifests outside the run folder are the user's own data: remove the utterances "
            "there too (`earmark forget --manifest` lists the ids), and rebuild a base model "
            "(`earmark base`) trained with them"
        )


def _studio(removal: StudioRemoval) -> dict[str, Any]:
    return {k: v for k, v in asdict(removal).items() if k != "rows"}


# -- checking ---------------------------------------------------------------------------------
def _scan(run: RunFolder, uids: set[str], fingerprints: set[str]) -> list[str]:
    """Files under the run folder (the server's data folder included) that still hold one of
    ``uids`` as a whole word, or audio with one of ``fingerprints``."""
    if not uids:
        return []
    pattern = re.compile(
        rb"(?<![\w-])(?:" + b"|".join(re.escape(u.encode()) for u in sorted(uids)) + rb")(?![\w-])"
    )
    found = []
    for path in sorted(p for p in run.root.rglob("*") if p.is_file()):
        if path.parent.name == "forget" or path.name == ".lock":
            continue
        held = bool(pattern.search(path.read_bytes()))
        if not held and path.suffix.lower() in AUDIO_SUFFIXES:
            held = _fingerprint(path) in fingerprints
        if held:
            found.append(str(path.relative_to(run.root)))
    return found
