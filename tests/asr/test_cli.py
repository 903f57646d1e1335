"""CLI smoke: train a tiny model with --max-steps, transcribe, evaluate --json."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app

from .conftest import TINY

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def test_train_transcribe_evaluate(fsdd_manifests, tmp_path):
    runner = CliRunner()
    out = tmp_path / "ckpt"
    overrides = [o for o in TINY if not o.startswith("train.max_minutes")]
    result = runner.invoke(
        app,
        [
            "train",
            "asr",
            "--train",
            str(fsdd_manifests["train"]),
            "--dev",
            str(fsdd_manifests["dev"]),
            "--out",
            str(out),
            "--max-steps",
            "3",
            *(arg for o in overrides for arg in ("--set", o)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 3

    preds = tmp_path / "preds.jsonl"
    result = runner.invoke(
        app,
        [
            "transcribe",
            "--checkpoint",
            str(out),
            "--manifest",
            str(fsdd_manifests["dev"]),
            "--out",
            str(preds),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(lines) == 10
    assert set(lines[0]) == {"id", "text", "confidence", "model_version", "words"}

    result = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(out),
            "--checkpoint",
            str(out),
            "--manifest",
            str(fsdd_manifests["dev"]),
            "--json",
            "--resamples",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report) == [str(out)]  # the same folder twice is one entry
    metrics = report[str(out)]
    for key in ("wer", "cer", "ser", "confidence_auroc"):
        assert {"value", "low", "high"} <= set(metrics[key])
    assert metrics["wer"]["value"] >= 0.0
    assert metrics["n_utterances"] == 10

    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(out), "--manifest", str(fsdd_manifests["dev"])]
    )
    assert result.exit_code == 0, result.output
    assert "wer" in result.stdout


def test_train_rejects_unknown_config_key(fsdd_manifests, tmp_path):
    from earmark.core.errors import ConfigError

    result = CliRunner().invoke(
        app,
        [
            "train",
            "asr",
            "--train",
            str(fsdd_manifests["train"]),
            "--dev",
            str(fsdd_manifests["dev"]),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "train.no_such_key=1",
        ],
    )
    assert isinstance(result.exception, ConfigError)
    assert "train.no_such_key" in str(result.exception)


def test_max_minutes_leaves_the_step_cap_as_the_loop_does(fsdd_manifests, tmp_path):
    """--max-minutes 0 (no time budget) keeps the config's step cap, as the loop's minutes do."""
    overrides = [*TINY, "train.max_steps=2", "decoding.method=greedy"]
    result = CliRunner().invoke(
        app,
        [
            "train",
            "asr",
            "--train",
            str(fsdd_manifests["train"]),
            "--dev",
            str(fsdd_manifests["dev"]),
            "--out",
            str(tmp_path / "ckpt"),
            "--max-minutes",
            "0",
            *(arg for o in overrides for arg in ("--set", o)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 2
