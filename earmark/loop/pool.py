"""The selectable pool: what a round may score and select, and what it must not.

Not selectable: utterances already pushed (queued or labelled), flagged or rejected in Label
Studio, and the quarantine (``RUN/quarantine.jsonl``) of pool files whose audio could not be
read. A round may score a seeded random sample of the rest (``selection.pool_sample``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.errors import AudioError
from earmark.core.fileio import read_jsonl, write_jsonl
from earmark.core.manifest import ManifestRow
from earmark.core.say import Say
from earmark.loop.config import LoopConfig
from earmark.loop.state import RunFolder
from labelling.pull import excluded_ids
from labelling.state import State
from training.model import BadAudio


class Quarantine:
    """``RUN/quarantine.jsonl``: utterances whose audio could not be read, with the reason.

    They are never scored, selected or pushed again; the file says which and why, so that
    the owner can fix or drop them (``earmark corpus check`` names the problem of each).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = RunFolder(run_dir).quarantine

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)

    def ids(self) -> set[str]:
        return {r["id"] for r in self.rows()}

    def add(self, row: ManifestRow, exc: AudioError, round_no: int) -> None:
        if row.id in self.ids():
            return
        entry = {"id": row.id, "audio": row.utterance.audio, "reason": exc.reason,
                 "detail": exc.detail, "round": round_no}  # fmt: skip
        write_jsonl(self.path, [*self.rows(), entry])  # rewritten whole: atomic, and small

    def adder(self, round_no: int, say: Say) -> BadAudio:
        def add(row: ManifestRow, exc: AudioError) -> None:
            say(
                f"round {round_no}: utterance {row.id}: cannot read its audio ({exc.reason}: "
                f"{exc.detail}); quarantined in {self.path} and left out of scoring"
            )
            self.add(row, exc, round_no)

        return add


def unavailable_ids(workspace: Path) -> set[str]:
    """Pool utterances that may not be selected: already pushed (queued or labelled), flagged,
    rejected, or quarantined for unreadable audio."""

    state = State.of(workspace)
    pushed = {row["utterance_id"] for row in state.pushed_rows()}
    return pushed | excluded_ids(workspace) | Quarantine(workspace).ids()


def sample_pool(cfg: LoopConfig, pool: list[ManifestRow], round_no: int) -> list[ManifestRow]:
    """The pool this round scores: all of it, or ``selection.pool_sample`` of it drawn with a
    generator seeded by the run's seed and the round (a resumed round draws the same)."""
    n = cfg.selection.pool_sample
    if not n or len(pool) <= n:
        return pool
    rng = np.random.default_rng([cfg.seed, round_no])
    return [pool[i] for i in np.sort(rng.choice(len(pool), n, replace=False))]
