"""``earmark corpus synth`` and ``speak``: thin wrappers around ``earmark.corpus.synth.build_corpus``
and ``earmark.corpus.phrases.speak_phrases``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Utterances per second so far."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.0f} utt/s", style="progress.data.speed")


def synth_command(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Corpus folder: audio/, the manifests and corpus.json go here."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same corpus."),
    config: Path | None = typer.Option(
        None, "--config", help="Synthesis YAML (see configs/corpus.yaml; defaults without it)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set sizes.pool=500 (repeatable)."
    ),
) -> None:
    """Synthesise the built-in smart-speaker corpus into OUT with espeak-ng and/or flite.

    Writes OUT/seed.jsonl (labelled), pool.jsonl (unlabelled), pool_answers.jsonl (the pool's
    true labels, for the simulated annotator and benchmarks only), dev.jsonl, test.jsonl,
    corpus.json and audio/*.wav (16 kHz mono). Re-running with the same seed and config
    reuses the audio and rewrites identical manifests.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from earmark.core.config import load_config
    from earmark.corpus.synth import SPLITS, SynthConfig, build_corpus

    cfg = load_config(SynthConfig, config, overrides)
    err = Console(stderr=True)
    with Progress(
        "[bold]synthesising",
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("synth", total=None)
        summary = build_corpus(
            out,
            cfg,
            seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    info = summary.info
    console = Console(highlight=False, soft_wrap=True)
    sizes = ", ".join(f"{s} {info['sizes'][s]}" for s in SPLITS)
    engines = ", ".join(f"{n} {e['version']}" for n, e in info["engines"].items())
    rate = summary.rendered / summary.seconds if summary.seconds > 0 else 0.0
    console.print(f"corpus: {summary.out_dir} ({info['total']} utterances: {sizes})")
    console.print(
        f"voices: {info['n_voices']} ({engines}); intents: {len(info['intents'])}; "
        f"entity types: {len(info['entity_types'])}; audio: {info['audio_hours']:.2f} h"
    )
    console.print(
        f"synthesised {summary.rendered}, reused {summary.reused} in {summary.seconds:.1f} s "
        f"({rate:.0f} utt/s)"
    )


def speak_command(
    phrases: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="A text file: one phrase a line (blank lines skipped).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for phrases.jsonl and audio/."),
    repeats: int = typer.Option(1, "--repeats", help="Renderings of each phrase by each voice."),
    voices_per_phrase: int = typer.Option(
        0,
        "--voices-per-phrase",
        help="Speak each phrase in this many voices drawn at random (0 = every voice).",
    ),
    sample_rate: int = typer.Option(
        16000, "--sample-rate", help="8000 for telephone-band audio like the recordings it joins."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: voices, noise and levels."),
    config: Path | None = typer.Option(
        None, "--config", help="Synthesis YAML (voices, noise; see configs/corpus.yaml)."
    ),
    overrides: list[str] = typer.Option([], "--set", help="Override a config key (repeatable)."),
) -> None:
    """Speak your own phrases in the built-in voices (labelled speech for a new vocabulary).

    Writes OUT/phrases.jsonl (id, audio, text) and OUT/audio/*.wav; a rebuild reuses the audio.
    """
    from earmark.core.config import load_config
    from earmark.core.manifest import read_manifest
    from earmark.corpus.phrases import speak_phrases
    from earmark.corpus.synth import SynthConfig

    lines = [line.strip() for line in phrases.read_text().splitlines() if line.strip()]
    manifest = speak_phrases(
        lines, out, load_config(SynthConfig, config, overrides), seed=seed, repeats=repeats,
        voices_per_phrase=voices_per_phrase, sample_rate=sample_rate,
    )  # fmt: skip
    n = len(read_manifest(manifest))
    Console(highlight=False, soft_wrap=True).print(
        f"{manifest}: {n} utterances of {len(lines)} phrase(s)"
    )


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["corpus"].command("synth")(synth_command)
    groups["corpus"].command("speak")(speak_command)
