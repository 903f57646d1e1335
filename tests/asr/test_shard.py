"""Sharded transcription: two processes (a job array's ``--shard i/N``, or ``torchrun``) give
the bytes one process gives; a merge refuses parts that do not fit the manifest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from earmark.core.manifest import read_manifest, write_manifest

pytestmark = [pytest.mark.slow, pytest.mark.shared]

EARMARK = str(Path(sys.executable).with_name("earmark"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # as many threads per process in every run


def _transcribe(ckpt: Path, manifest: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [EARMARK, "transcribe", "--checkpoint", str(ckpt), "--manifest", str(manifest)]
    return subprocess.Popen(
        [*cmd, "--out", str(out), "--chunk-size", "4", *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _done(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def pool(fsdd_manifests, tmp_path_factory) -> Path:
    """30 real recordings (7 blocks of 4, the last one short)."""
    path = tmp_path_factory.mktemp("shard") / "pool.jsonl"
    write_manifest(
        path, [*read_manifest(fsdd_manifests["train"]), *read_manifest(fsdd_manifests["dev"])]
    )
    return path


@pytest.fixture(scope="module")
def single(tiny_checkpoint, pool) -> bytes:
    out = pool.with_name("single.jsonl")
    _done(_transcribe(tiny_checkpoint[0], pool, out))
    return out.read_bytes()


def test_two_job_array_shards_merge_to_the_one_process_bytes(
    tiny_checkpoint, pool, single, tmp_path
):
    out = tmp_path / "preds.jsonl"
    jobs = [_transcribe(tiny_checkpoint[0], pool, out, "--shard", f"{i}/2") for i in range(2)]
    for job in jobs:
        _done(job)
    parts = [out.with_name(f"preds.jsonl.shard-{i}-of-2") for i in range(2)]
    assert [len(p.read_text().splitlines()) for p in parts] == [16, 14]  # blocks 0,2,4,6 / 1,3,5
    assert "30 predictions from 2 shards" in _done(
        _transcribe(tiny_checkpoint[0], pool, out, "--merge", "2")
    )
    assert out.read_bytes() == single


def test_torchrun_ranks_shard_and_rank_0_merges(tiny_checkpoint, pool, single, tmp_path):
    out = tmp_path / "preds.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "--no-python", EARMARK, "transcribe", "--checkpoint", str(tiny_checkpoint[0]),
         "--manifest", str(pool), "--out", str(out), "--chunk-size", "4"],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_bytes() == single
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.jsonl"]  # parts removed


def test_a_merge_refuses_missing_or_mismatched_parts(tiny_checkpoint, pool, single, tmp_path):
    out = tmp_path / "preds.jsonl"
    _done(_transcribe(tiny_checkpoint[0], pool, out, "--shard", "0/2"))
    missing = _transcribe(tiny_checkpoint[0], pool, out, "--merge", "2")
    said, _ = missing.communicate(timeout=600)
    assert missing.returncode != 0 and "missing part(s)" in said and "shard-1-of-2" in said
    _done(_transcribe(tiny_checkpoint[0], pool, out, "--shard", "1/2"))
    wrong = _transcribe(tiny_checkpoint[0], pool, out, "--merge", "2", "--chunk-size", "5")
    said, _ = wrong.communicate(timeout=600)
    assert wrong.returncode != 0 and "preds.jsonl.shard-0-of-2 has" in said and "row 5" in said
    assert not out.exists()  # nothing half-written
    bad = _transcribe(tiny_checkpoint[0], pool, out, "--shard", "2/2")
    said, _ = bad.communicate(timeout=600)
    assert bad.returncode != 0 and "i must be in 0..N-1" in said


def test_a_loop_round_scores_on_two_processes_as_one_process_does(tiny_checkpoint, pool, tmp_path):
    """``selection.score_processes: 2``: the round's predictions are one process's (with as
    many threads per process), and an unreadable clip is quarantined alike."""
    import dataclasses

    import torch

    from earmark.core.manifest import ManifestRow
    from earmark.core.records import Utterance
    from earmark.loop.scoring import predict_rows
    from earmark.loop.trainset import Halves

    base = read_manifest(pool)  # 3 blocks of 128 rows: shard 0 gets two, shard 1 one
    rows = [ManifestRow(dataclasses.replace(r.utterance, id=f"{r.id}-{k}"), None)
            for k in range(9) for r in base]  # fmt: skip
    (tmp_path / "broken.wav").write_bytes(b"RIFF not a wav")
    rows.insert(130, ManifestRow(Utterance("broken", str(tmp_path / "broken.wav")), None))
    ckpts, halves = {"asr": str(tiny_checkpoint[0])}, Halves(asr=True, nlu=False)
    threads = torch.get_num_threads()
    bad: dict[str, list[str]] = {"one": [], "two": []}
    try:
        torch.set_num_threads(1)
        one, _ = predict_rows(ckpts, rows, halves, lambda r, e: bad["one"].append(r.id))
        torch.set_num_threads(2)  # two workers of one thread each
        two, _ = predict_rows(
            ckpts, rows, halves, lambda r, e: bad["two"].append(r.id), processes=(2, tmp_path)
        )
    finally:
        torch.set_num_threads(threads)
    assert bad == {"one": ["broken"], "two": ["broken"]}
    assert list(two) == list(one) == [r.id for r in rows if r.id != "broken"]
    assert [p.to_dict() for p in two.values()] == [p.to_dict() for p in one.values()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav"]  # its files removed
