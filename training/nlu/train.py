"""Training loop for the joint NLU, readable top to bottom (nanoGPT style).

``train_nlu(config, train, dev, out)`` writes the best-on-dev model to ``out/`` (Hugging Face
folder + ``nlu.json`` + ``earmark.json``, calibrated on dev) and the resumable state to
``out/last/`` (``state``: model, optimiser, step, epoch). Warm start (``init``) loads another
NLU checkpoint; labels that appeared since are appended to its heads. The budget is
``optim.max_minutes`` on ``optim.budget_clock`` and ``optim.max_steps``, as the ASR's
(``training.budget``); the learning rate warms up and decays linearly over it
(``training.schedule.warmup_linear``). What is measured on dev is in ``tuning``. ``out/tb/``
holds TensorBoard event files: loss and learning rate per step, dev scores per epoch, the final
calibrated dev scores and the config (``training.tracking``).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from earmark.core.errors import ConfigError
from earmark.core.say import quiet
from training.budget import BudgetClock
from training.checkpoint import LAST, should_resume
from training.distributed import World, join, leave, share, wrap
from training.nlu.build import build_model, make_optimizer
from training.nlu.config import NLUConfig
from training.nlu.data import Example, load_examples, read_asr_predictions, with_hypotheses
from training.nlu.evaluate import score_predictions
from training.nlu.model import load_model, save_model
from training.nlu.noise import noisy_copies
from training.nlu.schema import LabelSchema
from training.nlu.state import (
    TRAINER_STATE,
    fresh_state,
    load_last,
    save_last,
    write_checkpoint_meta,
)
from training.nlu.steps import Run, get_batch, loss_fn
from training.nlu.tuning import calibrate, dev_score, predict_examples
from training.result import Log, OnProgress, TrainResult
from training.schedule import warmup_linear
from training.tracking import TB_DIR, Tracker

# -- setting up: the data, the labels, the model, the optimiser -----------------------------


def load_data(
    config: NLUConfig, train_path: Path, dev_path: Path, asr_predictions: Path | None, log: Log
) -> tuple[list[Example], list[Example]]:
    train, dev = load_examples(train_path), load_examples(dev_path)
    if not train:
        raise ConfigError(f"{train_path}: no labelled rows (with an intent) to train on")
    if not dev:
        raise ConfigError(f"{dev_path}: no labelled rows (with an intent) to pick the best model")
    aug = config.augment
    noisy = noisy_copies(
        train, copies=aug.noisy_copies, word_error_rate=aug.word_error_rate, seed=config.seed
    )
    if noisy:
        log(
            f"noisy text: {len(noisy)} copies with recogniser-like errors (WER {aug.word_error_rate:g})"
        )
    if asr_predictions is not None:
        extra = with_hypotheses(train, read_asr_predictions(asr_predictions))
        kept = sum(len(e.entities) for e in extra)
        log(f"ASR hypotheses: {len(extra)} extra examples ({kept} entities projected)")
        train = train + extra
    return train + noisy, dev


def build_schema(
    config: NLUConfig, train: list[Example], dev: list[Example], paths: tuple[Path, Path]
) -> LabelSchema:
    if config.schema is None:
        return LabelSchema.from_examples(train, dev)
    schema = LabelSchema.from_file(config.schema)
    schema.check([e for e in train if e.line], path=str(paths[0]))
    schema.check(dev, path=str(paths[1]))
    return schema


def start_run(
    config: NLUConfig,
    schema: LabelSchema,
    train: list[Example],
    out: Path,
    init: Path | None,
    resumed: bool,
    log: Log,
) -> Run:
    """The model, optimiser and state, resumed from ``out/last/`` or built (warm-started from
    ``init``, or fresh); the budget clock starts now, as training does."""
    oc = config.optim
    version = "nlu-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    state = fresh_state(version, str(init) if init else None)
    notes: list[str] = []
    if resumed:
        model, tokenizer, saved = load_last(out, schema)
        optimizer = make_optimizer(model, config)
        # the schedule scales the configured peak rates: read them before the saved state
        # overwrites each group's rate with the last scheduled one
        peak_lrs = [g["lr"] for g in optimizer.param_groups]
        optimizer.load_state_dict(saved.pop("optimizer"))
        state.update(saved)
        log(f"resuming {out / LAST} at epoch {state['epoch']}, step {state['step']}")
    else:
        model, tokenizer, notes = build_model(config, schema, train, init, log)
        optimizer = make_optimizer(model, config)
        peak_lrs = [g["lr"] for g in optimizer.param_groups]
    planned = oc.max_steps or max(
        math.ceil(len(train) / oc.batch_size) * oc.max_epochs, oc.min_steps
    )
    clock = BudgetClock.of(
        oc, threads=torch.get_num_threads(), wall=state["elapsed"], cpu=state["cpu_seconds"]
    )
    return Run(
        config, out, model, tokenizer, optimizer, state, notes, log, peak_lrs, planned, clock
    )


# -- the loop -------------------------------------------------------------------------------


def train_step(run: Run, examples: list[Example]) -> tuple[float, float]:
    """One optimiser step on ``examples``; returns its loss and the heads' learning rate."""
    oc = run.config.optim
    progress = run.progress()
    for group, peak in zip(run.optimizer.param_groups, run.peak_lrs, strict=True):
        group["lr"] = warmup_linear(progress, peak, warmup=oc.warmup_frac)
    if run.world.parallel:  # this rank's rows; the sums divided by the whole batch's counts
        rows, weight = share(len(examples), run.world)  # weight 0: an empty share
        batch = get_batch([examples[i] for i in rows], run.model, run.tokenizer)
        tagged = int((batch["tags"] != -100).sum()) if weight else 0
        totals = (len(examples), int(run.world.total(tagged)))
        scale = run.world.size if weight else 0.0  # DDP averages the ranks' gradients
        loss = loss_fn(run.module or run.model, batch, oc.tag_loss_weight, totals) * scale
    else:
        batch = get_batch(examples, run.model, run.tokenizer)
        loss = loss_fn(run.model, batch, oc.tag_loss_weight)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), oc.grad_clip)
    run.optimizer.step()
    run.state["step"] += 1
    value = run.world.total(loss.item() / run.world.size)  # the whole batch's loss
    lr = run.optimizer.param_groups[-1]["lr"]
    if run.tracker is not None:
        run.tracker.scalars(run.state["step"], {"loss": value, "lr": lr}, "train/")
    return value, lr


