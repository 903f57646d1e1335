"""What an NLU run saves as it goes: ``last/`` to resume from, and the best checkpoint's
``earmark.json``.

``last/`` holds the model, its tokenizer and ``trainer.pt`` (step, epoch, best dev score,
epochs without improvement, model version, parent checkpoint, the budget's seconds spent and
the optimiser state), replaced whole (``training.checkpoint.replace_folder``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from earmark.core.config import to_dict
from earmark.core.errors import CheckpointError
from earmark.core.manifest import manifest_hash
from training.checkpoint import LAST, CheckpointMeta, replace_folder, write_meta
from training.nlu.config import NLUConfig
from training.nlu.model import JointNLU, load_model, save_model
from training.nlu.schema import LabelSchema

TRAINER_STATE = "trainer.pt"


def fresh_state(version: str, parent: str | None) -> dict[str, Any]:
    """The trainer state of a run that has not trained yet."""
    return {
        "step": 0,
        "epoch": 0,
        "best": -1.0,
        "best_epoch": 0,
        "bad": 0,
        "version": version,
        "parent": parent,
        "elapsed": 0.0,  # wall seconds of the budget clock
        "cpu_seconds": 0.0,  # CPU seconds of the budget clock
    }


def save_last(
    model: JointNLU, tokenizer: Any, optimizer: torch.optim.Optimizer, state: dict, out: Path
) -> None:
    """Replace ``out/last/`` whole (``training.checkpoint.replace_folder``): a kill mid-save
    never leaves weights and optimiser state of different epochs to resume from."""

    def write(tmp: Path) -> None:
        save_model(model, tokenizer, tmp)
        torch.save({**state, "optimizer": optimizer.state_dict()}, tmp / TRAINER_STATE)

    replace_folder(out / LAST, write, TRAINER_STATE)


def load_last(out: Path, schema: LabelSchema) -> tuple[JointNLU, Any, dict[str, Any]]:
    """The model, tokenizer and trainer state (with ``optimizer``) saved in ``out/last/``;
    the labels of ``schema`` must be the saved model's."""
    model, tokenizer = load_model(out / LAST)
    if model.schema.extended(schema)[0] != model.schema:
        raise CheckpointError(f"{out / LAST}: cannot resume, the training labels changed")
    saved: dict[str, Any] = torch.load(out / LAST / TRAINER_STATE, weights_only=True)
    return model, tokenizer, saved


def write_checkpoint_meta(
    out: Path, config: NLUConfig, train_path: Path, state: dict[str, Any], metrics: dict
) -> None:
    """``earmark.json`` of the best checkpoint in ``out``."""
    write_meta(
        out,
        CheckpointMeta(
            kind="nlu",
            model_version=state["version"],
            config=to_dict(config),
            train_manifest_hash=manifest_hash(train_path),
            parent=state["parent"],
            metrics=metrics,
            step=state["step"],
        ),
    )
