"""The noise floor of a run's figures: its last round trained again on the same labels with
another training seed.

Two arms can only be told apart by more than what training alone moves: the same training
manifest, the same starting checkpoint and the same recipe, with only the models' training seed
changed, give the spread that is no strategy's doing. ``retrain_last_round`` writes
``out/<kind>/`` (the retrained models) and ``out/metrics.json`` (their test figures, keyed as a
round's); a finished one is reused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from earmark.core.errors import EarmarkError
from earmark.core.fileio import write_json
from earmark.core.manifest import read_manifest
from earmark.loop.config import LoopConfig
from earmark.loop.rounds import Say, round_overrides
from earmark.loop.state import RunFolder
from earmark.loop.trainset import previous_checkpoint
from training.model import recipe


def seed_override(kind: str, seed: int) -> str:
    """The config key of each model's training seed."""
    return f"train.seed={seed}" if kind == "asr" else f"seed={seed}"


def last_trained_round(run: RunFolder) -> int:
    rows = json.loads(run.metrics.read_text()) if run.metrics.is_file() else []
    if not rows:
        raise EarmarkError(f"{run.root}: no trained round to measure the noise of")
    return int(rows[-1]["round"])


def retrain_last_round(
    cfg: LoopConfig, run_dir: Path, out: Path, *, seed: int, say: Say = print
) -> dict[str, Any]:
    """The run's last round trained again with training seed ``seed`` (each model from the
    checkpoint that round started from, on that round's training manifest, with its recipe and
    overrides); its test figures, as the round's row has them."""
    if (out / "metrics.json").is_file():
        done: dict[str, Any] = json.loads((out / "metrics.json").read_text())
        return done
    run = RunFolder(run_dir)
    round_no = last_trained_round(run)
    if round_no < 2:
        raise EarmarkError(
            f"{run_dir}: round 1 is the base or a first training: retrain a later one"
        )
    rf = run.round(round_no)
    kinds = list(json.loads(rf.checkpoints.read_text()))
    test_rows = read_manifest(cfg.data.test or cfg.data.dev)
    row: dict[str, Any] = {"round": round_no, "training_seed": seed}
    for kind in kinds:
        settings = cfg.asr if kind == "asr" else cfg.nlu
        init = previous_checkpoint(run, round_no, kind)
        say(f"noise floor: {kind.upper()} of round {round_no} again, training seed {seed}")
        checkpoint = recipe(kind).train(
            rf.train_manifest(kind), Path(cfg.data.dev), out / kind,
            config=settings.config or None, minutes=settings.minutes,
            overrides=(*round_overrides(cfg, kind, init is not None), seed_override(kind, seed)),
            init=init, log=say, lm_text=settings.lm_text,
        )  # fmt: skip
        row.update(
            recipe(kind).evaluate(
                checkpoint, test_rows, n_resamples=cfg.eval_resamples, by=cfg.eval_by
            )
        )
    write_json(out / "metrics.json", row)
    return row


def compare_noise(
    finals: dict[int, dict[str, Any]], retrained: dict[int, dict[str, Any]], keys: list[str]
) -> dict[str, Any]:
    """Per figure (``keys``) and seed: the run's final value, the retrained one and their
    absolute difference; ``max_abs_diff`` over the seeds is the noise floor a saving must clear."""
    out: dict[str, Any] = {}
    for key in keys:
        per_seed = {}
        for seed, row in sorted(retrained.items()):
            a, b = finals.get(seed, {}).get(key), row.get(key)
            if a is not None and b is not None:
                per_seed[str(seed)] = {"run": a, "retrained": b, "abs_diff": abs(a - b)}
        diffs = [v["abs_diff"] for v in per_seed.values()]
        out[key] = {"per_seed": per_seed, "max_abs_diff": max(diffs) if diffs else None}
    return out


def print_noise(noise: dict[str, Any], say: Say = print) -> None:
    """The noise-floor table: one line per figure, the seeds' differences and their maximum."""
    say("\nnoise floor: random's last round trained again on the same labels with another "
        "training seed; |difference| per seed, then the largest")  # fmt: skip
    for key, v in noise.items():
        cells = " ".join(f"s{s} {d['abs_diff']:.3f}" for s, d in v["per_seed"].items())
        top = "-" if v["max_abs_diff"] is None else f"{v['max_abs_diff']:.3f}"
        say(f"  {key:<34}{cells}  max {top}")
