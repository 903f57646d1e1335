"""``earmark evaluate``: ASR and NLU checkpoints side by side, with 95% bootstrap intervals.

The checkpoint's ``earmark.json`` kind picks the evaluator: ``asr`` -> WER/CER/SER and
confidence AUROC (``training.asr.evaluate``), ``nlu`` -> intent accuracy, entity/SLU F1 and
ECE (``training.nlu.evaluate``, optionally end to end through ``--asr-checkpoint``).

Each checkpoint is run on the manifest once; from its per-utterance scores come its figures,
its paired difference from the first checkpoint of its kind (a paired bootstrap over the same
utterances, ``earmark.core.stats.paired_bootstrap``) and, with ``--by FIELD``, both again for
each value of a manifest field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from earmark.core.errors import CheckpointError, EarmarkError
from earmark.core.groups import check_fields, group_positions
from earmark.core.manifest import ManifestRow, read_manifest, row_to_dict

if TYPE_CHECKING:  # numpy stays out of the CLI's start-up
    from earmark.core.stats import Better, PairedDifference


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("evaluate")(evaluate_command)


@dataclass(frozen=True)
class Evaluator:
    """One model kind's evaluation: per-utterance scores (``.ids``, ``.subset(positions)``)
    -> figures, and two checkpoints' scores on the same utterances -> paired differences."""

    summarize: Callable[[Any, int], dict[str, Any]]
    compare: Callable[[Any, Any, int], dict[str, PairedDifference]]
    paired: dict[str, Better]


def evaluator(kind: str, where: str = "checkpoint") -> Evaluator:
    """The evaluator of a checkpoint kind (imported here: it loads torch); ``where`` names the
    checkpoint in the errors."""
    if kind == "asr":
        from training.asr import evaluate as asr

        return Evaluator(
            lambda s, n: asr.summarize_scores(s, n_resamples=n),
            lambda b, c, n: asr.compare_scores(b, c, n_resamples=n),
            asr.PAIRED_METRICS,
        )
    if kind == "nlu":
        try:
            from training.nlu import evaluate as nlu
        except ImportError as exc:
            raise EarmarkError(f"{where}: the NLU evaluator is not available: {exc}") from exc
        return Evaluator(
            lambda s, n: nlu.summarize_scores(s, n_resamples=n),
            lambda b, c, n: nlu.compare_scores(b, c, n_resamples=n),
            nlu.PAIRED_METRICS,
        )
    raise CheckpointError(f"{where}: unknown checkpoint kind {kind!r}")


def score_checkpoints(
    checkpoints: Sequence[Path],
    rows: list[ManifestRow],
    asr_checkpoint: Path | None,
    decoding: str | None,
) -> dict[str, tuple[str, Any]]:
    """``{checkpoint: (kind, per-utterance scores)}``: each checkpoint decoded once (the same
    folder twice is one entry); the end-to-end NLU input is transcribed once for all."""
    from training.checkpoint import read_meta

    out: dict[str, tuple[str, Any]] = {}
    nlu_input: tuple[Any, list[tuple[str, str]]] | None = None
    for checkpoint in checkpoints:
        if str(checkpoint) in out:
            continue
        kind = read_meta(checkpoint).kind
        # an unknown kind, or a missing NLU extra, fails before any decoding
        evaluator(kind, str(checkpoint))
        if kind == "asr":
            from training.asr.evaluate import score_asr

            out[str(checkpoint)] = (kind, score_asr(checkpoint, rows, decoding=decoding))
        else:
            from training.nlu.evaluate import labelled_examples, nlu_texts, score_nlu

            if nlu_input is None:
                examples = labelled_examples(rows)
                nlu_input = (examples, nlu_texts(rows, examples, asr_checkpoint))
            scored = score_nlu(checkpoint, *nlu_input, on_gold_text=asr_checkpoint is None)
            out[str(checkpoint)] = (kind, scored)
    return out


Baseline = tuple[str, Any]  # (checkpoint, its per-utterance scores)


def paired_report(
    ev: Evaluator, baseline: Baseline, scores: Any, n_resamples: int
) -> dict[str, Any]:
    """``{"baseline": checkpoint, "metrics": {name: PairedDifference.to_dict()}}``."""
    name, base = baseline
    diffs = ev.compare(base, scores, n_resamples)
    return {"baseline": name, "metrics": {k: d.to_dict() for k, d in diffs.items()}}


def group_reports(
    ev: Evaluator,
    scores: Any,
    baseline: Baseline | None,
    groups: dict[str, list[int]],
    n_resamples: int,
) -> dict[str, dict[str, Any]]:
    """The figures (without the worst utterances) of each group of utterances, and their
    paired difference from the baseline's on the same utterances."""
    out: dict[str, dict[str, Any]] = {}
    for value, positions in groups.items():
        part = scores.subset(positions)
        report = {k: v for k, v in ev.summarize(part, n_resamples).items() if k != "worst"}
        if baseline is not None:
            base_part = (baseline[0], baseline[1].subset(positions))
            report["difference"] = paired_report(ev, base_part, part, n_resamples)
        out[value] = report
    return out


