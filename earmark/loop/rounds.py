"""One active-learning run, round by round: train -> score -> select -> push -> annotate -> pull.

Read it top to bottom: ``run_loop`` holds the run folder's lock and walks the phases of
``earmark.loop.state``; each phase is one small function that reads the files of earlier
phases and writes its own artefact atomically before the state moves on. Killing the process
at any point and running the same command again repeats at most the phase that was cut off,
and every phase is safe to repeat (training resumes from its last checkpoint, push never makes
a second task, pull never imports twice).

After the last selection round one more training measures the final labels (N rounds: N + 1 points).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from earmark.core import faults
from earmark.core.config import to_dict
from earmark.core.errors import EarmarkError, EmptyPoolError
from earmark.core.fileio import write_json, write_jsonl
from earmark.core.manifest import read_manifest
from earmark.core.predictions import ASRHypothesis, NLUPrediction, write_predictions
from earmark.loop.config import LoopConfig
from earmark.loop.curves import append_row, plot_curves
from earmark.loop.launch import train_command, train_on_ranks
from earmark.loop.pool import Quarantine, sample_pool, unavailable_ids
from earmark.loop.scoring import predict_rows
from earmark.loop.state import RoundFiles, RunFolder, RunState
from earmark.loop.studio import (
    agreement_figures,
    annotate_round,
    human_instructions,
    human_labelled,
    prepare_studio,
    pull_round,
    push_round,
)
from earmark.loop.trainset import (
    Halves,
    counts,
    halves_of,
    lm_text_of,
    previous_checkpoint,
    read_predictions_file,
    write_training_manifest,
)
from earmark.loop.warmup import RankCheck, rank_check, utterance_errors
from earmark.selection import make_strategy, read_scores, write_scores
from earmark.selection.scores import scores_from_predictions
from earmark.selection.strategies import Combined, Diverse, Random, Strategy
from training.model import recipe

Say = Callable[[str], None]


# -- training --------------------------------------------------------------------------------


def train_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> dict[str, Any]:
    """Train both models (warm-started from the previous round), evaluate on test, log the row."""
    rf = run.round(round_no)
    if rf.trained:  # trained and evaluated before a crash: never train twice
        done: dict[str, Any] = json.loads(rf.metrics.read_text())
        _log_row(run, done)  # a kill may have come before the run's curve had this row
        return done
    rf.dir.mkdir(parents=True, exist_ok=True)
    checkpoints: dict[str, str] = {}
    row: dict[str, Any] = {"round": round_no}
    test_rows = read_manifest(cfg.data.test or cfg.data.dev)  # measured only: nothing reads it back
    if not cfg.data.test:
        say(
            f"round {round_no}: no data.test, so the curve is measured on dev, which also "
            f"chose the checkpoints: it reads better than the models are"
        )
    for kind in halves.kinds:
        model = recipe(kind)
        settings = cfg.asr if kind == "asr" else cfg.nlu
        init = previous_checkpoint(run, round_no, kind) or (
            Path(settings.init) if settings.init else None  # round 1 from the base model
        )
        base_round = round_no == 1 and settings.init_is_round_one
        warm = init is not None and not base_round
        train, n_human, n_pseudo = write_training_manifest(cfg, run, round_no, kind, warm=warm)
        minutes = settings.minutes if init else settings.first_round_minutes
        if base_round:
            say(f"round 1: {kind.upper()} is the base {init} (trained on these {n_human} labels)")
            checkpoint = Path(settings.init)
        else:
            say(
                f"round {round_no}: training {kind.upper()} on {counts(n_human, n_pseudo)} "
                f"({minutes:g} min, warm start: {init})"
            )
            out, dev = rf.checkpoint_dir(kind), Path(cfg.data.dev)
            config, lm_text = settings.config or None, lm_text_of(settings.lm_text, rf, kind)
            overrides = round_overrides(cfg, kind, init is not None)
            if settings.nproc > 1:  # torchrun in a child process; it resumes as train does
                cmd = train_command(
                    kind, settings.nproc, train, dev, out, config=config, overrides=overrides,
                    minutes=minutes, init=init, lm_text=lm_text,
                )  # fmt: skip
                checkpoint = train_on_ranks(cmd, out, say)
            else:
                checkpoint = model.train(
                    train, dev, out, config=config, overrides=overrides, minutes=minutes,
                    init=init, log=say, lm_text=lm_text,
                )  # fmt: skip
        checkpoints[kind] = str(checkpoint)
        row[f"labelled_{kind}"] = n_human
        row.update(
            model.evaluate(checkpoint, test_rows, n_resamples=cfg.eval_resamples, by=cfg.eval_by)
        )
        # what the stopping rule reads: dev, which chose the checkpoint anyway
        row.update({f"dev_{k}": v for k, v in model.dev_metrics(checkpoint).items()})
        if cfg.self_training.enabled:
            row[f"pseudo_{kind}"] = n_pseudo
    # the curve's x axis counts seed and human labels only, never the models' own
    row["labelled"] = max(row.get("labelled_asr", 0), row.get("labelled_nlu", 0))
    row.update(agreement_figures(run.root))  # what the labels rest on, when tasks overlap
    row = {
        k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()
    }  # NaN -> null
    write_json(rf.checkpoints, checkpoints)
    write_json(rf.metrics, row)
    _log_row(run, row)
    return row


def round_overrides(cfg: LoopConfig, kind: str, warm: bool) -> tuple[str, ...]:
    """A round's training overrides: the NLU learns the label set the annotators choose from
    (``data.schema``, so every intent has its output from round 1, started at its name), then
    the model's own overrides (which may replace it), then the warm-start ones."""
    settings = cfg.asr if kind == "asr" else cfg.nlu
    schema = (f"schema={cfg.data.schema}",) if kind == "nlu" and cfg.data.schema else ()
    return (*schema, *settings.overrides, *(settings.warm_overrides if warm else ()))


