"""Checkpoint metadata shared by both models.

A checkpoint is a Hugging Face folder (``save_pretrained`` of model and processor/tokenizer)
plus ``earmark.json``: the model kind, the resolved config, the training manifest's hash, the
parent checkpoint it was warm-started from, the metrics at save time and the step.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from earmark.core import faults
from earmark.core.errors import CheckpointError
from earmark.core.fileio import fsync_dir, write_json

META_FILE = "earmark.json"
LAST = "last"  # the folder, inside a run's output folder, that holds the state to resume from
ModelKind = Literal["asr", "nlu"]


@dataclass(frozen=True)
class CheckpointMeta:
    kind: ModelKind
    model_version: str
    config: dict[str, Any]
    train_manifest_hash: str | None = None
    parent: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model_version": self.model_version,
            "config": self.config,
            "train_manifest_hash": self.train_manifest_hash,
            "parent": self.parent,
            "metrics": self.metrics,
            "step": self.step,
            "created": self.created,
        }


def write_meta(directory: str | Path, meta: CheckpointMeta) -> None:
    """Write ``earmark.json`` atomically into an existing checkpoint folder."""
    write_json(Path(directory) / META_FILE, meta.to_dict())


def read_meta(directory: str | Path, *, kind: ModelKind | None = None) -> CheckpointMeta:
    """Read a checkpoint's metadata; ``kind`` (if given) must match."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: not an earmark checkpoint (no {META_FILE})")
    try:
        data = json.loads(path.read_text())
        meta = CheckpointMeta(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint metadata: {exc}") from exc
    if kind is not None and meta.kind != kind:
        raise CheckpointError(f"{directory}: is an {meta.kind} checkpoint, expected {kind}")
    return meta


def checkpoint_kind(directory: str | Path) -> ModelKind:
    return read_meta(directory).kind


# -- resume state, replaced whole ----------------------------------------------------------
# Both trainers keep the state to resume from in one folder (``last/``) that must never be a
# mix of two saves: weights of one step with the optimiser or step of another. Each writes its
# own files there (the ASR optimizer.pt + trainer_state.json, the NLU trainer.pt); the marker
# is the state file, written last.


def _side(directory: Path, kind: str) -> Path:
    return directory.with_name(f".{directory.name}.{kind}")


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, then the folder itself, to disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


def replace_folder(directory: Path, write: Callable[[Path], None], marker: str) -> None:
    """Replace ``directory`` with what ``write(side_folder)`` puts in a side folder.

    ``write`` must write ``marker`` (the state file that says the folder is complete) and may
    write anything else; the side folder is flushed to disk and the marker rewritten last, so
    a side folder holding the marker is complete. The swap is two renames (``last/`` ->
    ``.last.old``, then ``.last.tmp`` -> ``last/``); a kill between them leaves no ``last/``,
    and ``recover_folder`` puts the complete one back on resume.
    """
    tmp, old = _side(directory, "tmp"), _side(directory, "old")
    faults.point(f"save {directory}")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    if not (tmp / marker).is_file():
        raise CheckpointError(f"{tmp}: the save wrote no {marker}")
    final = tmp / marker
    held = final.with_name(f".{marker}.held")
    final.rename(held)  # the marker goes back only once everything else is on disk
    _fsync_tree(tmp)
    held.rename(final)
    fsync_dir(tmp)
    shutil.rmtree(old, ignore_errors=True)
    faults.point(f"swap {directory}")
    if directory.exists():
        directory.rename(old)
    faults.point(f"swap in {directory}")
    tmp.rename(directory)
    fsync_dir(directory.parent)  # both renames on disk before the old state goes
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(directory: Path, marker: str, log: Callable[[str], None] = print) -> bool:
    """Whether ``directory`` holds a complete state (``marker``) to resume from, after putting
    back the newest complete side folder of a swap that a kill interrupted."""
    if (directory / marker).is_file():
        return True
    for side in (_side(directory, "tmp"), _side(directory, "old")):  # newest first
        if (side / marker).is_file():
            if directory.exists():  # made empty before a first save that never finished
                shutil.rmtree(directory)
            side.rename(directory)
            fsync_dir(directory.parent)
            log(f"{directory}: restored from {side.name} (a save was interrupted mid-swap)")
            return True
    return False


def should_resume(
    directory: Path, marker: str, *, resume: bool, log: Callable[[str], None] = print
) -> bool:
    """The resume rule of both trainers: whether to continue the run saved in ``directory``.

    ``resume=False``: never, the run starts from its ``init`` (or from scratch). ``resume=True``:
    when ``directory`` holds a complete state (after ``recover_folder`` puts back a save that a
    kill cut mid-swap); when it holds none, that is logged and the run starts from ``init`` or
    scratch as if not asked to resume, so a caller (the loop) may always ask.
    """
    if not resume:
        return False
    if recover_folder(directory, marker, log):
        return True
    log(f"nothing to resume in {directory}: starting a new run")
    return False
