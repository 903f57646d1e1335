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
from earmark.core.records import Label, Utterance

from .conftest import TINY

SHARED = pytest.mark.shared
PAIRED = ("wer", "cer", "ser")


def evaluate(*args: str) -> Any:
    # wide enough that rich does not wrap the tables' cells
    result = CliRunner().invoke(
        app, ["evaluate", "--resamples", "200", *args], env={"COLUMNS": "200"}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def evaluate_json(*args: str) -> dict[str, Any]:
    return json.loads(evaluate(*args, "--json").stdout)


@pytest.fixture(scope="module")
def two_speakers(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 labelled recordings: the ten digits by george (the training speaker, recordings the
    models never heard) and by theo (unseen); odd digits carry an extra field ``parity`` (kept
    in ``Utterance.extra``), even ones do not."""
    rows = []
    for speaker, take in (("george", 2), ("theo", 0)):
        for digit in range(10):
            uid = f"{digit}_{speaker}_{take}"
            audio = str(shared_data / "fsdd" / "recordings" / f"{uid}.wav")
            extra = MappingProxyType({"parity": "odd"} if digit % 2 else {})
            rows.append(
                ManifestRow(Utterance(uid, audio, speaker, extra=extra), Label(uid, str(digit)))
            )
    path = tmp_path_factory.mktemp("compare") / "two_speakers.jsonl"
    write_manifest(path, rows)
    return path


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, fsdd_manifests, tmp_path_factory) -> dict[str, Path]:
    """``original``: the tiny checkpoint (40 steps: it still outputs nothing); ``same``: a copy
    of it; ``better``: the same model trained for 300 steps (it recognises george's digits)."""
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    original = tiny_checkpoint[0]
    folder = tmp_path_factory.mktemp("checkpoints")
    better = folder / "better"
    config = load_asr_config(None, (*TINY, "train.max_steps=300"))
    train_asr(config, fsdd_manifests["train"], fsdd_manifests["dev"], better, log=lambda _: None)
    return {
        "original": original,
        "same": shutil.copytree(original, folder / "same"),
        "better": better,
    }


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
def test_a_better_checkpoint_is_found_better(checkpoints, two_speakers):
    base, cand = str(checkpoints["original"]), str(checkpoints["better"])
    args = ("--checkpoint", base, "--checkpoint", cand, "--manifest", str(two_speakers))
    report = evaluate_json(*args, "--by", "speaker", "--by", "parity")
    for name in PAIRED:
        d = report[cand]["difference"]["metrics"][name]
        assert d["baseline"] == report[base][name]["value"]
        assert d["candidate"] == report[cand][name]["value"]
        assert d["value"] == d["candidate"] - d["baseline"]
        assert d["low"] <= d["value"] <= d["high"] < 0  # better, and the interval excludes 0
        assert d["p_better"] > 0.95
    # every group of the candidate carries its own paired difference, the baseline's none
    for field in ("speaker", "parity"):
        for value, group in report[cand]["by"][field].items():
            d = group["difference"]["metrics"]["wer"]
            base_group = report[base]["by"][field][value]
            assert d["baseline"] == base_group["wer"]["value"]
            assert d["candidate"] == group["wer"]["value"]
            assert d["value"] == d["candidate"] - d["baseline"]
            assert "difference" not in base_group
    # most of the gain is on the speaker it was trained on
    by_speaker = report[cand]["by"]["speaker"]
    george = by_speaker["george"]["difference"]["metrics"]["wer"]
    theo = by_speaker["theo"]["difference"]["metrics"]["wer"]
    assert george["high"] < 0 and george["value"] < theo["value"]

    table = evaluate(*args, "--by", "speaker").stdout
    assert "paired difference" in table
    assert "lower is better" in table
    assert "by speaker" in table


@pytest.mark.slow
@SHARED
def test_by_speaker_groups_are_the_evaluations_of_each_speaker(checkpoints, two_speakers, tmp_path):
    ckpt = str(checkpoints["better"])
    report = evaluate_json(
        "--checkpoint", ckpt, "--manifest", str(two_speakers), "--by", "speaker", "--by", "parity"
    )[ckpt]
    speakers = report["by"]["speaker"]
    assert list(speakers) == ["george", "theo"]
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


@pytest.mark.slow
@SHARED
def test_the_loops_round_figures_by_field_are_each_groups_own(checkpoints, two_speakers):
    """What a loop round with ``eval_by`` logs: the whole test set's figures, and each group's
    under ``name@field=value``, equal to evaluating that group's rows alone."""
    from training.model import recipe

    asr, ckpt = recipe("asr"), checkpoints["better"]
    rows = read_manifest(two_speakers)
    figures = asr.evaluate(ckpt, rows, n_resamples=50, by=("speaker",))
    assert {k: v for k, v in figures.items() if "@" not in k} == asr.evaluate(
        ckpt, rows, n_resamples=50
    )
    for speaker in ("george", "theo"):
        alone = asr.evaluate(
            ckpt, [r for r in rows if r.utterance.speaker == speaker], n_resamples=50
        )
        assert figures[f"wer@speaker={speaker}"] == alone["wer"]
        assert (
            figures[f"asr_correct_utterances@speaker={speaker}"] == alone["asr_correct_utterances"]
        )
    assert figures["wer@speaker=george"] < figures["wer@speaker=theo"]
    with pytest.raises(ManifestError, match=r"eval_by.*'domain'"):
        asr.evaluate(ckpt, rows, n_resamples=50, by=("domain",))
