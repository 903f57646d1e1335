"""Offline: label configs, conversion both ways, validation reasons, opaque ids, secrets."""

from __future__ import annotations

import os
import re
import stat

import pytest

from earmark.core.errors import StudioError
from earmark.core.predictions import ASRHypothesis, NLUPrediction
from earmark.core.records import Entity
from labelling import convert, validation
from labelling.client import resolve_connection, write_secret
from labelling.configs import Schema, parse, render, schema_from_file
from labelling.state import State

SCHEMA = Schema(("alarm_set", "play_music"), ("time", "track"))
T = parse(render("transcription", SCHEMA))
U = parse(render("understanding", SCHEMA))


def test_tags_are_read_from_the_label_configs():
    assert (T.kind, T.object_name, T.data_key) == ("transcription", "audio", "audio")
    assert (T.transcript, T.comment, T.flags, T.unsure) == (
        "transcript",
        "comment",
        "flags",
        "unsure",
    )
    assert set(T.flag_codes) == {"distressing", "private", "unintelligible", "not_speech"}
    assert (U.kind, U.data_key, U.intent, U.entities) == (
        "understanding",
        "text",
        "intent",
        "entities",
    )
    assert U.intents == SCHEMA.intents and U.entity_types == SCHEMA.entity_types
    assert U.transcript is None and U.comment == "comment"


def test_many_intents_use_a_drop_down():
    many = Schema(tuple(f"intent_{i}" for i in range(40)), ())
    assert 'layout="select"' in render("understanding", many)
    assert 'layout="select"' not in render("understanding", SCHEMA)
    with pytest.raises(StudioError, match="no intents"):
        render("understanding", Schema((), ()))


def test_transcription_prediction_carries_score_version_and_unsure_words():
    asr = ASRHypothesis.from_dict(
        {
            "id": "u1",
            "text": "set an alarm for nine",
            "confidence": 0.42,
            "model_version": "asr-7",
            "words": [
                {"word": "set", "confidence": 0.99, "start": 0.0, "end": 0.2},
                {"word": "nine", "confidence": 0.31, "start": 0.9, "end": 1.2},
            ],
        }
    )
    task = convert.transcription_task("tabc", "/data/upload/1/x-tabc.wav", T, asr, 0.6)
    assert task["data"] == {"ref": "tabc", "audio": "/data/upload/1/x-tabc.wav"}
    pred = task["predictions"][0]
    assert (pred["model_version"], pred["score"]) == ("asr-7", 0.42)
    regions = [r for r in pred["result"] if r["type"] == "labels"]
    assert [(r["value"]["start"], r["value"]["end"]) for r in regions] == [(0.9, 1.2)]
    assert pred["result"][0]["value"]["text"] == ["set an alarm for nine"]
    assert "predictions" not in convert.transcription_task("tabc", "/a.wav", T, None, 0.6)


def test_understanding_prediction_reanchors_entities_on_the_confirmed_text():
    nlu = NLUPrediction.from_dict(
        {
            "id": "u1",
            "text": "play track nine please",
            "intent": "play_music",
            "intent_confidence": 0.6,
            "confidence": 0.55,
            "model_version": "nlu-3",
            "entities": [
                {"type": "track", "start": 11, "end": 15, "value": "nine", "confidence": 0.5}
            ],
        }
    )
    pred = convert.understanding_prediction(nlu, "please play track nine", U)
    span = next(r for r in pred["result"] if r["type"] == "labels")["value"]
    assert (span["start"], span["end"], span["text"]) == (18, 22, "nine")
    intent = next(r for r in pred["result"] if r["type"] == "choices")
    assert intent["value"]["choices"] == ["play_music"] and pred["score"] == 0.55


def test_round_trip_answers_to_labels():
    result = convert.transcription_result("  set an  alarm ", T, ("private",), "a name")
    answer = convert.parse_annotation({"result": result}, {}, T)
    assert answer.flags == ("private",) and answer.comment == "a name"
    label, reason = validation.validate_transcription(answer, "ann-1")
    assert reason is None and label is not None and label.text == "set an alarm"
    text = "set an alarm for seven am"
    ents = (Entity("time", 17, 25),)
    result = convert.understanding_result(text, "alarm_set", ents, U)
    answer = convert.parse_annotation({"result": result}, {"text": text}, U)
    label, reason = validation.validate_understanding(
        answer, "ann-1", U.intents, U.entity_types, text
    )
    assert reason is None and label is not None
    assert (label.text, label.intent, label.entities, label.version) == (
        text,
        "alarm_set",
        ents,
        "ann-1",
    )
    assert convert.Answer.from_dict(answer.to_dict()) == answer


