"""Offline: the audit log is a hash chain that names the first line anyone changed."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from labelling.audit import (
    GENESIS,
    AuditError,
    AuditLog,
    Event,
    canonical,
    record_exposures,
    record_submissions,
    show,
    verify,
)
from labelling.review import review_items
from labelling.state import State, append_jsonl, write_jsonl

FIELDS = ["seq", "time", "event", "actor", "task", "detail", "prev", "hash"]


def _events(state: State) -> list[Event]:
    """Six events over two utterances, as push, pull and review record them."""
    ann = state.pseudonym(7)
    crowd = "project:" + state.project_pseudonym(1)
    u1, u2 = state.opaque_id("u1"), state.opaque_id("u2")
    return [
        Event("exposed", crowd, u1, {"kind": "transcription", "task_id": 11}),
        Event("exposed", crowd, u2, {"kind": "transcription", "task_id": 12}),
        Event("submitted", ann, u1, {"annotation_id": 5, "cancelled": False}),
        Event("flagged", ann, u1, {"annotation_id": 5, "flags": ["private"]}),
        Event("submitted", ann, u2),
        Event("reviewed", state.operator_pseudonym("someone"), u1, {"what": "flagged"}),
    ]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    state = State.of(tmp_path)
    AuditLog(state.audit).append(_events(state)[:3])
    AuditLog(state.audit).append(_events(state)[3:])  # a second append chains on
    return state.audit


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write(path: Path, lines: list[bytes], *, newline: bool = True) -> None:
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))


def _rehashed(raw: bytes, **changes: object) -> bytes:
    """Line ``raw`` with ``changes`` and a hash recomputed to match them."""
    row = {k: v for k, v in json.loads(raw).items() if k != "hash"} | changes
    return canonical({**row, "hash": hashlib.sha256(canonical(row)).hexdigest()})


def _changed(value: object) -> object:
    if isinstance(value, int):
        return value + 1
    if isinstance(value, dict):
        return {**value, "extra": 1}
    if value in ("submitted", "exposed"):
        return "exported"  # still a valid event: only the hash can tell
    if isinstance(value, str) and value.startswith(("ann-", "op-", "project:")):
        return "ann-0123456789"  # still a pseudonym
    return value[:-1] + ("0" if value[-1] != "0" else "1")  # type: ignore[index]


def test_a_chain_of_events_verifies(log: Path) -> None:
    result = verify(log)
    assert result.ok and result.events == 6 and result.line is None
    assert result.message() == "6 events, chain intact"
    rows = [json.loads(raw) for raw in _lines(log)]
    assert [r["seq"] for r in rows] == list(range(6))
    assert rows[0]["prev"] == GENESIS
    assert all(r["time"].endswith("+00:00") for r in rows)
    assert result.head == hashlib.sha256(_lines(log)[-1]).hexdigest()


def test_an_absent_log_is_empty_and_intact(tmp_path: Path) -> None:
    result = verify(tmp_path / "audit.jsonl")
    assert result.ok and result.events == 0 and result.head == GENESIS
    assert show(tmp_path / "audit.jsonl", ref="r1") == []


@pytest.mark.parametrize("field", FIELDS)
def test_changing_any_field_of_any_line_names_that_line(log: Path, field: str) -> None:
    lines = _lines(log)
    for i in range(len(lines)):
        row = json.loads(lines[i])
        row[field] = _changed(row[field]) if field in row else {"added": True}
        _write(log, [*lines[:i], canonical(row), *lines[i + 1 :]])
        result = verify(log)
        assert not result.ok and result.line == i + 1, (field, i, result.message())
        assert f"{log}:{i + 1}: " in result.message()
    _write(log, lines)
    assert verify(log).ok


def test_each_kind_of_damage_says_why(log: Path) -> None:
    lines = _lines(log)
    cases = {
        "seq gap": [lines[0], lines[2], *lines[3:]],
        "prev mismatch": [lines[0], _rehashed(lines[1], prev="1" * 64), *lines[2:]],
        "bad JSON": [lines[0], b"{not json", *lines[2:]],
        "bad fields: actor is not a pseudonym": [
            lines[0],
            lines[1].replace(b'"actor":"project:prj-', b'"actor":"ann@x.org-'),
            *lines[2:],
        ],
    }
    for why, changed in cases.items():
        _write(log, changed)
        result = verify(log)
        assert result.problem is not None and why in result.problem, (why, result.message())
    _write(log, [lines[0], lines[1] + b" ", *lines[2:]])  # same JSON, other bytes
    assert verify(log).problem == "not canonical: the line's bytes were rewritten"


def test_deleting_any_line_but_the_last_names_the_line_after_it(log: Path) -> None:
    lines = _lines(log)
    for i in range(len(lines) - 1):
        _write(log, lines[:i] + lines[i + 1 :])
        result = verify(log)
        assert result.line == i + 1 and "seq gap" in str(result.problem)


def test_deleting_the_last_line_shows_only_against_a_noted_head(log: Path) -> None:
    head = verify(log).head
    _write(log, _lines(log)[:-1])
    assert verify(log).ok  # a shorter chain is a chain
    result = verify(log, head=head)
    assert result.line == 6 and "removed" in str(result.problem)
    assert verify(log, head=verify(log).head).ok


def test_swapping_two_lines_names_the_first(log: Path) -> None:
    lines = _lines(log)
    for i in range(len(lines) - 1):
        swapped = [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]
        _write(log, swapped)
        assert verify(log).line == i + 1


def test_cutting_a_line_short_names_it(log: Path) -> None:
    lines = _lines(log)
    for i in range(len(lines) - 1):
        _write(log, [*lines[:i], lines[i][: len(lines[i]) // 2], *lines[i + 1 :]])
        assert verify(log).line == i + 1
    _write(log, [*lines[:-1], lines[-1][: len(lines[-1]) // 2]], newline=False)  # the kill
    result = verify(log)
    assert result.line == 6 and str(result.problem).startswith("torn")


def test_a_rehashed_edit_breaks_the_chain_at_the_next_line(log: Path) -> None:
    lines = _lines(log)
    _write(log, [*lines[:2], _rehashed(lines[2], actor="ann-0000000000"), *lines[3:]])
    result = verify(log)
    assert result.line == 4 and "prev mismatch" in str(result.problem)


def test_an_append_cuts_a_torn_last_line_away_and_chains_on(log: Path, capsys) -> None:
    state = State.of(log.parents[2])
    lines = _lines(log)
    _write(log, [*lines[:-1], lines[-1][:40]], newline=False)
    assert AuditLog(log).append(_events(state)[:1]) == 1
    assert f"{log}: removed a half-written last line" in capsys.readouterr().err
    result = verify(log)
    assert result.ok and result.events == 6
    assert json.loads(_lines(log)[-1])["seq"] == 5


def test_an_append_refuses_to_chain_onto_a_broken_last_event(log: Path) -> None:
    state = State.of(log.parents[2])
    lines = _lines(log)
    broken = [*lines[:-1], lines[-1].replace(b'"what":"flagged"', b'"what":"nothing"')]
    _write(log, broken)
    before = log.read_bytes()
    with pytest.raises(AuditError, match=rf"{log}:6: hash mismatch.*nothing was recorded"):
        AuditLog(log).append(_events(state)[:1])
    assert log.read_bytes() == before


def test_actors_are_pseudonyms_never_accounts(tmp_path: Path) -> None:
    state = State.of(tmp_path)
    email = "jane.doe@example.org"
    AuditLog(state.audit).append(
        [Event("submitted", state.pseudonym(email), state.opaque_id("u1"))]
    )
    text = state.audit.read_text()
    assert "@" not in text and "jane" not in text
    with pytest.raises(AuditError, match="actor is not a pseudonym"):
        Event("submitted", email, "t1")
    with pytest.raises(AuditError, match="unknown event"):
        Event("opened", state.pseudonym(1), "t1")
    key = state.paths.secrets / "pseudonym_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_show_lists_exactly_the_events_of_one_utterance(log: Path) -> None:
    state = State.of(log.parents[2])
    u1 = show(log, ref=state.opaque_id("u1"))
    assert [e["event"] for e in u1] == ["exposed", "submitted", "flagged", "reviewed"]
    assert {e["task"] for e in u1} == {state.opaque_id("u1")}
    assert [e["seq"] for e in show(log, ref=state.opaque_id("u2"))] == [1, 4]
    assert show(log, ref=state.opaque_id("u3")) == []
    assert b'"u1"' not in log.read_bytes()  # earmark's own ids never reach the log


def test_the_log_is_private_to_the_user(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = State.of(tmp_path)
        AuditLog(state.audit).append(_events(state)[:1])
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.audit.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.audit.parent.stat().st_mode) == 0o700


def test_concurrent_appends_do_not_fork_the_chain(tmp_path: Path) -> None:
    state = State.of(tmp_path)
    event = _events(state)[2]

    def work() -> None:
        for _ in range(20):
            AuditLog(state.audit).append([event])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify(state.audit)
    assert result.ok and result.events == 80


def test_push_and_pull_records_are_derived_once_each(tmp_path: Path) -> None:
    state = State.of(tmp_path)
    ref = state.opaque_id("u1")
    pushed = {"ref": ref, "utterance_id": "u1", "kind": "transcription", "project": 3}
    append_jsonl(state.pushed, [{**pushed, "task_id": 11, "pushed_at": "2025-01-01T00:00:00"}])
    answer = {"kind": "transcription", "cancelled": False, "flags": ["private"], "comment": "x"}
    imported = {"annotation_id": 5, "updated_at": "u", "kind": "transcription", "task_id": 11}
    imported |= {"utterance_id": "u1", "annotator": state.pseudonym(7), "answer": answer}
    append_jsonl(state.imported, [imported])
    assert record_exposures(state) == 1 and record_submissions(state) == 2
    assert record_exposures(state) == 0 and record_submissions(state) == 0  # a re-run
    events = show(state.audit, ref=state.opaque_id("u1"))
    assert [e["event"] for e in events] == ["exposed", "submitted", "flagged"]
    assert events[0]["actor"] == "project:" + state.project_pseudonym(3)
    assert events[2]["actor"] == state.pseudonym(7) and events[2]["detail"]["flags"] == ["private"]
    assert all(e["task"] == ref for e in events)
    assert "comment" not in state.audit.read_text()  # what annotators wrote stays out


def test_review_records_what_it_lists(tmp_path: Path) -> None:
    state = State.of(tmp_path)
    assert review_items(tmp_path) == [] and not state.audit.exists()
    flag = {"id": "u1", "flags": ["private"], "annotator": state.pseudonym(7)}
    write_jsonl(state.flagged, [{**flag, "task": "transcription/11"}])
    review_items(tmp_path)
    (event,) = show(state.audit, ref=state.opaque_id("u1"))
    assert event["event"] == "reviewed" and event["actor"].startswith("op-")
    assert event["detail"] == {"what": "flagged", "where": "transcription/11"}


def test_cli_verify_and_show(log: Path) -> None:
    runner = CliRunner()
    workspace = str(log.parents[2])
    ok = runner.invoke(app, ["audit", "verify", "-w", workspace])
    assert ok.exit_code == 0 and "6 events, chain intact" in ok.output
    shown = runner.invoke(app, ["audit", "show", "-w", workspace, "--utterance", "u2"])
    assert shown.exit_code == 0 and "exposed" in shown.output and "flagged" not in shown.output
    lines = _lines(log)
    _write(log, [lines[0], lines[2], *lines[3:]])
    bad = runner.invoke(app, ["audit", "verify", "-w", workspace])
    assert bad.exit_code == 1 and ":2: seq gap" in bad.output.replace("\n", "")


def test_a_label_written_to_a_training_manifest_is_an_export_logged_once(tmp_path: Path) -> None:
    from earmark.core.manifest import ManifestRow, write_manifest
    from earmark.core.records import Label, LabelSource, Utterance
    from labelling.pull import build_training_manifest

    state = State.of(tmp_path)
    state.make_private()
    rows = [ManifestRow(Utterance(u, f"/a/{u}.wav"), None) for u in ("u1", "u2", "u3")]
    write_manifest(tmp_path / "pool.jsonl", rows)
    label = Label("u1", "play it", source=LabelSource.HUMAN)
    extra = {"transcript_confirmed": True}
    write_manifest(state.labels, [ManifestRow(Utterance("u1", extra=extra), label)])
    out = tmp_path / "r002" / "human_asr.jsonl"
    out.parent.mkdir()
    for _ in range(2):  # a resumed round builds it again: one event
        assert build_training_manifest(tmp_path, tmp_path / "pool.jsonl", out) == 1
    assert [e["event"] for e in show(state.audit, ref=state.opaque_id("u2"))] == []
    events = [e for e in show(state.audit, ref=state.opaque_id("u1")) if e["event"] == "exported"]
    assert len(events) == 1
    assert events[0]["detail"] == {"to": str(out), "use": "asr"}
    assert events[0]["actor"].startswith("op-") and verify(state.audit).ok
