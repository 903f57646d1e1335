"""The ASR training loop, top to bottom.

Checkpoint layout of ``out``::

    out/               the best checkpoint by dev WER: HF folder (model, feature extractor,
                       tokenizer) + confidence.json (fitted temperature) + earmark.json
    out/last/          the latest state for resuming: HF folder + optimizer.pt +
                       trainer_state.json (step, budget seconds spent, best dev WER, epoch)
    out/.last.tmp/     only during a save (and .last.old): see ``state.save_state``
    out/tb/            TensorBoard event files: loss and learning rate per step, dev rates at
                       each checkpoint, the final dev metrics, the config (``training.tracking``)

Features are computed once before training (feature extraction every epoch would cost as
much CPU as the model). Batches are length-bucketed. The budget is ``train.max_minutes`` on
``train.budget_clock`` and ``train.max_steps``, whichever ends first (``training.budget``); the
learning rate warms up linearly and decays with a cosine over it
(``training.schedule.warmup_cosine``), so a time-limited run still anneals. What is measured
on dev (the WER during training, decoding and temperature after it) is in ``tuning``, what is
saved in ``state``.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from earmark.core.errors import ConfigError
from earmark.core.manifest import manifest_hash
from training.asr.config import ASRConfig, TrainConfig
from training.asr.data import bucket_batches, collate
from training.asr.features import Example, band_center_hz, spec_augment, vtlp
from training.asr.lmtext import check_sources
from training.asr.model import Recogniser
from training.asr.start import (
    Views,
    freeze,
    load_features,
    make_optimizer,
    saved_best_weights,
    setup_torch,
    start_model,
    train_mode,
    use_bf16,
)
from training.asr.state import STATE_FILE, load_optimizer, save_state, write_checkpoint_meta
from training.asr.tuning import (
    choose_decoding,
    dev_log_probs,
    dev_rates_of,
    evaluate_dev,
    fit_dev_temperature,
)
from training.budget import BudgetClock
from training.checkpoint import LAST, should_resume
from training.result import Log, OnProgress, TrainResult
from training.schedule import warmup_cosine
from training.tracking import TB_DIR, Tracker


def ctc_loss(
    rec: Recogniser, batch: dict[str, torch.Tensor], device: torch.device, bf16: bool = False
) -> torch.Tensor:
    """Mean CTC loss per target token over a collated batch (see ``data.collate``); the model
    runs under bfloat16 autocast when ``bf16``, the loss is always fp32."""
    inputs = {
        rec.input_name: batch["features"].to(device),
        "attention_mask": batch["attention_mask"].to(device),
    }
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = rec.model(**inputs).logits
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

    def progress(self) -> float:
        return self.clock.progress(self.state["step"], self.step_cap)


# -- the loop -------------------------------------------------------------------------------


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


def train_step(run: Run, examples: list[Example]) -> tuple[float, float]:
    """One optimiser step on ``examples``; returns its loss and learning rate."""
    tc, state = run.config.train, run.state
    step_t0 = time.perf_counter()
    lr = warmup_cosine(run.progress(), tc.lr, warmup=tc.warmup, final_fraction=tc.final_lr_fraction)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    batch = augment(collate(examples), tc, run.mel_centers)
    loss = ctc_loss(run.rec, batch, run.device, run.bf16)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(
        [p for p in run.rec.model.parameters() if p.requires_grad], tc.grad_clip
    )
    run.optimizer.step()

    state["step"] += 1
    state["audio_seconds"] += sum(ex.seconds for ex in examples)
    state["train_seconds"] += time.perf_counter() - step_t0
    run.clock.tick()
    state["elapsed"], state["cpu_seconds"] = run.clock.wall, run.clock.cpu
    value = loss.item()
    if run.tracker is not None:
        run.tracker.scalars(state["step"], {"loss": value, "lr": lr}, "train/")
    return value, lr


def checkpoint(run: Run, dev: list[Example]) -> None:
    """Evaluate on (a fixed subset of) dev, keep the best weights in ``out``, the latest in
    ``out/last/``."""
    tc, state = run.config.train, run.state
    subset = dev[: tc.eval_max_utterances] if tc.eval_max_utterances > 0 else dev
    rates = evaluate_dev(run.rec, subset, run.device, tc.max_frames)
    run.log(
        f"step {state['step']}: dev ({len(subset)} utts) WER {rates['wer']:.4f} "
        f"CER {rates['cer']:.4f} SER {rates['ser']:.4f}"
    )
    if run.tracker is not None:
        run.tracker.scalars(state["step"], rates, "dev/")
    if rates["wer"] < state["best_wer"] or run.best_weights is None:
        state["best_wer"] = rates["wer"]
        run.best_weights = copy.deepcopy(run.rec.model.state_dict())
        run.rec.save(run.out)
        metrics = {f"dev_{k}": v for k, v in rates.items()}
        write_checkpoint_meta(
            run.out, run.config, run.train_hash, state["parent"], metrics, state["step"]
        )
    (run.out / LAST).mkdir(parents=True, exist_ok=True)
    save_state(run.rec, run.optimizer, run.out / LAST, state)


def next_eval_at(run: Run) -> float:
    """The budget-clock second of the next dev checkpoint (never, for ``eval_every_minutes``
    0: at the end and every ``eval_every_steps`` only)."""
    minutes = run.config.train.eval_every_minutes
    return run.clock.used() + minutes * 60 if minutes > 0 else float("inf")


def eval_due(run: Run, next_eval: float) -> bool:
    tc = run.config.train
    return run.clock.used() >= next_eval or (
        tc.eval_every_steps > 0 and run.state["step"] % tc.eval_every_steps == 0
    )


def progress_report(run: Run, loss: float, lr: float) -> dict[str, Any]:
    state = run.state
    return {
        "fraction": run.progress(),
        "loss": loss,
        "audio_s_per_s": state["audio_seconds"] / max(1e-9, state["train_seconds"]),
        "lr": lr,
        "step": state["step"],
    }


def train_loop(run: Run, views: Views, dev: list[Example], on_progress: OnProgress | None) -> None:
    """Epochs of shuffled length buckets until the budget is spent, checkpointing on dev every
    ``eval_every_minutes`` of the budget clock (or ``eval_every_steps``) and at the end."""
    next_eval = next_eval_at(run)
    loss_avg: float | None = None
    done = run.progress() >= 1.0
    while not done:
        examples, batches = epoch_batches(views, run.config.train, run.state["epoch"])
        for n, idx in enumerate(batches, 1):
            loss, lr = train_step(run, [examples[i] for i in idx])
            loss_avg = loss if loss_avg is None else 0.95 * loss_avg + 0.05 * loss
            if on_progress is not None:
                on_progress(progress_report(run, loss_avg, lr))
            done = run.progress() >= 1.0
            if not done and eval_due(run, next_eval):
                checkpoint(run, dev)
                next_eval = next_eval_at(run)
            if done:
                run.state["epoch"] += n == len(batches)  # a budget that ends with its epoch
                break
        else:
            run.state["epoch"] += 1
    checkpoint(run, dev)


# -- the end: the best weights, decoded and calibrated on dev --------------------------------


def run_metrics(run: Run, extra: dict[str, Any]) -> dict[str, Any]:
    """What the run did and cost, for ``earmark.json``."""
    state, tc = run.state, run.config.train
    return {
        "steps": state["step"],
        "epochs": state["epoch"],
        "train_audio_seconds": state["audio_seconds"],
        "audio_s_per_s": state["audio_seconds"] / max(1e-9, state["train_seconds"]),
        "wall_seconds": state["elapsed"],
        "cpu_seconds": state["cpu_seconds"],
        "budget_clock": tc.budget_clock,
        **extra,
        "precision": "bf16" if run.bf16 else "fp32",
    }


def finish(run: Run, views: Views, dev: list[Example], extra: dict[str, Any]) -> dict[str, Any]:
    """Load the best weights, choose their decoding and fit their confidence temperature on
    all of dev; save them to ``out`` with their metrics, which are returned."""
    rec, cfg = run.rec, run.config
    if run.best_weights is not None:  # always set by checkpoint() at the end of the loop
        rec.model.load_state_dict(run.best_weights)
    rec.model.eval()
    dev_lp = dev_log_probs(rec, dev, run.device, cfg.train.max_frames)
    transcripts = [v[0].text for v in views if v[0].text]
    decoding = choose_decoding(rec, run.out, transcripts, dev, dev_lp, cfg.decoding, run.log)
    temperature, briers = fit_dev_temperature(rec, dev, dev_lp, cfg, run.log)
    rec.temperature = temperature
    rec.save(run.out)
    metrics = {
        "dev_subset_wer": run.state["best_wer"],
        "temperature": temperature,
        "temperature_brier": {str(k): v for k, v in briers.items()},
        **run_metrics(run, extra),
        "decoding": decoding["method"],
    }
    if "dev_wer_greedy" in decoding:
        metrics["dev_wer_greedy"] = decoding["dev_wer_greedy"]
    metrics.update({f"dev_{k}": v for k, v in dev_rates_of(rec, dev, dev_lp).items()})
    write_checkpoint_meta(
        run.out, cfg, run.train_hash, run.state["parent"], metrics, run.state["step"]
    )
    if run.tracker is not None:
        run.tracker.scalars(run.state["step"], metrics, "final/")
    run.log(
        f"best dev WER {metrics['dev_wer']:.4f}, temperature {temperature:g}, "
        f"{metrics['audio_s_per_s']:.1f} audio-s per training second"
    )
    return metrics


def train_asr(
    config: ASRConfig,
    train: str | Path,
    dev: str | Path,
    out: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    log: Log = print,
    on_progress: OnProgress | None = None,
) -> TrainResult:
    """Train on the ``train`` manifest and return the best checkpoint by WER on ``dev``.

    ``init``: warm start from an earmark ASR checkpoint, a Hugging Face CTC folder or a hub id.
    ``resume``: continue the run saved in ``out/last/`` (``training.checkpoint.should_resume``:
    with nothing saved there, that is logged and training starts from ``init`` or scratch).
    ``on_progress`` receives ``{"fraction", "loss", "audio_s_per_s", "lr", "step"}`` after each
    step (loss smoothed). See the module docstring for the folder layout.
    """
    tc = config.train
    if tc.max_minutes <= 0 and tc.max_steps <= 0 and tc.max_epochs <= 0:
        raise ConfigError(
            "train.max_minutes, train.max_steps and train.max_epochs are all 0: give a budget"
        )
    if config.decoding.method == "beam":
        check_sources(config.decoding.lm_text, config.decoding.english_words)
    device = setup_torch(tc)
    bf16 = use_bf16(device, tc.precision)
    out = Path(out)
    resumed = should_resume(out / LAST, STATE_FILE, resume=resume, log=log)
    rec, state = start_model(config, out, init, resumed, log, train)
    rec.model.to(device)
    freeze(rec, tc.freeze, log)
    train_mode(rec, tc.freeze)
    n_params = sum(p.numel() for p in rec.model.parameters())
    log(
        f"model: {type(rec.model).__name__}, {n_params / 1e6:.2f}M parameters, device {device}, "
        f"{'bf16 autocast' if bf16 else 'fp32'}"
    )
    views, dev_set, feature_seconds = load_features(rec, train, dev, tc, log)
    optimizer = make_optimizer(rec, tc)
    if resumed:
        load_optimizer(optimizer, out / LAST, device)
    train_hash = manifest_hash(train)
    best = saved_best_weights(out) if resumed else None
    clock = BudgetClock.of(
        tc, threads=torch.get_num_threads(), wall=state["elapsed"], cpu=state["cpu_seconds"]
    )
    cap = step_cap(views, tc)
    run = Run(config, out, rec, optimizer, device, bf16, state, clock, train_hash, log, cap, best)
    if hasattr(rec.feature_extractor, "mel_filters"):
        run.mel_centers = band_center_hz(rec.feature_extractor)
    run.tracker = Tracker(
        out / TB_DIR, purge_from=state["step"] + 1 if resumed else None, config=config
    )
    try:
        train_loop(run, views, dev_set, on_progress)
        extra = {"feature_seconds": feature_seconds, "parameters": n_params}
        metrics = finish(run, views, dev_set, extra)
    finally:
        run.tracker.close()
    return TrainResult(out, metrics, tuple(rec.notes))
