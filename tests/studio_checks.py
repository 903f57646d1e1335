"""Checks against a real Label Studio server that more than one server set-up runs (SQLite in
tests/labelling/test_studio.py, PostgreSQL in tests/labelling/test_postgres.py)."""

from __future__ import annotations

import json
import os
import stat

from earmark.core.manifest import read_manifest
from labelling.configs import schema_from_manifests
from labelling.projects import setup_projects
from labelling.pull import build_training_manifest, pull
from labelling.push import push
from labelling.settings import Paths
from labelling.simulate import simulate
from labelling.state import State
from labelling.status import status


def setup(studio, corpus):
    with studio.client() as client:
        return setup_projects(
            client, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )


def push_corpus(client, studio, corpus):
    """Push the whole selection of ``corpus`` with its ASR and NLU predictions."""
    return push(
        client,
        studio.workspace,
        corpus.selection,
        corpus.pool,
        studio.config,
        asr_predictions=corpus.asr,
        nlu_predictions=corpus.nlu,
    )


def round_trip(studio, corpus, tmp_path):
    """20 tasks pushed (twice: created once), annotated, pulled (three times: imported once),
    every label equal to its answer; the training manifest built; the token file private."""
    first = setup(studio, corpus)
    again = setup(studio, corpus)
    assert [r.action for r in first] == ["created", "created"]
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    with studio.client() as client:
        pushed = push_corpus(client, studio, corpus)
        assert (pushed.transcription, pushed.understanding) == (20, 0)
        repeat = push(client, studio.workspace, corpus.selection, corpus.pool, studio.config)
        assert (repeat.created, repeat.already_pushed) == (0, 20)

        info = status(studio.workspace, studio.config)
        mine = {p.title: p for p in info.projects}
        assert mine[studio.config.projects.transcription_title].open == 20

        s1 = simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
        assert s1.annotated == 20
        p1 = pull(client, studio.workspace)
        assert (p1.new, p1.accepted, p1.rejected, p1.followups) == (20, 20, 0, 20)
        s2 = simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
        assert s2.annotated == 20
        p2 = pull(client, studio.workspace)
        assert (p2.new, p2.accepted, p2.rejected, p2.flagged) == (20, 20, 0, 0)
        p3 = pull(client, studio.workspace)
        assert (p3.new, p3.followups) == (0, 0)

    labels = {r.id: r.label for r in read_manifest(State.of(studio.workspace).labels)}
    answers = {r.id: r.label for r in read_manifest(corpus.answers)}
    assert set(labels) == set(answers)
    for uid, want in answers.items():
        got = labels[uid]
        assert (got.text, got.intent, got.entities) == (want.text, want.intent, want.entities), uid
        assert got.source.value == "human" and got.version.startswith("ann-")
    # the loop's training manifest: audio from the pool, labels from Label Studio
    n = build_training_manifest(studio.workspace, corpus.pool, tmp_path / "train.jsonl")
    assert n == 20
    # the token file is readable by the user only
    mode = stat.S_IMODE(os.stat(Paths.of(studio.workspace).token).st_mode)
    assert mode == 0o600


def no_identity(studio, corpus):
    """Push ``corpus``: no task the API returns holds a speaker, a path, a file name or an
    utterance id, and each task's audio is served."""
    setup(studio, corpus)
    with studio.client() as client:
        push_corpus(client, studio, corpus)
        tasks = []
        for ref in State.of(studio.workspace).projects().values():
            tasks += list(
                client.paginate(
                    "/api/tasks/",
                    what="reading tasks",
                    params={"project": ref["id"], "fields": "all"},
                )
            )
        assert len(tasks) == 8
        dumped = json.dumps(tasks)
        for row in read_manifest(corpus.pool):
            audio = row.utterance.audio
            assert row.utterance.speaker not in dumped
            assert audio not in dumped and os.path.basename(audio) not in dumped
            assert os.path.splitext(os.path.basename(audio))[0] not in dumped
            assert os.path.dirname(audio) not in dumped
            assert f'"{row.id}"' not in dumped  # the utterance id stays local too
        for task in tasks:
            assert set(task["data"]) == {"ref", "audio"}
            audio_url = task["data"]["audio"]
            assert os.path.basename(audio_url).endswith(f"-{task['data']['ref']}.wav")
            # the audio itself is served (to a logged-in user) and is a WAV file
            resp = client._http.get(audio_url, headers={"Authorization": client._auth_header()})
            assert resp.status_code == 200 and resp.content[:4] == b"RIFF"
