"""Files written so that a crash never leaves half of one: JSON and JSONL, replaced atomically.

Every artefact the loop, the importers and the checkpoints write goes through here: the data
goes to a temporary file in the same folder, is flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[str]]:
    """A text file handle whose content replaces ``path`` only if the block completes."""
    path = Path(path)
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
