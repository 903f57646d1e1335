"""Invalid, skipped, flagged, edited and disputed annotations on a real server."""

from __future__ import annotations

import dataclasses

import pytest

from earmark.core.manifest import read_manifest
from earmark.core.records import Entity
from labelling import convert, validation
from labelling.accounts import ensure_annotator
from labelling.client import StudioClient
from labelling.configs import schema_from_manifests
from labelling.projects import project_tags, setup_projects
from labelling.pull import build_training_manifest, pull
from labelling.push import push
from labelling.review import review_items
from labelling.simulate import annotate_task, update_annotation
from labelling.state import State, read_jsonl

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]


def _task_ids(studio, kind):
    return {
        r["utterance_id"]: r["task_id"]
        for r in State.of(studio.workspace).pushed_rows()
        if r["kind"] == kind
    }


def _uploaded(studio, client, tasks):
    """The utterances whose task audio is still a file in the server's upload folder."""
    from labelling.forget import server_data_dir

    state = State.of(studio.workspace)
    data = server_data_dir(state)
    assert data is not None
    out = set()
    for uid, task_id in tasks.items():
        url = client.get(f"/api/tasks/{task_id}/", what="reading")["data"]["audio"]
        if (data / "media" / url.removeprefix("/data/")).is_file():
            out.add(uid)
    return out


def test_invalid_flagged_skipped_edited_and_disputed(studio, corpus_factory, tmp_path):
    corpus = corpus_factory(8)
    answers = {r.id: r.label for r in read_manifest(corpus.answers)}
    with studio.client() as admin:
        setup_projects(
            admin, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )
        push(
            admin,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            studio.config,
            asr_predictions=corpus.asr,
        )
        tags = project_tags(admin, studio.workspace)
        ttags, utags = tags["transcription"][1], tags["understanding"][1]
        me = StudioClient(
            ensure_annotator(studio.workspace, studio.config, admin), studio.config.client
        )
        tasks = _task_ids(studio, "transcription")

        def say(uid, text, **kw):
            return annotate_task(me, tasks[uid], convert.transcription_result(text, ttags, **kw))

        empty = say("u000", "   ")
        say("u001", answers["u001"].text, flags=("private",), comment="says a phone number")
        annotate_task(me, tasks["u002"], [], cancelled=True)
        say("u003", answers["u003"].text)
        annotate_task(
            admin, tasks["u003"], convert.transcription_result("play track something", ttags)
        )
        for uid in ("u004", "u005", "u006", "u007"):
            say(uid, answers[uid].text)
        p1 = pull(admin, studio.workspace)
        assert p1.new == 9
        assert p1.followups == 4  # u004..u007: accepted, not flagged, not rejected
        assert p1.flagged == 1 and p1.skipped == 1 and p1.disagreements == 1
        assert p1.reasons == {"empty transcript": 1, "annotators disagree": 1}
        # a rejected task is left open in Label Studio (back in the queue), an accepted one is not
        assert admin.get(f"/api/tasks/{tasks['u000']}/", what="reading")["is_labeled"] is False
        assert admin.get(f"/api/tasks/{tasks['u004']}/", what="reading")["is_labeled"] is True
        # decided clips (confirmed u004..u007, flagged u001) can no longer be played on the
        # server; the rejected, skipped and disputed ones keep their audio for the next person
        assert p1.audio_deleted == 5 and pull(admin, studio.workspace).audio_deleted == 0
        heard = _uploaded(studio, admin, tasks)
        assert heard == {"u000", "u002", "u003"}
        assert admin.get(f"/api/tasks/{tasks['u001']}/", what="reading")["is_labeled"] is True

        # a later edit supersedes the earlier annotation
        update_annotation(
            me, empty["id"], convert.transcription_result(answers["u000"].text, ttags)
        )
        utasks = _task_ids(studio, "understanding")
        text = {uid: answers[uid].text for uid in utasks}

        def mean(uid, intent, spans):
            result = convert.understanding_result(text[uid], intent, [], utags)
            for i, (etype, start, end, value) in enumerate(spans):
                result.append(
                    {
                        "id": f"x{i}",
                        "from_name": utags.entities,
                        "to_name": utags.object_name,
                        "type": "labels",
                        "value": {"start": start, "end": end, "text": value, "labels": [etype]},
                    }
                )
            return annotate_task(me, utasks[uid], result)

        mean("u004", "order_pizza", [])
        mean("u005", "play_music", [("track", 11, 99, "far past the end")])
        mean("u006", "alarm_set", [("time", 17, 23, "banana")])
        good = answers["u007"]
        mean(
            "u007",
            good.intent,
            [(e.type, e.start, e.end, e.value(good.text)) for e in good.entities],
        )
        p2 = pull(admin, studio.workspace)
        assert p2.new == 5  # the edit and four understanding annotations
        assert p2.followups == 1  # u000, now with a transcript

        # editing u007's transcript afterwards makes its spans disagree with the transcript
        u007 = next(
            a for a in admin.get(f"/api/tasks/{tasks['u007']}/annotations/", what="reading")
        )
        update_annotation(
            me, u007["id"], convert.transcription_result("play track four loudly", ttags)
        )
        p3 = pull(admin, studio.workspace)
        assert p3.new == 1
        me.close()

    rejected = {r["id"]: r["reason"] for r in read_jsonl(State.of(studio.workspace).rejected)}
    assert rejected["u003"] == "annotators disagree"
    assert rejected["u004"] == "intent 'order_pizza' is not in the schema"
    assert "outside the text" in rejected["u005"]
    assert "says 'banana' but the text there is" in rejected["u006"]
    assert rejected["u007"].startswith("transcript and spans disagree")
    assert "u000" not in rejected  # fixed by the edit

    labels = {r.id: r.label for r in read_manifest(State.of(studio.workspace).labels)}
    assert labels["u000"].text == answers["u000"].text
    assert "u001" not in labels and "u002" not in labels

    review = {(i.id, i.what): i for i in review_items(studio.workspace)}
    flag = review[("u001", "flagged")]
    assert flag.detail == "private" and flag.comment == "says a phone number"
    assert ("u003", "disagreement") in review and ("u004", "rejected") in review

    n = build_training_manifest(studio.workspace, corpus.pool, tmp_path / "train.jsonl")
    trained = {r.id for r in read_manifest(tmp_path / "train.jsonl")}
    assert n == len(trained)
    assert "u001" not in trained  # flagged: never trained on
    assert not trained & set(rejected)
    assert "u000" in trained


