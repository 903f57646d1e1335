"""What the steps of an NLU training run share (``training.nlu.train`` runs them): a batch of
examples as tensors, the joint loss, and the run's state (``Run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.budget import BudgetClock
from training.distributed import World
from training.nlu.config import NLUConfig
from training.nlu.data import Example
from training.nlu.model import JointNLU
from training.nlu.tokenize import encode, token_labels, word_tags
from training.result import Log
from training.tracking import Tracker


def get_batch(examples: list[Example], model: JointNLU, tokenizer: Any) -> dict[str, torch.Tensor]:
    """Padded ``(B, T)`` ids/mask, ``(B,)`` intent targets and ``(B, T)`` tag targets."""
    batch, word_ids = encode(
        tokenizer, [e.text for e in examples], max_length=model.settings.max_length
    )
    length = batch["input_ids"].shape[1]
    intents = model.schema.intent_index()
    batch["intent"] = torch.tensor([intents[e.intent] for e in examples])
    batch["tags"] = torch.tensor(
        [
            token_labels(w, word_tags(e, model.schema), length)
            for e, w in zip(examples, word_ids, strict=True)
        ]
    )
    return batch


def loss_fn(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    tag_weight: float,
    totals: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Mean intent cross-entropy plus ``tag_weight`` x mean tag cross-entropy over the batch's
    tagged tokens. ``totals``: the (rows, tagged tokens) of the whole global batch that this
    batch is a rank's share of, which the sums are divided by instead."""
    intent_logits, tag_logits = model(batch["input_ids"], batch["attention_mask"])
    ce = torch.nn.functional.cross_entropy
    if totals is None:
        intent_loss = ce(intent_logits, batch["intent"])
        tag_loss = ce(tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=-100)
        return intent_loss + tag_weight * tag_loss
    intent_sum = ce(intent_logits, batch["intent"], reduction="sum")
    tag_sum = ce(
        tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=-100, reduction="sum"
    )
    return intent_sum / totals[0] + tag_weight * tag_sum / max(1, totals[1])


@dataclass
class Run:
    """What the steps of one run share. ``state`` is what ``last/`` saves (``trainer.pt``);
    ``peak_lrs`` the optimiser groups' rates that the schedule scales; ``planned_steps`` the
    steps the schedule runs over (``max_steps``, else ``max_epochs`` of steps but at least
    ``min_steps``)."""

    config: NLUConfig
    out: Path
    model: JointNLU
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    state: dict[str, Any]
    notes: list[str]
    log: Log
    peak_lrs: list[float]
    planned_steps: int
    clock: BudgetClock
    loss_avg: float | None = None
    tracker: Tracker | None = None
    world: World = field(default_factory=World)  # this process among the ranks
    module: torch.nn.Module | None = None  # the model under DDP, when there are several ranks

    def progress(self) -> float:
        """The budget's progress: rank 0's on every rank."""
        return self.world.agreed(self.clock.progress(self.state["step"], self.planned_steps))

    def spent(self) -> bool:
        """Whether the time budget is spent: rank 0's clock decides for every rank."""
        return bool(self.world.agreed(float(self.clock.spent())))
