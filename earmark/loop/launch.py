"""A round's training on several processes: ``earmark train KIND --nproc N`` as a child
process (torchrun under it), its output passed on line by line to the round's log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from earmark.core.errors import EarmarkError
from earmark.core.say import Say

ERROR = re.compile(r"^[Ee]rror\b|\b[A-Z]\w*Error\b")  # earmark's "error: ...", "ValueError: ..."


class TrainingError(EarmarkError):
    """Training on several processes ended without a checkpoint."""


def train_command(
    kind: str,
    nproc: int,
    train: Path,
    dev: Path,
    out: Path,
    *,
    config: str | None,
    overrides: Sequence[str],
    minutes: float,
    init: Path | None,
    lm_text: Sequence[str] = (),
) -> list[str]:
    """The ``earmark train`` command a round runs as ``nproc`` ranks; ``--resume`` goes on from
    a run of its own in ``out`` (a killed round), else it starts from ``init``."""
    cmd = [sys.executable, "-m", "earmark.cli.main", "train", kind, "--nproc", str(nproc),
           "--train", str(train), "--dev", str(dev), "--out", str(out), "--resume",
           "--max-minutes", f"{minutes:g}"]  # fmt: skip
    if config:
        cmd += ["--config", config]
    if init is not None:
        cmd += ["--init", str(init)]
    for o in overrides:
        cmd += ["--set", o]
    for t in lm_text:
        cmd += ["--lm-text", t]
    return cmd


def train_on_ranks(cmd: list[str], out: Path, log: Say) -> Path:
    """Run ``cmd`` (``train_command``), saying its output; the checkpoint it reports. Raises
    ``TrainingError`` with the end of its output when it fails."""
    tail: list[str] = []
    cause = None  # the first error a rank printed (torchrun's report after it is long)
    checkpoint = None
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith('{"checkpoint"'):
                checkpoint = json.loads(line)["checkpoint"]
                continue
            tail = [*tail[-19:], line]
            if cause is None and ERROR.search(line):
                cause = line
            log(line)
    if proc.returncode != 0 or checkpoint is None:
        raise TrainingError(
            f"training on {cmd[cmd.index('--nproc') + 1]} processes into {out} failed "
            f"(exit status {proc.returncode}); the round can be run again (it resumes from "
            f"the last saved state). First error: {cause or 'none printed'}; last lines:\n"
            + "\n".join(tail)
        )
    return Path(checkpoint)
