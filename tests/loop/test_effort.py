"""Annotation effort: the edits from the pre-filled guess to the label a person gave."""

from __future__ import annotations

from pathlib import Path

from earmark.core.fileio import write_jsonl
from earmark.core.manifest import ManifestRow, write_manifest
from earmark.core.predictions import (
    ASRHypothesis,
    NLUPrediction,
    PredictedEntity,
    write_predictions,
)
from earmark.core.records import Entity, Label, Utterance
from earmark.loop.effort import run_effort
from earmark.loop.state import RunFolder
from labelling.state import State


def _nlu(uid: str, text: str, intent: str, entities: list[tuple[str, str]]) -> NLUPrediction:
    spans = []
    for etype, value in entities:
        start = text.index(value)
        spans.append(PredictedEntity(etype, start, start + len(value), value, 0.9))
    return NLUPrediction(uid, text, intent, 0.8, 0.7, entities=tuple(spans))


def _label(uid: str, text: str, intent: str, entities: list[tuple[str, str]]) -> ManifestRow:
    spans = tuple(Entity(t, text.index(v), text.index(v) + len(v)) for t, v in entities)
    return ManifestRow(Utterance(uid, None), Label(uid, text, intent, spans))


def test_effort_counts_word_edits_intent_and_entity_changes_per_round(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    r1, r2 = run.round(1), run.round(2)
    for rf, ids in ((r1, ["a", "b", "c"]), (r2, ["d"])):
        rf.dir.mkdir(parents=True)
        write_jsonl(rf.selection, ({"id": i, "score": 0.5} for i in ids))
    write_predictions(
        r1.predictions("asr"),
        [
            ASRHypothesis("a", "play taylor swift", 0.9),  # right: 0 edits
            ASRHypothesis("b", "play tailor", 0.4),  # 1 substitution + 1 deletion
            ASRHypothesis("c", "a wake i it to", 0.1),  # 3 subs + 2 ins: typing costs 3
        ],
    )
    write_predictions(
        r1.predictions("nlu"),
        [
            _nlu("a", "play taylor swift", "play_music", [("artist_name", "taylor swift")]),
            # wrong intent; the span kept its type but the value was cut short: 1 change
            _nlu("b", "play tailor", "weather_query", [("artist_name", "tailor")]),
            _nlu("c", "a wake i it to", "general_quirky", []),
        ],
    )
    write_predictions(r2.predictions("asr"), [ASRHypothesis("d", "wake me at seven", 0.5)])
    write_predictions(
        r2.predictions("nlu"),
        # right intent; a span of the wrong type and one missing: 2 changes
        [_nlu("d", "wake me at seven", "alarm_set", [("date", "seven")])],
    )
    labels = [
        _label("a", "play taylor swift", "play_music", [("artist_name", "taylor swift")]),
        _label("b", "play taylor swift", "play_music", [("artist_name", "taylor swift")]),
        _label("c", "what is up", "general_quirky", []),
        _label("d", "wake me at seven am", "alarm_set", [("time", "seven am"), ("person", "me")]),
    ]
    write_manifest(State.of(run.root).labels, labels)

    effort = run_effort(run.root)
    first, second, total = effort["rounds"]["1"], effort["rounds"]["2"], effort["total"]
    assert (first["utterances"], first["words"], first["word_edits"]) == (3, 9, 0 + 2 + 5)
    assert first["prefill_costlier"] == 1  # c: 5 edits to fix the guess, 3 words to type
    assert (first["intent_changes"], first["entity_changes"]) == (1, 0 + 1 + 0)
    assert (second["word_edits"], second["intent_changes"], second["entity_changes"]) == (1, 0, 2)
    assert total["utterances"] == 4 and total["word_edits"] == 8
    assert total["word_edits_per_utterance"] == 2.0
    # by the confidence of the guess: the unsure one cost more than an empty box
    bins = effort["by_asr_confidence"]
    assert list(bins) == ["0.0-0.2", "0.4-0.6", "0.8-1.0"]
    assert (bins["0.0-0.2"]["prefill_costlier"], bins["0.0-0.2"]["word_edit_rate"]) == (1, 1.6667)
    assert (bins["0.4-0.6"]["transcripts"], bins["0.4-0.6"]["word_edits"]) == (2, 2 + 1)
    assert bins["0.8-1.0"]["word_edits"] == 0
    assert total["intent_change_rate"] == 0.25


def test_an_utterance_without_a_label_costs_nothing_yet(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    rf = run.round(1)
    rf.dir.mkdir(parents=True)
    write_jsonl(rf.selection, ({"id": i, "score": 0.5} for i in ("a", "b")))
    write_predictions(rf.predictions("asr"), [ASRHypothesis("a", "x", 0.1)])
    write_manifest(State.of(run.root).labels, [])
    assert run_effort(run.root)["total"]["utterances"] == 0
