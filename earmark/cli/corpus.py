"""``earmark corpus import``, ``check`` and ``split``: thin wrappers around earmark.corpus."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from earmark.core.audio import AudioConfig

FORMAT_HELP = (
    "folder: every audio file under SRC (unlabelled pool); manifest: an earmark JSONL "
    "manifest or a CSV with columns audio[,id,text,intent,speaker]; slurp: SLURP JSONL "
    "(text, intent, entities; audio with --recordings); fsdd: the Free Spoken Digit Dataset "
    "recordings folder."
)


def _audio_config(config: Path | None, max_duration: float | None) -> AudioConfig:
    from earmark.core.audio import AudioConfig
    from earmark.core.config import load_config

    overrides = [] if max_duration is None else [f"max_duration_s={max_duration}"]
    if config is None and not overrides:
        return AudioConfig()
    return load_config(AudioConfig, config, overrides)


@contextmanager
def _progress(console: Console, label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (shown only on a terminal); yields ``update(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def import_command(
    src: Path = typer.Argument(..., help="What to import (a folder or a file, see --format)."),
    fmt: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Corpus folder: manifest.jsonl and quarantine.jsonl go here."
    ),
    recordings: Path | None = typer.Option(
        None, "--recordings", help="slurp only: the folder holding SLURP's audio files."
    ),
    max_duration: float | None = typer.Option(
        None, "--max-duration", help="Quarantine audio longer than this many seconds."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Audio limits YAML (see configs/audio.yaml)."
    ),
) -> None:
    """Import audio and labels into OUT/manifest.jsonl; broken audio goes to quarantine.jsonl.

    Safe to re-run: rows already in the manifest are kept and skipped, never duplicated.
    Source audio is referenced where it is, not copied.
    """
    from earmark.core.errors import CorpusError
    from earmark.corpus.importers import FORMATS, IMPORTERS

    if fmt not in FORMATS:
        raise CorpusError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if recordings is not None and fmt != "slurp":
        raise CorpusError("--recordings applies to --format slurp only")
    audio_config = _audio_config(config, max_duration)
    console = Console(soft_wrap=True, highlight=False)
    kwargs = {"recordings": recordings} if fmt == "slurp" else {}
    with _progress(Console(stderr=True), f"importing {fmt}") as progress:
        report = IMPORTERS[fmt](src, out, config=audio_config, progress=progress, **kwargs)
    console.print(
        f"imported {report.imported} new row(s); {report.already_present} already present "
        f"(skipped); {len(report.quarantined)} quarantined"
    )
    for reason, count in sorted(report.reasons.items()):
        console.print(f"  {reason}: {count}")
    for item in report.quarantined[:20]:
        console.print(f"  [dim]{escape(item.id)}[/] {item.reason}: {escape(item.detail)}")
    if len(report.quarantined) > 20:
        console.print(f"  ... and {len(report.quarantined) - 20} more in {report.quarantine}")
    for warning in report.warnings:
        console.print(f"warning: {escape(warning)}")
    console.print(f"manifest: {report.manifest} ({report.total_rows} rows)")
    console.print(f"quarantine: {report.quarantine}")


def check_command(
    manifest: Path = typer.Argument(..., help="The manifest (JSONL) to check."),
    max_duration: float | None = typer.Option(
        None, "--max-duration", help="Report audio longer than this many seconds."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Check the manifest lines only."),
    config: Path | None = typer.Option(
        None, "--config", help="Audio limits YAML (see configs/audio.yaml)."
    ),
) -> None:
    """Report every problem of MANIFEST and its audio at once; exit code 1 if there is any."""
    from earmark.corpus.check import check_manifest

    audio_config = _audio_config(config, max_duration)
    with _progress(Console(stderr=True), "checking") as progress:
        report = check_manifest(
            manifest, config=audio_config, check_audio=not no_audio, progress=progress
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        console = Console(highlight=False, soft_wrap=True)
        if report.issues:
            table = Table("line", "id", "reason", "detail", show_lines=False)
            for issue in report.issues:
                table.add_row(
                    str(issue.line), escape(issue.id or "-"), issue.reason, escape(issue.detail)
                )
            console.print(table)
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(report.reasons.items()))
        status = (
            "OK" if report.ok else f"{len(report.issues)} problem(s) on {report.bad_lines} line(s)"
        )
        console.print(
            f"{manifest}: {report.rows} row(s), {report.audio_checked} audio file(s) checked: "
            f"{status}{f' ({reasons})' if reasons else ''}"
        )
    if not report.ok:
        raise typer.Exit(1)


def split_command(
    manifest: Path = typer.Argument(..., help="A labelled manifest (e.g. from corpus import)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the loop's files."),
    seed_size: int = typer.Option(200, "--seed-size", help="Labelled seed set size."),
    dev_size: int = typer.Option(200, "--dev-size", help="Dev set size."),
    test_size: int = typer.Option(400, "--test-size", help="Test set size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffle that splits."),
) -> None:
    """Split a labelled manifest into seed, dev, test, an unlabelled pool and its answers: the
    files of a simulated loop (``data:`` in the loop config)."""
    from earmark.corpus.split import split_manifest

    files = split_manifest(
        manifest, out, seed_size=seed_size, dev_size=dev_size, test_size=test_size, seed=seed
    )
    typer.echo("data:")
    for key, path in files.loop_data().items():
        typer.echo(f"  {key}: {path}")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add ``import``, ``check`` and ``split`` to the ``corpus`` group."""
    groups["corpus"].command("import")(import_command)
    groups["corpus"].command("check")(check_command)
    groups["corpus"].command("split")(split_command)
