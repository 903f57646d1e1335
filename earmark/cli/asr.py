"""``earmark train asr`` and ``earmark transcribe``: thin wrappers around ``training.asr``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from earmark.cli.ranks import NPROC_HELP, torchrun
from earmark.core.errors import EarmarkError

if TYPE_CHECKING:
    from earmark.core.manifest import ManifestRow
    from earmark.core.shard import Shard

T = TypeVar("T")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["train"].command("asr")(train_asr_command)
    groups["train"].command("lm")(train_lm_command)
    app.command("transcribe")(transcribe_command)


def train_asr_command(
    train: Path = typer.Option(..., "--train", help="Training manifest (rows with 'text')."),
    dev: Path = typer.Option(
        ..., "--dev", help="Dev manifest: best-checkpoint choice, temperature."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (best checkpoint; last/ to resume)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML config (default configs/asr.yaml)."
    ),
    init: str | None = typer.Option(
        None, "--init", help="Warm start: earmark checkpoint, HF CTC folder or hub id."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    max_minutes: float | None = typer.Option(
        None,
        "--max-minutes",
        help="Time budget in minutes on train.budget_clock (0 = none); replaces the config's. "
        "A step cap still applies: the first reached ends training.",
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        help="Step cap (0 = none); replaces the config's. The time budget still applies "
        "(--max-minutes 0 for steps only).",
    ),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override a config key, e.g. --set train.lr=0.001 (repeatable)."
    ),
    lm_text: list[Path] = typer.Option(
        None,
        "--lm-text",
        help="Text for the lexicon and LMs besides the transcripts: sentences or words, one a "
        "line (.jsonl: a 'text' or 'sentence' field); repeatable, added to decoding.lm_text.",
    ),
    nproc: int = typer.Option(1, "--nproc", min=1, help=NPROC_HELP),
) -> None:
    """Train (or fine-tune) the CTC recogniser; keeps the best checkpoint by dev WER in --out."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from training.asr.config import load_asr_config, with_budget, with_lm_text
    from training.asr.train import train_asr

    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(torchrun(nproc, out))
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone prints
    cfg = load_asr_config(config, tuple(overrides or ()))
    cfg = with_budget(cfg, minutes=max_minutes, max_steps=max_steps)  # as the loop does
    cfg = with_lm_text(cfg, lm_text or ())
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]train asr"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    last_line = [time.monotonic()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("", total=1.0)

        def on_progress(d: dict) -> None:
            status = (
                f"step {d['step']} loss {d['loss']:.3f} "
                f"{d['audio_s_per_s']:.0f} audio-s/s lr {d['lr']:.2e}"
            )
            bar.update(task, completed=d["fraction"], description=status)
            # Not a terminal (a log file, CI): no bar is drawn, so a plain line every minute.
            if not console.is_terminal and time.monotonic() - last_line[0] >= 60:
                last_line[0] = time.monotonic()
                bar.console.print(f"train asr {100 * d['fraction']:.0f}% {status}")

        result = train_asr(
            cfg,
            train,
            dev,
            out,
            init=init,
            resume=resume,
            on_progress=on_progress,
            log=bar.console.print,
        )
    if main_rank:
        typer.echo(json.dumps({"checkpoint": str(result.checkpoint), **_plain(result.metrics)}))


def train_lm_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Trained ASR checkpoint folder."),
    train: Path = typer.Option(
        ..., "--train", help="The manifest it was trained on (its transcripts join the LM text)."
    ),
    dev: Path = typer.Option(..., "--dev", help="Dev manifest: decoding and temperature choice."),
    out: Path = typer.Option(..., "--out", help="New checkpoint folder (or --checkpoint's own)."),
    lm_text: list[Path] = typer.Option(
        None, "--lm-text", help="Sentences or words, one a line (repeatable)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="YAML config whose decoding: section applies (default configs/asr.yaml).",
    ),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override a decoding key, e.g. --set decoding.open_vocabulary=true."
    ),
) -> None:
    """Rebuild a checkpoint's lexicon and LMs with new text and retune its decoding on dev,
    without training (the weights are copied unchanged)."""
    from training.asr.config import load_asr_config, with_lm_text
    from training.asr.retune import retune_decoding

    cfg = with_lm_text(load_asr_config(config, tuple(overrides or ())), lm_text or ())
    metrics = retune_decoding(checkpoint, train, dev, out, cfg, log=typer.echo)
    typer.echo(json.dumps({"checkpoint": str(out), **_plain(metrics)}))


