"""Several annotators on a real server: a share of tasks given to two, agreement measured on a
known disagreement, ties broken by a third, and the listener limit."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from nltk.metrics.agreement import AnnotationTask

from earmark.core.manifest import read_manifest
from labelling import convert
from labelling.client import write_secret
from labelling.configs import schema_from_manifests
from labelling.overlap import Overlap
from labelling.projects import project_tags, setup_projects
from labelling.pull import pull
from labelling.push import push
from labelling.review import review_items
from labelling.settings import Paths, StudioConfig
from labelling.simulate import simulate
from labelling.state import State

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]


def _with(config: StudioConfig, **projects) -> StudioConfig:
    privacy = projects.pop("privacy", config.privacy)
    return dataclasses.replace(
        config, projects=dataclasses.replace(config.projects, **projects), privacy=privacy
    )


def _tasks(studio, kind):
    return {
        r["utterance_id"]: r["task_id"]
        for r in State.of(studio.workspace).pushed_rows()
        if r["kind"] == kind
    }


def _annotations(client, task_id):
    return client.get(f"/api/tasks/{task_id}/annotations/", what="reading annotations")


def test_share_of_tasks_to_two_annotators_agreement_and_majority(studio, corpus_factory):
    corpus = corpus_factory(20)
    answers = {r.id: r.label for r in read_manifest(corpus.answers)}
    config = _with(studio.config, overlap=2, overlap_share=0.5)
    # a fixed pseudonymisation key: which utterances get two annotators is then known
    write_secret(Paths.of(studio.workspace).secrets / "pseudonym_key", "ab" * 32)
    state = State.of(studio.workspace)
    double = {u for u in corpus.ids if Overlap.of(config).wanted(state, u) == 2}
    assert 0 < len(double) < 20

    with studio.client() as client:
        setup_projects(client, studio.workspace, schema_from_manifests([corpus.answers]), config)
        push(
            client,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            config,
            asr_predictions=corpus.asr,
        )
        tasks = _tasks(studio, "transcription")
        overlap = {
            u: client.get(f"/api/tasks/{t}/", what="reading")["overlap"] for u, t in tasks.items()
        }
        assert {u for u, n in overlap.items() if n == 2} == double
        assert {u for u, n in overlap.items() if n == 1} == set(corpus.ids) - double

        # annotator 1 answers everything right; annotator 2 gets what is still open (the
        # shared share) and changes one word on a known subset
        one = simulate(client, studio.workspace, config, corpus.answers, annotator=1)
        # a pull between the two: the clips a second person is still to hear keep their audio
        early = pull(client, studio.workspace, config, followup=False)
        assert early.audio_deleted == 20 - len(double)
        two = simulate(
            client, studio.workspace, config, corpus.answers, annotator=2, error_rate=0.5, seed=3
        )
        assert one.annotated == 20 and two.annotated == len(double)
        wrong = {u for kind, u in two.wrong if kind == "transcription"}
        assert 0 < len(wrong) < len(double)

        # (understanding tasks wait until every transcript is settled: no follow-ups yet)
        p1 = pull(client, studio.workspace, config, followup=False)
        a = p1.agreement
        assert a["annotators"] == 2 and a["transcription_tasks"] == len(double)
        assert a["transcript_agreement"] == pytest.approx(1 - len(wrong) / len(double))
        words = sum(len(answers[u].text.split()) for u in double)
        assert a["transcript_wer"] == pytest.approx(len(wrong) / words)  # one word each
        assert json.loads(state.agreement.read_text()) == a
        # a 1-1 tie is no majority: not trained on, listed for review, reopened for a third
        assert p1.disagreements == len(wrong)
        labelled = {r.id for r in read_manifest(state.labels)}
        assert labelled == set(corpus.ids) - wrong
        assert {i.id for i in review_items(studio.workspace) if i.what == "disagreement"} == wrong
        for u in wrong:
            task = client.get(f"/api/tasks/{tasks[u]}/", what="reading")
            assert (task["is_labeled"], task["overlap"]) == (False, 3)

        three = simulate(client, studio.workspace, config, corpus.answers, annotator=3)
        assert three.annotated == len(wrong)  # the reopened tasks only
        p2 = pull(client, studio.workspace, config)
        assert p2.disagreements == 0 and p2.agreement["annotators"] == 3
        labels = {r.id: r.label for r in read_manifest(state.labels)}
        assert set(labels) == set(corpus.ids)
        assert all(labels[u].text == answers[u].text for u in wrong)  # 2 against 1

        # understanding: the same utterances get two annotators; intent agreement and
        # Krippendorff's alpha match what the server holds
        utasks = _tasks(studio, "understanding")
        assert len(utasks) == 20
        simulate(client, studio.workspace, config, corpus.answers, annotator=1)
        simulate(
            client, studio.workspace, config, corpus.answers, annotator=2, error_rate=0.5, seed=4
        )
        a = pull(client, studio.workspace, config).agreement
        tags = project_tags(client, studio.workspace)["understanding"][1]
        intents = {}
        for u, t in utasks.items():
            data = client.get(f"/api/tasks/{t}/", what="reading")["data"]
            intents[u] = [
                convert.parse_annotation(ann, data, tags).intent for ann in _annotations(client, t)
            ]
        shared = {u: i for u, i in intents.items() if len(i) == 2}
        assert set(shared) == double and a["understanding_tasks"] == len(double)
        same = sum(i[0] == i[1] for i in shared.values())
        assert 0 < same < len(shared)
        assert a["intent_agreement"] == pytest.approx(same / len(shared))
        triples = [(str(k), u, i[k]) for u, i in shared.items() for k in range(2)]
        assert a["intent_alpha"] == pytest.approx(AnnotationTask(data=triples).alpha())
        assert a["intent_alpha"] < 1.0


def test_listener_limit_closes_a_disputed_task_and_deletes_its_audio(studio, corpus_factory):
    corpus = corpus_factory(4)
    limit = dataclasses.replace(studio.config.privacy, max_listeners=2)
    config = _with(studio.config, overlap=2, overlap_share=1.0, privacy=limit)
    with studio.client() as client:
        setup_projects(client, studio.workspace, schema_from_manifests([corpus.answers]), config)
        push(client, studio.workspace, corpus.selection, corpus.pool, config)
        simulate(client, studio.workspace, config, corpus.answers, annotator=1)
        two = simulate(
            client, studio.workspace, config, corpus.answers, annotator=2, error_rate=1.0
        )
        assert two.annotated == 4 and len(two.wrong) == 4
        p = pull(client, studio.workspace, config)
        assert p.disagreements == 4 and p.accepted == 0
        # two people heard each clip: no third is offered it, and nobody can play it again
        assert p.audio_deleted == 4
        for t in _tasks(studio, "transcription").values():
            task = client.get(f"/api/tasks/{t}/", what="reading")
            assert task["is_labeled"] is True
        assert (
            simulate(client, studio.workspace, config, corpus.answers, annotator=3).annotated == 0
        )
        assert len([i for i in review_items(studio.workspace) if i.what == "disagreement"]) == 4


def test_a_push_killed_at_each_write_still_gives_the_drawn_share_two_annotators(
    studio, corpus_factory, tmp_path
):
    corpus = corpus_factory(8)
    config = _with(studio.config, overlap=2, overlap_share=0.5)
    write_secret(Paths.of(studio.workspace).secrets / "pseudonym_key", "cd" * 32)
    state = State.of(studio.workspace)
    double = {u for u in corpus.ids if Overlap.of(config).wanted(state, u) == 2}
    with studio.client() as client:
        setup_projects(client, studio.workspace, schema_from_manifests([corpus.answers]), config)
    sets = [f"server.port={config.server.port}", "projects.overlap=2", "projects.overlap_share=0.5",
            f"projects.transcription_title={config.projects.transcription_title}",
            f"projects.understanding_title={config.projects.understanding_title}"]  # fmt: skip
    cmd = [sys.executable, "-m", "earmark.cli.main", "push", "-w", str(studio.workspace),
           "--selection", str(corpus.selection), "--manifest", str(corpus.pool),
           *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    trace, kills = tmp_path / "trace.txt", 0
    env = {**os.environ, "EARMARK_WRITE_TRACE": str(trace), "EARMARK_KILL_AT_NEW_WRITE": "1"}
    for _ in range(60):  # each try dies at the next write no try reached before
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            break
        assert done.returncode == 86, done.stderr  # faults.KILLED_EXIT: killed, not failed
        kills += 1
    assert kills >= 3 and any(
        "PATCH /api/tasks/" in line for line in trace.read_text().splitlines()
    )
    with studio.client() as client:
        tasks = _tasks(studio, "transcription")
        assert sorted(tasks) == sorted(corpus.ids)  # each recorded once
        overlap = {
            u: client.get(f"/api/tasks/{t}/", what="reading")["overlap"] for u, t in tasks.items()
        }
    assert {u for u, n in overlap.items() if n == 2} == double
    assert len([r for r in state.pushed_rows() if r["kind"] == "transcription"]) == 8