def test_answer_entities_survive_conversion():
    """Spans drawn by the simulated annotator come back as the same entities (offline)."""
    from labelling.configs import Schema, parse, render

    tags = parse(render("understanding", Schema(("play_music",), ("track",))))
    text = "play track seven please"
    ents = (Entity("track", 11, 16),)
    result = convert.understanding_result(text, "play_music", ents, tags)
    answer = convert.parse_annotation({"result": result}, {"text": text}, tags)
    label, reason = validation.validate_understanding(
        answer, "ann-x", tags.intents, tags.entity_types, text
    )
    assert reason is None and label is not None
    assert (label.text, label.intent, label.entities) == (text, "play_music", ents)


def test_a_region_without_offsets_is_rejected_and_the_pull_goes_on(studio, corpus_factory):
    """An entity region without ``start`` (e.g. made by a script or another tool) is one
    rejected annotation, not a pull that stops: the other annotations are imported."""
    corpus = corpus_factory(3)
    config = dataclasses.replace(
        studio.config, push=dataclasses.replace(studio.config.push, asr_confident=0.0)
    )  # every utterance straight to understanding
    with studio.client() as admin:
        setup_projects(
            admin, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )
        push(
            admin, studio.workspace, corpus.selection, corpus.pool, config,
            asr_predictions=corpus.asr, nlu_predictions=corpus.nlu,
        )  # fmt: skip
        utags = project_tags(admin, studio.workspace)["understanding"][1]
        tasks = _task_ids(studio, "understanding")
        assert sorted(tasks) == ["u000", "u001", "u002"]
        text = {
            uid: admin.get(f"/api/tasks/{tid}/", what="reading")["data"]["text"]
            for uid, tid in tasks.items()
        }
        broken = convert.understanding_result(text["u000"], "alarm_set", [], utags)
        broken.append(
            {
                "id": "nostart",
                "from_name": utags.entities,
                "to_name": utags.object_name,
                "type": "labels",
                "value": {"end": 5, "text": text["u000"][:5], "labels": ["time"]},
            }
        )
        annotate_task(admin, tasks["u000"], broken)
        for uid, intent in (("u001", "play_music"), ("u002", "alarm_set")):
            annotate_task(
                admin, tasks[uid], convert.understanding_result(text[uid], intent, [], utags)
            )
        summary = pull(admin, studio.workspace)
    assert (summary.new, summary.accepted, summary.rejected) == (3, 2, 1)
    rejected = read_jsonl(State.of(studio.workspace).rejected)
    assert [(r["id"], r["reason"]) for r in rejected] == [
        ("u000", "entity region time has no start/end offsets in the text")
    ]
    labels = {r.id: r.label for r in read_manifest(State.of(studio.workspace).labels)}
    assert {uid: label.intent for uid, label in labels.items()} == {
        "u001": "play_music",
        "u002": "alarm_set",
    }
