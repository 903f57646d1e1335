"""Forgetting utterances in a workspace: their Label Studio tasks, uploads and state rows.

``forget_in_studio`` removes, for a set of earmark utterance ids:

- on the server, through its API: every task whose opaque ref is one of theirs (found by
  listing each project's tasks, so a task whose ``pushed.jsonl`` line a kill lost is found
  too; its annotations and predictions go with it) and every uploaded file named after the
  ref (retried uploads included);
- on disk, in the server's data folder (local to the workspace): the uploaded audio files
  (Label Studio deletes the record, never the file), then the database is vacuumed so that
  the deleted rows' text does not linger in free pages;
- in ``studio/``: their rows in every JSONL file (the state logs and the outputs rebuilt from
  them), rewritten atomically; the audit log holds opaque refs only and gets a ``forgotten``
  event per ref instead.

The server must be up (``earmark studio start``): when it cannot be reached nothing is removed
anywhere, so that a second run, once it is up, finds everything still to do. Each step is
idempotent: a repeated run removes nothing and says so.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earmark.core.fileio import atomic_write
from labelling import audit, convert
from labelling.client import StudioClient
from labelling.process import read_info
from labelling.state import State

ID_KEYS = ("id", "utterance_id")  # how a JSONL row names its utterance


@dataclass
class StudioRemoval:
    """What ``forget_in_studio`` removed: counts per place, never ids."""

    tasks: int = 0
    uploads: int = 0  # upload records deleted through the API
    upload_files: int = 0  # files deleted from the server's upload folder
    rows: dict[str, int] = field(default_factory=dict)  # JSONL file (relative) -> rows removed
    vacuumed: bool = False
    data_dir: str | None = None  # the server's data folder, when it is on this machine

    def total(self) -> int:
        return self.tasks + self.uploads + self.upload_files + sum(self.rows.values())


def forget_in_studio(client: StudioClient, workspace: str | Path, uids: set[str]) -> StudioRemoval:
    """Remove ``uids`` from the server and from the workspace's ``studio/`` folder."""
    state = State.of(workspace)
    refs = {state.opaque_id(u) for u in uids}
    out = StudioRemoval()
    if not refs:
        return out
    for kind, project in sorted(state.projects().items()):
        pid = int(project["id"])
        listing = {"project": pid, "fields": "all"}
        tasks = list(client.paginate("/api/tasks/", what="listing tasks", params=listing))
        for task in tasks:  # every task carrying the ref (a duplicate made by a retry too)
            ref = str((task.get("data") or {}).get(convert.REF_KEY, ""))
            if ref in refs:
                what = f"deleting the {kind} task of {ref}"
                client.request("DELETE", f"/api/tasks/{task['id']}", what=what, ok_status=(404,))
                out.tasks += 1
        uploads = client.get(
            f"/api/projects/{pid}/file-uploads", what="listing uploads", params={"all": "true"}
        )
        for up in uploads or []:
            if _names_ref(str(up.get("file", "")), refs):
                client.request(
                    "DELETE", f"/api/import/file-upload/{up['id']}",
                    what=f"deleting an upload of {kind}", ok_status=(404,),
                )  # fmt: skip
                out.uploads += 1
    data_dir = server_data_dir(state)
    if data_dir is not None:
        out.data_dir = str(data_dir)
        out.upload_files = delete_upload_files(state, refs)
        if out.tasks or out.uploads:
            out.vacuumed = vacuum(data_dir / "label_studio.sqlite3")
    for path in sorted(state.paths.root.rglob("*.jsonl")):
        if path == state.audit or state.paths.data_dir in path.parents:
            continue
        removed = drop_rows(path, lambda row: row_id(row) in uids)
        if removed:
            out.rows[str(path.relative_to(state.paths.root.parent))] = removed
    if out.total():
        audit.record_forgotten(state, sorted(refs), {"tasks": out.tasks, "uploads": out.uploads})
    return out


def server_data_dir(state: State) -> Path | None:
    """The data folder of the server the workspace started (``server.json``), if it is here;
    None for a server earmark did not start (``$EARMARK_LS_URL``)."""
    info = read_info(state.paths)
    folder = Path(info.data_dir) if info and info.data_dir else state.paths.data_dir
    return folder if (folder / "label_studio.sqlite3").is_file() else None


def delete_upload_files(state: State, refs: set[str], kinds: Iterable[str] | None = None) -> int:
    """Delete the uploaded audio files of ``refs`` from the server's data folder
    (``upload/<project id>/<uuid>-<ref>.wav``, retried uploads included), in the projects of
    ``kinds`` (all by default); returns how many. Nothing for a server whose data folder is not
    on this machine (``server_data_dir``)."""
    data_dir, n = server_data_dir(state), 0
    if data_dir is None or not refs:
        return 0
    for kind, project in sorted(state.projects().items()):
        if kinds is not None and kind not in kinds:
            continue
        folder = data_dir / "media" / "upload" / str(project["id"])
        for path in sorted(folder.glob("*")) if folder.is_dir() else ():
            if path.is_file() and _names_ref(path.name, refs):
                path.unlink()
                n += 1
    return n


def _names_ref(name: str, refs: set[str]) -> bool:
    """Whether an uploaded file's name is ``<uuid>-<ref>.wav`` for one of ``refs``."""
    stem = Path(name).name.rsplit(".", 1)[0]
    return stem.rsplit("-", 1)[-1] in refs or stem in refs


def row_id(row: Any) -> str | None:
    """The utterance a JSONL row names (``id`` or ``utterance_id``), if any."""
    if isinstance(row, dict):
        for key in ID_KEYS:
            if isinstance(row.get(key), str):
                return str(row[key])
    return None


def drop_rows(path: Path, drop: Callable[[Any], bool]) -> int:
    """Rewrite the JSONL file ``path`` atomically without the rows ``drop`` picks (mode kept);
    lines that are not JSON (a torn last line) are kept as they are. Returns rows removed."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep: list[str] = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            keep.append(line)
            continue
        if not drop(row):
            keep.append(line)
    removed = len(lines) - len(keep)
    if removed:
        mode = path.stat().st_mode & 0o777
        with atomic_write(path) as f:
            f.writelines(keep)
        path.chmod(mode)
    return removed


def vacuum(db: Path) -> bool:
    """Rebuild the server's SQLite database so that deleted rows leave no bytes behind.

    Safe while the server runs: SQLite locks the file for the duration. Returns False (and
    the receipt says so) when the database is busy or absent."""
    if not db.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.execute("VACUUM")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error:
        return False
    return True
