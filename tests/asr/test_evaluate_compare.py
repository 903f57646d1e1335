"""``earmark evaluate`` comparing real ASR checkpoints on real FSDD audio: the paired difference
from the first checkpoint, ``--by`` breakdowns and the unknown-field error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from earmark.core.errors import ManifestError
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest

from .conftest import fsdd_rows

SHARED = pytest.mark.shared
PAIRED = ("wer", "cer", "ser")


def evaluate(*args: str) -> Any:
    result = CliRunner().invoke(app, ["evaluate", "--resamples", "200", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def evaluate_json(*args: str) -> dict[str, Any]:
    return json.loads(evaluate(*args, "--json").stdout)


@pytest.fixture(scope="module")
def two_speakers(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 labelled recordings of two speakers the tiny model never heard; odd digits carry an
    extra field ``parity`` (kept in ``Utterance.extra``), even ones do not."""
    rows = []
    for row in fsdd_rows(shared_data, ("theo", "nicolas"), 10):
        digit = int(row.label.text) if row.label and row.label.text else 0
        extra = MappingProxyType({"parity": "odd"} if digit % 2 else {})
        rows.append(ManifestRow(row.utterance.with_(extra=extra), row.label))
    path = tmp_path_factory.mktemp("compare") / "two_speakers.jsonl"
    write_manifest(path, rows)
    return path


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``same``: the tiny checkpoint and a copy of it; ``greedy``: a copy that decodes greedily
    (its ``decoding.json`` says so) where the original may use its LM."""
    original = tiny_checkpoint[0]
    folder = tmp_path_factory.mktemp("copies")
    same = shutil.copytree(original, folder / "same")
    greedy = shutil.copytree(original, folder / "greedy")
    settings_file = greedy / "decoding.json"
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    settings_file.write_text(json.dumps({**settings, "method": "greedy"}))
    return {"original": original, "same": same, "greedy": greedy}


@pytest.mark.slow
@SHARED
def test_a_checkpoint_against_its_copy_differs_by_exactly_zero(checkpoints, two_speakers):
    base, copy = str(checkpoints["original"]), str(checkpoints["same"])
    report = evaluate_json(
        "--checkpoint", base, "--checkpoint", copy, "--manifest", str(two_speakers)
    )
    assert list(report) == [base, copy]
    assert "difference" not in report[base]  # the first checkpoint is the baseline
    diff = report[copy]["difference"]
    assert diff["baseline"] == base
    assert list(diff["metrics"]) == list(PAIRED)
    for name in PAIRED:
        d = diff["metrics"][name]
        assert (d["value"], d["low"], d["high"]) == (0.0, 0.0, 0.0)
        assert d["baseline"] == d["candidate"] == report[base][name]["value"]
        assert d["better"] == "lower"
        assert d["p_better"] == 0.0 and d["p_two_sided"] == 1.0


@pytest.mark.slow
@SHARED
def test_the_paired_difference_is_that_of_the_two_evaluations(checkpoints, two_speakers):
    base, cand = str(checkpoints["original"]), str(checkpoints["greedy"])
    args = ("--checkpoint", base, "--checkpoint", cand, "--manifest", str(two_speakers))
    report = evaluate_json(*args, "--by", "speaker", "--by", "parity")
    for name in PAIRED:
        d = report[cand]["difference"]["metrics"][name]
        assert d["baseline"] == report[base][name]["value"]
        assert d["candidate"] == report[cand][name]["value"]
        assert d["value"] == d["candidate"] - d["baseline"]
        assert d["low"] <= d["value"] <= d["high"]
        assert 0.0 <= d["p_better"] <= 1.0
    # every group of the candidate carries its own paired difference, the baseline's none
    for field in ("speaker", "parity"):
        for value, group in report[cand]["by"][field].items():
            d = group["difference"]["metrics"]["wer"]
            base_group = report[base]["by"][field][value]
            assert d["baseline"] == base_group["wer"]["value"]
            assert d["candidate"] == group["wer"]["value"]
            assert "difference" not in base_group

    table = evaluate(*args, "--by", "speaker").stdout
    assert "paired difference" in table
    assert "lower is better" in table
    assert "by speaker" in table


@pytest.mark.slow
@SHARED
def test_by_speaker_groups_are_the_evaluations_of_each_speaker(checkpoints, two_speakers, tmp_path):
    ckpt = str(checkpoints["original"])
    report = evaluate_json(
        "--checkpoint", ckpt, "--manifest", str(two_speakers), "--by", "speaker", "--by", "parity"
    )[ckpt]
    speakers = report["by"]["speaker"]
    assert list(speakers) == ["nicolas", "theo"]
    assert [g["n_utterances"] for g in speakers.values()] == [10, 10]
    # rows without the extra field form their own group
    assert {v: g["n_utterances"] for v, g in report["by"]["parity"].items()} == {
        "(none)": 10,
        "odd": 10,
    }
    # SER is a mean over utterances: the groups' SERs, weighted by size, give the whole one
    whole = sum(g["ser"]["value"] * g["n_utterances"] for g in speakers.values()) / 20
    assert whole == pytest.approx(report["ser"]["value"])
    # a group's figures are those of evaluating that speaker's rows alone
    theo = tmp_path / "theo.jsonl"
    write_manifest(theo, [r for r in read_manifest(two_speakers) if r.utterance.speaker == "theo"])
    alone = evaluate_json("--checkpoint", ckpt, "--manifest", str(theo))[ckpt]
    for name in ("wer", "cer", "ser"):
        assert speakers["theo"][name] == alone[name]
    # confidences may move in the last bits with the batch's padding
    assert speakers["theo"]["confidence_ece"] == pytest.approx(alone["confidence_ece"], abs=1e-4)
    assert "worst" not in speakers["theo"]


@SHARED
def test_an_unknown_by_field_names_it_and_the_fields_there_are(two_speakers, tmp_path):
    # the field is checked before any checkpoint is read: none is needed here
    args = ("--checkpoint", str(tmp_path / "nowhere"), "--manifest", str(two_speakers))
    with pytest.raises(ManifestError) as err:
        evaluate(*args, "--by", "speaker", "--by", "engine")
    message = str(err.value)
    assert "'engine'" in message and "'speaker'" not in message
    available = message.split("fields available:")[1]
    for field in ("speaker", "text", "parity", "audio"):
        assert field in available