def _log_row(run: RunFolder, row: dict[str, Any]) -> None:
    """Put the round's row on the run's curve (replacing any row of the same round) and redraw."""
    rows_so_far = append_row(run.root, row)
    plot_curves({"run": rows_so_far}, run.curve_plot)


# -- scoring and selection -------------------------------------------------------------------


def _write_predictions(
    rf: RoundFiles,
    split: str,
    asr: dict[str, ASRHypothesis],
    nlu: dict[str, NLUPrediction],
) -> None:
    if asr:
        write_predictions(rf.predictions("asr", split), asr.values())
    if nlu:
        write_predictions(rf.predictions("nlu", split), nlu.values())


def score_round(cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say) -> None:
    """Predict on the selectable pool (or a sample of it) with this round's models; write
    predictions and scores. With the warm-up check on, predict on dev too (``select_round``
    measures there whether the strategy's ranking can be trusted yet)."""
    rf = run.round(round_no)
    ckpts = json.loads(rf.checkpoints.read_text())
    skip = unavailable_ids(run.root)
    selectable = [r for r in read_manifest(cfg.data.pool) if r.id not in skip]
    pool = sample_pool(cfg, selectable, round_no)
    if len(pool) < len(selectable):
        say(
            f"round {round_no}: scoring a random {len(pool)} of {len(selectable)} selectable "
            f"pool utterances (selection.pool_sample)"
        )
    else:
        say(f"round {round_no}: scoring {len(pool)} pool utterances")
    dev = []
    if _checks_ranking(cfg):
        dev = [r for r in read_manifest(cfg.data.dev) if r.label is not None]
        say(f"round {round_no}: scoring {len(dev)} dev utterances (selection.min_rank_correlation)")
    # one pass, so the models load once; dev and pool ids are disjoint
    quarantined = Quarantine(run.root)
    asr_all, nlu_all = predict_rows(
        ckpts, dev + pool, halves, on_bad_audio=quarantined.adder(round_no, say), say=say,
        processes=(cfg.selection.score_processes, rf.dir),
    )  # fmt: skip
    pool = [r for r in pool if r.id not in quarantined.ids()]
    if dev:
        dev_ids = {r.id for r in dev}
        _write_predictions(
            rf, "dev",
            {k: v for k, v in asr_all.items() if k in dev_ids},
            {k: v for k, v in nlu_all.items() if k in dev_ids},
        )  # fmt: skip
    pool_ids = {r.id for r in pool}
    asr_preds = {k: v for k, v in asr_all.items() if k in pool_ids}
    nlu_preds = {k: v for k, v in nlu_all.items() if k in pool_ids}
    _write_predictions(rf, "pool", asr_preds, nlu_preds)
    write_scores(
        rf.scores,
        (scores_from_predictions(asr_preds.get(r.id), nlu_preds.get(r.id), r.id) for r in pool),
    )


def _checks_ranking(cfg: LoopConfig) -> bool:
    return cfg.selection.min_rank_correlation > 0 and cfg.selection.strategy != "random"


def _dev_rank_check(
    cfg: LoopConfig, rf: RoundFiles, strategy: Strategy, asr_weight: float, halves: Halves
) -> RankCheck:
    """How well ``strategy`` ranks this round's models' errors on dev (predicted by ``score_round``)."""
    dev = [r for r in read_manifest(cfg.data.dev) if r.label is not None]
    wanted = [rf.predictions(k, "dev") for k in halves.kinds]
    if not all(p.is_file() for p in wanted):  # scored before the check was switched on
        ckpts = json.loads(rf.checkpoints.read_text())
        _write_predictions(rf, "dev", *predict_rows(ckpts, dev, halves))
    asr = read_predictions_file(rf.predictions("asr", "dev"), ASRHypothesis) if halves.asr else {}
    nlu = read_predictions_file(rf.predictions("nlu", "dev"), NLUPrediction) if halves.nlu else {}
    scores = [scores_from_predictions(asr.get(r.id), nlu.get(r.id), r.id) for r in dev]
    errors = utterance_errors(dev, asr, nlu, asr_weight)
    return rank_check(strategy, scores, errors, cfg.selection.min_rank_correlation)


