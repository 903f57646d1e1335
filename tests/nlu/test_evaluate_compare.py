"""``earmark evaluate`` comparing NLU checkpoints: the paired difference from the first one, on
per-utterance scores, and ``--by`` a label field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from earmark.core.errors import EarmarkError
from training.nlu.evaluate import NLUScores, compare_scores

PAIRED = ("intent_accuracy", "entity_f1", "slu_f1")


def scores(ids: list[str], intent_right: list[bool], entity_tp: list[float]) -> NLUScores:
    """Per-utterance results with one gold entity each, found (tp) or missed (fn)."""
    counts = tuple((tp, 0.0, 1.0 - tp) for tp in entity_tp)
    n = len(ids)
    return NLUScores(
        tuple(ids), tuple(intent_right), counts, counts, (0.5,) * n, (0.5,) * n, (False,) * n
    )


def test_compare_scores_pairs_the_utterances() -> None:
    ids = [f"u{i}" for i in range(60)]
    base = scores(ids, [i % 2 == 0 for i in range(60)], [float(i % 3 == 0) for i in range(60)])
    # the candidate gets right everything the baseline did, and more
    cand = scores(ids, [i % 2 == 0 or i % 5 == 0 for i in range(60)], [1.0] * 60)
    diff = compare_scores(base, cand, n_resamples=300)
    assert list(diff) == list(PAIRED)
    assert diff["intent_accuracy"].value == pytest.approx(6 / 60)  # odd multiples of 5
    assert diff["entity_f1"].value == pytest.approx(1.0 - 2 * 20 / (2 * 20 + 40))
    for d in diff.values():
        assert d.better == "higher"
        assert 0 < d.low <= d.value <= d.high
        assert d.p_better > 0.95  # a resample may miss every utterance it fixes: a tie
    with pytest.raises(EarmarkError, match="different utterances"):
        compare_scores(base, cand.subset(range(59)))


@pytest.mark.slow
def test_a_checkpoint_against_its_copy_and_by_intent(tiny_checkpoint, nlu_data, tmp_path: Path):
    base = str(tiny_checkpoint)
    copy = str(shutil.copytree(tiny_checkpoint, tmp_path / "copy"))
    args = ["--checkpoint", base, "--checkpoint", copy, "--manifest", str(nlu_data["dev"])]
    result = CliRunner().invoke(app, ["evaluate", *args, "--by", "intent", "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert report[base]["kind"] == "nlu" and "difference" not in report[base]
    diff = report[copy]["difference"]
    assert diff["baseline"] == base
    for name in PAIRED:
        d = diff["metrics"][name]
        assert (d["value"], d["low"], d["high"]) == (0.0, 0.0, 0.0)
        assert d["candidate"] == report[base][name]["value"]
        assert d["better"] == "higher"

    groups = report[base]["by"]["intent"]
    assert len(groups) > 1
    assert sum(g["n"] for g in groups.values()) == report[base]["n"] == 80
    # intent accuracy is a mean over utterances: the groups' accuracies, weighted, give it
    whole = sum(g["intent_accuracy"]["value"] * g["n"] for g in groups.values()) / 80
    assert whole == pytest.approx(report[base]["intent_accuracy"]["value"])
    for value, group in report[copy]["by"]["intent"].items():
        assert group["difference"]["metrics"]["intent_accuracy"]["value"] == 0.0
        assert group["intent_accuracy"] == groups[value]["intent_accuracy"]

    wide = {"COLUMNS": "200"}  # rich wraps cells to the terminal's width
    table = CliRunner().invoke(
        app, ["evaluate", *args, "--by", "intent", "--resamples", "50"], env=wide
    )
    assert table.exit_code == 0, table.output
    assert "higher is better" in table.stdout
    assert "by intent" in table.stdout
