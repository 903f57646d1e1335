"""Run folder: the lock refuses a second loop; state and curves persist."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from factories import tb_scalars, tb_texts

from earmark.loop.curves import append_row, format_table, plot_curves
from earmark.loop.state import PHASES, RunFolder, RunLockedError, RunState


def test_second_loop_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with run.lock():
        assert stat.S_IMODE(run.root.stat().st_mode) == 0o700  # audio, labels, secrets below
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
    (tmp_path / "run.json").write_text(json.dumps({"batch": 50, "seed": 3}))
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
    # TensorBoard: each metric against the human labels, a round logged twice is one point
    curves = tb_scalars(tmp_path / "tb")
    assert curves["wer"] == [(100, pytest.approx(0.4)), (150, pytest.approx(0.25))]
    assert [s for s, _ in curves["round"]] == [100, 150]
    assert "batch: 50" in tb_texts(tmp_path / "tb")["config"]


def test_a_round_killed_before_its_row_reached_the_curve_adds_it_on_resume(tmp_path: Path) -> None:
    from earmark.loop.config import LoopConfig
    from earmark.loop.rounds import train_round
    from earmark.loop.trainset import Halves

    run = RunFolder(tmp_path)
    append_row(tmp_path, {"round": 1, "labelled": 100, "wer": 0.4})
    # round 2 wrote its metrics.json, then the process died before append_row
    row = {"round": 2, "labelled": 150, "wer": 0.3}
    run.round_dir(2).mkdir(parents=True)
    (run.round_dir(2) / "metrics.json").write_text(json.dumps(row))
    said: list[str] = []
    again = train_round(LoopConfig(), run, 2, Halves(asr=True, nlu=False), said.append)
    assert again == row  # not trained again
    assert [r["round"] for r in json.loads((tmp_path / "metrics.json").read_text())] == [1, 2]
    assert (tmp_path / "metrics.csv").read_text().splitlines()[2] == "2,150,0.3"
    # and once more changes nothing (idempotent)
    before = (tmp_path / "metrics.json").read_text()
    train_round(LoopConfig(), run, 2, Halves(asr=True, nlu=False), said.append)
    assert (tmp_path / "metrics.json").read_text() == before


def _stop_after(tmp_path: Path, rows: list[dict[str, float]]) -> str | None:
    from earmark.loop.config import LoopConfig, StoppingConfig
    from earmark.loop.rounds import should_stop

    for n, r in enumerate(rows, start=1):
        append_row(tmp_path, {"round": n, "labelled": 100 * n, **r})
    cfg = LoopConfig(stopping=StoppingConfig(rounds=10, patience=2))
    return should_stop(cfg, RunFolder(tmp_path), len(rows))


def test_the_stopping_rule_reads_dev_never_test(tmp_path: Path) -> None:
    # test WER improves every round while dev is flat: dev decides, so the loop stops
    flat_dev = [{"wer": w, "dev_wer": 0.3} for w in (0.5, 0.4, 0.3, 0.2)]
    assert _stop_after(tmp_path / "a", flat_dev) == "dev wer has not improved for 2 round(s)"
    # test WER flat (or garbage) while dev improves: the loop carries on
    better_dev = [{"wer": 0.9, "dev_wer": w} for w in (0.5, 0.4, 0.3, 0.2)]
    assert _stop_after(tmp_path / "b", better_dev) is None
    # an NLU-only run stops on dev intent accuracy
    nlu = [{"intent_accuracy": a, "dev_intent_accuracy": 0.7} for a in (0.5, 0.6, 0.7, 0.8)]
    assert _stop_after(tmp_path / "c", nlu) == (
        "dev intent accuracy has not improved for 2 round(s)"
    )
