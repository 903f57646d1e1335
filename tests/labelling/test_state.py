"""Offline: the workspace's state files survive a kill and are private to the user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from earmark.core.errors import StudioError
from earmark.core.predictions import NLUPrediction
from labelling.client import write_secret
from labelling.state import State, append_jsonl
from labelling.tasks import stored_nlu


def _nlu(uid: str, intent: str) -> NLUPrediction:
    return NLUPrediction(uid, "x", intent, intent_confidence=0.5, confidence=0.5)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # a typical login umask: new files 0644 unless asked otherwise
    yield
    os.umask(old)


def test_a_kill_during_an_append_does_not_break_the_next_push(tmp_path, capsys):
    state = State.of(tmp_path)
    append_jsonl(state.pushed, [{"ref": "t1", "utterance_id": "u1", "kind": "transcription"}])
    with open(state.pushed, "a") as f:
        f.write('{"ref": "t2", "utterance_id": "u2", "ki')  # the kill
    append_jsonl(state.predictions, [{"id": "u1", "nlu": _nlu("u1", "a").to_dict()}])
    with open(state.predictions, "a") as f:
        f.write('{"id": "u2", "nlu": {"int')
    assert [r["ref"] for r in state.pushed_rows()] == ["t1"]
    assert set(state.ref_index()) == {"t1"}
    append_jsonl(state.predictions, [{"id": "u3", "nlu": _nlu("u3", "b").to_dict()}])
    assert stored_nlu(state) == {"u1": _nlu("u1", "a"), "u3": _nlu("u3", "b")}
    err = capsys.readouterr().err
    assert str(state.pushed) in err and str(state.predictions) in err


def test_a_broken_line_inside_a_log_is_an_error_naming_it(tmp_path):
    state = State.of(tmp_path)
    state.paths.state.mkdir(parents=True)
    state.pushed.write_text('{"ref": "t1"}\nnot json\n{"ref": "t2"}\n')
    with pytest.raises(StudioError, match=rf"{state.pushed}:2: not valid JSON"):
        state.pushed_rows()


def test_state_files_and_folders_are_private(tmp_path, umask_022):
    state = State.of(tmp_path)
    state.save_projects({"transcription": {"id": 1, "title": "t", "config_sha": "x"}})
    append_jsonl(state.pushed, [{"ref": "t1"}])
    append_jsonl(state.imported, [{"annotation_id": 1}])
    assert _mode(state.paths.root) == _mode(state.paths.state) == 0o700
    for path in (state.projects_json, state.pushed, state.imported):
        assert _mode(path) == 0o600, path


def test_saving_projects_is_atomic_and_reaches_the_disk(tmp_path, monkeypatch):
    state = State.of(tmp_path)
    state.save_projects({"transcription": {"id": 1}})
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    state.save_projects({"transcription": {"id": 2}})
    assert synced == ["file", "dir"]
    assert state.projects() == {"transcription": {"id": 2}}
    with pytest.raises(TypeError):
        state.save_projects({"transcription": {"id": object()}})  # fails while writing
    assert state.projects() == {"transcription": {"id": 2}}
    assert sorted(p.name for p in state.paths.state.iterdir()) == ["projects.json"]


def test_a_secret_is_never_wider_than_0600(tmp_path, umask_022):
    token = tmp_path / "studio" / "secrets" / "token"
    token.parent.mkdir(parents=True)
    # a temporary file left by an older version, world-readable
    stale = token.with_name(".token.tmp")
    stale.write_text("old")
    os.chmod(stale, 0o644)
    write_secret(token, "s3cret")
    assert token.read_text() == "s3cret"
    assert _mode(token) == 0o600 and _mode(token.parent) == 0o700


def test_a_secret_write_failing_midway_keeps_the_old_secret(tmp_path):
    token = tmp_path / "secrets" / "token"
    write_secret(token, "old-token")
    with pytest.raises(TypeError):
        write_secret(token, None)  # type: ignore[arg-type]
    assert token.read_text() == "old-token"
    assert [p.name for p in token.parent.iterdir()] == ["token"]
