"""``earmark forget``: remove utterances from a run and its Label Studio. Thin wrapper around
``earmark.loop.forget``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)


def forget_command(
    run: Path = typer.Option(..., "--run", help="Run folder (its Label Studio server running)."),
    speaker: str | None = typer.Option(None, "--speaker", help="Forget every utterance of this speaker."),
    utterances: list[str] | None = typer.Option(None, "--utterance", "-u", help="An utterance id (repeatable)."),
    manifest: Path | None = typer.Option(None, "--manifest", help="Forget the ids of this manifest."),
    retrain: bool = typer.Option(False, "--retrain", help="Train the last round again at once without them."),
) -> None:  # fmt: skip
    """Remove utterances everywhere earmark put them: the run's manifests and round files, its
    audio, and Label Studio (tasks, annotations, predictions, uploaded audio). Checkpoints
    trained with them are marked (later rounds start from an unmarked one) and listed.

    Prints and writes a receipt (counts, never ids) under RUN/forget/; running it again
    removes nothing and says so.
    """
    from earmark.loop.forget import Target, forget
    from labelling.client import connect

    def _say(msg: str) -> None:
        err.print(escape(msg), highlight=False)

    retrainer = None
    if retrain:
        from earmark.loop.retrain import retrain_last_round

        retrainer = retrain_last_round
    target = Target(speaker, tuple(utterances or ()), manifest)
    receipt = forget(run, target, connect=connect, retrain=retrainer, say=_say)
    console.print(escape(receipt.summary()), highlight=False, soft_wrap=True)
    if receipt.utterances and not receipt.nothing_done():
        receipt_path = run / "forget" / f"receipt-{receipt.at}.json"
        console.print(f"receipt: {escape(str(receipt_path))}", soft_wrap=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("forget")(forget_command)
