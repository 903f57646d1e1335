"""Learning curves: the per-round metrics table (CSV + JSON), its plot (PNG) and TensorBoard
event files (``RUN/tb/``: every metric against the number of human labels, the resolved config
of ``run.json`` as text; ``training.tracking``).

Each row: round, human-labelled count, and whichever of WER, intent accuracy and entity F1
the run measures. The plot shows each metric against the number of human-labelled utterances.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from earmark.core.fileio import atomic_write, write_json
from training.tracking import rewrite_curve

CURVE_METRICS = (
    ("wer", "WER (lower is better)"),
    ("intent_accuracy", "intent accuracy"),
    ("entity_f1", "entity F1"),
)


def append_row(run_dir: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Add or replace the row for ``row['round']`` and rewrite metrics.json, metrics.csv and
    the TensorBoard folder.

    Idempotent (the same row again changes nothing) and atomic: a kill leaves either file
    whole, old or new, so a resumed loop can always add the row again.
    """
    path = run_dir / "metrics.json"
    rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
    rows = [r for r in rows if r["round"] != row["round"]] + [row]
    rows.sort(key=lambda r: r["round"])
    write_json(path, rows)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_write(run_dir / "metrics.csv") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    config = run_dir / "run.json"
    rewrite_curve(run_dir, rows, json.loads(config.read_text()) if config.is_file() else None)
    return rows


def plot_curves(
    series: dict[str, Sequence[dict[str, Any]]], out: Path, *, title: str = "earmark learning curve"
) -> Path | None:
    """Plot each metric against ``labelled`` for every named series of rows; returns the PNG path.

    ``series`` maps a label (e.g. a strategy, or "run") to its rows. Nothing is drawn when no
    row has a metric.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [
        (k, t) for k, t in CURVE_METRICS if any(k in r for rows in series.values() for r in rows)
    ]
    if not present:
        return None
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], present, strict=True):
        for name, rows in series.items():
            pts = [(r["labelled"], r[key]) for r in rows if r.get(key) is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlabel("human-labelled utterances")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_arms(curves: dict[str, dict[int, list[dict[str, Any]]]], out: Path) -> None:
    """Runs of several arms (strategies) and seeds, ``arm -> seed -> curve rows``: each metric
    against labels, one colour per arm, a thin line per seed, a bold mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    present = [(k, t) for k, t in CURVE_METRICS if any(
        k in r for by_seed in curves.values() for rows in by_seed.values() for r in rows
    )]  # fmt: skip
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 4), squeeze=False)
    for ax, (key, title) in zip(axes[0], present, strict=True):
        for i, (arm, by_seed) in enumerate(curves.items()):
            colour = f"C{i}"
            runs = [[(r["labelled"], r[key]) for r in rows if r.get(key) is not None]
                    for rows in by_seed.values()]  # fmt: skip
            runs = [pts for pts in runs if pts]
            for pts in runs:
                ax.plot(*zip(*pts, strict=True), color=colour, alpha=0.3, linewidth=1)
            n = min((len(pts) for pts in runs), default=0)
            if n:
                xs = [float(np.mean([pts[j][0] for pts in runs])) for j in range(n)]
                ys = [float(np.mean([pts[j][1] for pts in runs])) for j in range(n)]
                ax.plot(xs, ys, color=colour, marker="o", linewidth=2.5,
                        label=f"{arm} (mean of {len(runs)} seeds)")  # fmt: skip
        ax.set_xlabel("human-labelled utterances")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("active learning vs random (thin: one seed; bold: the mean)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The learning-curve table as aligned text (what the demo prints)."""
    keys = ["round", "labelled"] + [k for k, _ in CURVE_METRICS if any(k in r for r in rows)]
    cells = [[_fmt(r.get(k)) for k in keys] for r in rows]
    widths = [
        max(len(k), *(len(c[i]) for c in cells)) if cells else len(k) for i, k in enumerate(keys)
    ]
    lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
