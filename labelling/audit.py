"""The audit trail of a workspace: who was shown which task, and every action taken on it.

``studio/state/audit.jsonl`` is append-only and hash-chained: one JSON object per line with
``seq`` (0, 1, 2...), ``time`` (UTC, ISO 8601) and

- ``event``: ``exposed`` (a task was created: its audio or text is shown to the annotators of
  a project), ``submitted`` (an annotation version was imported), ``flagged`` (it carried
  flags), ``reviewed`` (listed to a person by ``earmark review``), ``exported``, ``forgotten``;
- ``actor``: a pseudonym, never an account, e-mail or name: ``ann-...`` (an annotator),
  ``project:prj-...`` (every annotator of a project; tasks are not assigned to single accounts)
  or ``op-...`` (the local account running earmark), all keyed hashes with the workspace's
  ``secrets/pseudonym_key`` (``State.pseudonym`` and its siblings);
- ``task``: the opaque ref of the utterance (a keyed hash of its id, ``State.opaque_id``: what
  the task carries); the log never holds earmark's own ids, names or content: once an
  utterance is forgotten (``earmark forget``) its ref stays here, pseudonymous, as the record
  of who heard it and that it was forgotten; ``show`` finds its events through the key;
- ``detail``: optional small object (task id, annotation version, flags; never content);
- ``prev``: sha256 of the previous line's bytes (without its newline; 64 zeros on line 1);
  ``hash``: sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every other field.
  A line is that canonical JSON with ``hash`` added, so its bytes are fixed too.

Changing, removing, reordering or re-encoding a line breaks the chain at that line (a line whose
``hash`` was recomputed, at the next one); ``verify`` names the first bad line. Removing events
from the end leaves a shorter chain that is intact: only a head noted elsewhere tells
(``verify(path, head=...)``, ``earmark audit verify --head``).

Appends work like the other state logs (``earmark.core.fileio.append_log``): fsynced, the file 0600
in a 0700 folder, and a torn last line left by a kill is cut away with a note on stderr before the
next append. An append chains only onto an intact last event (it refuses, naming the line,
otherwise; a break further up is left for ``verify`` to report), and holds an exclusive lock so
that two processes cannot fork the chain.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from earmark.core import faults, fileio
from earmark.core.errors import StudioError
from labelling.state import State, read_log

EVENTS = ("exposed", "submitted", "flagged", "reviewed", "exported", "forgotten")
GENESIS = "0" * 64  # the ``prev`` of the first event
_FIELDS: dict[str, type] = {"seq": int} | dict.fromkeys(
    ("time", "event", "actor", "task", "prev", "hash"), str
)
_PSEUDONYM = re.compile(r"(?:[a-z]+:)?[a-z]+-[0-9a-f]{10}")  # ann-..., project:prj-..., op-...
_TORN = "torn: no newline at its end (an interrupted append; the next append cuts it away)"


class AuditError(StudioError):
    """An event is malformed, or the audit log cannot be chained onto or read."""


@dataclass(frozen=True)
class Event:
    """One event to append; ``seq``, ``time``, ``prev`` and ``hash`` are added by ``append``.

    Raises ``AuditError`` for an unknown event, an actor that is not a pseudonym, an empty task
    ref, or a detail that is not a JSON object.
    """

    event: str
    actor: str
    task: str
    detail: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        problem = _fields_problem({**self.fields(), "seq": 0, "time": "", "prev": "", "hash": ""})
        if problem or not self.task:
            raise AuditError(f"not an audit event ({problem or 'empty task ref'})")
        try:
            canonical(self.fields())
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit event detail is not plain JSON: {exc}") from None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event,
            "actor": self.actor,
            "task": self.task,
        }
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found: ``events`` intact events (before ``line`` when it is bad) and
    ``head``, the sha256 of the last intact line (what the next event's ``prev`` must be)."""

    path: Path
    events: int
    head: str
    line: int | None = None  # the first bad line (1-based); None when the chain is intact
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def message(self) -> str:
        if self.ok:
            return f"{self.events} events, chain intact"
        return f"{self.path}:{self.line}: {self.problem}"


