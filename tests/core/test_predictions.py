"""The prediction records: their JSONL lines are the bytes the models wrote before there were
records (existing run folders still read), and a malformed line names its file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from earmark.core.errors import PredictionError
from earmark.core.predictions import (
    ASRHypothesis,
    ASRWord,
    IntentAlternative,
    NLUPrediction,
    PredictedEntity,
    iter_predictions,
    read_predictions,
    write_predictions,
)
from earmark.core.records import Entity


def _line(obj: dict[str, Any]) -> str:
    # how training/asr/transcribe.py and training/nlu/predict.py wrote a line before the records
    return json.dumps(obj, ensure_ascii=False) + "\n"


ASR_LINES = [
    _line({"id": "u1", "text": "play jazz", "confidence": 0.912345, "model_version": "asr-r1",
           "words": [{"word": "play", "confidence": 0.97, "start": 0.12, "end": 0.4},
                     {"word": "jazz", "confidence": 0.854321, "start": 0.48, "end": 0.9}]}),
    _line({"id": "u2", "text": "", "confidence": 0.0, "model_version": "asr-r1", "words": []}),
    _line({"id": "ü3", "text": "café au lait", "confidence": 1.0, "model_version": "asr-r1",
           "words": [{"word": "café", "confidence": 1.0, "start": 0.0, "end": 0.333}]}),
]  # fmt: skip
NLU_LINES = [
    _line({"id": "u1", "text": "play jazz", "intent": "play_music", "intent_confidence": 0.93,
           "alternatives": [{"intent": "play_music", "p": 0.93}, {"intent": "stop", "p": 0.05},
                            {"intent": "volume_up", "p": 0.02}],
           "entities": [{"type": "genre", "start": 5, "end": 9, "value": "jazz",
                         "confidence": 0.812}],
           "confidence": 0.77, "raw_confidence": 0.701234, "model_version": "nlu-r1"}),
    # written by hand or before raw_confidence: no raw_confidence, no alternatives
    _line({"id": "u2", "text": "stop", "intent": "stop", "intent_confidence": 0.6,
           "alternatives": [], "entities": [], "confidence": 0.5, "model_version": "nlu-test"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "lines"), [(ASRHypothesis, ASR_LINES), (NLUPrediction, NLU_LINES)]
)
def test_a_file_read_and_written_again_is_byte_identical(
    tmp_path: Path, kind: type[ASRHypothesis] | type[NLUPrediction], lines: list[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(lines), encoding="utf-8")
    records = list(iter_predictions(src, kind))
    assert [r.id for r in records] == [json.loads(x)["id"] for x in lines]
    out = tmp_path / "out.jsonl"
    assert write_predictions(out, records) == len(lines)
    assert out.read_bytes() == src.read_bytes()
    assert [kind.from_dict(r.to_dict()) for r in records] == records


def test_records_hold_what_the_line_says() -> None:
    asr = ASRHypothesis.from_dict(json.loads(ASR_LINES[0]))
    assert asr == ASRHypothesis(
        "u1", "play jazz", 0.912345,
        (ASRWord("play", 0.97, 0.12, 0.4), ASRWord("jazz", 0.854321, 0.48, 0.9)), "asr-r1",
    )  # fmt: skip
    nlu = NLUPrediction.from_dict(json.loads(NLU_LINES[0]))
    assert (nlu.intent, nlu.intent_confidence, nlu.confidence) == ("play_music", 0.93, 0.77)
    assert nlu.alternatives[1] == IntentAlternative("stop", 0.05)
    assert nlu.entities == (PredictedEntity("genre", 5, 9, "jazz", 0.812),)
    assert nlu.entities[0].entity == Entity("genre", 5, 9)
    assert (nlu.raw_confidence, nlu.model_version) == (0.701234, "nlu-r1")
    assert nlu.span_problem() is None
    bare = NLUPrediction.from_dict(json.loads(NLU_LINES[1]))
    assert bare.raw_confidence is None and "raw_confidence" not in bare.to_dict()


def test_optional_keys_are_left_out_when_unknown() -> None:
    assert list(ASRHypothesis("u1", "hi", 0.5).to_dict()) == ["id", "text", "confidence", "words"]
    hyp = ASRHypothesis.from_dict({"id": "u1", "text": "hi", "confidence": 0.5})  # no words
    assert hyp.words == () and hyp.model_version is None


def test_read_predictions_is_by_id(tmp_path: Path) -> None:
    path = tmp_path / "asr.jsonl"
    path.write_text("".join(ASR_LINES), encoding="utf-8")
    assert list(read_predictions(path, ASRHypothesis)) == ["u1", "u2", "ü3"]


def _write(tmp_path: Path, *lines: str | bytes) -> Path:
    path = tmp_path / "preds.jsonl"
    path.write_bytes(b"".join(x if isinstance(x, bytes) else x.encode() for x in lines))
    return path


def test_a_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    bad = json.dumps({"id": "u2", "text": "x", "confidence": "high", "words": []})
    path = _write(tmp_path, ASR_LINES[0], "\n", bad + "\n")
    with pytest.raises(PredictionError) as err:
        list(iter_predictions(path, ASRHypothesis))
    assert str(err.value) == (
        f"{path}:3 (id u2): not an ASR hypothesis: 'confidence' must be a number in [0, 1], "
        "got 'high'"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"id": "u1", "text": ', ":1: not valid JSON"),
        (b'{"id": "u1", "text": "caf\xe9"}\n', ":1: not valid UTF-8"),
        (b"[1, 2]\n", ":1: not an NLU prediction: the line must be a JSON object, got list"),
        (b'{"text": "x"}\n', ":1: not an NLU prediction: 'id' is missing"),
    ],
)
def test_lines_that_are_not_records_name_file_and_line(
    tmp_path: Path, line: bytes, message: str
) -> None:
    path = _write(tmp_path, line)
    with pytest.raises(PredictionError, match="^" + re.escape(f"{path}{message}")):
        list(iter_predictions(path, NLUPrediction))


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PredictionError, match=r"predictions file not found: .*nowhere\.jsonl"):
        read_predictions(tmp_path / "nowhere.jsonl", ASRHypothesis)


@pytest.mark.parametrize("conf", [None, "high", True, float("nan"), 1.5])
def test_a_confidence_that_is_not_a_number_in_0_1_is_refused(conf: Any) -> None:
    with pytest.raises(PredictionError, match="'confidence' must be a number in"):
        ASRHypothesis.from_dict({"id": "a", "text": "play jazz", "confidence": conf})


def _nlu(**changes: Any) -> dict[str, Any]:
    return {**json.loads(NLU_LINES[0]), **changes}


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        (_nlu(entities=[{"type": "genre", "start": "5", "end": 9, "value": "jazz",
                         "confidence": 0.9}]), "'entities[0].start' must be an integer"),
        (_nlu(entities=["genre"]), "'entities[0]' must be a JSON object"),
        (_nlu(entities="genre"), "'entities' must be a list"),
        (_nlu(intent=None), "'intent' must be a non-empty string"),
        (_nlu(alternatives=[{"intent": "stop"}]), "'alternatives[0].p' is missing"),
        ({k: v for k, v in _nlu().items() if k != "intent"}, "'intent' is missing"),
    ],
)  # fmt: skip
def test_nlu_keys_of_the_wrong_type_are_named(obj: dict[str, Any], key: str) -> None:
    with pytest.raises(PredictionError, match=re.escape(key)):
        NLUPrediction.from_dict(obj)


def test_asr_word_keys_are_named() -> None:
    obj = json.loads(ASR_LINES[0])
    obj["words"][1]["start"] = None
    with pytest.raises(PredictionError, match=r"'words\[1\]\.start' must be a number"):
        ASRHypothesis.from_dict(obj)
