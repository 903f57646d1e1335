"""Run folder: the lock refuses a second loop; state and curves persist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from earmark.loop.curves import append_row, format_table, plot_curves
from earmark.loop.state import PHASES, RunFolder, RunLockedError, RunState


def test_second_loop_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with run.lock():
        # another process, as a second `earmark loop` would be
        code = (
            "import sys; from earmark.loop.state import RunFolder, RunLockedError\n"
            f"try:\n    RunFolder({str(run.root)!r}).lock().__enter__()\n"
            "except RunLockedError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3
        assert f"run folder {run.root} is in use by another earmark loop (pid " in out.stdout
        with pytest.raises(RunLockedError), run.lock():  # same process, second handle
            pass
    with run.lock():  # released: usable again
        pass


def test_state_advances_through_every_phase_and_persists(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    state = run.load_state()
    assert (state.round, state.phase) == (1, "train")
    seen = []
    for _ in range(len(PHASES)):
        seen.append(state.phase)
        state = state.advance()
        run.save_state(state)
    assert seen == list(PHASES)
    assert run.load_state() == RunState(round=2, phase="train")


def test_metrics_table_and_plot(tmp_path: Path) -> None:
    append_row(tmp_path, {"round": 1, "labelled": 100, "wer": 0.4, "intent_accuracy": 0.8})
    rows = append_row(tmp_path, {"round": 2, "labelled": 150, "wer": 0.3, "intent_accuracy": 0.85})
    rows = append_row(tmp_path, {"round": 2, "labelled": 150, "wer": 0.25, "intent_accuracy": 0.86})
    assert [r["wer"] for r in rows] == [0.4, 0.25]
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "round,labelled,wer,intent_accuracy" and len(csv_lines) == 3
    table = format_table(rows)
    assert "0.2500" in table and "entity_f1" not in table
    png = plot_curves({"run": rows}, tmp_path / "curve.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
