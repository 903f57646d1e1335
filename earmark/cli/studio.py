"""Label Studio commands: ``earmark studio start|stop|status|setup``, ``push``, ``pull``, ``review``,
``annotate``. Thin wrappers around ``labelling``; the token is never printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from labelling.client import StudioClient
    from labelling.settings import StudioConfig

console = Console()
err = Console(stderr=True)

WORKSPACE_HELP = "Workspace folder (Label Studio data, tokens and state go to WORKSPACE/studio)."
CONFIG_HELP = "Studio config YAML (default configs/studio.yaml)."
SET_HELP = "Override a config value, e.g. --set server.port=9000 (repeatable)."


def _workspace(workspace: Path | None) -> Path:
    from labelling.settings import default_workspace

    return workspace or default_workspace()


def _config(config: Path | None, overrides: list[str] | None) -> StudioConfig:
    from labelling.settings import load_studio_config

    return load_studio_config(config, overrides or [])


def _say(msg: str) -> None:
    err.print(escape(msg), highlight=False)


@contextmanager
def _client(workspace: Path, cfg: StudioConfig) -> Iterator[StudioClient]:
    from labelling.client import connect

    client = connect(workspace, cfg.client)
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


WorkspaceOpt = typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP)
ConfigOpt = typer.Option(None, "--config", help=CONFIG_HELP)
SetOpt = typer.Option(None, "--set", help=SET_HELP)


def start_command(
    workspace: Path | None = WorkspaceOpt,
    port: int | None = typer.Option(
        None, "--port", help="Port on 127.0.0.1 (default from config)."
    ),
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Start Label Studio for the workspace (installing it on first use) and store an API token.

    Listens on 127.0.0.1 only; data (SQLite) in WORKSPACE/studio/data; the token goes to
    WORKSPACE/studio/secrets/token (mode 0600). Safe to re-run: a running server is reused.
    """
    from labelling.process import start

    info = start(_workspace(workspace), _config(config, overrides), port=port, say=_say)
    console.print(f"Label Studio running at {info.url} (pid {info.pid})")


def stop_command(workspace: Path | None = WorkspaceOpt) -> None:
    """Stop the workspace's Label Studio server."""
    from labelling.process import stop

    stop(_workspace(workspace), say=_say)