def train_epoch(run: Run, train: list[Example], on_progress: OnProgress | None) -> list[float]:
    """One pass over ``train`` in a shuffled order, cut short by the budget; its losses."""
    oc, state = run.config.optim, run.state
    run.model.train()
    order = list(range(len(train)))
    # seeded per epoch, so a resumed run sees the same order as an uninterrupted one
    random.Random(run.config.seed * 1000 + state["epoch"]).shuffle(order)
    losses = []
    for i in range(0, len(order), oc.batch_size):
        run.clock.tick()
        if run.spent():
            break  # out of time: score what we have
        loss, lr = train_step(run, [train[j] for j in order[i : i + oc.batch_size]])
        losses.append(loss)
        run.loss_avg = loss if run.loss_avg is None else 0.95 * run.loss_avg + 0.05 * loss
        fraction = run.progress()
        if on_progress is not None:
            on_progress(
                {"fraction": fraction, "loss": run.loss_avg, "lr": lr, "step": state["step"]}
            )
        if oc.max_steps and state["step"] >= oc.max_steps:
            break
    state["epoch"] += 1
    return losses


def end_epoch(run: Run, dev: list[Example], losses: list[float]) -> None:
    """Score the epoch on dev, keep the model in ``out`` if it is the best so far, save
    ``last/``."""
    state = run.state
    _, preds = predict_examples(run.model, run.tokenizer, dev, state["version"])
    scores = score_predictions(dev, preds, n_resamples=0)
    score = dev_score(scores)
    improved = score > state["best"]
    if improved:
        state.update(best=score, best_epoch=state["epoch"], bad=0)
        save_model(run.model, run.tokenizer, run.out)
    else:
        state["bad"] += 1
    run.clock.tick()
    state["elapsed"], state["cpu_seconds"] = run.clock.wall, run.clock.cpu
    save_last(run.model, run.tokenizer, run.optimizer, state, run.out)
    if run.tracker is not None:
        run.tracker.scalars(state["step"], {k: v.value for k, v in scores.items()}, "dev/")
    run.log(
        f"epoch {state['epoch']:3d} step {state['step']:5d} "
        f"loss {sum(losses) / max(1, len(losses)):.4f} "
        f"dev intent {scores['intent_accuracy'].value:.4f} "
        f"entity F1 {scores['entity_f1'].value:.4f}{'  *best*' if improved else ''} "
        f"[{run.clock.wall:.0f}s]"
    )


def stop_reason(run: Run) -> str | None:
    """Why training stops after this epoch (None: it goes on, up to ``max_epochs``)."""
    oc = run.config.optim
    if oc.max_steps and run.state["step"] >= oc.max_steps:
        return "max steps"
    if run.state["bad"] >= oc.patience:
        return f"no dev improvement for {oc.patience} epochs"
    if run.clock.spent():
        return f"time budget of {oc.max_minutes:g} min ({oc.budget_clock} clock)"
    return None


