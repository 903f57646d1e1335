"""``earmark train nlu`` and ``earmark predict nlu``: thin wrappers around ``training.nlu``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from earmark.cli.ranks import NPROC_HELP, torchrun
from earmark.core.errors import EarmarkError


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["train"].command("nlu")(train_nlu_command)
    groups["predict"].command("nlu")(predict_nlu_command)


def train_nlu_command(
    train: Path = typer.Option(..., "--train", help="Training manifest (rows with text + intent)."),
    dev: Path = typer.Option(..., "--dev", help="Dev manifest: best-epoch choice and calibration."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (best checkpoint; last/ to resume)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML config (default configs/nlu.yaml)."
    ),
    init: Path | None = typer.Option(
        None, "--init", help="Warm start from an NLU checkpoint (heads grow for new labels)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    max_minutes: float | None = typer.Option(
        None,
        "--max-minutes",
        help="Time budget in minutes on optim.budget_clock (0 = none); replaces the config's. "
        "A step cap still applies: the first reached ends training.",
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        help="Step cap (0 = none); replaces the config's. The time budget still applies.",
    ),
    asr_predictions: Path | None = typer.Option(
        None,
        "--asr-predictions",
        help="ASR predictions JSONL of the training audio: also train on these hypotheses, "
        "with the gold labels projected where the words match.",
    ),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override a config key, e.g. --set optim.lr=0.0003 (repeatable)."
    ),
    nproc: int = typer.Option(1, "--nproc", min=1, help=NPROC_HELP),
) -> None:
    """Train (or fine-tune) the joint intent + entity model; keeps the best epoch on dev."""
    from rich.console import Console

    from training.nlu.config import load_nlu_config, with_budget
    from training.nlu.train import train_nlu

    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(torchrun(nproc, out))

    cfg = load_nlu_config(config, tuple(overrides or ()))
    cfg = with_budget(cfg, minutes=max_minutes, max_steps=max_steps)  # as the loop does
    console = Console(stderr=True)
    with console.status("training the NLU..."):
        result = train_nlu(
            cfg,
            train,
            dev,
            out,
            init=init,
            resume=resume,
            asr_predictions=asr_predictions,
            log=lambda line: console.print(line, highlight=False, markup=False),
        )
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 alone prints
    dev_values = {
        k: v["value"]
        for k, v in result.metrics["dev"].items()
        if isinstance(v, dict) and "value" in v
    }
    typer.echo(json.dumps({"checkpoint": str(result.checkpoint), **dev_values}))


def predict_nlu_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="NLU checkpoint folder."),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="Manifest whose 'text' is read (rows without text are skipped)."
    ),
    asr_predictions: Path | None = typer.Option(
        None,
        "--asr-predictions",
        help="ASR predictions JSONL ({id, text, ...}): read the text from here instead "
        "(with --manifest, only the manifest's ids).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Predictions JSONL (default: stdout)."),
) -> None:
    """Predict intent (with top alternatives), entities and a calibrated confidence per utterance."""
    from earmark.core.manifest import iter_manifest
    from earmark.core.predictions import write_predictions
    from training.nlu.data import read_asr_predictions
    from training.nlu.predict import predict

    if not checkpoint.is_dir():
        raise EarmarkError(f"{checkpoint}: checkpoint folder not found")
    texts: list[tuple[str, str]]
    if asr_predictions is not None:
        hyps = read_asr_predictions(asr_predictions)
        if manifest is None:
            texts = list(hyps.items())
        else:
            ids = [row.id for row in iter_manifest(manifest)]
            missing = [i for i in ids if i not in hyps]
            if missing:
                raise EarmarkError(
                    f"{asr_predictions}: no transcript for {len(missing)} id(s) of {manifest}, "
                    f"e.g. {missing[:3]}"
                )
            texts = [(i, hyps[i]) for i in ids]
    elif manifest is not None:
        texts = [
            (row.id, row.label.text)
            for row in iter_manifest(manifest)
            if row.label is not None and row.label.text is not None
        ]
    else:
        raise EarmarkError("give --manifest, --asr-predictions, or both")
    preds = predict(checkpoint, texts)
    if out is None:
        for p in preds:
            typer.echo(json.dumps(p.to_dict(), ensure_ascii=False))
        return
    write_predictions(out, preds)
    typer.echo(f"{len(texts)} predictions -> {out}", err=True)
