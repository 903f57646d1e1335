"""``earmark status``: a run at a glance, read from its files (and Label Studio when it is up)."""

from __future__ import annotations

import json
from pathlib import Path

from earmark.core.errors import EarmarkError
from earmark.core.manifest import read_manifest
from earmark.loop.curves import format_table
from earmark.loop.state import RunFolder
from labelling.pull import excluded_ids
from labelling.settings import load_studio_config
from labelling.state import State, read_jsonl
from labelling.status import status


def last_selection(run: RunFolder) -> str | None:
    """What the latest round selected, with what, and why (the warm-up check when it ran)."""
    rounds = [rf for rf in run.rounds() if rf.selection.is_file()]
    if not rounds:
        return None
    rf = rounds[-1]
    rows = [json.loads(x) for x in rf.selection.read_text().splitlines() if x.strip()]
    used = sorted({r.get("strategy", "?") for r in rows}) or ["nothing"]
    line = f"last selection: {rf.dir.name}, {len(rows)} with {', '.join(used)}"
    check = rf.rank_check
    if check.is_file():
        c = json.loads(check.read_text())
        rho = "undefined" if c.get("spearman") is None else f"{c['spearman']:.2f}"
        verdict = "followed" if c.get("informative") else "not yet trusted: random instead"
        line += (
            f" (warm-up check on dev: {c.get('strategy')} ranks errors with Spearman {rho}, "
            f"threshold {c.get('threshold')}: {verdict})"
        )
    return line


def run_status(run_dir: str | Path) -> str:
    """A few lines of text: position, counts, last metrics, open tasks."""
    run = RunFolder(run_dir)
    cfg_path = run.config
    if not cfg_path.is_file():
        raise EarmarkError(
            f"{run.root}: not an earmark run folder (no run.json); start one with `earmark loop`"
        )
    cfg = json.loads(cfg_path.read_text())
    state = run.load_state()
    lines = [
        f"run {run.root}: round {state.round}, next step: {state.phase}"
        + (f" (finished: {state.stopped})" if state.stopped else "")
    ]

    st = State.of(run.root)
    labelled = {r.id for r in read_manifest(st.labels)} if st.labels.is_file() else set()
    pushed = {row["utterance_id"] for row in st.pushed_rows()}
    flagged = {row["id"] for row in read_jsonl(st.flagged)}
    excluded = excluded_ids(run.root)
    pool = sum(1 for _ in read_manifest(cfg["data"]["pool"]))
    seed = sum(1 for _ in read_manifest(cfg["data"]["seed"]))
    lines.append(
        f"labelled: {seed} seed + {len(labelled - excluded)} human   queued: {len(pushed - labelled - excluded)}   "
        f"flagged: {len(flagged)}   rejected/excluded: {len(excluded - flagged)}   "
        f"pool left: {pool - len(pushed)} of {pool}"
    )
    last = last_selection(run)
    if last:
        lines.append(last)
    metrics = run.metrics
    if metrics.is_file():
        lines += ["", format_table(json.loads(metrics.read_text()))]
    try:
        info = status(run.root, load_studio_config(None))
        if info.running:
            lines.append("")
            lines.append(f"Label Studio at {info.url}:")
            lines += [f"  {p.title}: {p.open} open of {p.tasks} tasks" for p in info.projects]
        else:
            lines.append(
                "Label Studio: not running (`earmark studio start -w RUN` to look at the projects)"
            )
    except EarmarkError as exc:
        lines.append(f"Label Studio: {exc}")
    return "\n".join(lines)
