"""Self-training: confident predictions become model labels, never human ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from factories import line, write_lines

from earmark.core.errors import ConfigError
from earmark.core.manifest import ManifestRow, read_manifest
from earmark.core.predictions import (
    ASRHypothesis,
    NLUPrediction,
    PredictedEntity,
    write_predictions,
)
from earmark.core.records import Label, LabelSource, Utterance
from earmark.loop import rounds, trainset
from earmark.loop.config import LoopConfig, SelfTrainingConfig, load_loop_config
from earmark.loop.pseudo import pseudo_asr_rows, pseudo_nlu_rows
from earmark.loop.state import RoundFiles, RunFolder

ON = SelfTrainingConfig(enabled=True, min_asr_confidence=0.9, min_nlu_confidence=0.8)


def pool_row(uid: str, *, audio: bool = True, text: str | None = None) -> ManifestRow:
    label = Label(uid, text=text) if text is not None else None
    return ManifestRow(Utterance(uid, audio=f"/audio/{uid}.wav" if audio else None), label)


def asr_pred(uid: str, conf: float, text: str = "play jazz") -> ASRHypothesis:
    return ASRHypothesis(uid, text, conf)


def ent(etype: str, start: int, end: int, value: str | None = None) -> PredictedEntity:
    """A predicted span of "play jazz" (``value`` defaults to the text there)."""
    return PredictedEntity(
        etype, start, end, "play jazz"[start:end] if value is None else value, 0.99
    )


def nlu_pred(
    uid: str, conf: float, text: str = "play jazz", entities: list[PredictedEntity] | None = None
) -> NLUPrediction:
    if entities is None:
        entities = [ent("genre", 5, 9)]
    return NLUPrediction(
        id=uid, text=text, intent="play_music", intent_confidence=conf, confidence=conf,
        entities=tuple(entities),
    )  # fmt: skip


def ids(rows: list[ManifestRow]) -> list[str]:
    return [r.id for r in rows]


# -- ASR half --------------------------------------------------------------------------------


def test_asr_threshold_is_inclusive_and_empty_hypotheses_are_dropped() -> None:
    pool = [pool_row(u) for u in ("a", "b", "c", "d")]
    preds = {
        "a": asr_pred("a", 0.9),
        "b": asr_pred("b", 0.89),
        "c": asr_pred("c", 0.99, text="  "),
        "d": asr_pred("d", 0.95),
    }
    rows = pseudo_asr_rows(pool, preds, exclude=set(), settings=ON, version="r1/asr")
    assert ids(rows) == ["d", "a"]  # most confident first


def test_asr_labels_are_model_labels_with_version_and_confidence() -> None:
    pool = [pool_row("a")]
    (row,) = pseudo_asr_rows(
        pool, {"a": asr_pred("a", 0.97)}, exclude=set(), settings=ON, version="r1/asr"
    )
    assert row.utterance == pool[0].utterance
    assert row.label is not None
    assert row.label.source is LabelSource.MODEL and not row.label.is_human
    assert (row.label.text, row.label.version, row.label.confidence) == (
        "play jazz",
        "r1/asr",
        0.97,
    )
    assert row.label.intent is None


def test_excluded_ids_and_rows_without_audio_or_prediction_never_appear() -> None:
    pool = [pool_row("a"), pool_row("b"), pool_row("c", audio=False), pool_row("d")]
    preds = {u: asr_pred(u, 0.99) for u in ("a", "b", "c", "x")}
    rows = pseudo_asr_rows(pool, preds, exclude={"b"}, settings=ON, version="v")
    assert ids(rows) == ["a"]


def test_cap_keeps_the_most_confident_with_ties_broken_by_id() -> None:
    confs = {"e": 0.91, "d": 0.99, "c": 0.95, "b": 0.95, "a": 0.92}
    pool = [pool_row(u) for u in confs]
    preds = {u: asr_pred(u, c) for u, c in confs.items()}
    capped = SelfTrainingConfig(enabled=True, min_asr_confidence=0.9, max_per_round=3)
    rows = pseudo_asr_rows(pool, preds, exclude=set(), settings=capped, version="v")
    assert ids(rows) == ["d", "b", "c"]


@pytest.mark.parametrize("conf", [float("nan"), 1.5])  # not numbers: the reader raises
def test_malformed_confidence_drops_the_row_without_raising(conf: Any) -> None:
    pred = asr_pred("a", conf)
    assert (
        pseudo_asr_rows([pool_row("a")], {"a": pred}, exclude=set(), settings=ON, version="v") == []
    )


# -- NLU half --------------------------------------------------------------------------------


def test_nlu_on_asr_hypotheses_needs_both_confidences() -> None:
    pool = [pool_row(u) for u in ("a", "b", "c")]
    asr = {"a": asr_pred("a", 0.95), "b": asr_pred("b", 0.5), "c": asr_pred("c", 0.95)}
    nlu = {"a": nlu_pred("a", 0.85), "b": nlu_pred("b", 0.99), "c": nlu_pred("c", 0.7)}
    rows = pseudo_nlu_rows(pool, nlu, asr, exclude=set(), settings=ON, version="r1/nlu")
    assert ids(rows) == ["a"]
    label = rows[0].label
    assert label is not None and label.source is LabelSource.MODEL
    assert (label.text, label.intent, label.version, label.confidence) == (
        "play jazz", "play_music", "r1/nlu", 0.85,
    )  # fmt: skip
    assert label.entity_values() == [("genre", "jazz")]


def test_nlu_only_corpus_uses_the_pool_text() -> None:
    pool = [pool_row("a", audio=False, text="Play Jazz!"), pool_row("b", audio=False, text="stop")]
    nlu = {"a": nlu_pred("a", 0.9), "b": nlu_pred("b", 0.9, text="play jazz")}  # b: stale text
    rows = pseudo_nlu_rows(pool, nlu, {}, exclude=set(), settings=ON, version="v")
    assert ids(rows) == ["a"]
    assert rows[0].label is not None and rows[0].label.text == "play jazz"  # what the spans index


def test_nlu_excluded_ids_never_appear() -> None:
    pool = [pool_row("a", text="play jazz"), pool_row("b", text="play jazz")]
    nlu = {u: nlu_pred(u, 0.99) for u in ("a", "b")}
    assert ids(pseudo_nlu_rows(pool, nlu, {}, exclude={"a"}, settings=ON, version="v")) == ["b"]


@pytest.mark.parametrize(
    "entities",
    [
        [ent("genre", 5, 20)],  # outside the text
        [ent("genre", 6, 6)],  # empty
        [ent("genre", 5, 9, "rock")],  # value does not match
        [ent("a", 0, 4), ent("b", 2, 9)],  # overlap
        [ent("", 0, 4)],
        # offsets that are not integers, entities that are not objects: the reader raises
        # (tests/core/test_predictions.py)
    ],
)
def test_invalid_entity_spans_drop_the_row_without_raising(entities: Any) -> None:
    pool = [pool_row("a", text="play jazz")]
    nlu = {"a": nlu_pred("a", 0.99, entities=entities)}
    assert pseudo_nlu_rows(pool, nlu, {}, exclude=set(), settings=ON, version="v") == []


def test_nlu_prediction_without_intent_is_dropped() -> None:
    pred = dataclasses.replace(nlu_pred("a", 0.99), intent="")
    pool = [pool_row("a", text="play jazz")]
    assert pseudo_nlu_rows(pool, {"a": pred}, {}, exclude=set(), settings=ON, version="v") == []


def test_nlu_cap() -> None:
    pool = [pool_row(u, text="play jazz") for u in ("a", "b", "c")]
    nlu = {"a": nlu_pred("a", 0.85), "b": nlu_pred("b", 0.99), "c": nlu_pred("c", 0.9)}
    capped = SelfTrainingConfig(enabled=True, min_nlu_confidence=0.8, max_per_round=1)
    assert ids(pseudo_nlu_rows(pool, nlu, {}, exclude=set(), settings=capped, version="v")) == ["b"]


# -- config ----------------------------------------------------------------------------------


def test_self_training_is_off_by_default() -> None:
    assert LoopConfig().self_training == SelfTrainingConfig(enabled=False)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("self_training.min_asr_confidence=1.5", "self_training.min_asr_confidence"),
        ("self_training.min_nlu_confidence=-0.1", "self_training.min_nlu_confidence"),
        ("self_training.max_per_round=-1", "self_training.max_per_round"),
        ("self_training.enabled=maybe", "self_training.enabled"),
        ("self_training.threshold=0.9", "self_training.threshold"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, override: str, key: str) -> None:
    base = ["data.seed=s.jsonl", "data.pool=p.jsonl", "data.dev=d.jsonl"]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_loop_config(None, [*base, override])


def test_config_loads_from_overrides() -> None:
    base = ["data.seed=s.jsonl", "data.pool=p.jsonl", "data.dev=d.jsonl"]
    cfg = load_loop_config(
        None, [*base, "self_training.enabled=true", "self_training.max_per_round=7"]
    )
    assert cfg.self_training == SelfTrainingConfig(enabled=True, max_per_round=7)


# -- the loop's wiring (no training, no Label Studio) ----------------------------------------


@pytest.fixture
def run_with_predictions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunFolder:
    """Round 1 scored u1..u4; u2 is human-labelled, u3 pushed, u4 confident, u1 not sure.

    ``labelled_rows`` and ``unavailable_ids`` (the Label Studio workspace) are stubbed."""
    pool = [line(id=f"u{i}", audio=f"/audio/u{i}.wav") for i in range(1, 5)]
    write_lines(tmp_path / "pool.jsonl", pool)
    run = RunFolder(tmp_path / "run")
    prev = run.round_dir(1)
    prev.mkdir(parents=True)
    asr = [asr_pred("u1", 0.5)] + [asr_pred(f"u{i}", 0.99) for i in (2, 3, 4)]
    write_predictions(prev / "asr_predictions.jsonl", asr)
    write_predictions(
        prev / "nlu_predictions.jsonl", [nlu_pred(f"u{i}", 0.99) for i in range(1, 5)]
    )
    (prev / "checkpoints.json").write_text(json.dumps({"asr": "r1/asr/best", "nlu": "r1/nlu"}))

    def fake_labelled(
        cfg: LoopConfig, workspace: Path, rf: RoundFiles, *, need_intent: bool
    ) -> tuple[list[ManifestRow], list[ManifestRow]]:
        rf.dir.mkdir(parents=True, exist_ok=True)
        intent = "play_music" if need_intent else None
        label = Label("u2", "play jazz", intent, (), LabelSource.HUMAN, "annotator-1")
        return [], [ManifestRow(Utterance("u2", "/audio/u2.wav"), label)]

    monkeypatch.setattr(trainset, "labelled_rows", fake_labelled)
    monkeypatch.setattr(trainset, "unavailable_ids", lambda workspace: {"u3"})
    return run


def _cfg(run: RunFolder, enabled: bool) -> LoopConfig:
    pool = run.root.parent / "pool.jsonl"
    overrides = ["data.seed=s.jsonl", f"data.pool={pool}", "data.dev=d.jsonl"]
    return load_loop_config(None, [*overrides, f"self_training.enabled={str(enabled).lower()}"])


@pytest.mark.parametrize("kind", ["asr", "nlu"])
def test_training_manifest_appends_pseudo_rows_from_the_previous_round(
    run_with_predictions: RunFolder, kind: str
) -> None:
    run = run_with_predictions
    before = {p for p in run.root.rglob("*") if p.is_file()}
    path, n_human, n_pseudo = rounds.write_training_manifest(_cfg(run, True), run, 2, kind)
    assert (n_human, n_pseudo) == (1, 1)
    rd = run.round_dir(2)
    assert path == rd / f"train_{kind}.jsonl"
    pseudo = read_manifest(rd / f"pseudo_{kind}.jsonl")
    assert ids(pseudo) == ["u4"]  # u1 unsure, u2 human-labelled, u3 pushed
    label = pseudo[0].label
    assert label is not None and label.source is LabelSource.MODEL
    assert label.version == ("r1/nlu" if kind == "nlu" else "r1/asr/best")
    train = read_manifest(rd / f"train_{kind}.jsonl")
    assert [(r.id, r.label.source if r.label else None) for r in train] == [
        ("u2", LabelSource.HUMAN), ("u4", LabelSource.MODEL),
    ]  # fmt: skip
    written = {p for p in run.root.rglob("*") if p.is_file()} - before
    assert written == {rd / f"pseudo_{kind}.jsonl", rd / f"train_{kind}.jsonl"}


def test_no_pseudo_rows_when_disabled_or_in_round_one(run_with_predictions: RunFolder) -> None:
    run = run_with_predictions
    assert rounds.write_training_manifest(_cfg(run, False), run, 2, "asr")[1:] == (1, 0)
    assert not (run.round_dir(2) / "pseudo_asr.jsonl").exists()
    assert rounds.write_training_manifest(_cfg(run, True), run, 1, "asr")[1:] == (1, 0)
