"""What the steps of an ASR training run share (``training.asr.train`` runs them): the run's
state (``Run``), the batches of an epoch, their augmentation and the CTC loss."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.asr.config import ASRConfig, TrainConfig
from training.asr.data import bucket_batches
from training.asr.features import Example, spec_augment, vtlp
from training.asr.model import Recogniser
from training.asr.start import Views
from training.budget import BudgetClock
from training.distributed import World
from training.result import Log
from training.tracking import Tracker


def ctc_loss(
    rec: Recogniser,
    batch: dict[str, torch.Tensor],
    device: torch.device,
    bf16: bool = False,
    module: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Mean CTC loss per target token over a collated batch (see ``data.collate``); the model
    (or ``module``, its DDP wrapper) runs under bfloat16 autocast when ``bf16``, the loss is
    always fp32."""
    inputs = {
        rec.input_name: batch["features"].to(device),
        "attention_mask": batch["attention_mask"].to(device),
    }
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = (module or rec.model)(**inputs).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
    out_lengths = rec.output_lengths(batch["lengths"].to(device)).clamp(max=log_probs.shape[0])
    return F.ctc_loss(
        log_probs,
        batch["labels"].to(device),
        out_lengths,
        batch["label_lengths"].to(device),
        blank=rec.blank_id,
        reduction="mean",
        zero_infinity=True,
    )


@dataclass
class Run:
    """What the steps of one run share. ``state`` is what ``last/`` saves
    (``trainer_state.json``); ``best_weights`` those of the best dev WER so far."""

    config: ASRConfig
    out: Path
    rec: Recogniser
    optimizer: torch.optim.Optimizer
    device: torch.device
    bf16: bool
    state: dict[str, Any]
    clock: BudgetClock
    train_hash: str
    log: Log
    step_cap: int  # train.max_steps, lowered to train.max_epochs' batches (0 = none)
    best_weights: dict[str, torch.Tensor] | None = None
    mel_centers: torch.Tensor | None = None  # (n_mels,) Hz, for VTLP; None for waveform models
    tracker: Tracker | None = None
    world: World = field(default_factory=World)  # this process among the ranks
    module: torch.nn.Module | None = None  # the model under DDP, when there are several ranks

    def progress(self) -> float:
        """The budget's progress: rank 0's on every rank."""
        return self.world.agreed(self.clock.progress(self.state["step"], self.step_cap))


def epoch_batches(
    views: Views, tc: TrainConfig, epoch: int
) -> tuple[list[Example], list[list[int]]]:
    """One epoch: every utterance once, at a speed drawn for it, in shuffled length buckets
    (seeded per epoch, so a resumed run draws the epoch as an uninterrupted one)."""
    rng = random.Random(tc.seed * 1000 + epoch)
    examples = [v[rng.randrange(len(v))] if len(v) > 1 else v[0] for v in views]
    lengths = [ex.length for ex in examples]
    return examples, bucket_batches(
        lengths, max_frames=tc.max_frames, max_batch=tc.max_batch, rng=rng
    )


def step_cap(views: Views, tc: TrainConfig) -> int:
    """``train.max_steps``, lowered to ``train.max_epochs`` times an epoch's batches (0: no
    cap). The first epoch's count stands for all: the buckets hardly vary between epochs."""
    if tc.max_epochs <= 0:
        return tc.max_steps
    by_epochs = tc.max_epochs * len(epoch_batches(views, tc, 0)[1])
    return min(tc.max_steps, by_epochs) if tc.max_steps > 0 else by_epochs


def augment(
    batch: dict[str, torch.Tensor], tc: TrainConfig, centers_hz: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """VTLP (when ``train.vtlp`` and the model reads log-mel bands centred at ``centers_hz``),
    then SpecAugment, on a collated batch."""
    feats = batch["features"]
    if tc.vtlp > 0 and centers_hz is not None:
        feats = vtlp(feats, batch["lengths"], centers_hz, max_warp=tc.vtlp)
    sa = tc.spec_augment
    batch["features"] = spec_augment(
        feats,
        batch["lengths"],
        freq_masks=sa.freq_masks,
        freq_width=sa.freq_width,
        time_masks=sa.time_masks,
        time_width=sa.time_width,
    )
    return batch
