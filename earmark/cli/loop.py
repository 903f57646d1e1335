"""``earmark base``, ``earmark loop`` and ``earmark status``: thin wrappers around ``earmark.loop``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)


def _say(msg: str) -> None:
    err.print(escape(msg), highlight=False)


def loop_command(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Loop config YAML, e.g. configs/demo.yaml."
    ),
    run: Path = typer.Option(
        Path("runs/loop"), "--run", help="Run folder: all state, artefacts and Label Studio data."
    ),
    rounds: int | None = typer.Option(
        None, "--rounds", help="Selection rounds (overrides stopping.rounds)."
    ),
    batch: int | None = typer.Option(
        None, "--batch", help="Utterances sent to annotators per round."
    ),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        help="random | asr-least-confidence | asr-entropy | nlu-margin | nlu-entropy | combined.",
    ),
    annotator: str | None = typer.Option(None, "--annotator", help="simulated | human."),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override a config key, e.g. --set batch=20."
    ),
) -> None:
    """Run active-learning rounds: train, score the pool, select, push, annotate, pull, repeat.

    Killed at any moment, the same command continues where it stopped. With --annotator human
    it stops after pushing and says where to go; run it again to wait for the annotations.
    """
    from earmark.loop.config import load_loop_config
    from earmark.loop.curves import format_table
    from earmark.loop.rounds import run_loop

    sets = list(overrides or [])
    for key, value in (("stopping.rounds", rounds), ("batch", batch), ("selection.strategy", strategy),
                       ("annotator.kind", annotator)):  # fmt: skip
        if value is not None:
            sets.append(f"{key}={value}")
    cfg = load_loop_config(config, sets)
    state = run_loop(cfg, run, say=_say)
    metrics = run / "metrics.json"
    if metrics.is_file():
        console.print(format_table(json.loads(metrics.read_text())))
        console.print(
            f"learning curve: {run / 'learning_curve.png'}   metrics: {run / 'metrics.csv'}"
        )
    if state.stopped:
        console.print(f"run finished: {state.stopped}")


def status_command(
    run: Path = typer.Option(Path("runs/loop"), "--run", help="Run folder."),
) -> None:
    """The run at a glance: round, labelled / queued / flagged / pool counts, metrics, open tasks."""
    from earmark.loop.status import run_status

    console.print(run_status(run))


def base_command(
    config: Path = typer.Option(
        Path("configs/base_deploy.yaml"), "--config", "-c", help="Base config YAML."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the corpus and of both models' training."),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override a config key, e.g. --set asr.minutes=5."
    ),
) -> None:
    """Build the base model a loop starts from: the corpus, then ASR and NLU trained on its
    source domain, cached by config and seed (a second run reuses it).

    Prints the loop config keys that start round 1 from it (asr.init, nlu.init).
    """
    from earmark.loop.base import build_base, load_base_config

    base = build_base(load_base_config(config, list(overrides or [])), seed, _say)
    typer.echo(json.dumps({"base": str(base.folder), "reused": base.reused,
                           "loop_overrides": base.loop_overrides()}, indent=2))  # fmt: skip


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("base")(base_command)
    app.command("loop")(loop_command)
    app.command("status")(status_command)
