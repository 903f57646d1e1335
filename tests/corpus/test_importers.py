"""Importers: folder, manifest/CSV, SLURP and FSDD into one valid, idempotent manifest."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections import Counter
from pathlib import Path

import pytest

from earmark.core.errors import CorpusError
from earmark.core.manifest import read_manifest, validate_manifest
from earmark.core.text import normalize
from earmark.corpus.importers import (
    import_folder,
    import_fsdd,
    import_manifest,
    import_slurp,
    slurp_spans,
)


def _quarantine(out: Path) -> dict[str, dict]:
    lines = (out / "quarantine.jsonl").read_text().splitlines()
    return {obj["id"]: obj for obj in map(json.loads, lines)}


def _ids(out: Path) -> list[str]:
    return [row.id for row in read_manifest(out / "manifest.jsonl")]


# --- folder ------------------------------------------------------------------------------------


@pytest.fixture
def pool(tmp_path: Path, tone_file, broken) -> Path:
    """A folder tree: four good files in several formats plus every broken case."""
    src = tmp_path / "pool"
    tone_file(src / "alice" / "a1.wav", 1.0, 16_000)
    tone_file(src / "alice" / "a2.flac", 0.5, 44_100, channels=2)
    tone_file(src / "bob" / "deep" / "b1.ogg", 0.75, 22_050)
    tone_file(src / "my take (1).wav", 0.25, 8000)
    tone_file(src / ".hidden" / "skip.wav", 0.25)
    (src / "readme.txt").write_text("not audio, not picked up: wrong ending")
    for path, _, _ in broken.values():
        if path.exists():
            shutil.copy(path, src / path.name)
    return src


def test_folder_import_keeps_good_files_and_quarantines_each_broken_one(
    pool: Path, tmp_path: Path, broken
) -> None:
    out = tmp_path / "corpus"
    report = import_folder(pool, out)
    ids = _ids(out)
    assert report.imported == 4 and len(ids) == 4 and report.total_rows == 4
    assert stat.S_IMODE(out.stat().st_mode) == 0o700  # labels and quarantine: the owner's only
    assert ids[:3] == ["alice__a1.wav", "alice__a2.flac", "bob__deep__b1.ogg"]
    assert re.fullmatch(r"my_take_1_.wav-[0-9a-f]{8}", ids[3])  # lossy slug -> hashed, unique
    assert validate_manifest(out / "manifest.jsonl") == []
    rows = {row.id: row for row in read_manifest(out / "manifest.jsonl")}
    a2 = rows["alice__a2.flac"].utterance
    assert (a2.duration, a2.sample_rate) == (0.5, 44_100)
    assert a2.audio == str((pool / "alice" / "a2.flac").resolve())
    assert all(row.label is None for row in rows.values())  # an unlabelled pool
    expected = {p.name: reason for p, reason, _ in broken.values() if p.exists()}
    quarantined = _quarantine(out)
    assert {q["id"]: q["reason"] for q in quarantined.values()} == expected
    assert report.reasons == Counter(expected.values())
    assert "promises" in quarantined["data_cut.wav"]["detail"]
    assert quarantined["silent.wav"]["audio"] == str(pool / "silent.wav")


def test_reimport_loses_nothing_and_duplicates_nothing(pool: Path, tmp_path: Path, tone_file):
    out = tmp_path / "corpus"
    import_folder(pool, out)
    before = (out / "manifest.jsonl").read_text()
    again = import_folder(pool, out)
    assert (again.imported, again.already_present) == (0, 4)
    assert (out / "manifest.jsonl").read_text() == before
    assert len(_quarantine(out)) == 9

    # a repaired file is imported and leaves the quarantine; a removed source file is not
    # removed from the manifest (nothing already imported is lost)
    tone_file(pool / "silent.wav", 0.5)
    (pool / "alice" / "a1.wav").unlink()
    third = import_folder(pool, out)
    assert (third.imported, third.already_present) == (1, 3)
    assert "silent.wav" not in _quarantine(out) and len(_quarantine(out)) == 8
    assert _ids(out) == [*before_ids(before), "silent.wav"]


def before_ids(text: str) -> list[str]:
    return [json.loads(line)["id"] for line in text.splitlines()]


def test_unreadable_file_is_quarantined_not_fatal(open_dir: Path, unreadable, tone_file):
    _, as_user = unreadable
    tone_file(open_dir / "fine.wav")
    out = open_dir / "corpus"
    out.mkdir()
    out.chmod(0o777)  # the import writes here as the other user
    with as_user():
        report = import_folder(open_dir, out)
    assert report.imported == 1
    assert _quarantine(out)["locked.wav"]["reason"] == "permission_denied"


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no audio files found"):
        import_folder(tmp_path, tmp_path / "out")
    with pytest.raises(CorpusError, match="not a folder"):
        import_folder(tmp_path / "nope", tmp_path / "out")


# --- manifest / CSV ----------------------------------------------------------------------------


def test_manifest_import_rewrites_paths_for_the_new_location(tmp_path: Path, tone_file):
    src = tmp_path / "old"
    tone_file(src / "audio" / "u1.wav", 0.5, 8000)
    tone_file(src / "audio" / "u2.wav", 0.5)
    lines = [
        {
            "id": "u1",
            "audio": "audio/u1.wav",
            "text": "play jazz",
            "intent": "play_music",
            "entities": [{"type": "genre", "start": 5, "end": 9}],
            "speaker": "s1",
            "mood": "happy",
        },
        {"id": "u2", "audio": "audio/u2.wav"},
        {"id": "u3", "audio": "audio/u3.wav"},
        {"id": "u4", "audio": "audio/u2.wav", "confidence": 7},
        {"id": "u1", "audio": "audio/u2.wav"},
    ]
    (src / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "{oops\n")
    out = tmp_path / "new" / "place"
    report = import_manifest(src / "m.jsonl", out)
    assert report.imported == 2
    rows = {row.id: row for row in read_manifest(out / "manifest.jsonl", check_audio=True)}
    u1 = rows["u1"]
    assert u1.utterance.audio == str(src / "audio" / "u1.wav")
    assert (u1.utterance.duration, u1.utterance.sample_rate) == (0.5, 8000)
    assert u1.label is not None and u1.label.entity_values() == [("genre", "jazz")]
    assert u1.utterance.speaker == "s1" and u1.utterance.extra["mood"] == "happy"
    q = _quarantine(out)
    assert q["u3"]["reason"] == "not_found"
    assert q["u4"]["reason"] == "invalid_row" and "confidence" in q["u4"]["detail"]
    assert q["u1"]["reason"] == "duplicate_id" and "first on line 1" in q["u1"]["detail"]
    assert (
        q["m.jsonl:6"]["reason"] == "invalid_row" and "not valid JSON" in q["m.jsonl:6"]["detail"]
    )

    # into a folder that holds the audio: paths are written relative to it
    inside = src / "corpus"
    import_manifest(src / "m.jsonl", inside)
    assert read_manifest(inside / "manifest.jsonl")[0].utterance.audio == str(
        src / "audio" / "u1.wav"
    )
    moved = tmp_path / "copy"
    shutil.copytree(src, moved)
    import_manifest(moved / "m.jsonl", moved)
    raw = json.loads((moved / "manifest.jsonl").read_text().splitlines()[0])
    assert raw["audio"] == "audio/u1.wav"


def test_csv_import_generates_ids_and_keeps_extra_columns(tmp_path: Path, tone_file):
    tone_file(tmp_path / "clips" / "a.wav")
    tone_file(tmp_path / "clips" / "b.wav")
    (tmp_path / "list.csv").write_text(
        "audio,text,intent,speaker,room,duration\n"
        "clips/a.wav,turn on the lights,iot_lights_on,kim,kitchen,9.5\n"
        "clips/b.wav,,,,,\n"
        ",orphan text,,,,\n"
        "clips/c.wav,missing file,,,,\n"
    )
    out = tmp_path / "out"
    report = import_manifest(tmp_path / "list.csv", out)
    assert report.imported == 2
    rows = {row.id: row for row in read_manifest(out / "manifest.jsonl")}
    assert set(rows) == {"clips__a.wav", "clips__b.wav"}
    a = rows["clips__a.wav"]
    assert a.label is not None and (a.label.text, a.label.intent) == (
        "turn on the lights",
        "iot_lights_on",
    )
    assert a.utterance.speaker == "kim" and a.utterance.extra == {"room": "kitchen"}
    assert a.utterance.duration == 0.5  # measured, the CSV's column is ignored and said so
    assert report.warnings == [
        f"{tmp_path / 'list.csv'}: column(s) duration ignored (a CSV carries id, audio, text, "
        "intent, speaker and extra columns; use a JSONL manifest for the rest)"
    ]
    assert rows["clips__b.wav"].label is None
    q = _quarantine(out)
    assert q["list.csv:4"]["detail"] == "no id and no audio"
    assert q["clips__c.wav"]["reason"] == "not_found"


def test_csv_without_audio_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("path,text\na.wav,hi\n")
    with pytest.raises(CorpusError, match="no 'audio' column"):
        import_manifest(tmp_path / "x.csv", tmp_path / "out")


def test_an_invalid_existing_manifest_is_never_overwritten(tmp_path: Path, tone_file):
    tone_file(tmp_path / "src" / "a.wav")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text('{"id": "x", "duration": -1}\n')
    with pytest.raises(CorpusError, match="already exists and has problems"):
        import_folder(tmp_path / "src", out)
    assert (out / "manifest.jsonl").read_text() == '{"id": "x", "duration": -1}\n'


def test_two_sources_share_one_corpus(tmp_path: Path, tone_file):
    tone_file(tmp_path / "a" / "one.wav")
    tone_file(tmp_path / "b" / "two.wav")
    tone_file(tmp_path / "b" / "3_kim_0.wav")
    out = tmp_path / "corpus"
    import_folder(tmp_path / "a", out)
    report = import_fsdd(tmp_path / "b", out)
    assert report.imported == 1
    assert _ids(out) == ["one.wav", "fsdd-3-kim-0"]
    assert _quarantine(out)["two"]["reason"] == "bad_name"


# --- SLURP -------------------------------------------------------------------------------------


def test_slurp_spans_handle_case_spacing_and_misspelt_tokens() -> None:
    sentence = "find thai takeaways around grass market on friday"
    tokens = ["find", "thai", "takeaways", "around", "grassmarket", "on", "Friday"]
    spans, exact = slurp_spans(sentence, tokens, [[1], [4], [6]])
    assert exact
    assert [sentence[s:e] for s, e in spans] == ["thai", "grass market", "friday"]
    spans, exact = slurp_spans(
        "how old is barack obama", ["how", "old", "is", "barack", "obaba"], [[3, 4]]
    )
    assert not exact and spans == [(11, 23)]
    assert slurp_spans("hi", ["hi"], [[5]])[0] == [None]


def _slurp_line(sid: int, sentence: str, recordings: list[str]) -> str:
    tokens = [{"surface": w, "id": i} for i, w in enumerate(sentence.split())]
    obj = {
        "slurp_id": sid,
        "sentence": sentence,
        "intent": "play_music",
        "tokens": tokens,
        "entities": [{"span": [1], "type": "artist_name"}, {"span": [9], "type": "oops"}],
        "recordings": [{"file": f} for f in recordings],
    }
    return json.dumps(obj) + "\n"


def test_slurp_with_recordings_takes_the_first_existing_file(tmp_path: Path, tone_file):
    rec = tmp_path / "slurp_real"
    tone_file(rec / "b.flac")
    tone_file(rec / "c.flac")
    src = tmp_path / "train.jsonl"
    src.write_text(
        _slurp_line(1, "play adele at 7pm", ["a.flac", "b.flac", "c.flac"])
        + _slurp_line(2, "play abba", ["gone.flac"])
        + "\n"
        + "not json\n"
    )
    report = import_slurp(src, tmp_path / "out", recordings=rec)
    assert report.imported == 1
    row = read_manifest(tmp_path / "out" / "manifest.jsonl")[0]
    assert row.id == "slurp-1" and row.utterance.audio == str(rec / "b.flac")
    assert row.label is not None and row.label.text == "play adele at seven p m"
    assert row.label.entity_values() == [("artist_name", "adele")]
    assert row.utterance.extra["sentence"] == "play adele at 7pm"
    q = _quarantine(tmp_path / "out")
    assert q["slurp-2"]["reason"] == "not_found" and "gone.flac" in q["slurp-2"]["detail"]
    assert q["train.jsonl:4"]["reason"] == "invalid_row"
    assert any(":1 (slurp_id 1): entity oops" in w for w in report.warnings)


@pytest.mark.shared
def test_real_slurp_devel_imports_every_request_with_exact_spans(shared_data: Path, tmp_path):
    src = shared_data / "slurp" / "devel.jsonl"
    report = import_slurp(src, tmp_path / "slurp")
    assert (report.imported, len(report.quarantined)) == (2033, 0)
    rows = read_manifest(tmp_path / "slurp" / "manifest.jsonl")
    assert len(rows) == 2033 and all(row.utterance.audio is None for row in rows)
    assert len({row.label.intent for row in rows if row.label}) == 71
    # the three lines whose tokens misspell the sentence are named, with line and slurp_id
    warned = sorted(int(m) for w in report.warnings for m in re.findall(r"slurp_id (\d+)", w))
    assert warned == [3652, 6570, 13875]
    assert all(re.match(rf"{re.escape(str(src))}:\d+ \(slurp_id", w) for w in report.warnings)
    by_id = {row.id: row for row in rows}
    mark = re.compile(r"\[\s*([^:\]]+?)\s*:\s*([^\]]*?)\s*\]")
    n_entities = 0
    for line in src.read_text().splitlines():
        obj = json.loads(line)
        label = by_id[f"slurp-{obj['slurp_id']}"].label
        assert label is not None and label.text == normalize(obj["sentence"])
        got = label.entity_values()
        n_entities += len(got)
        # the span text equals the value SLURP's own inline annotation gives
        want = [(t, normalize(v)) for t, v in mark.findall(obj["sentence_annotation"])]
        assert [t for t, _ in got] == [t for t, _ in want]
        if obj["slurp_id"] not in warned:
            assert [v.replace(" ", "") for _, v in got] == [v.replace(" ", "") for _, v in want]
    assert n_entities == 2022
    again = import_slurp(src, tmp_path / "slurp")
    assert (again.imported, again.already_present) == (0, 2033)


# --- FSDD --------------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_fsdd_imports_2500_takes(shared_data: Path, tmp_path: Path) -> None:
    report = import_fsdd(shared_data / "fsdd", tmp_path / "fsdd")
    assert (report.imported, len(report.quarantined)) == (2500, 0)
    rows = read_manifest(tmp_path / "fsdd" / "manifest.jsonl", check_audio=True)
    assert len(rows) == 2500
    assert Counter(row.utterance.speaker for row in rows) == {
        s: 500 for s in ("george", "jackson", "nicolas", "theo", "yweweler")
    }
    texts = Counter(row.label.text for row in rows if row.label)
    assert len(texts) == 10 and set(texts.values()) == {250}
    assert all(row.label and row.label.intent is None for row in rows)
    assert {row.utterance.sample_rate for row in rows} == {8000}
    assert all(0.1 < (row.utterance.duration or 0) < 2.5 for row in rows)
    first = rows[0]
    assert first.id == "fsdd-0-george-0" and first.label and first.label.text == "zero"
    assert os.path.isabs(first.utterance.audio or "")
    assert (
        import_fsdd(shared_data / "fsdd" / "recordings", tmp_path / "fsdd").already_present == 2500
    )
