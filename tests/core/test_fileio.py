"""Files that survive a crash: atomic replacement (fsynced, folder included) and append-only logs
whose half-written last line is repaired instead of breaking every later read."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from earmark.core import fileio
from earmark.core.errors import EarmarkError


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _fsync_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what each os.fsync call flushed ("dir" or "file"); the real fsync still runs."""
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_atomic_write_fsyncs_the_file_then_the_folder_after_the_rename(tmp_path, monkeypatch):
    calls = _fsync_spy(monkeypatch)
    fileio.write_json(tmp_path / "a.json", {"x": 1})
    # the rename is only durable once the folder holding the new name is on disk
    assert calls == ["file", "dir"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_atomic_write_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "labels.jsonl"
    fileio.write_jsonl(target, [{"id": "u1"}])
    before = target.read_bytes()

    def rows():
        yield {"id": "u2"}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        fileio.write_jsonl(target, rows())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.jsonl"]


def test_atomic_write_creates_files_for_the_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        fileio.write_json(tmp_path / "a.json", {})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.json") == 0o600


def test_a_torn_last_line_is_cut_away_once_and_said_on_stderr(tmp_path, capsys):
    log = tmp_path / "pushed.jsonl"
    log.write_text('{"ref": "t1"}\n{"ref": "t2"}\n{"ref": "t3", "ta')  # killed mid-append
    assert fileio.read_log(log) == [{"ref": "t1"}, {"ref": "t2"}]
    err = capsys.readouterr().err
    assert str(log) in err and "half-written last line" in err
    assert log.read_text() == '{"ref": "t1"}\n{"ref": "t2"}\n'  # repaired on disk
    assert fileio.read_log(log) == [{"ref": "t1"}, {"ref": "t2"}]
    assert capsys.readouterr().err == ""  # said once: the file is clean now


def test_a_last_line_without_its_newline_is_torn_even_if_it_parses(tmp_path, capsys):
    """An append killed just before its newline: the next append would glue two rows together."""
    log = tmp_path / "imported.jsonl"
    log.write_text('{"a": 1}\n{"a": 2}')
    assert fileio.read_log(log) == [{"a": 1}]
    fileio.append_log(log, [{"a": 3}])
    assert fileio.read_log(log) == [{"a": 1}, {"a": 3}]
    assert "half-written" in capsys.readouterr().err


def test_append_repairs_a_torn_tail_before_writing(tmp_path, capsys):
    log = tmp_path / "predictions.jsonl"
    log.write_text('{"id": "u1"}\n{"id": "u')
    fileio.append_log(log, [{"id": "u2"}, {"id": "u3"}])
    assert fileio.read_log(log) == [{"id": "u1"}, {"id": "u2"}, {"id": "u3"}]
    assert "half-written" in capsys.readouterr().err


def test_a_broken_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    log = tmp_path / "pushed.jsonl"
    text = '{"ref": "t1"}\n{"ref": \n{"ref": "t3"}\n'
    log.write_text(text)
    with pytest.raises(EarmarkError, match=rf"{log}:2: not valid JSON"):
        fileio.read_log(log)
    assert log.read_text() == text  # not "repaired": that would throw away good rows


def test_logs_are_created_for_the_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        fileio.append_log(tmp_path / "state" / "imported.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    assert _mode(tmp_path / "state" / "imported.jsonl") == 0o600
    assert fileio.read_log(tmp_path / "absent.jsonl") == []


def test_private_dir_creates_and_tightens_to_0700(tmp_path):
    old = os.umask(0o022)
    try:
        made = fileio.private_dir(tmp_path / "studio" / "state")
        wide = tmp_path / "wide"
        wide.mkdir(mode=0o755)
        fileio.private_dir(wide)
    finally:
        os.umask(old)
    assert made == tmp_path / "studio" / "state"
    assert _mode(tmp_path / "studio") == _mode(made) == _mode(wide) == 0o700


def test_private_tree_takes_group_and_other_permissions_off_everything(tmp_path):
    root = tmp_path / "studio"
    (root / "data" / "media").mkdir(parents=True, mode=0o755)
    db = root / "data" / "label_studio.sqlite3"
    db.write_text("")
    os.chmod(db, 0o664)
    script = root / "run.sh"
    script.write_text("")
    os.chmod(script, 0o755)
    fileio.private_tree(root)
    assert _mode(root) == _mode(root / "data") == _mode(root / "data" / "media") == 0o700
    assert (_mode(db), _mode(script)) == (0o600, 0o700)


def test_a_clean_log_reads_without_write_permission(tmp_path):
    log = tmp_path / "pushed.jsonl"
    fileio.append_log(log, [{"ref": "t1"}])
    os.chmod(log, 0o400)
    assert fileio.read_log(log) == [{"ref": "t1"}]
