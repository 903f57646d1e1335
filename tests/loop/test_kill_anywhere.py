"""Kill-anywhere: the loop killed at its N-th write (any file it writes, any change it asks of
Label Studio), or by SIGKILL at a random instant, again and again, then resumed until it
finishes, loses and repeats nothing.

``earmark.core.faults`` ends the process right before the N-th write point it reaches
(``EARMARK_KILL_AT_WRITE``) and traces every point (``EARMARK_WRITE_TRACE``), so the test knows
where each kill landed. After the run finishes: every annotation on the server was imported
exactly once, no task exists twice, the curve has every round once, and no round was trained
or evaluated twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from loop_support import BATCH, loop_config, run_cli
from studio_fixtures import Studio

from earmark.core.faults import KILL_ENV, KILL_NEW_ENV, KILLED_EXIT, TRACE_ENV
from earmark.core.fileio import read_jsonl
from earmark.core.manifest import read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

MAX_AT = 8  # each process dies at the k-th write no kill reached before, k uniform in [1, 8]


def _trace(path: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in path.read_text().splitlines():
        pid, n, what = line.split("\t", 2)
        out.append((int(pid), int(n), what))
    return out


def _server_view(studio: Studio) -> tuple[dict[str, list[str]], list[tuple[int, int]]]:
    """Per kind, the refs of every task on the server; every (task, annotation) there."""
    from labelling import convert
    from labelling.state import State

    refs: dict[str, list[str]] = {}
    annotations: list[tuple[int, int]] = []
    with studio.client() as client:
        for kind, project in State.of(studio.workspace).projects().items():
            refs[kind] = []
            for task in client.paginate(
                "/api/tasks/",
                what="listing tasks",
                params={"project": project["id"], "fields": "all"},
            ):
                refs[kind].append(str(task["data"][convert.REF_KEY]))
                annotations += [
                    (int(task["id"]), int(a["id"])) for a in task.get("annotations") or []
                ]
    return refs, annotations


def _assert_nothing_lost_or_repeated(studio: Studio, rounds: int) -> None:
    from labelling.state import State

    run = studio.workspace
    state = State.of(run)
    refs, annotations = _server_view(studio)
    for kind, kind_refs in refs.items():
        assert len(kind_refs) == len(set(kind_refs)), f"a {kind} task exists twice"
    assert len(refs["transcription"]) == rounds * BATCH
    # every annotation on the server imported exactly once (one version each here)
    imported = read_jsonl(state.imported)
    keys = Counter((e["annotation_id"], e["updated_at"]) for e in imported)
    assert all(n == 1 for n in keys.values()), "an annotation version imported twice"
    assert {a for _, a in annotations} == {e["annotation_id"] for e in imported}
    assert len({t for t, _ in annotations}) == len(annotations), "a task answered twice"
    # every pushed task recorded once, and each task on the server is in the record
    pushed = state.pushed_rows()
    assert len({(r["ref"], r["kind"]) for r in pushed}) == len(pushed)
    assert sorted(r["ref"] for r in pushed if r["kind"] == "transcription") == sorted(
        refs["transcription"]
    )
    labels = [r.id for r in read_manifest(state.labels)]
    assert len(labels) == rounds * BATCH
    # the audit trail: intact, each task exposed once, each imported version submitted once
    from labelling.audit import verify

    assert verify(state.audit).ok, verify(state.audit).message()
    events = read_jsonl(state.audit)
    exposed = Counter((e["task"], e["detail"]["kind"]) for e in events if e["event"] == "exposed")
    assert set(exposed) == {(r["ref"], r["kind"]) for r in pushed}, "a task exposed unrecorded"
    assert set(exposed.values()) == {1}, "an exposure recorded twice"
    submitted = Counter(
        (e["detail"]["annotation_id"], e["detail"]["updated_at"])
        for e in events
        if e["event"] == "submitted"
    )
    assert submitted == keys, "an annotation version missing from the audit trail, or twice"
    curve = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in curve] == list(range(1, rounds + 2))
    assert [r["labelled"] for r in curve] == [24 + n * BATCH for n in range(rounds + 1)]


def test_killed_at_any_write_the_loop_resumes_without_loss_or_duplicates(
    tiny_corpus: Path, studio: Studio, tmp_path: Path
) -> None:
    run = studio.workspace
    config = loop_config(tiny_corpus, studio, rounds=2)
    trace = tmp_path / "writes.tsv"
    rng = random.Random(2026)
    kills: list[str] = []
    for _ in range(200):
        env = {TRACE_ENV: str(trace), KILL_NEW_ENV: str(rng.randint(1, MAX_AT))}
        out = run_cli(config, run, env_extra=env)
        if out.returncode == KILLED_EXIT:
            kills.append(next(w for _, _, w in reversed(_trace(trace)) if w.startswith("KILL ")))
            continue
        assert out.returncode == 0, out.stderr[-3000:]
        break
    else:
        pytest.fail(f"the loop did not finish after {len(kills)} kills")
    points = {w.removeprefix("KILL ") for _, _, w in _trace(trace)}
    print(f"\n{len(kills)} kills at {len(points)} distinct write points, all survived:")
    for k in kills:
        print("  " + k.removeprefix("KILL ").replace(str(run), "RUN"))
    assert len(kills) >= 30
    _assert_nothing_lost_or_repeated(studio, rounds=2)

    # no round trained or evaluated twice: its checkpoints and metrics were written once
    done = Counter(w for _, _, w in _trace(trace) if not w.startswith("KILL "))
    for r in (1, 2, 3):
        rd = run / "rounds" / f"r{r:03d}"
        for name, what in (("metrics.json", "evaluated"), ("checkpoints.json", "trained")):
            writes = [
                w for w in done.elements() if w.split(": ", 1)[1].startswith(f"write {rd / name} ")
            ]
            assert len(writes) == 1, f"round {r} {what} twice: {writes}"


def test_sigkilled_at_random_instants_the_loop_resumes_without_loss_or_duplicates(
    tiny_corpus: Path, studio: Studio
) -> None:
    run = studio.workspace
    config = loop_config(tiny_corpus, studio, rounds=1)
    rng = random.Random(7)
    env = {k: v for k, v in os.environ.items() if k not in (KILL_ENV, KILL_NEW_ENV, TRACE_ENV)}
    cmd = [
        sys.executable,
        "-m",
        "earmark.cli.main",
        "loop",
        "--config",
        str(config),
        "--run",
        str(run),
    ]
    killed = 0
    for _ in range(6):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(3.0, 20.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
    out = run_cli(config, run)
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"\nSIGKILLed {killed} times at random instants, then finished")
    assert killed >= 3
    _assert_nothing_lost_or_repeated(studio, rounds=1)