def status_command(
    workspace: Path | None = WorkspaceOpt,
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Where Label Studio runs, which projects exist and how many tasks are open."""
    from labelling.status import status

    info = status(_workspace(workspace), _config(config, overrides))
    if not info.url:
        console.print("Label Studio: not started for this workspace (`earmark studio start`)")
        raise typer.Exit(1)
    state = "running" if info.running else "NOT answering"
    pid = f", pid {info.pid}" if info.pid else ""
    console.print(f"Label Studio {state} at {info.url}{pid}")
    if info.data_dir:
        console.print(f"data: {info.data_dir}")
    if not info.running:
        raise typer.Exit(1)
    table = Table("id", "project", "tasks", "open")
    for p in info.projects:
        table.add_row(str(p.id), escape(p.title), str(p.tasks), str(p.open))
    console.print(table)


def setup_command(
    manifests: list[Path] = typer.Option(
        None,
        "--manifest",
        "-m",
        help="Labelled manifest to read intents/entity types from (repeatable).",
    ),
    schema: Path | None = typer.Option(
        None, "--schema", help="YAML/JSON file {intents: [...], entity_types: [...]}."
    ),
    workspace: Path | None = WorkspaceOpt,
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Create or update (idempotently) the transcription and understanding projects.

    Intents and entity types come from the labelled manifests and/or the schema file.
    """
    from earmark.core.errors import StudioError
    from labelling.configs import merge_schemas, schema_from_file, schema_from_manifests
    from labelling.projects import setup_projects

    parts = []
    if manifests:
        parts.append(schema_from_manifests(manifests))
    if schema:
        parts.append(schema_from_file(schema))
    if not parts:
        raise StudioError(
            "give the schema: --manifest LABELLED.jsonl (repeatable) or --schema FILE"
        )
    merged = merge_schemas(*parts)
    ws, cfg = _workspace(workspace), _config(config, overrides)
    with _client(ws, cfg) as client:
        refs = setup_projects(client, ws, merged, cfg)
    console.print(f"schema: {len(merged.intents)} intents, {len(merged.entity_types)} entity types")
    for r in refs:
        console.print(f"{r.kind}: project {r.id} '{escape(r.title)}' {r.action}")


def push_command(
    selection: Path = typer.Option(..., "--selection", help="JSONL of {id, score} to annotate."),
    manifest: Path = typer.Option(
        ..., "--manifest", "-m", help="Manifest with the audio of those ids."
    ),
    asr_predictions: Path | None = typer.Option(
        None, "--asr-predictions", help="ASR predictions JSONL (transcript pre-filled)."
    ),
    nlu_predictions: Path | None = typer.Option(
        None, "--nlu-predictions", help="NLU predictions JSONL (intent and entities pre-filled)."
    ),
    workspace: Path | None = WorkspaceOpt,
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Create Label Studio tasks for the selected utterances (never twice for one utterance).

    Tasks carry only an opaque id, the audio under an opaque name and the predictions.
    """
    from labelling.push import push

    ws, cfg = _workspace(workspace), _config(config, overrides)
    with _client(ws, cfg) as client, _progress("uploading audio") as update:
        s = push(
            client,
            ws,
            selection,
            manifest,
            cfg,
            asr_predictions=asr_predictions,
            nlu_predictions=nlu_predictions,
            progress=update,
        )
    console.print(
        f"pushed {s.created} tasks ({s.transcription} transcription, {s.understanding} "
        f"understanding); {s.already_pushed} already pushed"
    )


def pull_command(
    followup: bool = typer.Option(
        True,
        "--followup/--no-followup",
        help="Send confirmed transcripts on to the understanding project.",
    ),
    workspace: Path | None = WorkspaceOpt,
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Import new and edited annotations, validated, into WORKSPACE/studio/labels.jsonl.

    Invalid annotations go to rejected.jsonl with the reason, flagged utterances to
    flagged.jsonl; running it twice imports nothing new.
    """
    from labelling.pull import pull
    from labelling.state import State

    ws, cfg = _workspace(workspace), _config(config, overrides)
    with _client(ws, cfg) as client:
        s = pull(client, ws, cfg, followup=followup)
    console.print(
        f"imported {s.new} new annotation(s): {s.accepted} labelled, {s.rejected} rejected, "
        f"{s.flagged} flagged, {s.skipped} skipped, {s.disagreements} disagreement(s); "
        f"{s.followups} understanding task(s) created; {s.audio_deleted} decided clip(s)' "
        "audio deleted from the server"
    )
    for reason, n in sorted(s.reasons.items()):
        console.print(f"  rejected x{n}: {escape(reason)}")
    if line := agreement_line(s.agreement):
        console.print(line)
    console.print(f"labels: {State.of(ws).labels}")


def agreement_line(figures: dict[str, Any]) -> str:
    """One line of agreement figures (``labelling.agreement``); empty when no task had two
    annotators."""

    def fmt(name: str) -> str:
        value = figures.get(name)
        return "n/a" if value is None else f"{value:.3f}"

    parts = []
    if figures.get("transcription_tasks"):
        parts.append(
            f"{figures['transcription_tasks']} transcription task(s): transcript WER between "
            f"annotators {fmt('transcript_wer')}, identical {fmt('transcript_agreement')}"
        )
    if figures.get("understanding_tasks"):
        parts.append(
            f"{figures['understanding_tasks']} understanding task(s): intent agreement "
            f"{fmt('intent_agreement')}, Krippendorff's alpha {fmt('intent_alpha')}, "
            f"same entities {fmt('entity_agreement')}"
        )
    return "agreement on " + "; ".join(parts) if parts else ""


def review_command(
    workspace: Path | None = WorkspaceOpt,
    url: bool = typer.Option(False, "--url", help="Show each task's Label Studio address."),
) -> None:
    """List flagged utterances (flag + comment), rejected annotations and disagreements."""
    import json

    from labelling.review import review_items, task_url

    ws = _workspace(workspace)
    items = review_items(ws)
    if not items:
        console.print("nothing to review")
        return
    base = None
    if url:
        from labelling.process import read_info
        from labelling.settings import Paths

        info = read_info(Paths.of(ws))
        base = info.url if info else None
    table = Table("id", "what", "detail", "comment", "annotator", "task")
    for it in items:
        where = (task_url(base, ws, it.where) if base else None) or it.where
        table.add_row(
            escape(it.id),
            it.what,
            escape(it.detail),
            escape(it.comment or ""),
            it.annotator or "",
            escape(where),
        )
    console.print(table)
    counts: dict[str, int] = {}
    for it in items:
        counts[it.what] = counts.get(it.what, 0) + 1
    console.print(json.dumps(counts))


def annotate_command(
    simulate: Path = typer.Option(
        ..., "--simulate", help="Answer file (manifest with the true text/intent/entities)."
    ),
    error_rate: float = typer.Option(
        0.0, "--error-rate", help="Probability of each kind of mistake."
    ),
    flag_rate: float = typer.Option(0.0, "--flag-rate", help="Probability of flagging a task."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated annotator's choices."),
    limit: int | None = typer.Option(None, "--limit", help="Answer at most this many tasks."),
    annotator: int = typer.Option(
        1, "--annotator", min=1, help="Which simulated annotator account answers (1, 2, ...)."
    ),
    workspace: Path | None = WorkspaceOpt,
    config: Path | None = ConfigOpt,
    overrides: list[str] | None = SetOpt,
) -> None:
    """Answer open tasks as a simulated annotator (a separate Label Studio account)."""
    from labelling.simulate import simulate as run

    ws, cfg = _workspace(workspace), _config(config, overrides)
    with _client(ws, cfg) as client, _progress("annotating") as update:
        s = run(
            client,
            ws,
            cfg,
            simulate,
            error_rate=error_rate,
            flag_rate=flag_rate,
            seed=seed,
            limit=limit,
            annotator=annotator,
            progress=update,
        )
    console.print(
        f"annotated {s.annotated} task(s): {s.with_errors} with deliberate errors, "
        f"{s.flagged} flagged, {s.no_answer} without an answer"
    )


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    studio = groups["studio"]
    studio.command("start")(start_command)
    studio.command("stop")(stop_command)
    studio.command("status")(status_command)
    studio.command("setup")(setup_command)
    app.command("push")(push_command)
    app.command("pull")(pull_command)
    app.command("review")(review_command)
    app.command("annotate")(annotate_command)
