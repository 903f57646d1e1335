"""Files written so that a crash never leaves half of one: JSON and JSONL, replaced atomically.

Every artefact the loop, the importers and the checkpoints write goes through here: the data
goes to a temporary file in the same folder, is flushed to disk, then renamed over the target,
and the folder is flushed so that the rename itself survives a power cut.

Append-only logs (``append_log``/``read_log``) cannot be replaced atomically; a kill during an
append can leave a half-written last line. Since a line counts only once its newline is on
disk, ``read_log`` cuts such a tail away (saying so on stderr) instead of failing every later
read; a broken line anywhere else is an error naming the file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from earmark.core import faults
from earmark.core.errors import EarmarkError


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a new or renamed name in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: str | Path) -> Path:
    """``path`` as a folder only its owner can use (0700), created if missing (missing parents
    too, also 0700) and tightened if it exists with wider permissions. A folder another user
    owns (one made for this user to write into) is left as its owner set it: only the owner
    may change its mode."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, 0o700)
    return path


def private_tree(root: str | Path) -> None:
    """Take every group and other permission off ``root`` and everything under it (links are
    left alone): for folders made before they were created private."""
    root = Path(root)
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077:
            os.chmod(p, mode & 0o700)


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[str]]:
    """A text file handle whose content replaces ``path`` only if the block completes.

    The new file is created readable and writable by the owner only (0600) whatever the
    umask (secrets rely on that: never briefly wider); file and folder are fsynced.
    """
    path = Path(path)
    faults.point(f"write {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_jsonl(path: str | Path, rows: Iterable[Any], *, sort_keys: bool = False) -> int:
    """Atomically replace ``path`` with one JSON object per line; returns the count."""
    count = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=sort_keys) + "\n")
            count += 1
    return count


def write_json(path: str | Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    with atomic_write(path) as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every non-blank line of ``path`` as JSON; an absent file reads as empty."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _repair_tail(path: Path) -> bytes:
    """The content of log ``path`` up to its last newline; anything after it (a line whose
    append was killed) is truncated away, once, with a note on stderr."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "rb+") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        print(
            f"earmark: {path}: removed a half-written last line ({len(data) - keep} bytes) "
            "left by an interrupted write",
            file=sys.stderr,
        )
    return data[:keep]


def read_log(path: str | Path, *, error: type[Exception] = EarmarkError) -> list[dict[str, Any]]:
    """Every row of an append-only JSONL log; an absent file reads as empty.

    A half-written last line (no newline after it) is cut away from the file, with a note on
    stderr: what the log records can be re-derived. A line that is not JSON before the last one
    raises ``error`` naming file and line, and the file is left as it is.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for n, raw in enumerate(_repair_tail(path).split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError:
            raise error(f"{path}:{n}: not valid UTF-8") from None
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{n}: not valid JSON: {exc.msg}") from None
    return rows


def append_log(path: str | Path, rows: Iterable[Any], *, sort_keys: bool = False) -> None:
    """Append one JSON object per line to ``path`` (created 0600), fsynced; a torn last line
    left by an earlier interrupted append is cut away first (see ``read_log``)."""
    path = Path(path)
    faults.point(f"append {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        _repair_tail(path)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=sort_keys) + "\n" for r in rows)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if new:
        fsync_dir(path.parent)


def iter_id_records(
    path: str | Path, *, what: str, error: type[Exception]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file of records with a string
    ``id`` (selections, predictions, scores); a problem raises ``error`` naming file and line.

    ``what`` names the file in messages ("selection", "ASR predictions", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{n}: not valid JSON: {exc.msg}") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise error(f"{path}:{n}: each line of a {what} file needs a string 'id'")
            yield n, obj