def train_loop(
    run: Run, train: list[Example], dev: list[Example], on_progress: OnProgress | None
) -> str:
    """Epochs until the budget, ``max_epochs`` (once ``min_steps`` are done) or early stopping
    ends them; why they ended."""
    oc = run.config.optim
    while run.state["epoch"] < oc.max_epochs or (
        run.state["step"] < oc.min_steps and not oc.max_steps
    ):
        losses = train_epoch(run, train, on_progress)
        reason = None
        if run.world.main:  # dev, saves and the stopping rule: rank 0's alone
            end_epoch(run, dev, losses)
            reason = stop_reason(run)
        if run.world.agreed(float(reason is not None)):
            return reason or "rank 0 stopped"
    return "max epochs"


# -- the end: the best model, calibrated on dev ----------------------------------------------


def finish(run: Run, train_path: Path, dev: list[Example], reason: str) -> dict[str, Any]:
    """Calibrate the best model on dev and save it to ``out`` with its metrics (returned)."""
    version = run.state["version"]
    model, tokenizer = load_model(run.out)
    temps = calibrate(model, tokenizer, dev, version)
    model.settings = dataclasses.replace(model.settings, temperatures=temps)
    save_model(model, tokenizer, run.out)
    _, preds = predict_examples(model, tokenizer, dev, version)
    scores = score_predictions(dev, preds, n_resamples=200)
    dev_metrics = {k: v.to_dict() for k, v in scores.items()}
    dev_metrics["calibration"] = temps.to_dict()
    metrics = {"dev": dev_metrics, "best_epoch": run.state["best_epoch"]}
    write_checkpoint_meta(run.out, run.config, train_path, run.state, metrics)
    if run.tracker is not None:
        final = {k: v.value for k, v in scores.items()} | {"best_epoch": run.state["best_epoch"]}
        run.tracker.scalars(run.state["step"], final, "final/")
    run.log(
        f"stopped ({reason}); best epoch {run.state['best_epoch']}: "
        f"dev intent {scores['intent_accuracy']}, entity F1 {scores['entity_f1']}, "
        f"ECE {scores['ece']} (T_intent {temps.intent:.2f}, T_tag {temps.tag:.2f}) -> {run.out}"
    )
    return metrics


def train_nlu(
    config: NLUConfig,
    train: str | Path,
    dev: str | Path,
    out: str | Path,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    log: Log = print,
    on_progress: OnProgress | None = None,
    asr_predictions: str | Path | None = None,
) -> TrainResult:
    """Train on the ``train`` manifest, keep the best model on ``dev``, calibrate it there.

    ``init``: warm start from an NLU checkpoint (heads grow for new labels). ``resume``:
    continue the run saved in ``out/last/`` (``training.checkpoint.should_resume``: with
    nothing saved there, that is logged and training starts from ``init`` or scratch).
    ``on_progress`` receives ``{"fraction", "loss", "lr", "step"}`` after each step (loss
    smoothed). ``asr_predictions``: ASR predictions JSONL of the training audio, to train on
    the hypotheses too. The result's metrics are the checkpoint's ``earmark.json`` metrics:
    ``{"dev": {...}, "best_epoch": n}``.
    """
    train_path, dev_path, out = Path(train), Path(dev), Path(out)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    world = join(torch.device("cpu"))
    try:
        return _train(config, train_path, dev_path, out, init, resume,
                      log if world.main else quiet, on_progress, asr_predictions, world)  # fmt: skip
    finally:
        leave(world)


def _train(
    config: NLUConfig,
    train_path: Path,
    dev_path: Path,
    out: Path,
    init: str | Path | None,
    resume: bool,
    log: Log,
    on_progress: OnProgress | None,
    asr_predictions: str | Path | None,
    world: World,
) -> TrainResult:
    """``train_nlu`` in one process among ``world``'s ranks."""
    hyps = Path(asr_predictions) if asr_predictions else None
    train_set, dev_set = load_data(config, train_path, dev_path, hyps, log)
    schema = build_schema(config, train_set, dev_set, (train_path, dev_path))
    # rank 0 first: it may put back a save a kill cut in two, which the others then read
    resumed = world.main_first(
        lambda: should_resume(out / LAST, TRAINER_STATE, resume=resume, log=log)
    )
    run = start_run(config, schema, train_set, out, Path(init) if init else None, resumed, log)
    schema = run.model.schema
    n_params = sum(p.numel() for p in run.model.parameters())
    log(
        f"{len(train_set)} train / {len(dev_set)} dev examples, {len(schema.intents)} intents, "
        f"{len(schema.entity_types)} entity types, {n_params:,} parameters"
    )
    run.world, run.module = world, wrap(run.model, world, torch.device("cpu"))
    if world.main:
        purge = run.state["step"] + 1 if resumed else None
        run.tracker = Tracker(out / TB_DIR, purge_from=purge, config=config)
    metrics: dict[str, Any] = {}
    try:
        reason = train_loop(run, train_set, dev_set, on_progress)
        if world.main:
            metrics = finish(run, train_path, dev_set, reason)
        world.barrier()
    finally:
        if run.tracker is not None:
            run.tracker.close()
    return TrainResult(out, metrics, tuple(run.notes))
