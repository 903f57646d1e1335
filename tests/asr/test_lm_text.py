"""Text for the recogniser's LMs from the user: ``--lm-text`` at training, ``earmark train lm``
on a trained checkpoint (the weights untouched), and the open search that either keeps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from earmark.cli.main import app
from training.asr.lm import read_decoding

from .conftest import TINY

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _lexicon(checkpoint: Path) -> set[str]:
    return {line.split()[0] for line in (checkpoint / "lexicon.txt").read_text().splitlines()}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train_args(fsdd_manifests: dict[str, Path], out: Path) -> list[str]:
    overrides = [o for o in TINY if not o.startswith("train.max_minutes")]
    return [
        "train", "asr",
        "--train", str(fsdd_manifests["train"]), "--dev", str(fsdd_manifests["dev"]),
        "--out", str(out), "--max-steps", "3",
        *(arg for o in overrides for arg in ("--set", o)),
    ]  # fmt: skip


def test_train_asr_learns_the_words_of_lm_text(fsdd_manifests, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Call Zanzibar\nquixote\n")
    out = tmp_path / "ckpt"
    result = CliRunner().invoke(app, [*_train_args(fsdd_manifests, out), "--lm-text", str(names)])
    assert result.exit_code == 0, result.output
    assert {"zanzibar", "quixote", "call"} <= _lexicon(out)  # FSDD says digits only
    assert read_decoding(out)["lm_text"] == [str(names)]


def test_a_missing_lm_text_fails_before_training(fsdd_manifests, tmp_path):
    out = tmp_path / "ckpt"
    missing = tmp_path / "nowhere.txt"
    result = CliRunner().invoke(app, [*_train_args(fsdd_manifests, out), "--lm-text", str(missing)])
    assert result.exit_code == 1
    assert "nowhere.txt does not exist" in str(result.exception)
    assert not (out / "earmark.json").exists()


def test_train_lm_retunes_a_checkpoint_without_touching_its_weights(
    tiny_checkpoint, fsdd_manifests, tmp_path
):
    checkpoint = tiny_checkpoint[0]
    before = {p.name: _digest(p) for p in checkpoint.iterdir() if p.is_file()}
    names = tmp_path / "names.jsonl"
    names.write_text(json.dumps({"sentence": "Play Zanzibar radio"}) + "\n")
    out = tmp_path / "retuned"
    result = CliRunner().invoke(
        app,
        [
            "train", "lm", "--checkpoint", str(checkpoint),
            "--train", str(fsdd_manifests["train"]), "--dev", str(fsdd_manifests["dev"]),
            "--out", str(out), "--lm-text", str(names),
            "--set", "decoding.open_vocabulary=true", "--set", "decoding.char_lm_order=5",
            "--set", "decoding.beam_size=16", "--set", "decoding.nbest=4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {"zanzibar", "radio"} <= _lexicon(out) and "zanzibar" not in _lexicon(checkpoint)
    assert (out / "char_lm.arpa").is_file()
    assert _digest(out / "model.safetensors") == before["model.safetensors"]
    assert {p.name: _digest(p) for p in checkpoint.iterdir() if p.is_file()} == before
    meta = json.loads((out / "earmark.json").read_text())
    assert meta["parent"] == str(checkpoint)
    assert meta["config"]["decoding"]["lm_text"] == [str(names)]
    decoding = read_decoding(out)
    assert set(decoding["searches"]) == {"beam", "open"}
    assert decoding["method"] in ("greedy", "beam", "open")

    for method in ("open", "beam", "greedy"):
        preds = tmp_path / f"{method}.jsonl"
        result = CliRunner().invoke(
            app,
            [
                "transcribe", "--checkpoint", str(out), "--manifest", str(fsdd_manifests["dev"]),
                "--out", str(preds), "--decoding", method,
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert len(preds.read_text().splitlines()) == 10
    # The original has no open search to offer, and says so.
    result = CliRunner().invoke(
        app,
        [
            "transcribe", "--checkpoint", str(checkpoint), "--manifest",
            str(fsdd_manifests["dev"]), "--out", str(tmp_path / "x.jsonl"), "--decoding", "open",
        ],
    )  # fmt: skip
    assert result.exit_code == 1 and "no tuned 'open' search" in str(result.exception)


def test_a_retune_that_fails_leaves_no_checkpoint_behind(tiny_checkpoint, fsdd_manifests, tmp_path):
    from earmark.core.errors import ManifestError
    from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
    from training.asr.config import load_asr_config
    from training.asr.retune import retune_decoding

    unlabelled = tmp_path / "dev_without_text.jsonl"
    write_manifest(
        unlabelled, [ManifestRow(r.utterance) for r in read_manifest(fsdd_manifests["dev"])]
    )
    out = tmp_path / "retuned"
    with pytest.raises(ManifestError, match="no rows with a transcript"):
        retune_decoding(
            tiny_checkpoint[0], fsdd_manifests["train"], unlabelled, out, load_asr_config(),
            log=lambda _: None,
        )  # fmt: skip
    # The copy was made in a side folder: nothing at --out looks like a checkpoint.
    assert not (out / "earmark.json").exists()
