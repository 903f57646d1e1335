"""The run folder: its lock, and the loop's position, persisted after every step.

Layout::

    RUN/
      run.json            resolved loop config (written once)
      state.json          round and phase reached; rewritten atomically after each step
      .lock               held (flock) by the one loop working on this folder
      metrics.csv/.json   one row per round; learning_curve.png redrawn each round
      quarantine.jsonl    pool utterances whose audio could not be read, with the reason
      rounds/r001/        every round's files (``RoundFiles``): training manifests, asr/ and
                          nlu/ checkpoints, checkpoints.json, metrics.json, predictions,
                          scores.jsonl, rank_check.json, selection.jsonl, pushed.json,
                          annotated.json, imported.json

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

from earmark.core.errors import EarmarkError
from earmark.core.fileio import private_dir, write_json

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


@dataclass(frozen=True)
class RoundFiles:
    """The files of one round, ``RUN/rounds/r00N/``: what each phase writes, by name.

    ``kind`` is a model kind ("asr" or "nlu"); ``split`` is "pool" (what the round scores)
    or "dev" (scored for the warm-up check).
    """

    dir: Path

    @property
    def number(self) -> int:
        return int(self.dir.name[1:])

    # train
    def train_manifest(self, kind: str) -> Path:
        return self.dir / f"train_{kind}.jsonl"

    def human_manifest(self, kind: str) -> Path:
        return self.dir / f"human_{kind}.jsonl"

    def pseudo_manifest(self, kind: str) -> Path:
        return self.dir / f"pseudo_{kind}.jsonl"

    @property
    def unreplayed_text(self) -> Path:
        """Transcripts of the seed rows a warm ASR round does not replay: its LM still reads them."""
        return self.dir / "lm_unreplayed.txt"

    def checkpoint_dir(self, kind: str) -> Path:
        return self.dir / kind

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints.json"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def trained(self) -> bool:
        """Trained and evaluated: a round with metrics is never trained again."""
        return self.metrics.is_file()

    # score and select
    def predictions(self, kind: str, split: str = "pool") -> Path:
        return self.dir / f"{'' if split == 'pool' else split + '_'}{kind}_predictions.jsonl"

    @property
    def scores(self) -> Path:
        return self.dir / "scores.jsonl"

    @property
    def rank_check(self) -> Path:
        return self.dir / "rank_check.json"

    @property
    def selection(self) -> Path:
        return self.dir / "selection.jsonl"

    # push, annotate, pull
    @property
    def pushed(self) -> Path:
        return self.dir / "pushed.json"

    @property
    def annotated(self) -> Path:
        return self.dir / "annotated.json"

    @property
    def imported(self) -> Path:
        return self.dir / "imported.json"


class RunFolder:
    """Paths and persisted state of one run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def round_dir(self, n: int) -> Path:
        return self.root / "rounds" / f"r{n:03d}"

    def round(self, n: int) -> RoundFiles:
        return RoundFiles(self.round_dir(n))

    def rounds(self) -> list[RoundFiles]:
        """The rounds that have a folder, in order."""
        return [RoundFiles(d) for d in sorted(self.root.glob("rounds/r[0-9][0-9][0-9]"))]

    @property
    def config(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def curve_plot(self) -> Path:
        return self.root / "learning_curve.png"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine.jsonl"

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
        private_dir(self.root)  # audio, labels and secrets live under it
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


def copy_trained_round(src: RoundFiles, run: RunFolder) -> None:
    """Make ``src`` (a trained round of another run) this run's round of the same number:
    checkpoints (without their resume state), training manifests, metrics and the curve's row.
    The loop then treats it as trained. For benchmarks whose arms share a first round."""
    import shutil

    from earmark.loop.curves import append_row

    dst = run.round(src.number)
    dst.dir.mkdir(parents=True, exist_ok=True)
    checkpoints = {}
    for model, path in json.loads(src.checkpoints.read_text()).items():
        ignore = shutil.ignore_patterns("last", ".last.*")  # resume state is not shared
        shutil.copytree(path, dst.checkpoint_dir(model), ignore=ignore)
        checkpoints[model] = str(dst.checkpoint_dir(model))
    for kind in ("asr", "nlu"):
        if src.train_manifest(kind).is_file():
            shutil.copy(src.train_manifest(kind), dst.train_manifest(kind))
    row = json.loads(src.metrics.read_text())
    write_json(dst.checkpoints, checkpoints)
    write_json(dst.metrics, row)
    append_row(run.root, row)
