"""Against a real Label Studio server: set-up, push, simulated annotation, pull, privacy."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest

from earmark.core.manifest import read_manifest
from labelling.configs import schema_from_manifests
from labelling.projects import setup_projects
from labelling.pull import build_training_manifest, pull
from labelling.push import push
from labelling.settings import Paths
from labelling.simulate import simulate
from labelling.state import State
from labelling.status import status

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]


def _setup(studio, corpus):
    with studio.client() as client:
        return setup_projects(
            client, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )


def test_round_trip_labels_equal_answers(studio, corpus_factory, tmp_path):
    corpus = corpus_factory(20)
    first = _setup(studio, corpus)
    again = _setup(studio, corpus)
    assert [r.action for r in first] == ["created", "created"]
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    with studio.client() as client:
        pushed = push(
            client,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            studio.config,
            asr_predictions=corpus.asr,
            nlu_predictions=corpus.nlu,
        )
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


def test_least_confident_task_is_served_first(studio, corpus_factory):
    corpus = corpus_factory(6)
    _setup(studio, corpus)
    with studio.client() as client:
        push(
            client,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            studio.config,
            asr_predictions=corpus.asr,
        )
        pid = State.of(studio.workspace).projects()["transcription"]["id"]
        proj = client.get(f"/api/projects/{pid}/", what="reading the project")
        assert proj["sampling"] == "Uncertainty sampling"
        nxt = client.get(f"/api/projects/{pid}/next/", what="asking for the next task")
    refs = State.of(studio.workspace).ref_index()
    assert refs[nxt["data"]["ref"]]["utterance_id"] == "u000"  # confidence 0.20, the lowest
    pred = nxt["predictions"][0]
    assert pred["model_version"] == "asr-test-1" and pred["score"] == pytest.approx(0.2)


def test_tasks_reveal_no_speaker_path_or_file_name(studio, corpus_factory):
    corpus = corpus_factory(8)
    _setup(studio, corpus)
    with studio.client() as client:
        push(
            client,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            studio.config,
            asr_predictions=corpus.asr,
            nlu_predictions=corpus.nlu,
        )
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


def _confident(corpus, tmp_path, n):
    """The corpus's ASR predictions with the first ``n`` made very sure (0.97)."""
    rows = [json.loads(line) for line in corpus.asr.read_text().splitlines()]
    for row in rows[:n]:
        row["confidence"] = 0.97
    asr = tmp_path / "asr_confident.jsonl"
    asr.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return asr, rows


def _with_shortcut(config, threshold):
    return dataclasses.replace(
        config, push=dataclasses.replace(config.push, asr_confident=threshold)
    )


def test_confident_asr_is_still_transcribed_by_default(studio, corpus_factory, tmp_path):
    corpus = corpus_factory(4)
    _setup(studio, corpus)
    asr, _ = _confident(corpus, tmp_path, 2)
    with studio.client() as client:
        s = push(
            client, studio.workspace, corpus.selection, corpus.pool, studio.config,
            asr_predictions=asr, nlu_predictions=corpus.nlu,
        )  # fmt: skip
    assert (s.transcription, s.understanding) == (4, 0)


def test_confident_asr_shortcut_trains_the_nlu_only(studio, corpus_factory, tmp_path):
    """With ``push.asr_confident`` set, sure utterances go straight to understanding; a person
    there confirms text without hearing the audio, so the ASR never trains on it."""
    corpus = corpus_factory(4)
    _setup(studio, corpus)
    asr, rows = _confident(corpus, tmp_path, 2)
    config = _with_shortcut(studio.config, 0.9)
    with studio.client() as client:
        s = push(
            client, studio.workspace, corpus.selection, corpus.pool, config,
            asr_predictions=asr, nlu_predictions=corpus.nlu,
        )  # fmt: skip
        assert (s.transcription, s.understanding) == (2, 2)
        pid = State.of(studio.workspace).projects()["understanding"]["id"]
        tasks = list(
            client.paginate("/api/tasks/", what="reading", params={"project": pid, "fields": "all"})
        )
        assert sorted(t["data"]["text"] for t in tasks) == sorted(r["text"] for r in rows[:2])
        for task in tasks:
            pred = task["predictions"][0]
            assert pred["model_version"] == "nlu-test-1" and pred["score"] == pytest.approx(0.5)
            intent = next(r for r in pred["result"] if r["type"] == "choices")
            assert intent["value"]["choices"][0] in ("alarm_set", "play_music")
        for _ in range(2):  # direct understanding + transcription, then the follow-ups
            simulate(client, studio.workspace, config, corpus.answers, seed=1)
            pull(client, studio.workspace)

    direct, heard = {r["id"] for r in rows[:2]}, {r["id"] for r in rows[2:]}
    labels = {r.id: r for r in read_manifest(State.of(studio.workspace).labels)}
    assert set(labels) == direct | heard
    for uid, row in labels.items():  # the provenance, visible in labels.jsonl
        assert row.utterance.extra["transcript_confirmed"] is (uid in heard), uid
    build_training_manifest(studio.workspace, corpus.pool, tmp_path / "asr.jsonl")
    build_training_manifest(
        studio.workspace, corpus.pool, tmp_path / "nlu.jsonl", require_intent=True
    )
    assert {r.id for r in read_manifest(tmp_path / "asr.jsonl")} == heard
    nlu_rows = {r.id: r.label for r in read_manifest(tmp_path / "nlu.jsonl")}
    assert set(nlu_rows) == direct | heard
    assert all(nlu_rows[uid].intent for uid in direct)


