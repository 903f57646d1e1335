"""The loop end to end on a tiny built-in corpus: real synthesis, real training, a real Label
Studio server, the simulated annotator; and kill-and-resume at several points of a round."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loop_support import BATCH, loop_config, run_cli, task_refs
from studio_fixtures import Studio

from earmark.core.manifest import read_manifest
from earmark.selection import read_scores

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]


def test_two_round_loop_against_a_real_server(tiny_corpus: Path, studio: Studio) -> None:
    run = studio.workspace  # the run folder is the Label Studio workspace
    # two simulated annotators, each task given to both: the rounds report their agreement
    projects = dataclasses.replace(studio.config.projects, overlap=2)
    studio = dataclasses.replace(
        studio, config=dataclasses.replace(studio.config, projects=projects)
    )
    out = run_cli(loop_config(tiny_corpus, studio, rounds=2, annotator={"count": 2}), run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "run finished: reached 2 round(s)" in out.stdout

    rows = json.loads((run / "metrics.json").read_text())
    assert [r["round"] for r in rows] == [1, 2, 3]
    assert [r["labelled"] for r in rows] == [24, 24 + BATCH, 24 + 2 * BATCH]
    assert all(r["wer"] >= 0.0 and 0.0 <= r["intent_accuracy"] <= 1.0 for r in rows)
    assert "agreement_annotators" not in rows[0]  # the seed round: nobody annotated yet
    for r, done in zip(rows[1:], (BATCH, 2 * BATCH), strict=True):
        assert r["agreement_annotators"] == 2
        assert r["agreement_transcription_tasks"] == r["agreement_understanding_tasks"] == done
        assert r["agreement_transcript_agreement"] == r["agreement_intent_alpha"] == 1.0
    assert (run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "metrics.csv").read_text().startswith("round,")

    seed_ids = {r.id for r in read_manifest(tiny_corpus / "seed.jsonl")}
    chosen: list[str] = []
    for r in (1, 2):
        rd = run / "rounds" / f"r{r:03d}"
        selection = [json.loads(x)["id"] for x in (rd / "selection.jsonl").read_text().splitlines()]
        scored = {s.id for s in read_scores(rd / "scores.jsonl")}
        assert len(selection) == BATCH and set(selection) <= scored
        chosen += selection
        assert (rd / "pushed.json").is_file() and (rd / "imported.json").is_file()
    assert len(set(chosen)) == 2 * BATCH and not set(chosen) & seed_ids
    # the second round scored only what was still in the pool
    assert len(read_scores(run / "rounds" / "r002" / "scores.jsonl")) == 24 - BATCH

    # what the annotator confirmed is exactly the answer file, and only the chosen utterances
    from labelling.state import State

    answers = {r.id: r.label for r in read_manifest(tiny_corpus / "pool_answers.jsonl")}
    labels = {r.id: r.label for r in read_manifest(State.of(run).labels)}
    assert set(labels) == set(chosen)
    for uid, label in labels.items():
        assert label is not None and answers[uid] is not None
        assert (label.text, label.intent, label.entities) == (
            answers[uid].text,
            answers[uid].intent,
            answers[uid].entities,
        )
    assert sorted(task_refs(studio)) == sorted(chosen)

    status = subprocess.run(
        [sys.executable, "-m", "earmark.cli.main", "status", "--run", str(run)],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0, status.stderr
    assert f"labelled: 24 seed + {2 * BATCH} human" in status.stdout
    assert "finished: reached 2 round(s)" in status.stdout

    # a second loop on the same folder while one holds it is refused
    from earmark.loop.state import RunFolder

    with RunFolder(run).lock():
        again = run_cli(loop_config(tiny_corpus, studio, rounds=2), run)
    assert again.returncode == 1
    assert "is in use by another earmark loop" in again.stderr


def test_a_round_scores_a_pool_sample_and_falls_back_to_random_until_its_ranking_holds(
    tiny_corpus: Path, studio: Studio
) -> None:
    run = studio.workspace
    # a 3-step model cannot rank dev errors with a Spearman correlation of 0.99
    selection = {"pool_sample": 10, "min_rank_correlation": 0.99}
    out = run_cli(loop_config(tiny_corpus, studio, rounds=1, selection=selection), run)
    assert out.returncode == 0, out.stderr[-3000:]
    rd = run / "rounds" / "r001"
    log = out.stdout + out.stderr
    assert "scoring a random 10 of 24 selectable pool utterances" in log
    scored = {s.id for s in read_scores(rd / "scores.jsonl")}
    assert len(scored) == 10
    dev_ids = {r.id for r in read_manifest(tiny_corpus / "dev.jsonl")}
    for kind in ("asr", "nlu"):
        lines = (rd / f"dev_{kind}_predictions.jsonl").read_text().splitlines()
        assert {json.loads(x)["id"] for x in lines} == dev_ids
    check = json.loads((rd / "rank_check.json").read_text())
    assert check["strategy"] == "diverse(combined)" and check["utterances"] == len(dev_ids)
    assert check["informative"] is False and check["threshold"] == 0.99
    assert "selecting at random this round" in log
    selection_rows = [json.loads(x) for x in (rd / "selection.jsonl").read_text().splitlines()]
    assert len(selection_rows) == BATCH and {r["id"] for r in selection_rows} <= scored
    assert {r["strategy"] for r in selection_rows} == {"random"}


def test_with_human_annotators_the_loop_stops_after_pushing_then_waits_for_both_tasks(
    tiny_corpus: Path, studio: Studio
) -> None:
    from labelling.client import connect
    from labelling.simulate import simulate
    from labelling.state import State

    run = studio.workspace
    # someone else's project on the same server, with a task nobody here will do: the loop
    # must wait for its own tasks only
    with connect(run, studio.config.client) as admin:
        other = admin.post("/api/projects/", {"title": "not earmark"}, what="creating a project")
        admin.post(f"/api/projects/{other['id']}/import", [{"data": {"text": "x"}}], what="a task")
    config = loop_config(
        tiny_corpus, studio, rounds=1, annotator={"kind": "human", "poll_seconds": 0.5}
    )
    first = run_cli(config, run)
    assert first.returncode == 0, first.stderr[-3000:]
    said = first.stdout + first.stderr
    assert f"Tasks are waiting for annotators at {studio.url}" in said
    assert "run the same `earmark loop` command again" in said
    assert len(task_refs(studio)) == BATCH and not (run / "rounds" / "r002").exists()

    # the same command again waits; a person (the simulated annotator's account, driven from
    # here) does the transcriptions, then the understanding tasks they lead to
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_CRASH_AFTER"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "earmark.cli.main", "loop", "--config", str(config), "--run", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    with connect(run, studio.config.client) as admin:
        while proc.poll() is None and time.monotonic() < deadline:
            simulate(admin, run, studio.config, tiny_corpus / "pool_answers.jsonl")
            time.sleep(0.5)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    # progress while it waited; the understanding tasks appeared meanwhile, and it waited for them
    assert f"round 1: {2 * BATCH}/{2 * BATCH} tasks done" in out
    assert "run finished: reached 1 round(s)" in out
    labels = list(read_manifest(State.of(run).labels))
    assert len(labels) == BATCH and all(r.label and r.label.intent for r in labels)
    # round 2 trained its NLU on the seed set and every one of the round's human labels
    nlu_train = (run / "rounds" / "r002" / "train_nlu.jsonl").read_text().splitlines()
    assert len(nlu_train) == 24 + BATCH


def _meta_created(run: Path, round_no: int, model: str) -> float:
    ckpts = json.loads((run / "rounds" / f"r{round_no:03d}" / "checkpoints.json").read_text())
    return float(json.loads((Path(ckpts[model]) / "earmark.json").read_text())["created"])


def test_killed_at_any_point_the_loop_resumes_without_loss_or_duplicates(
    tiny_corpus: Path, studio: Studio
) -> None:
    run = studio.workspace
    config = loop_config(tiny_corpus, studio, rounds=2)

    # die right after each step of round 1, before the state records it
    for phase in ("train", "push", "annotate", "pull"):
        out = run_cli(config, run, crash_after=phase)
        assert out.returncode == 99, (phase, out.stderr[-2000:])
        if phase == "train":
            first_training = _meta_created(run, 1, "asr")
        assert _meta_created(run, 1, "asr") == first_training, (
            f"round 1 retrained after a crash at {phase}"
        )
        pushed = 0 if phase == "train" else BATCH
        assert len(task_refs(studio)) == pushed, (
            f"tasks lost or pushed twice after a crash at {phase}"
        )

    # kill -9 in the middle of round 2's ASR training, then finish
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_CRASH_AFTER"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "earmark.cli.main", "loop", "--config", str(config), "--run", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while (
        not (run / "rounds" / "r002" / "asr").exists()
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    out = run_cli(config, run)
    assert out.returncode == 0, out.stderr[-3000:]
    from labelling.state import State

    labels = [r.id for r in read_manifest(State.of(run).labels)]
    refs = task_refs(studio)
    assert len(refs) == len(set(refs)) == 2 * BATCH  # no task pushed twice
    assert sorted(labels) == sorted(refs)  # no annotation lost
    assert [r["labelled"] for r in json.loads((run / "metrics.json").read_text())] == [24, 28, 32]
    assert _meta_created(run, 1, "asr") == first_training
