"""What was pushed to and imported from Label Studio: JSONL files in ``<workspace>/studio/``.

``state/`` holds the logs (append-only, one JSON object per line): ``projects.json`` (project
ids per kind), ``pushed.jsonl`` (opaque task ref -> utterance id, kind, task id, score) and
``imported.jsonl`` (every annotation version imported, already converted to our terms).
The outputs are rewritten atomically from those logs on every pull: ``labels.jsonl`` (a
manifest of human labels), ``rejected.jsonl``, ``flagged.jsonl`` and ``disagreements.jsonl``.

Opaque ids and annotator pseudonyms are keyed hashes (HMAC-SHA256 with a per-workspace key
kept in a 0600 file), so they are stable across pushes but reveal nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark import fileio
from earmark.fileio import read_jsonl
from labelling.client import read_secret, write_secret
from labelling.settings import Paths


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically replace ``path`` with ``rows`` (keys sorted); returns the count."""
    return fileio.write_jsonl(path, rows, sort_keys=True)


@dataclass(frozen=True)
class State:
    """The state files of one workspace."""

    paths: Paths

    @classmethod
    def of(cls, workspace: str | Path) -> State:
        return cls(Paths.of(workspace))

    # -- files ----------------------------------------------------------------------------
    @property
    def projects_json(self) -> Path:
        return self.paths.state / "projects.json"

    @property
    def pushed(self) -> Path:
        return self.paths.state / "pushed.jsonl"

    @property
    def predictions(self) -> Path:
        return self.paths.state / "predictions.jsonl"

    @property
    def imported(self) -> Path:
        return self.paths.state / "imported.jsonl"

    @property
    def labels(self) -> Path:
        return self.paths.root / "labels.jsonl"

    @property
    def rejected(self) -> Path:
        return self.paths.root / "rejected.jsonl"

    @property
    def flagged(self) -> Path:
        return self.paths.root / "flagged.jsonl"

    @property
    def disagreements(self) -> Path:
        return self.paths.root / "disagreements.jsonl"

    # -- keyed hashes ---------------------------------------------------------------------
    def _key(self) -> bytes:
        path = self.paths.secrets / "pseudonym_key"
        key = read_secret(path)
        if not key:
            key = secrets.token_hex(32)
            write_secret(path, key)
        return bytes.fromhex(key)

    def _hash(self, what: str) -> str:
        return hmac.new(self._key(), what.encode(), hashlib.sha256).hexdigest()

    def opaque_id(self, utterance_id: str) -> str:
        """The id a task carries instead of the utterance id (stable, unguessable)."""
        return "t" + self._hash(f"utterance:{utterance_id}")[:20]

    def pseudonym(self, user_id: int | str) -> str:
        """The annotator id stored with labels instead of the Label Studio account."""
        return "ann-" + self._hash(f"annotator:{user_id}")[:10]

    # -- projects -------------------------------------------------------------------------
    def projects(self) -> dict[str, dict[str, Any]]:
        if not self.projects_json.is_file():
            return {}
        return dict(json.loads(self.projects_json.read_text()))

    def save_projects(self, projects: dict[str, dict[str, Any]]) -> None:
        self.paths.state.mkdir(parents=True, exist_ok=True)
        tmp = self.projects_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(projects, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.projects_json)

    # -- pushed ---------------------------------------------------------------------------
    def pushed_rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.pushed)

    def ref_index(self) -> dict[str, dict[str, Any]]:
        """opaque ref -> its pushed row (utterance id, kind, task id)."""
        return {row["ref"]: row for row in self.pushed_rows()}
