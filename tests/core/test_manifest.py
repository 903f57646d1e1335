"""The manifest format: round trip, lazy reading, and every validation error as the user sees it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import line, write_lines, write_wav

from earmark.core.errors import ManifestError
from earmark.core.manifest import (
    ManifestRow,
    iter_manifest,
    manifest_hash,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from earmark.core.records import Entity, Label, LabelSource, Utterance
from earmark.dsp import to_hf_dataset

EXAMPLE = {
    "id": "u0001",
    "audio": "audio/u0001.wav",
    "text": "play taylor swift",
    "intent": "play_music",
    "entities": [{"type": "artist_name", "start": 5, "end": 17}],
    "speaker": "s03",
}


def test_readme_example_reads_into_separate_utterance_and_label(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    write_wav(tmp_path / "audio" / "u0001.wav")
    path = write_lines(tmp_path / "m.jsonl", [EXAMPLE])
    [row] = read_manifest(path, check_audio=True)
    assert row.utterance.audio == str(tmp_path / "audio" / "u0001.wav")
    assert row.utterance.speaker == "s03"
    assert row.label is not None
    assert row.label.entity_values() == [("artist_name", "taylor swift")]
    assert row.label.source is LabelSource.SEED


def test_round_trip_keeps_extra_fields_and_relative_audio(tmp_path: Path) -> None:
    obj = dict(EXAMPLE, device="kitchen", nested={"a": [1, 2]})
    src = write_lines(tmp_path / "in.jsonl", [obj])
    rows = read_manifest(src)
    out = tmp_path / "out.jsonl"
    assert write_manifest(out, rows) == 1
    written = json.loads(out.read_text())
    assert written["audio"] == "audio/u0001.wav"
    assert written["device"] == "kitchen" and written["nested"] == {"a": [1, 2]}
    assert written["entities"] == [
        {"type": "artist_name", "start": 5, "end": 17, "value": "taylor swift"}
    ]
    assert read_manifest(out) == rows


def test_unlabelled_rows_have_no_label_and_write_no_label_fields(tmp_path: Path) -> None:
    rows = [ManifestRow(Utterance("p1", str(tmp_path / "a.wav"), speaker="x"))]
    out = tmp_path / "pool.jsonl"
    write_manifest(out, rows)
    assert json.loads(out.read_text()) == {"id": "p1", "audio": "a.wav", "speaker": "x"}
    assert read_manifest(out)[0].label is None


def test_relative_audio_from_code_is_rewritten_against_the_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "audio").mkdir(parents=True)
    write_wav(tmp_path / "out" / "audio" / "a.wav")
    out = Path("out") / "m.jsonl"  # a relative manifest path, as `--out out` gives
    write_manifest(out, [ManifestRow(Utterance("a", "out/audio/a.wav"))])
    assert json.loads(out.read_text())["audio"] == "audio/a.wav"
    assert read_manifest(out, check_audio=True)[0].utterance.audio == str(
        tmp_path / "out" / "audio" / "a.wav"
    )


def test_provenance_round_trips(tmp_path: Path) -> None:
    label = Label(
        "u1", "turn on the lights", "iot_hue_lightson", (), LabelSource.MODEL, "asr-3", 0.42
    )
    out = tmp_path / "m.jsonl"
    write_manifest(out, [ManifestRow(Utterance("u1"), label)])
    assert read_manifest(out)[0].label == label


def test_iter_manifest_is_lazy_and_stops_at_the_bad_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "m.jsonl", [line(id="a"), line(id="b"), "{broken", line(id="c")])
    it = iter_manifest(path)
    assert next(it).id == "a" and next(it).id == "b"
    with pytest.raises(ManifestError, match=r"m\.jsonl:3 field '<line>': not valid JSON"):
        next(it)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ("{not json", "m.jsonl:1 field '<line>': not valid JSON"),
        ("[1, 2]", "m.jsonl:1 field '<line>': must be a JSON object, got list"),
        (line(id=""), "m.jsonl:1 field 'id': missing or not a non-empty string"),
        ({"audio": "a.wav"}, "m.jsonl:1 field 'id': missing or not a non-empty string"),
        (
            line(audio=3),
            "m.jsonl:1 (id u0001) field 'audio': must be a non-empty path string, got 3",
        ),
        (line(text=5), "m.jsonl:1 (id u0001) field 'text': must be a string, got int"),
        (line(text="hi", intent=""), "field 'intent': must be a non-empty string, got ''"),
        (line(speaker=7), "(id u0001) field 'speaker': must be a string, got int"),
        (line(duration=-1), "field 'duration': must be a positive number of seconds, got -1"),
        (line(sample_rate=8000.5), "field 'sample_rate': must be a positive integer, got 8000.5"),
        (line(source="robot"), "field 'source': 'robot' is not one of ['seed', 'human', 'model']"),
        (
            line(text="hi", confidence=1.5),
            "field 'confidence': must be a number in [0, 1], got 1.5",
        ),
        (line(version=3), "field 'version': must be a string, got int"),
        (line(text="hi", entities="x"), "field 'entities': must be a list, got str"),
        (
            line(entities=[{"type": "a", "start": 0, "end": 1}]),
            "field 'entities': entities given without 'text'",
        ),
        (line(text="hi", entities=[3]), "field 'entities[0]': must be an object, got int"),
        (
            line(text="hi", entities=[{"start": 0, "end": 1}]),
            "field 'entities[0].type': missing or not a non-empty string",
        ),
        (
            line(text="hi", entities=[{"type": "a", "start": "0", "end": 1}]),
            "field 'entities[0].start/end': must be integers, got '0' and 1",
        ),
        (
            line(text="play abba", entities=[{"type": "artist_name", "start": 5, "end": 20}]),
            "(id u0001) field 'entities[0]': span [5, 20) is outside the text (length 9) or empty",
        ),
        (
            line(text="play abba", entities=[{"type": "a", "start": 5, "end": 9, "value": "abb"}]),
            "field 'entities[0].value': 'abb' does not match text[5:9] = 'abba'",
        ),
        (
            line(text="play abba", entities=[{"type": "a", "start": 0, "end": 9, "kind": 1}]),
            "field 'entities[0]': unknown key(s) ['kind']; allowed: type, start, end, value",
        ),
        (
            line(
                text="play abba now",
                entities=[
                    {"type": "a", "start": 0, "end": 9},
                    {"type": "b", "start": 5, "end": 13},
                ],
            ),
            "field 'entities': spans a[0,9) and b[5,13) overlap",
        ),
    ],
)
def test_every_validation_error_names_line_id_and_field(
    tmp_path: Path, obj: object, expected: str
) -> None:
    path = write_lines(tmp_path / "m.jsonl", [obj])
    problems = validate_manifest(path, check_audio=False)
    assert any(expected in str(p) for p in problems), [str(p) for p in problems]
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert expected in str(info.value)


def test_duplicate_id_and_missing_audio_are_reported_together(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav")
    path = write_lines(
        tmp_path / "m.jsonl",
        [line(id="x", audio="a.wav"), line(id="x", audio="a.wav"), line(id="y", audio="gone.wav")],
    )
    messages = [str(p) for p in validate_manifest(path)]
    assert messages == [
        f"{path}:2 (id x) field 'id': duplicate id (first on line 1)",
        f"{path}:3 (id y) field 'audio': file not found: {tmp_path / 'gone.wav'}",
    ]


def test_a_manifest_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    good = json.dumps(line(id="a")).encode()
    latin1 = json.dumps(line(id="b", text="café"), ensure_ascii=False).encode("latin-1")
    path.write_bytes(good + b"\n" + latin1 + b"\n" + good.replace(b'"a"', b'"c"') + b"\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2 field '<line>': not valid UTF-8") as info:
        read_manifest(path)
    assert str(path) in str(info.value)
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "<line>")]
    assert [(p.line, p.field) for p in validate_manifest(path, check_audio=False)] == [
        (2, "<line>")
    ]
    it = iter_manifest(path)
    assert next(it).id == "a"
    with pytest.raises(ManifestError, match=r"m\.jsonl:2 .*not valid UTF-8"):
        next(it)


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_hash_changes_with_content(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.jsonl", [line(id="a")])
    b = write_lines(tmp_path / "b.jsonl", [line(id="b")])
    assert manifest_hash(a) != manifest_hash(b)
    assert manifest_hash(a) == manifest_hash(write_lines(tmp_path / "c.jsonl", [line(id="a")]))


def test_hf_dataset_decodes_audio_at_16k(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", seconds=0.25, sr=8000)
    rows = [
        ManifestRow(
            Utterance("a", str(tmp_path / "a.wav")),
            Label("a", "play abba", "play_music", (Entity("artist_name", 5, 9),)),
        )
    ]
    ds = to_hf_dataset(rows)
    item = ds[0]
    assert item["text"] == "play abba"
    assert item["entities"] == [{"type": "artist_name", "start": 5, "end": 9}]
    assert item["audio"]["sampling_rate"] == 16_000
    assert abs(len(item["audio"]["array"]) - 4000) <= 2  # 0.25 s at 8 kHz, resampled to 16 kHz
    assert ds.features["audio"].sampling_rate == 16_000
