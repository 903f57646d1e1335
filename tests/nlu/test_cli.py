"""CLI smoke test: train a tiny NLU, predict from a manifest and from ASR output, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from earmark.core.manifest import read_manifest
from training.nlu.evaluate import evaluate_nlu

# every test here trains a real (tiny) model for a few seconds
pytestmark = pytest.mark.slow


def test_cli_train_predict_evaluate(nlu_data, tiny, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ckpt"
    result = runner.invoke(
        app,
        [
            "train",
            "nlu",
            "--train",
            str(nlu_data["train"]),
            "--dev",
            str(nlu_data["dev"]),
            "--out",
            str(out),
            "--max-steps",
            "30",
            *(arg for o in tiny for arg in ("--set", o)),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["checkpoint"] == str(out) and "intent_accuracy" in summary

    preds_path = tmp_path / "preds.jsonl"
    result = runner.invoke(
        app,
        [
            "predict",
            "nlu",
            "--checkpoint",
            str(out),
            "--manifest",
            str(nlu_data["dev"]),
            "--out",
            str(preds_path),
        ],
    )
    assert result.exit_code == 0, result.output
    preds = [json.loads(x) for x in preds_path.read_text().splitlines()]
    rows = read_manifest(nlu_data["dev"])
    assert [p["id"] for p in preds] == [r.id for r in rows]

    asr = tmp_path / "asr.jsonl"
    asr.write_text(
        "".join(
            json.dumps(
                {"id": r.id, "text": "Uh, " + (r.label.text or ""), "confidence": 0.9, "words": []}
            )
            + "\n"
            for r in rows
        )
    )
    result = runner.invoke(
        app,
        [
            "predict",
            "nlu",
            "--checkpoint",
            str(out),
            "--manifest",
            str(nlu_data["dev"]),
            "--asr-predictions",
            str(asr),
        ],
    )
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert first["text"].startswith("uh ")

    metrics = evaluate_nlu(out, rows, n_resamples=50)
    for key in ("intent_accuracy", "entity_f1", "slu_f1", "ece"):
        assert set(metrics[key]) == {"value", "low", "high"}
        assert metrics[key]["low"] <= metrics[key]["high"]
        if key != "ece":  # ECE's bootstrap is biased upwards: its point may sit below the interval
            assert metrics[key]["low"] <= metrics[key]["value"] <= metrics[key]["high"]
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(out),
            "--manifest",
            str(nlu_data["dev"]),
            "--json",
            "--resamples",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    shared = json.loads(result.stdout)[str(out)]
    assert shared["intent_accuracy"]["value"] == metrics["intent_accuracy"]["value"]


def test_cli_reports_unknown_schema_labels(nlu_data, tmp_path: Path) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("intents: [weather_query]\nentity_types: [place_name]\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            "nlu",
            "--train",
            str(nlu_data["train"]),
            "--dev",
            str(nlu_data["dev"]),
            "--out",
            str(tmp_path / "x"),
            "--set",
            f"schema={schema}",
        ],
    )
    assert result.exit_code != 0
    assert "not in the schema" in str(result.exception)
    assert f"{nlu_data['train']}:1 " in str(result.exception)