def canonical(fields: dict[str, Any]) -> bytes:
    """The canonical JSON of ``fields``: sorted keys, no spaces, UTF-8."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fields_problem(row: dict[str, Any]) -> str | None:
    """What is wrong with the fields of an event (names and types), if anything."""
    missing = [k for k in _FIELDS if k not in row]
    unknown = sorted(set(row) - set(_FIELDS) - {"detail"})
    if missing or unknown:
        return f"missing {missing}" if missing else f"unknown {unknown}"
    for key, kind in _FIELDS.items():
        if type(row[key]) is not kind:
            return f"{key} is not a {kind.__name__}"
    if "detail" in row and not isinstance(row["detail"], dict):
        return "detail is not an object"
    if row["event"] not in EVENTS:
        return f"unknown event {row['event']!r}"
    if not _PSEUDONYM.fullmatch(row["actor"]):
        return "actor is not a pseudonym"
    return None


def _parse(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """The event on one line (without its newline), and why it is not one, if it is not."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, "bad JSON: not valid UTF-8"
    except json.JSONDecodeError as exc:
        return {}, f"bad JSON: {exc.msg}"
    if not isinstance(row, dict):
        return {}, "bad JSON: not an object"
    problem = _fields_problem(row)
    return row, (f"bad fields: {problem}" if problem else None)


def _problem(raw: bytes, seq: int, prev: str) -> str | None:
    """Why line ``raw`` is not the event with ``seq`` after a line whose sha256 is ``prev``."""
    row, problem = _parse(raw)
    if problem:
        return problem
    if row["seq"] != seq:
        return f"seq gap: expected {seq}, found {row['seq']}"
    if row["prev"] != prev:
        return "prev mismatch: not the sha256 of the line before"
    return _sealed_problem(row, raw)


def _sealed_problem(row: dict[str, Any], raw: bytes) -> str | None:
    """Why event ``row``, read from line ``raw``, is not as it was written, if it is not."""
    if row["hash"] != _sha(canonical({k: v for k, v in row.items() if k != "hash"})):
        return "hash mismatch: the event was changed after it was written"
    if raw != canonical(row):
        return "not canonical: the line's bytes were rewritten"
    return None


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, bytes without the newline, whether a newline ended it)``."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            whole = raw.endswith(b"\n")
            yield n, (raw[:-1] if whole else raw), whole


def verify(path: str | Path, *, head: str | None = None) -> VerifyResult:
    """Walk the chain of the audit log at ``path``; the result names the first bad line and why
    (torn, bad JSON, bad fields, seq gap, prev mismatch, hash mismatch, not canonical).

    An absent log has 0 events. With ``head`` (a ``VerifyResult.head`` noted earlier), a log
    that no longer reaches that line is bad too: events were removed from its end.
    """
    path = Path(path)
    seq, prev = 0, GENESIS
    reached = head in (None, GENESIS)
    if path.is_file():
        for n, raw, whole in _lines(path):
            problem = _problem(raw, seq, prev) if whole else _TORN
            if problem:
                return VerifyResult(path, seq, prev, n, problem)
            seq, prev = seq + 1, _sha(raw)
            reached = reached or prev == head
    if not reached:
        missing = f"the noted head {str(head)[:12]}... is not in the log: events were removed"
        return VerifyResult(path, seq, prev, seq + 1, f"{missing} from its end")
    return VerifyResult(path, seq, prev)


def show(path: str | Path, *, ref: str) -> list[dict[str, Any]]:
    """The events of the task ref ``ref`` (``State.opaque_id`` of an utterance), oldest first
    (actors are pseudonyms); none for an absent log.

    The chain is not checked here (``verify`` does that); a torn last line is left out and a
    line that is not an event raises ``AuditError`` naming it.
    """
    path = Path(path)
    out: list[dict[str, Any]] = []
    if not path.is_file():
        return out
    for n, raw, whole in _lines(path):
        if not whole:
            break
        row, problem = _parse(raw)
        if problem:
            raise AuditError(f"{path}:{n}: {problem}")
        if row["task"] == ref:
            out.append(row)
    return out


