"""``earmark audit verify|show``: the workspace's audit trail of Label Studio exposures and
actions. Thin wrappers around ``labelling.audit``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from earmark.cli.studio import WorkspaceOpt

console = Console()
err = Console(stderr=True)


def _state(workspace: Path | None):  # -> labelling.state.State (imported lazily)
    from labelling.settings import default_workspace
    from labelling.state import State

    return State.of(workspace or default_workspace())


def _audit_path(workspace: Path | None) -> Path:
    return _state(workspace).audit


def verify_command(
    workspace: Path | None = WorkspaceOpt,
    head: str | None = typer.Option(
        None,
        "--head",
        help="A head printed by an earlier verify: fail if the log no longer reaches it "
        "(events removed from its end).",
    ),
) -> None:
    """Check the hash chain of the audit log: exit 0 if intact, 1 naming the first bad line."""
    from labelling.audit import verify

    result = verify(_audit_path(workspace), head=head)
    if not result.ok:
        msg = f"[bold red]audit log broken:[/] {escape(result.message())}"
        err.print(msg, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(result.message())
    console.print(f"head: {result.head}", highlight=False)


def show_command(
    utterance: str = typer.Option(..., "--utterance", "-u", help="Utterance id (earmark's own)."),
    workspace: Path | None = WorkspaceOpt,
) -> None:
    """List the audit events of one utterance, oldest first (annotators by pseudonym only).

    The log names the utterance by its opaque ref only (the keyed hash its tasks carry), found
    here from its id through the workspace's key."""
    from labelling.audit import show

    state = _state(workspace)
    events = show(state.audit, ref=state.opaque_id(utterance))
    if not events:
        console.print(f"no audit events for utterance {escape(utterance)}")
        return
    for e in events:  # one whole line each (a table would cut refs and pseudonyms short)
        detail = json.dumps(e.get("detail") or {}, sort_keys=True)
        row = (str(e["seq"]), e["time"], e["event"], e["actor"], e["task"], detail)
        console.print("  ".join(row), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    audit = groups["audit"]
    audit.command("verify")(verify_command)
    audit.command("show")(show_command)