def _plain(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def transcribe_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="ASR checkpoint folder."),
    manifest: Path = typer.Option(..., "--manifest", help="Manifest of utterances to transcribe."),
    out: Path = typer.Option(..., "--out", help="Predictions JSONL (one line per utterance)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Utterances per forward pass."),
    device: str | None = typer.Option(
        None, "--device", help="cpu or cuda (default: CUDA if present)."
    ),
    decoding: str | None = typer.Option(
        None,
        "--decoding",
        help="beam (lexicon + word LM), open (lexicon-free, character LM: words in no list) or "
        "greedy; default: the checkpoint's own (chosen on dev).",
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="i/N: transcribe only shard i of N (blocks of --chunk-size rows, block k to shard "
        "k %% N) into OUT.shard-i-of-N, e.g. one job of a scheduler's array; merge with --merge N. "
        "Under torchrun each rank takes its shard and rank 0 merges into OUT.",
    ),
    merge: int | None = typer.Option(
        None, "--merge", help="N: merge the N shards' parts of OUT into OUT (manifest order)."
    ),
    chunk_size: int = typer.Option(
        128,
        "--chunk-size",
        min=1,
        help="Rows read and batched together; the unit of sharding (the same for every shard "
        "and the merge).",
    ),
) -> None:
    """Transcribe a manifest: hypothesis, utterance confidence, per-word confidence and times.

    Sharded (--shard, or torchrun --nproc-per-node N), the merged file has the same bytes as
    one process's with as many threads per process (earmark.core.shard).
    """
    from earmark.core.manifest import iter_manifest
    from earmark.core.shard import Shard, merge_parts

    if merge is not None:
        ids = (row.id for row in iter_manifest(manifest))
        n = merge_parts(ids, out, merge, chunk_size)
        typer.echo(f"{n} predictions from {merge} shards -> {out}")
        return
    if not checkpoint.is_dir():
        raise EarmarkError(f"{checkpoint}: checkpoint folder not found")
    part = Shard.parse(shard) if shard else None
    ranks = Shard.from_env() if part is None else None  # torchrun: this rank's shard
    mine = part or ranks
    target = mine.part(out) if mine else out
    total = _transcribe_to(
        checkpoint, manifest, target, mine, chunk_size, batch_size, device, decoding
    )
    typer.echo(f"{total} predictions -> {target}")
    if ranks is not None:
        _merge_ranks(manifest, out, ranks, chunk_size)


def _transcribe_to(
    checkpoint: Path,
    manifest: Path,
    target: Path,
    shard: Shard | None,
    chunk_size: int,
    batch_size: int,
    device: str | None,
    decoding: str | None,
) -> int:
    """Transcribe ``manifest`` (``shard``'s rows of it) into ``target`` with a progress bar."""
    from rich.progress import Progress

    from earmark.core.manifest import iter_manifest
    from earmark.core.predictions import write_predictions
    from training.asr.transcribe import transcribe

    def rows() -> Iterator[ManifestRow]:
        it = iter_manifest(manifest)
        return shard.take(it, chunk_size) if shard else it

    total = sum(1 for _ in rows())
    with Progress(transient=True) as bar:
        task = bar.add_task("transcribe", total=total)
        hyps = transcribe(
            checkpoint,
            rows(),
            batch_size=batch_size,
            device=device,
            decoding=decoding,
            chunk_size=chunk_size,
        )
        write_predictions(target, _counted(hyps, lambda: bar.advance(task)))
    return total


def _merge_ranks(manifest: Path, out: Path, shard: Shard, chunk_size: int) -> None:
    """Under torchrun: wait for every rank's part (a gloo barrier), then rank 0 merges them
    into ``out`` and removes them."""
    import torch.distributed as dist

    from earmark.core.manifest import iter_manifest
    from earmark.core.shard import Shard, merge_parts

    dist.init_process_group("gloo")
    try:
        dist.barrier()
        if shard.index == 0:
            n = merge_parts(
                (row.id for row in iter_manifest(manifest)), out, shard.count, chunk_size
            )
            for i in range(shard.count):
                Shard(i, shard.count).part(out).unlink()
            typer.echo(f"{n} predictions from {shard.count} ranks -> {out}")
    finally:
        dist.destroy_process_group()


def _counted(items: Iterable[T], advance: Callable[[], None]) -> Iterator[T]:
    """``items``, calling ``advance`` (a progress bar's count) after each."""
    for item in items:
        yield item
        advance()