def evaluate_checkpoints(
    checkpoints: Sequence[Path],
    manifest: Path,
    *,
    asr_checkpoint: Path | None = None,
    n_resamples: int = 1000,
    decoding: str | None = None,
    by: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """The report: ``{checkpoint: figures}``, the figures of its evaluator and its ``kind``,
    plus, for each checkpoint after the first of its kind (the baseline), ``difference``
    (``paired_report``) and, per ``by`` field, ``by[field][value]`` (``group_reports``)."""
    rows = read_manifest(manifest)
    fields_of = {row.id: row_to_dict(row) for row in rows}
    check_fields(fields_of, by, "--by")  # before any decoding
    scored = score_checkpoints(checkpoints, rows, asr_checkpoint, decoding)
    baselines: dict[str, Baseline] = {}  # the first checkpoint of each kind
    report: dict[str, dict[str, Any]] = {}
    for name, (kind, scores) in scored.items():
        ev = evaluator(kind)
        baseline = baselines.setdefault(kind, (name, scores))
        against = None if baseline[0] == name else baseline
        result = {"kind": kind, **ev.summarize(scores, n_resamples)}
        if against is not None:
            result["difference"] = paired_report(ev, against, scores, n_resamples)
        if by:
            result["by"] = {
                field: group_reports(
                    ev, scores, against, group_positions(scores.ids, fields_of, field), n_resamples
                )
                for field in by
            }
        report[name] = result
    return report


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
        help="ASR decoding: beam (lexicon + word LM), open (lexicon-free) or greedy; default: each checkpoint's own.",
    ),
    by: list[str] = typer.Option(
        [],
        "--by",
        help="Also break the figures down by this manifest field (speaker, intent, or any "
        "extra field of the rows); repeatable.",
    ),
) -> None:
    """Evaluate checkpoints on a manifest: metrics with 95% CIs, the paired difference of each
    checkpoint from the first of its kind and, for ASR, the worst utterances."""
    report = evaluate_checkpoints(
        checkpoint,
        manifest,
        asr_checkpoint=asr_checkpoint,
        n_resamples=n_resamples,
        decoding=decoding,
        by=by,
    )
    if as_json:
        typer.echo(json.dumps(_finite(report)))
        return
    print_report(report, manifest, by)


# --- tables -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _diff_cell(d: dict[str, Any]) -> str:
    """``+0.0100 [-0.0200, +0.0300]`` and, below, how often the candidate wins and the p."""
    p = d["p_two_sided"]
    return (
        f"{d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]\n"
        f"better in {d['p_better']:.0%}, " + ("p~0" if p == 0 else f"p={p:.3f}")
    )


def _is_figure(value: Any) -> bool:
    """A row of the figures table: a number, a string or an estimate (not a list or section)."""
    return not isinstance(value, list) and (not isinstance(value, dict) or "value" in value)


def print_report(report: dict[str, dict[str, Any]], manifest: Path, by: Sequence[str]) -> None:
    """The report as rich tables: figures side by side, paired differences, then each ``by``."""
    from rich.console import Console

    console = Console()
    console.print(_figures_table(f"evaluation on {manifest}", report))
    if any("difference" in res for res in report.values()):
        console.print(_difference_table(report))
    for field in by:
        for name, res in report.items():
            headline = list(evaluator(res["kind"]).paired)
            console.print(_group_table(field, name, res["by"][field], headline))
    for name, res in report.items():
        worst = res.get("worst") or []
        if worst:
            console.print(_worst_table(name, worst))


def _figures_table(title: str, report: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    keys: list[str] = []
    for res in report.values():
        keys += [k for k, v in res.items() if k not in keys and _is_figure(v)]
    table = Table(title=title)
    table.add_column("metric")
    for name in report:
        table.add_column(name)
    for key in keys:
        table.add_row(key, *(_cell(res.get(key, "")) for res in report.values()))
    return table


def _difference_table(report: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(
        title="paired difference: candidate - baseline (95% paired bootstrap over utterances)",
        caption="'better in': share of resamples in which the candidate is better; "
        "p: two-sided bootstrap p-value",
    )
    for col in ("candidate", "baseline", "metric", "better", "difference [95% CI]"):
        table.add_column(col)
    for name, res in report.items():
        diff = res.get("difference")
        if diff is None:
            continue
        for i, (metric, d) in enumerate(diff["metrics"].items()):
            first = i == 0
            table.add_row(
                name if first else "",
                diff["baseline"] if first else "",
                metric,
                f"{d['better']} is better",
                _diff_cell(d),
                end_section=i == len(diff["metrics"]) - 1,
            )
    return table


def _group_table(
    field: str, name: str, groups: dict[str, dict[str, Any]], headline: Sequence[str]
) -> Any:
    """One row per value of ``field``: its ``headline`` figures and, for a candidate, below
    each its paired difference from the baseline on the same utterances."""
    from rich.table import Table

    some = next(iter(groups.values()), {})
    title = f"by {field}: {name}"
    if "difference" in some:
        title += f" (and its difference from {some['difference']['baseline']})"
    table = Table(title=title)
    table.add_column(field)
    table.add_column("n")
    for key in headline:
        better = some.get("difference", {}).get("metrics", {}).get(key, {}).get("better")
        table.add_column(f"{key} ({better} is better)" if better else key)
    for value, res in groups.items():
        cells = []
        for key in headline:
            cell = _cell(res.get(key, ""))
            if "difference" in res:
                cell += "\ndiff " + _diff_cell(res["difference"]["metrics"][key])
            cells.append(cell)
        n = str(res.get("n_utterances", res.get("n", "")))
        table.add_row(value, n, *cells, end_section="difference" in res)
    return table


def _worst_table(name: str, worst: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"worst utterances: {name}")
    for col in ("id", "reference", "hypothesis", "errors", "confidence"):
        table.add_column(col)
    for w in worst:
        table.add_row(w["id"], w["ref"], w["hyp"], str(w["word_errors"]), f"{w['confidence']:.3f}")
    return table


def _finite(value: Any) -> Any:
    """NaN/inf (e.g. AUROC when every utterance is wrong) become null: strict JSON for tools."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
