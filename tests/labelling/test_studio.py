"""Against a real Label Studio server: set-up, push, simulated annotation, pull, privacy."""

from __future__ import annotations

import dataclasses
import json
import stat

import pytest
from studio_checks import no_identity, round_trip, setup

from earmark.core.manifest import read_manifest
from labelling.pull import build_training_manifest, pull
from labelling.push import push
from labelling.settings import Paths
from labelling.simulate import simulate
from labelling.state import State

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]


def test_round_trip_labels_equal_answers(studio, corpus_factory, tmp_path):
    round_trip(studio, corpus_factory(20), tmp_path)


def test_least_confident_task_is_served_first(studio, corpus_factory):
    corpus = corpus_factory(6)
    setup(studio, corpus)
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
    no_identity(studio, corpus_factory(8))


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
    setup(studio, corpus)
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
    setup(studio, corpus)
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
    setup(studio, corpus)
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
    setup(studio, corpus)
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
    setup(studio, corpus)
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
