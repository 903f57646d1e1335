"""The run folder: its lock, and the loop's position, persisted after every step.

Layout::

    RUN/
      run.json            resolved loop config (written once)
      state.json          round and phase reached; rewritten atomically after each step
      .lock               held (flock) by the one loop working on this folder
      metrics.csv/.json   one row per round; learning_curve.png redrawn each round
      rounds/r001/        scores.jsonl, selection.jsonl, pushed.jsonl, imported.jsonl,
                          asr/ and nlu/ checkpoints, metrics.json

A step is done when its artefact exists and ``state.json`` says so; killing the process at
any moment and running the same command again repeats at most the unfinished step, and the
steps themselves are idempotent (push never makes a second task, pull never imports twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from earmark.errors import EarmarkError
from earmark.fileio import write_json

PHASES = ("train", "score", "select", "push", "annotate", "pull", "done")


class RunLockedError(EarmarkError):
    """Another loop holds the run folder."""


@dataclass(frozen=True)
class RunState:
    """Where the loop is: ``round`` (1-based) and the next ``phase`` to run in it."""

    round: int = 1
    phase: str = "train"
    stopped: str | None = None  # why the loop stopped for good (budget, stopping rule)
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def advance(self) -> RunState:
        i = PHASES.index(self.phase)
        if PHASES[i] == "done":
            return replace(self, round=self.round + 1, phase=PHASES[0])
        return replace(self, phase=PHASES[i + 1])


class RunFolder:
    """Paths and persisted state of one run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def round_dir(self, n: int) -> Path:
        return self.root / "rounds" / f"r{n:03d}"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def load_state(self) -> RunState:
        if not self.state_path.is_file():
            return RunState()
        data = json.loads(self.state_path.read_text())
        data["history"] = tuple(data.get("history", ()))
        return RunState(**data)

    def save_state(self, state: RunState) -> None:
        write_json(self.state_path, asdict(state))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for this process; a second loop gets a clear refusal."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        f = open(path, "a+")  # noqa: SIM115 - kept open for the lock's lifetime
        try:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise RunLockedError(
                    f"run folder {self.root} is in use by another earmark loop ({holder}); "
                    "wait for it to finish or stop it first"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            f.flush()
            yield
        finally:
            f.close()