def test_a_followup_whose_record_was_lost_is_not_created_again(studio, corpus_factory):
    """A kill between a follow-up's import and its line in pushed.jsonl: the next pull finds
    the task on the server and repairs the state instead of creating it twice."""
    corpus = corpus_factory(2)
    _setup(studio, corpus)
    state = State.of(studio.workspace)
    with studio.client() as client:
        push(client, studio.workspace, corpus.selection, corpus.pool, studio.config)
        simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
        assert pull(client, studio.workspace).followups == 2
        rows = state.pushed.read_text().splitlines(keepends=True)
        lost = json.loads(rows[-1])
        assert lost["kind"] == "understanding"
        state.pushed.write_text("".join(rows[:-1]))  # the kill
        again = pull(client, studio.workspace)
        pid = state.projects()["understanding"]["id"]
        tasks = list(
            client.paginate("/api/tasks/", what="reading", params={"project": pid, "fields": "all"})
        )
    assert again.followups == 0
    assert sorted(t["data"]["ref"] for t in tasks) == sorted(
        state.opaque_id(uid) for uid in corpus.ids
    )  # one task per utterance
    understanding = [r for r in state.pushed_rows() if r["kind"] == "understanding"]
    assert len(understanding) == 2
    repaired = next(r for r in understanding if r["utterance_id"] == lost["utterance_id"])
    assert repaired["task_id"] == lost["task_id"]


def _loose(root):
    """Files and folders under ``root`` that group or others may read, write or enter."""
    return {
        f"{p.relative_to(root)} {stat.filemode(p.stat().st_mode)}"
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077
    }


def test_the_studio_folder_is_private_to_the_user(studio_server, studio, corpus_factory):
    """The database (which stores tokens), uploaded audio, state and labels: 0600 in 0700."""
    corpus = corpus_factory(2)
    _setup(studio, corpus)
    with studio.client() as client:
        push(client, studio.workspace, corpus.selection, corpus.pool, studio.config,
             asr_predictions=corpus.asr, nlu_predictions=corpus.nlu)  # fmt: skip
        simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
        pull(client, studio.workspace)
    server_side = Paths.of(studio_server.workspace)
    assert (server_side.data_dir / "label_studio.sqlite3").is_file()
    assert list((server_side.data_dir / "media" / "upload").rglob("*.wav"))
    assert _loose(server_side.root) == set()
    assert _loose(Paths.of(studio.workspace).root) == set()


def test_simulated_annotator_makes_the_mistakes_it_is_asked_for(studio, corpus_factory):
    corpus = corpus_factory(6)
    _setup(studio, corpus)
    answers = {r.id: r.label for r in read_manifest(corpus.answers)}
    with studio.client() as client:
        push(client, studio.workspace, corpus.selection, corpus.pool, studio.config)
        simulate(client, studio.workspace, studio.config, corpus.answers, error_rate=1.0, seed=3)
        pull(client, studio.workspace)
        simulate(client, studio.workspace, studio.config, corpus.answers, error_rate=1.0, seed=3)
        pull(client, studio.workspace)
    labels = {r.id: r.label for r in read_manifest(State.of(studio.workspace).labels)}
    assert set(labels) == set(answers)
    for uid, want in answers.items():
        got, truth = labels[uid].text.split(), want.text.split()
        assert len(got) == len(truth)
        assert sum(a != b for a, b in zip(got, truth, strict=True)) == 1, uid  # one wrong word
        assert labels[uid].intent != want.intent  # wrong intent
