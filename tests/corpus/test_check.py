"""``earmark corpus check`` and ``earmark corpus import`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from earmark.core.errors import ManifestError
from earmark.corpus.check import check_manifest

WIDE = {"COLUMNS": "300"}  # rich wraps tables at 80 columns when not on a terminal


def _manifest(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def bad_manifest(tmp_path: Path, broken, tone_file) -> tuple[Path, dict[str, str]]:
    """A manifest naming one good file, every broken file and some invalid lines.

    Returns ``(path, {id: expected reason})``.
    """
    rows: list[dict | str] = []
    expected: dict[str, str] = {}
    good = tone_file(tmp_path / "good.wav", 1.0, 8000)
    rows.append({"id": "good", "audio": "good.wav", "duration": 1.0, "sample_rate": 8000})
    for case, (path, reason, _) in broken.items():
        rows.append({"id": case, "audio": str(path), "text": "hello"})
        expected[case] = reason
    rows.append({"id": "rate", "audio": str(good), "sample_rate": 16000})
    expected["rate"] = "mismatch"
    rows.append({"id": "bad_intent", "text": "hi", "intent": 3})
    expected["bad_intent"] = "invalid"
    rows.append({"id": "good", "audio": str(good)})
    expected["good#dup"] = "duplicate_id"
    rows.append("{not json")
    expected["<json>"] = "invalid"
    return _manifest(tmp_path / "manifest.jsonl", rows), expected


def test_check_reports_every_problem_at_once(bad_manifest) -> None:
    path, expected = bad_manifest
    report = check_manifest(path)
    assert not report.ok
    assert report.rows == 1 + len(expected) - 2  # the duplicate and the bad JSON are not rows
    got = sorted(issue.reason for issue in report.issues)
    assert got == sorted(expected.values())
    by_id = {issue.id: issue for issue in report.issues if issue.reason != "duplicate_id"}
    for case in ("empty", "nan_inf", "too_long", "missing", "header_cut", "silent"):
        assert by_id[case].reason == expected[case]
    assert by_id["empty"].line == 2 and by_id["empty"].detail.endswith(
        "the file is 0 bytes; re-export or re-copy it"
    )
    assert "sample_rate is 16000" in by_id["rate"].detail
    assert [issue.line for issue in report.issues] == sorted(i.line for i in report.issues)
    relaxed = check_manifest(path, check_audio=False)
    assert sorted(i.reason for i in relaxed.issues) == ["duplicate_id", "invalid", "invalid"]


def test_cli_check_prints_a_table_and_exits_1(bad_manifest) -> None:
    path, expected = bad_manifest
    result = CliRunner().invoke(app, ["corpus", "check", str(path)], env=WIDE)
    assert result.exit_code == 1, result.output
    for case in ("empty", "header_cut", "data_cut", "random", "nan_inf", "too_long"):
        assert case in result.output
    assert "3 sample(s) are NaN or infinite" in result.output
    assert "31.0 s is over the maximum of 30 s" in result.output
    assert f"{len(expected)} problem(s) on {len(expected)} line(s)" in result.output


def test_cli_check_json_and_max_duration(bad_manifest) -> None:
    path, expected = bad_manifest
    runner = CliRunner()
    result = runner.invoke(app, ["corpus", "check", str(path), "--json", "--max-duration", "60"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["problems"] == len(expected) - 1  # the 31 s file is now within the limit
    assert "too_long" not in data["reasons"] and data["reasons"]["silent"] == 1
    issue = next(i for i in data["issues"] if i["id"] == "silent")
    assert "all samples are silent" in issue["detail"] and issue["line"] > 1


def test_cli_check_clean_manifest_exits_0(tmp_path: Path, tone_file) -> None:
    tone_file(tmp_path / "a.wav")
    path = _manifest(tmp_path / "m.jsonl", [{"id": "a", "audio": "a.wav", "text": "yes"}])
    result = CliRunner().invoke(app, ["corpus", "check", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "1 row(s), 1 audio file(s) checked: OK" in result.output


def test_cli_check_unreadable_file(open_dir: Path, unreadable, tone_file) -> None:
    path, as_user = unreadable
    manifest = _manifest(open_dir / "m.jsonl", [{"id": "locked", "audio": path.name}])
    manifest.chmod(0o644)
    with as_user():
        result = CliRunner().invoke(app, ["corpus", "check", str(manifest), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reasons"] == {"permission_denied": 1}


def test_missing_manifest_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        check_manifest(tmp_path / "nope.jsonl")
    proc = subprocess.run(
        [sys.executable, "-m", "earmark.cli.main", "corpus", "check", str(tmp_path / "no.jsonl")],
        capture_output=True,
        text=True,
        env={**os.environ, **WIDE},
        check=False,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "manifest not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_import_prints_counts_reasons_and_where(tmp_path: Path, broken, tone_file) -> None:
    src = broken["silent"][0].parent
    tone_file(src / "ok.wav")
    out = tmp_path / "corpus"
    runner = CliRunner()
    args = ["corpus", "import", "--format", "folder", str(src), "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "imported 1 new row(s); 0 already present (skipped); 9 quarantined" in result.output
    assert "  silent: 1" in result.output and "  truncated: 2" in result.output
    assert f"manifest: {out / 'manifest.jsonl'} (1 rows)" in result.output
    again = runner.invoke(app, args, env=WIDE)
    assert "imported 0 new row(s); 1 already present (skipped)" in again.output
    check = runner.invoke(app, ["corpus", "check", str(out / "manifest.jsonl")], env=WIDE)
    assert check.exit_code == 0, check.output

    bad = runner.invoke(app, ["corpus", "import", "-f", "mp4", str(src), "-o", str(out)])
    assert bad.exit_code == 1 and "unknown --format 'mp4'" in str(bad.exception)
    longer = runner.invoke(app, [*args, "--max-duration", "0.1"], env=WIDE)
    assert longer.exit_code == 0  # already present rows are kept, not re-judged


@pytest.mark.shared
def test_cli_import_real_slurp_names_unplaceable_spans(shared_data: Path, tmp_path: Path):
    src = shared_data / "slurp" / "devel.jsonl"
    out = tmp_path / "slurp"
    result = CliRunner().invoke(
        app, ["corpus", "import", "-f", "slurp", str(src), "-o", str(out)], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "imported 2033 new row(s)" in result.output
    assert result.output.count("warning:") == 3 and "slurp_id 13875" in result.output
    check = CliRunner().invoke(app, ["corpus", "check", str(out / "manifest.jsonl")], env=WIDE)
    assert check.exit_code == 0 and "2033 row(s), 0 audio file(s) checked: OK" in check.output


def test_cli_import_reads_audio_limits_from_a_config_file(tmp_path: Path, tone_file) -> None:
    tone_file(tmp_path / "src" / "half.wav", 0.5)
    config = tmp_path / "audio.yaml"
    config.write_text("max_duration_s: 0.25\n")
    args = ["corpus", "import", "-f", "folder", str(tmp_path / "src"), "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--config", str(config)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "too_long: 1" in result.output and "0.5 s is over the maximum of 0.25 s" in result.output
    config.write_text("max_seconds: 1\n")
    bad = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert bad.exit_code == 1 and "unknown config key(s) max_seconds" in str(bad.exception)
