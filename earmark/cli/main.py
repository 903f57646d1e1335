"""``earmark``: one console script whose subcommands are the loop's steps.

Each area owns a module under ``earmark.cli`` with ``register(app, groups)``; this file only
assembles them, so importing the CLI stays cheap (heavy imports happen inside commands).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from earmark import __version__
from earmark.core.errors import EarmarkError

app = typer.Typer(
    name="earmark",
    help="Local active-learning loop for speech assistants (ASR + NLU + Label Studio).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
groups: dict[str, typer.Typer] = {
    "corpus": typer.Typer(
        help="Build, import and check corpora (manifests + audio).", no_args_is_help=True
    ),
    "train": typer.Typer(help="Train or fine-tune a model.", no_args_is_help=True),
    "predict": typer.Typer(help="Predict with a trained model.", no_args_is_help=True),
    "studio": typer.Typer(
        help="Run and set up the local Label Studio server.", no_args_is_help=True
    ),
    "audit": typer.Typer(help="Check and read the Label Studio audit trail.", no_args_is_help=True),
}
for _name, _group in groups.items():
    app.add_typer(_group, name=_name)


def _register_all() -> None:
    """Each area registers its commands (a missing module is an error, not a silent gap)."""
    from earmark.cli import asr, audit, corpus, evaluate, forget, loop, nlu, studio, synth

    for module in (corpus, synth, asr, nlu, evaluate, studio, loop, audit, forget):
        module.register(app, groups)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"earmark {__version__}")
        raise typer.Exit()


_register_all()
err_console = Console(stderr=True)


def main() -> None:
    """Entry point: an EarmarkError becomes one clear message and exit code 1, no traceback."""
    try:
        app()
    except EarmarkError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