def select_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> list[str]:
    rf = run.round(round_no)
    sel = cfg.selection
    name = sel.strategy
    seed = cfg.seed + round_no
    asr_weight = sel.asr_weight if halves.asr and halves.nlu else (1.0 if halves.asr else 0.0)
    strategy: Strategy
    if name == "combined":
        base = Combined(seed=seed, asr_weight=asr_weight)
        strategy = Diverse(base, factor=sel.diversity_factor, seed=seed) if sel.diverse else base
    else:
        strategy = make_strategy(name, seed, diverse=sel.diverse, factor=sel.diversity_factor)
    if _checks_ranking(cfg):
        check = _dev_rank_check(cfg, rf, strategy, asr_weight, halves)
        write_json(rf.rank_check, check.to_dict())
        if check.informative:
            say(f"round {round_no}: {check.describe()}: following it")
        else:
            say(f"round {round_no}: {check.describe()}: selecting at random this round")
            strategy = Random(seed=seed)
    batch = cfg.batch
    if cfg.stopping.label_budget:
        batch = min(batch, cfg.stopping.label_budget - human_labelled(run.root))
    scores = read_scores(rf.scores)
    chosen = (
        strategy.select(scores, max(batch, 0), exclude=unavailable_ids(run.root))
        if batch > 0
        else []
    )
    by_id = {s.id: s for s in scores}
    write_jsonl(
        rf.selection,
        (
            {"id": uid, "score": round(strategy.priority(by_id[uid]), 6), "strategy": strategy.name}
            for uid in chosen
        ),
    )
    say(f"round {round_no}: selected {len(chosen)} utterances with {strategy.name}")
    return chosen


# -- Label Studio ----------------------------------------------------------------------------


# -- the loop --------------------------------------------------------------------------------


def should_stop(cfg: LoopConfig, run: RunFolder, round_no: int) -> str | None:
    """Why the loop stops before selecting in ``round_no`` (None: carry on)."""
    stop = cfg.stopping
    if round_no > stop.rounds:
        return f"reached {stop.rounds} round(s)"
    if stop.label_budget and human_labelled(run.root) >= stop.label_budget:
        return f"label budget of {stop.label_budget} reached"
    path = run.metrics
    if stop.patience and path.is_file():
        # dev figures only: the test set measures, it never decides when to stop
        rows = json.loads(path.read_text())
        key, sign = (
            ("dev_wer", -1.0) if any("dev_wer" in r for r in rows) else ("dev_intent_accuracy", 1.0)
        )
        values = [sign * r[key] for r in rows if r.get(key) is not None]
        if len(values) > stop.patience:
            best_before = max(values[: -stop.patience])
            if max(values[-stop.patience :]) < best_before + stop.min_delta:
                return f"{key.replace('_', ' ')} has not improved for {stop.patience} round(s)"
    return None


def run_loop(cfg: LoopConfig, run_dir: str | Path, *, say: Say = print) -> RunState:
    """Run (or continue) the loop in ``run_dir`` until it stops or a human has work to do."""
    run = RunFolder(run_dir)
    with run.lock():
        write_json(run.config, to_dict(cfg))
        halves = halves_of(cfg)
        state = run.load_state()
        if state.stopped:
            say(f"run {run.root} already finished: {state.stopped}")
            return state
        if cfg.annotator.kind == "simulated" and not cfg.data.answers:
            raise EarmarkError(
                "the simulated annotator needs data.answers (the pool's true labels)"
            )
        prepare_studio(cfg, run, say)
        while True:
            r = state.round
            faults.context(f"round {r} {state.phase}")
            if state.phase == "train":
                train_round(cfg, run, r, halves, say)
                reason = should_stop(cfg, run, r)
                if reason:
                    state = replace(state, phase="done", stopped=reason)
                    run.save_state(state)
                    say(f"stopping: {reason}")
                    return state
            elif state.phase == "score":
                score_round(cfg, run, r, halves, say)
            elif state.phase == "select":
                try:
                    chosen = select_round(cfg, run, r, halves, say)
                except EmptyPoolError as exc:
                    chosen = []
                    say(str(exc))
                if not chosen:
                    state = replace(state, phase="done", stopped="nothing left to select")
                    run.save_state(state)
                    return state
            elif state.phase == "push":
                push_round(cfg, run, r, say)
                if cfg.annotator.kind == "human":
                    run.save_state(state.advance())
                    say(human_instructions(run))
                    return state.advance()
            elif state.phase == "annotate":
                annotate_round(cfg, run, r, halves, say)
            elif state.phase == "pull":
                pull_round(cfg, run, r, halves, say)
            _crash_point(state.phase)
            state = state.advance()
            if state.phase == "done":  # nothing to do in "done": go to the next round's training
                state = state.advance()
            run.save_state(state)


def _crash_point(phase: str) -> None:
    """Fault injection for the resume tests: ``EARMARK_CRASH_AFTER=<phase>`` kills the process
    right after that phase's work, before the state records it (the worst moment to die)."""
    if os.environ.get("EARMARK_CRASH_AFTER") == phase:
        os._exit(99)