@dataclass(frozen=True)
class AuditLog:
    """The audit log at ``path`` (``State.audit`` of a workspace)."""

    path: Path

    @classmethod
    def of(cls, workspace: str | Path) -> AuditLog:
        return cls(State.of(workspace).audit)

    def append(self, events: Iterable[Event], *, once: bool = False) -> int:
        """Append ``events`` in order, chained onto the last one; returns how many were written.

        With ``once``, an event already logged (same event, actor, task and detail)
        is not written again: for events derived from the state logs, recorded on every push or
        pull, so that none is lost to a kill and none is written twice. A torn last line is cut
        away first, with a note on stderr. Raises ``AuditError`` naming the line, and writes
        nothing, when the last event is not intact.
        """
        events = list(events)
        if not events:
            return 0
        fileio.private_dir(self.path.parent)
        faults.point(f"append {self.path}")
        new = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
            lines = self._complete_lines(fd)
            if once:
                logged = {canonical(_content(_parse(raw)[0])) for raw in lines}
                fresh = {canonical(e.fields()): e for e in events}  # repeats within too
                events = [e for key, e in fresh.items() if key not in logged]
                if not events:
                    return 0
            data = self._chained(lines, events)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fileio.fsync_dir(self.path.parent)
        return len(events)

    def _complete_lines(self, fd: int) -> list[bytes]:
        """The log's lines (without newlines); a torn last line is truncated away."""
        chunks, offset = [], 0
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        data = b"".join(chunks)
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            os.ftruncate(fd, keep)
            os.fsync(fd)
            print(
                f"earmark: {self.path}: removed a half-written last line ({len(data) - keep} "
                "bytes) left by an interrupted write",
                file=sys.stderr,
            )
        return data[:keep].split(b"\n")[:-1]

    def _chained(self, lines: list[bytes], events: list[Event]) -> bytes:
        """The lines of ``events`` chained onto ``lines``, whose last event must be intact
        (a break further up is ``verify``'s to report; it does not stop the recording)."""
        seq, prev = 0, GENESIS
        if lines:
            row, problem = _parse(lines[-1])
            problem = problem or _sealed_problem(row, lines[-1])
            if problem:
                raise AuditError(
                    f"{self.path}:{len(lines)}: {problem}; nothing is chained onto a broken "
                    "event, so nothing was recorded: see `earmark audit verify`"
                )
            seq, prev = row["seq"] + 1, _sha(lines[-1])
        now = datetime.now(UTC).isoformat()
        out = []
        for event in events:
            fields = {**event.fields(), "seq": seq, "time": now, "prev": prev}
            raw = canonical({**fields, "hash": _sha(canonical(fields))})
            out.append(raw + b"\n")
            seq, prev = seq + 1, _sha(raw)
        return b"".join(out)


def _content(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("event", "actor", "task", "detail") if k in row}


# -- what push, pull and review record --------------------------------------------------------
def record_exposures(state: State) -> int:
    """An ``exposed`` event for each task in ``pushed.jsonl`` that has none yet; the actor is
    its project's annotators (tasks are not assigned to single accounts). Returns the count."""
    events = (
        Event(
            "exposed",
            "project:" + state.project_pseudonym(r.get("project", "")),
            r["ref"],
            {"kind": r.get("kind"), "task_id": r.get("task_id"), "pushed_at": r.get("pushed_at")},
        )
        for r in state.pushed_rows()
    )
    return AuditLog(state.audit).append(events, once=True)


def record_submissions(state: State) -> int:
    """A ``submitted`` event for each annotation version in ``imported.jsonl``, and a ``flagged``
    one when it carries flags, unless logged already; the actor is the annotator's pseudonym.
    Returns the count."""
    events = []
    for e in read_log(state.imported):
        ref, answer = state.opaque_id(e["utterance_id"]), e.get("answer") or {}
        base = {k: e.get(k) for k in ("kind", "task_id", "annotation_id", "updated_at")}
        done = {**base, "cancelled": bool(answer.get("cancelled"))}
        events.append(Event("submitted", e["annotator"], ref, done))
        if answer.get("flags"):
            flags = list(answer["flags"])
            events.append(Event("flagged", e["annotator"], ref, {**base, "flags": flags}))
    return AuditLog(state.audit).append(events, once=True)


def record_exported(state: State, ids: Iterable[str], to: str | Path, use: str) -> int:
    """An ``exported`` event per utterance whose human label went into training manifest ``to``
    (``use``: asr/nlu), by the local account; once per utterance and file (a rebuild logs none)."""
    actor, detail = state.operator_pseudonym(operator_account()), {"to": str(to), "use": use}
    events = (Event("exported", actor, state.opaque_id(i), detail) for i in ids)
    return AuditLog(state.audit).append(events, once=True)


def record_forgotten(state: State, refs: Iterable[str], detail: dict[str, Any]) -> int:
    """A ``forgotten`` event for each task ref removed by ``earmark forget`` (by the local
    account); ``detail`` says where from (counts only, never ids or content)."""
    actor = state.operator_pseudonym(operator_account())
    return AuditLog(state.audit).append(Event("forgotten", actor, r, detail) for r in refs)


def operator_account() -> str:
    """The local account running earmark (the login name, or the uid without one)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without passwd entry)
        return str(os.getuid())
