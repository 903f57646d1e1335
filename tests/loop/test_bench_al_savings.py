"""scripts/bench_al.py's saving against random: equal budgets only, censored seeds apart.

The rows are built as the report reads them (one dict per round, ``labelled`` counting the
seed set), with no training: these tests are about the arithmetic and what it claims.
"""

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench_al():
    spec = importlib.util.spec_from_file_location("bench_al", ROOT / "scripts" / "bench_al.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_al"] = module
    spec.loader.exec_module(module)
    return module


def _curve(points: list[tuple[int, float, float]]) -> list[dict]:
    return [
        {"round": i, "labelled": n, "wer": w, "intent_accuracy": a}
        for i, (n, w, a) in enumerate(points)
    ]


# Random: 300 seed labels, then 200 selected; its final WER 0.4 is the default target.
RANDOM = _curve([(300, 0.6, 0.7), (400, 0.5, 0.8), (500, 0.4, 0.9)])


def _report(tmp_path: Path, curves: dict[str, dict[int, list[dict]]], **targets: Any) -> dict:
    bench = _bench_al()
    args = argparse.Namespace(
        out=tmp_path,
        seeds=sorted({s for by_seed in curves.values() for s in by_seed}),
        target_wer=targets.get("target_wer"),
        target_intent=targets.get("target_intent"),
        strategies=list(curves),
    )
    bench.report(args, curves)
    return json.loads((tmp_path / "bench_al.json").read_text())


def test_an_arm_with_a_quarter_of_randoms_labels_that_never_reached_saves_nothing(
    tmp_path: Path, capsys
):
    # 50 selected labels (a resumed or cut-short run), never at 0.4: it shows nothing about
    # what it would have needed, so it must not read as "needed 50 where random needed 200".
    short = _curve([(300, 0.6, 0.7), (350, 0.55, 0.75)])
    vs = _report(tmp_path, {"random": {0: RANDOM}, "short": {0: short}})["arms"]["short"][
        "vs_random_wer"
    ]
    assert vs["saving"] is None
    assert vs["mean_ratio"] is None and vs["ratio_per_seed"] == {}
    out = capsys.readouterr().out
    assert "saving 0.750" not in out


def test_unequal_budgets_on_a_seed_are_refused_with_the_reason(tmp_path: Path, capsys):
    # Seed 0: 100 selected against random's 200, even though it reached the target (at 400
    # labels, 100 selected); seed 1: 300 selected, a longer budget. Both refused.
    short = _curve([(300, 0.6, 0.7), (400, 0.4, 0.9)])
    long = _curve([(300, 0.6, 0.7), (400, 0.5, 0.8), (500, 0.45, 0.85), (600, 0.4, 0.9)])
    result = _report(tmp_path, {"random": {0: RANDOM, 1: RANDOM}, "other": {0: short, 1: long}})
    vs = result["arms"]["other"]["vs_random_wer"]
    assert vs["per_seed"]["0"]["status"] == "refused"
    assert vs["per_seed"]["1"]["status"] == "refused"
    assert "100" in vs["seeds_refused"]["0"] and "200" in vs["seeds_refused"]["0"]
    assert "300" in vs["seeds_refused"]["1"]
    assert vs["saving"] is None and vs["ratio_per_seed"] == {} and vs["seeds_censored"] == {}
    out = capsys.readouterr().out
    assert "refused" in out and "unequal budgets" in out


def test_censored_seeds_are_reported_apart_from_the_point_estimate(tmp_path: Path, capsys):
    # Target WER 0.45: random reaches it half-way from 400 to 500 labels, 150 selected.
    # Seed 0: the arm goes 0.6 -> 0.4 from 300 to 400 labels, 0.45 at 375: 75 selected,
    # ratio 75 / 150 = 0.5, saving 0.5.
    # Seed 1: never below 0.45 within its 200 selected labels (random's budget too): it
    # needed more than 200 where random needed 150, saving at most 1 - 200 / 150 = -1/3.
    reached = _curve([(300, 0.6, 0.7), (400, 0.4, 0.8), (500, 0.35, 0.9)])
    censored = _curve([(300, 0.6, 0.7), (400, 0.55, 0.75), (500, 0.5, 0.8)])
    result = _report(
        tmp_path,
        {"random": {0: RANDOM, 1: RANDOM}, "combined": {0: reached, 1: censored}},
        target_wer=0.45,
    )
    vs = result["arms"]["combined"]["vs_random_wer"]
    assert vs["ratio_per_seed"] == {"0": pytest.approx(0.5)}
    assert vs["saving"] == pytest.approx(0.5) and vs["spread"] == pytest.approx(0.0)
    assert vs["seeds_reached"] == ["0"]
    assert vs["seeds_censored"] == {"1": pytest.approx(-1 / 3)}
    assert vs["per_seed"]["1"]["status"] == "censored"
    assert vs["per_seed"]["1"]["saving"] is None
    out = capsys.readouterr().out
    assert "over 1 seed that reached" in out and "seed 1 <= -0.333" in out


def test_a_censored_seed_never_counts_as_a_saving(tmp_path: Path):
    # Never reached random's final WER with the same 200 selected labels: at best it tied.
    worse = _curve([(300, 0.6, 0.7), (400, 0.55, 0.75), (500, 0.5, 0.8)])
    vs = _report(tmp_path, {"random": {0: RANDOM}, "combined": {0: worse}})["arms"]["combined"][
        "vs_random_wer"
    ]
    assert vs["saving"] is None
    assert vs["seeds_censored"] == {"0": pytest.approx(0.0)}
    assert all(bound <= 0 for bound in vs["seeds_censored"].values())


def test_a_reached_seed_computes_the_saving_by_hand(tmp_path: Path, capsys):
    # Target WER 0.45 (random: 450 labels, 150 selected). The arm: 0.6 -> 0.3 from 300 to
    # 400 labels, 0.45 at 350: 50 selected. Ratio 50 / 150 = 1/3, saving 2/3.
    # Seed 1, same random; the arm reaches 0.45 at 0.6 -> 0.45 from 300 to 400: 100 selected,
    # ratio 2/3, saving 1/3. Mean ratio 1/2, saving 1/2, spread (population sd) 1/6.
    fast = _curve([(300, 0.6, 0.7), (400, 0.3, 0.9), (500, 0.25, 0.95)])
    slower = _curve([(300, 0.6, 0.7), (400, 0.45, 0.8), (500, 0.4, 0.9)])
    result = _report(
        tmp_path,
        {"random": {0: RANDOM, 1: RANDOM}, "combined": {0: fast, 1: slower}},
        target_wer=0.45,
    )
    assert result["arms"]["random"]["selected_to_wer"] == {"0": 150.0, "1": 150.0}
    vs = result["arms"]["combined"]["vs_random_wer"]
    assert vs["ratio_per_seed"] == {"0": pytest.approx(1 / 3), "1": pytest.approx(2 / 3)}
    assert vs["mean_ratio"] == pytest.approx(0.5)
    assert vs["saving"] == pytest.approx(0.5)
    assert vs["spread"] == pytest.approx(1 / 6)
    assert vs["per_seed"]["0"] == {
        "status": "reached",
        "selected": pytest.approx(50.0),
        "random_selected": pytest.approx(150.0),
        "budget": 200,
        "random_budget": 200,
        "ratio": pytest.approx(1 / 3),
        "saving": pytest.approx(2 / 3),
        "saving_at_most": None,
        "why": None,
    }
    assert vs["seeds_censored"] == {} and vs["seeds_refused"] == {}
    assert "saving 0.500 ± 0.167" in capsys.readouterr().out
