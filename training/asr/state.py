"""What an ASR run saves as it goes: ``last/`` to resume from, and the best checkpoint's
``earmark.json``.

``last/`` holds the Hugging Face folder, ``optimizer.pt`` and ``trainer_state.json`` (step,
epoch, best dev WER, the budget's seconds spent, the parent checkpoint), replaced whole
(``training.checkpoint.replace_folder``).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from earmark.core.config import to_dict
from earmark.core.fileio import write_json
from training.asr.config import ASRConfig
from training.asr.model import Recogniser
from training.checkpoint import CheckpointMeta, recover_folder, replace_folder, write_meta
from training.result import Log

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


def fresh_state() -> dict[str, Any]:
    """``trainer_state.json`` of a run that has not trained yet."""
    return {
        "step": 0,
        "elapsed": 0.0,  # wall seconds of the budget clock
        "best_wer": float("inf"),
        "epoch": 0,
        "audio_seconds": 0.0,
        "train_seconds": 0.0,
        "cpu_seconds": 0.0,  # CPU seconds of the budget clock
    }


def save_state(
    rec: Recogniser, optimizer: torch.optim.Optimizer, directory: Path, state: dict[str, Any]
) -> None:
    """Replace ``directory`` (``last/``) with the current weights, optimizer and ``state``,
    whole (``training.checkpoint.replace_folder``): a kill mid-save never leaves a last/
    whose weights, optimizer and step disagree."""

    def write(tmp: Path) -> None:
        rec.save(tmp)
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        write_json(tmp / STATE_FILE, state)

    replace_folder(directory, write, STATE_FILE)


def recover_last(directory: Path, log: Log = print) -> bool:
    """Whether ``directory`` (``last/``) holds a state to resume from, after putting back a
    save that a kill cut mid-swap (``training.checkpoint.recover_folder``)."""
    return recover_folder(directory, STATE_FILE, log)


def load_state(directory: Path) -> dict[str, Any]:
    """The ``trainer_state.json`` saved in ``directory`` (``last/``)."""
    saved: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    return saved


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path, device: torch.device) -> None:
    """Restore the optimizer state saved in ``directory`` (``last/``), if there is one."""
    if (directory / OPTIMIZER_FILE).is_file():
        optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, map_location=device))


def write_checkpoint_meta(
    directory: Path,
    cfg: ASRConfig,
    train_hash: str,
    parent: str | None,
    metrics: dict[str, Any],
    step: int,
) -> None:
    """``earmark.json`` of the checkpoint in ``directory``, with a new model version."""
    version = f"asr-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    write_meta(
        directory,
        CheckpointMeta(
            kind="asr",
            model_version=version,
            config=to_dict(cfg),
            train_manifest_hash=train_hash,
            parent=parent,
            metrics=metrics,
            step=step,
        ),
    )
