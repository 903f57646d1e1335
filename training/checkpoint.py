"""Checkpoint metadata shared by both models.

A checkpoint is a Hugging Face folder (``save_pretrained`` of model and processor/tokenizer)
plus ``earmark.json``: the model kind, the resolved config, the training manifest's hash, the
parent checkpoint it was warm-started from, the metrics at save time and the step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from earmark.errors import CheckpointError
from earmark.fileio import write_json

META_FILE = "earmark.json"
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