def _span(start, end, value, etype="time"):
    return convert.Span(etype, start, end, value)


TEXT = "set an alarm for seven am"


@pytest.mark.parametrize(
    ("intent", "spans", "confirmed", "reason"),
    [
        ("order_pizza", (), None, "intent 'order_pizza' is not in the schema"),
        (None, (), None, "no intent chosen"),
        ("alarm_set", (_span(17, 90, "seven am"),), None, "outside the text"),
        (
            "alarm_set",
            (_span(17, 22, "eight"),),
            None,
            "says 'eight' but the text there is 'seven'",
        ),
        ("alarm_set", (_span(18, 22, "even"),), None, "cuts through a word"),
        ("alarm_set", (_span(17, 25, "seven am"), _span(23, 25, "am")), None, "overlap"),
        (
            "alarm_set",
            (_span(0, 3, "set", "volume"),),
            None,
            "entity type 'volume' is not in the schema",
        ),
        ("alarm_set", (), "set an alarm for eight am", "transcript and spans disagree"),
    ],
)
def test_each_invalid_understanding_is_rejected_with_its_reason(intent, spans, confirmed, reason):
    answer = convert.Answer("understanding", False, TEXT, intent, spans)
    label, why = validation.validate_understanding(
        answer, "ann-1", U.intents, U.entity_types, confirmed
    )
    assert label is None and why is not None and reason in why


def test_empty_transcript_is_rejected_and_agreement_is_on_normalised_text():
    answer = convert.Answer("transcription", False, " \n ")
    assert validation.validate_transcription(answer, "ann-1") == (None, "empty transcript")
    a = convert.Answer("transcription", False, "Set an alarm for 7")
    b = convert.Answer("transcription", False, "set an alarm for seven")
    c = convert.Answer("transcription", False, "set an alarm for eight")
    assert validation.answers_agree(a, b) and not validation.answers_agree(a, c)


def test_opaque_ids_are_stable_per_workspace_and_reveal_nothing(tmp_path):
    one, two = State.of(tmp_path / "a"), State.of(tmp_path / "b")
    ref = one.opaque_id("george_7_12")
    assert ref == one.opaque_id("george_7_12") != two.opaque_id("george_7_12")
    assert "george" not in ref and "7_12" not in ref
    assert one.pseudonym(3).startswith("ann-") and one.pseudonym(3) != one.pseudonym(4)
    key = tmp_path / "a" / "studio" / "secrets" / "pseudonym_key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_token_comes_from_env_or_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EARMARK_LS_TOKEN", raising=False)
    monkeypatch.setenv("EARMARK_LS_URL", "http://127.0.0.1:9/")
    with pytest.raises(
        StudioError, match=re.escape("no API token for Label Studio at http://127.0.0.1:9/")
    ):
        resolve_connection(tmp_path)
    write_secret(tmp_path / "studio" / "secrets" / "token", "tok-from-file")
    conn = resolve_connection(tmp_path)
    assert (conn.url, conn.token) == ("http://127.0.0.1:9", "tok-from-file")
    assert "tok-from-file" not in repr(conn)
    monkeypatch.setenv("EARMARK_LS_TOKEN", "tok-from-env")
    assert resolve_connection(tmp_path).token == "tok-from-env"


def test_schema_file_is_checked(tmp_path):
    good = tmp_path / "schema.yaml"
    good.write_text("intents: [b, a]\nentity_types: [date]\n")
    assert schema_from_file(good) == Schema(("b", "a"), ("date",))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(StudioError, match=re.escape("bad.yaml")):
        schema_from_file(bad)


@pytest.mark.parametrize(
    "value",
    [
        {"end": 22, "text": "seven", "labels": ["time"]},  # no start
        {"start": 17, "text": "seven", "labels": ["time"]},  # no end
        {"start": "17", "end": None, "text": "seven", "labels": ["time"]},
    ],
)
def test_a_region_without_offsets_is_rejected_with_its_reason(value):
    result = convert.understanding_result(TEXT, "alarm_set", [], U)
    result.append(
        {"id": "r1", "from_name": "entities", "to_name": "text", "type": "labels", "value": value}
    )
    answer = convert.parse_annotation({"result": result}, {"text": TEXT}, U)
    assert convert.Answer.from_dict(answer.to_dict()) == answer  # kept in imported.jsonl
    label, why = validation.validate_understanding(answer, "ann-1", U.intents, U.entity_types, None)
    assert label is None
    assert why == "entity region time has no start/end offsets in the text"
