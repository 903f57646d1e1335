"""``earmark evaluate``: ASR and NLU checkpoints side by side, with 95% bootstrap intervals.

The checkpoint's ``earmark.json`` kind picks the evaluator: ``asr`` -> WER/CER/SER and
confidence AUROC (``training.asr.evaluate``), ``nlu`` -> intent accuracy, entity/SLU F1 and
ECE (``training.nlu.evaluate``, optionally end to end through ``--asr-checkpoint``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from earmark.core.errors import CheckpointError, EarmarkError


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("evaluate")(evaluate_command)


def evaluate_one(
    checkpoint: Path,
    manifest: Path,
    asr_checkpoint: Path | None,
    n_resamples: int,
    decoding: str | None = None,
) -> dict[str, Any]:
    """The metrics dict of one checkpoint on ``manifest``; dispatches on its kind."""
    from earmark.core.manifest import read_manifest
    from training.checkpoint import read_meta

    meta = read_meta(checkpoint)
    rows = read_manifest(manifest)
    if meta.kind == "asr":
        from training.asr.evaluate import evaluate_asr

        return evaluate_asr(checkpoint, rows, n_resamples=n_resamples, decoding=decoding)
    if meta.kind == "nlu":
        try:
            from training.nlu.evaluate import evaluate_nlu
        except ImportError as exc:
            raise EarmarkError(f"{checkpoint}: the NLU evaluator is not available: {exc}") from exc
        result: dict[str, Any] = evaluate_nlu(
            checkpoint,
            rows,
            asr_checkpoint=str(asr_checkpoint) if asr_checkpoint else None,
            n_resamples=n_resamples,
        )
        return result
    raise CheckpointError(f"{checkpoint}: unknown checkpoint kind {meta.kind!r}")


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def evaluate_command(
    checkpoint: list[Path] = typer.Option(
        ..., "--checkpoint", help="Checkpoint folder; repeat to compare several side by side."
    ),
    manifest: Path = typer.Option(..., "--manifest", help="Labelled manifest to evaluate on."),
    asr_checkpoint: Path | None = typer.Option(
        None, "--asr-checkpoint", help="For NLU checkpoints: evaluate end to end on ASR output."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    n_resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the CIs."),
    decoding: str | None = typer.Option(
        None,
        "--decoding",
        help="ASR decoding: beam (the checkpoint's LM) or greedy; default: each checkpoint's own.",
    ),
) -> None:
    """Evaluate checkpoints on a manifest: metrics with 95% CIs and, for ASR, the worst utterances."""
    results = {
        str(c): evaluate_one(c, manifest, asr_checkpoint, n_resamples, decoding) for c in checkpoint
    }
    if as_json:
        typer.echo(json.dumps(_finite(results)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    keys: list[str] = []
    for res in results.values():
        keys += [k for k, v in res.items() if k not in keys and not isinstance(v, list)]
    table = Table(title=f"evaluation on {manifest}")
    table.add_column("metric")
    for name in results:
        table.add_column(name)
    for key in keys:
        table.add_row(key, *(_cell(res.get(key, "")) for res in results.values()))
    console.print(table)
    for name, res in results.items():
        worst = res.get("worst") or []
        if not worst:
            continue
        wt = Table(title=f"worst utterances: {name}")
        for col in ("id", "reference", "hypothesis", "errors", "confidence"):
            wt.add_column(col)
        for w in worst:
            wt.add_row(w["id"], w["ref"], w["hyp"], str(w["word_errors"]), f"{w['confidence']:.3f}")
        console.print(wt)


def _finite(value: Any) -> Any:
    """NaN/inf (e.g. AUROC when every utterance is wrong) become null: strict JSON for tools."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
