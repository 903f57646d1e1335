"""What was pushed to and imported from Label Studio: JSONL files in ``<workspace>/studio/``.

``state/`` holds ``projects.json`` (project ids per kind, replaced atomically) and the logs
(append-only, one JSON object per line): ``pushed.jsonl`` (opaque task ref -> utterance id,
kind, task id, score), ``predictions.jsonl`` (NLU predictions kept for later understanding
tasks) and ``imported.jsonl`` (every annotation version imported, already converted to our
terms). A kill during an append can leave a half-written last line: readers cut it away
(``read_log``) since what it recorded is re-derived from the server. ``audit.jsonl`` is the
hash-chained audit trail of every exposure and action (``labelling.audit``).
The outputs are rewritten atomically from those logs on every pull: ``labels.jsonl`` (a
manifest of human labels), ``rejected.jsonl``, ``flagged.jsonl`` and ``disagreements.jsonl``.

Opaque ids and annotator pseudonyms are keyed hashes (HMAC-SHA256 with a per-workspace key
kept in a 0600 file), so they are stable across pushes but reveal nothing without the key.
The studio folder and its subfolders are 0700 and every state file 0600: imported labels and
the opaque id -> utterance id mapping are as private as the audio.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark.core import fileio
from earmark.core.errors import StudioError
from earmark.core.fileio import read_jsonl
from labelling.client import read_secret, write_secret
from labelling.settings import Paths

__all__ = ["State", "append_jsonl", "read_jsonl", "read_log", "write_jsonl"]


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows (keys sorted) to a state log, created 0600 in a 0700 folder."""
    fileio.private_dir(path.parent)
    fileio.append_log(path, rows, sort_keys=True)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a state log; a half-written last line is cut away (``fileio.read_log``)."""
    return fileio.read_log(path, error=StudioError)


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
    def audit(self) -> Path:
        return self.paths.state / "audit.jsonl"

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

    @property
    def agreement(self) -> Path:
        return self.paths.root / "agreement.json"

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

    def draw(self, what: str) -> float:
        """A number in [0, 1) fixed by ``what`` and the workspace's key (a keyed, unguessable
        coin: which utterances several annotators get)."""
        return int(self._hash(f"draw:{what}")[:13], 16) / 16**13

    def pseudonym(self, user_id: int | str) -> str:
        """The annotator id stored with labels instead of the Label Studio account."""
        return "ann-" + self._hash(f"annotator:{user_id}")[:10]

    def project_pseudonym(self, project_id: int | str) -> str:
        """Who sees a task not assigned to one account: the annotators of a project."""
        return "prj-" + self._hash(f"project:{project_id}")[:10]

    def operator_pseudonym(self, account: str) -> str:
        """The local account running earmark (e.g. whoever lists the review)."""
        return "op-" + self._hash(f"operator:{account}")[:10]

    # -- projects -------------------------------------------------------------------------
    def projects(self) -> dict[str, dict[str, Any]]:
        if not self.projects_json.is_file():
            return {}
        return dict(json.loads(self.projects_json.read_text()))

    def save_projects(self, projects: dict[str, dict[str, Any]]) -> None:
        self.make_private()
        with fileio.atomic_write(self.projects_json) as f:
            f.write(json.dumps(projects, indent=1, sort_keys=True) + "\n")

    def make_private(self) -> None:
        """Create (or tighten) the studio and state folders as 0700."""
        fileio.private_dir(self.paths.root)
        fileio.private_dir(self.paths.state)

    # -- pushed ---------------------------------------------------------------------------
    def pushed_rows(self) -> list[dict[str, Any]]:
        return read_log(self.pushed)

    def ref_index(self) -> dict[str, dict[str, Any]]:
        """opaque ref -> its pushed row (utterance id, kind, task id)."""
        return {row["ref"]: row for row in self.pushed_rows()}
