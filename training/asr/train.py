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
saved in ``state``, what the steps share (the run, batches, augmentation, loss) in ``steps``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch

from earmark.core.errors import ConfigError
from earmark.core.manifest import manifest_hash
from earmark.core.say import quiet
from training.asr.config import ASRConfig
from training.asr.data import collate
from training.asr.features import Example, band_center_hz
from training.asr.lmtext import check_sources
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
from training.asr.steps import Run, augment, ctc_loss, epoch_batches, step_cap
from training.asr.tuning import (
    choose_decoding,
    dev_log_probs,
    dev_rates_of,
    evaluate_dev,
    fit_dev_temperature,
)
from training.budget import BudgetClock
from training.checkpoint import LAST, should_resume
from training.distributed import World, join, leave, rows_of, share, wrap
from training.result import Log, OnProgress, TrainResult
from training.schedule import warmup_cosine
from training.tracking import TB_DIR, Tracker

# -- the loop -------------------------------------------------------------------------------


def train_step(run: Run, examples: list[Example]) -> tuple[float, float]:
    """One optimiser step on ``examples``; returns its loss and learning rate."""
    tc, state = run.config.train, run.state
    step_t0 = time.perf_counter()
    lr = warmup_cosine(run.progress(), tc.lr, warmup=tc.warmup, final_fraction=tc.final_lr_fraction)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    # the whole batch, augmented alike on every rank; this rank's rows of it
    batch = augment(collate(examples), tc, run.mel_centers)
    rows, weight = share(len(examples), run.world)
    loss = ctc_loss(run.rec, rows_of(batch, rows), run.device, run.bf16, run.module) * weight
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
    value = run.world.total(loss.item() / run.world.size)  # the whole batch's mean loss
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
    """Whether dev is checked after this step (rank 0's clock decides for every rank)."""
    tc = run.config.train
    due = run.clock.used() >= next_eval or (
        tc.eval_every_steps > 0 and run.state["step"] % tc.eval_every_steps == 0
    )
    return bool(run.world.agreed(float(due)))


def checkpoint_all(run: Run, dev: list[Example]) -> None:
    """``checkpoint`` on rank 0 (the only rank that writes), the others waiting for it."""
    if run.world.main:
        checkpoint(run, dev)
    run.world.barrier()


def progress_report(run: Run, fraction: float, loss: float, lr: float) -> dict[str, Any]:
    state = run.state
    return {
        "fraction": fraction,
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
            fraction = run.progress()
            if on_progress is not None:
                on_progress(progress_report(run, fraction, loss_avg, lr))
            done = fraction >= 1.0
            if not done and eval_due(run, next_eval):
                checkpoint_all(run, dev)
                next_eval = next_eval_at(run)
            if done:
                run.state["epoch"] += n == len(batches)  # a budget that ends with its epoch
                break
        else:
            run.state["epoch"] += 1
    checkpoint_all(run, dev)


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

    Under torchrun (``WORLD_SIZE`` > 1) the ranks train one model on split global batches
    (``training.distributed``); rank 0 alone logs and writes, and returns the metrics (the
    other ranks return an empty dict).
    """
    tc = config.train
    if tc.max_minutes <= 0 and tc.max_steps <= 0 and tc.max_epochs <= 0:
        raise ConfigError(
            "train.max_minutes, train.max_steps and train.max_epochs are all 0: give a budget"
        )
    if config.decoding.method == "beam":
        check_sources(config.decoding.lm_text, config.decoding.english_words)
    device = setup_torch(tc)
    world = join(device)
    try:
        return _train(config, train, dev, Path(out), init, resume, log if world.main else quiet,
                      on_progress, device, world)  # fmt: skip
    finally:
        leave(world)


def _train(
    config: ASRConfig,
    train: str | Path,
    dev: str | Path,
    out: Path,
    init: str | Path | None,
    resume: bool,
    log: Log,
    on_progress: OnProgress | None,
    device: torch.device,
    world: World,
) -> TrainResult:
    """``train_asr`` in one process among ``world``'s ranks."""
    tc = config.train
    bf16 = use_bf16(device, tc.precision)
    # rank 0 first: it may put back a save a kill cut in two, which the others then read
    resumed = world.main_first(
        lambda: should_resume(out / LAST, STATE_FILE, resume=resume, log=log)
    )
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
    run.world, run.module = world, wrap(rec.model, world, device)
    if world.main:
        purge = state["step"] + 1 if resumed else None
        run.tracker = Tracker(out / TB_DIR, purge_from=purge, config=config)
    metrics: dict[str, Any] = {}
    try:
        train_loop(run, views, dev_set, on_progress)
        if world.main:
            extra = {
                "feature_seconds": feature_seconds,
                "parameters": n_params,
                "ranks": world.size,
            }
            metrics = finish(run, views, dev_set, extra)
        world.barrier()
    finally:
        if run.tracker is not None:
            run.tracker.close()
    return TrainResult(out, metrics, tuple(rec.notes))
