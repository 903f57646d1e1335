"""Data-parallel NLU training over 2 CPU processes (torchrun, gloo): the model one process
trains with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from factories import tb_scalars
from safetensors.numpy import load_file

from .conftest import TINY

pytestmark = [pytest.mark.slow]

EARMARK = str(Path(sys.executable).with_name("earmark"))


def _train(data: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    sets = [a for o in (*TINY, "threads=1", "model.dropout=0.0", "optim.max_epochs=2")
            for a in ("--set", o)]  # fmt: skip
    cmd = [EARMARK, "train", "nlu", "--train", str(data["train"]), "--dev", str(data["dev"]),
           "--out", str(out), *sets, *extra]  # fmt: skip
    return subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_two_ranks_train_the_model_one_process_trains(nlu_data, tmp_path: Path) -> None:
    one = _train(nlu_data, tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = _train(nlu_data, tmp_path / "two", "--nproc", "2")
    assert two.returncode == 0, two.stderr
    assert len(two.stdout.strip().splitlines()) == 1  # one result: rank 0's
    assert json.loads(two.stdout)["intent_accuracy"] == pytest.approx(
        json.loads(one.stdout)["intent_accuracy"], abs=0.02
    )
    a, b = (tb_scalars(tmp_path / k / "tb")["train/loss"] for k in ("one", "two"))
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 51))  # 2 epochs of 25
    la, lb = np.array([v for _, v in a]), np.array([v for _, v in b])
    assert np.max(np.abs(la - lb) / la) < 1e-3, (la, lb)  # no batch norm: only rounding
    wa, wb = (load_file(str(tmp_path / k / "model.safetensors")) for k in ("one", "two"))
    total = sum(np.sum((wa[n] - wb[n]) ** 2) for n in wa) / sum(np.sum(wa[n] ** 2) for n in wa)
    assert np.sqrt(total) < 1e-3
