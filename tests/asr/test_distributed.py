"""Data-parallel ASR training over 2 CPU processes (torchrun, gloo): the same model as one
process with the same global batch; a killed rank is reported and the run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from factories import tb_scalars
from safetensors.numpy import load_file

from .conftest import TINY

pytestmark = [pytest.mark.slow, pytest.mark.shared]

EARMARK = str(Path(sys.executable).with_name("earmark"))


def _cmd(manifests: dict[str, Path], out: Path, *extra: str) -> list[str]:
    sets = [a for o in TINY for a in ("--set", o)]
    return [EARMARK, "train", "asr", "--train", str(manifests["train"]), "--dev",
            str(manifests["dev"]), "--out", str(out), *sets, "--set", "train.max_frames=600",
            "--set", "decoding.method=greedy", "--max-minutes", "0", *extra]  # fmt: skip


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_two_ranks_train_the_model_one_process_trains(fsdd_manifests, tmp_path: Path) -> None:
    one = _run(_cmd(fsdd_manifests, tmp_path / "one", "--max-steps", "16"))
    assert one.returncode == 0, one.stderr
    two = _run(_cmd(fsdd_manifests, tmp_path / "two", "--max-steps", "16", "--nproc", "2"))
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout.strip().splitlines()[-1])["ranks"] == 2  # one result, rank 0's
    a, b = (tb_scalars(tmp_path / k / "tb")["train/loss"] for k in ("one", "two"))
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 17))
    la, lb = np.array([v for _, v in a]), np.array([v for _, v in b])
    assert np.max(np.abs(la - lb) / la) < 0.02, (la, lb)  # batch norm sees half a batch a rank
    wa, wb = (load_file(str(tmp_path / k / "model.safetensors")) for k in ("one", "two"))
    assert wa.keys() == wb.keys()
    # within 1% overall; every weight matrix within 5%. Biases that a norm or a softmax makes
    # irrelevant (a key's bias, a bias before batch norm) get ~0 gradient, which Adam turns into
    # full steps of rounding noise, and batch norm's running statistics are rank 0's half batch
    total = sum(np.sum((wa[n] - wb[n]) ** 2) for n in wa) / sum(np.sum(wa[n] ** 2) for n in wa)
    assert np.sqrt(total) < 0.01
    for n in (n for n in wa if wa[n].ndim >= 2):
        assert np.linalg.norm(wa[n] - wb[n]) / np.linalg.norm(wa[n]) < 0.05, n


def _pid_of_rank(rank: int, tag: str) -> int | None:
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"EARMARK_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def test_a_killed_rank_is_reported_and_the_run_resumes(fsdd_manifests, tmp_path: Path) -> None:
    out, tag = tmp_path / "run", uuid.uuid4().hex
    cmd = _cmd(fsdd_manifests, out, "--max-steps", "400", "--nproc", "2",
               "--set", "train.eval_every_steps=5")  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EARMARK_TEST_TAG": tag}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / "last" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not (state.is_file() and json.loads(state.read_text())["step"] >= 10):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    pid = _pid_of_rank(1, tag)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "training stopped: a rank failed" in err and "--resume" in err
    saved = json.loads(state.read_text())["step"]
    assert 10 <= saved < 400
    again = _run([*_cmd(fsdd_manifests, out, "--max-steps", "400", "--nproc", "2",
                        "--set", "train.eval_every_steps=5"), "--resume"])  # fmt: skip
    assert again.returncode == 0, again.stderr
    said = "".join(again.stderr.split())  # the console wraps long lines
    assert f"resumingfrom{out / 'last'}atstep{saved}" in said
    assert json.loads(again.stdout.strip().splitlines()[-1])["steps"] == 400
    losses = tb_scalars(out / "tb")["train/loss"]  # one curve: the killed run's tail purged
    assert [s for s, _ in losses] == list(range(1, 401))
