"""Real training on real recordings (tiny model, a few steps): loss, checkpoints, predictions."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from factories import tb_scalars, tb_texts

from earmark.core.manifest import read_manifest
from training.asr.model import load_recogniser
from training.asr.transcribe import batch_log_probs, transcribe
from training.checkpoint import read_meta

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def test_loss_falls_and_checkpoint_records_its_provenance(tiny_checkpoint, fsdd_manifests):
    out, _result, losses = tiny_checkpoint
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    meta = read_meta(out, kind="asr")
    assert meta.step == 40
    assert meta.config["model"]["hidden_size"] == 48
    assert len(meta.train_manifest_hash or "") == 64
    assert 0.0 <= meta.metrics["dev_wer"] <= 1.0
    assert meta.metrics["temperature"] > 0
    assert (
        json.loads((out / "confidence.json").read_text())["temperature"]
        == meta.metrics["temperature"]
    )
    assert (out / "last" / "optimizer.pt").is_file()
    assert json.loads((out / "last" / "trainer_state.json").read_text())["step"] == 40


def test_training_writes_its_curves_and_config_for_tensorboard(tiny_checkpoint):
    out, result, _ = tiny_checkpoint
    curves = tb_scalars(out / "tb")
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 41))
    assert np.mean([v for _, v in curves["train/loss"][-5:]]) < np.mean(
        [v for _, v in curves["train/loss"][:5]]
    )
    assert curves["train/lr"][0][1] > 0
    assert [s for s, _ in curves["dev/wer"]] == [40]  # one dev check: at the end
    (step, wer), *_ = curves["final/dev_wer"]
    assert step == 40 and wer == pytest.approx(result.metrics["dev_wer"], abs=1e-6)
    assert "hidden_size: 48" in tb_texts(out / "tb")["config"]


def test_save_load_round_trip_gives_identical_outputs(tiny_checkpoint, fsdd_manifests, tmp_path):
    out, _, _ = tiny_checkpoint
    from training.asr.features import load_example

    rec = load_recogniser(out)
    rec.model.eval()
    rows = read_manifest(fsdd_manifests["dev"])[:4]
    examples = [load_example(r, rec.feature_extractor, rec.encode)[0] for r in rows]
    before = batch_log_probs(rec, examples, torch.device("cpu"))
    rec.save(tmp_path / "copy")
    again = load_recogniser(tmp_path / "copy")
    again.model.eval()
    after = batch_log_probs(again, examples, torch.device("cpu"))
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.temperature == rec.temperature


def test_predictions_are_well_formed(tiny_checkpoint, fsdd_manifests):
    out, _, _ = tiny_checkpoint
    rows = read_manifest(fsdd_manifests["dev"])
    preds = [p.to_dict() for p in transcribe(out, rows, batch_size=4)]
    assert [p["id"] for p in preds] == [r.id for r in rows]
    for pred, row in zip(preds, rows, strict=True):
        assert set(pred) == {"id", "text", "confidence", "model_version", "words"}
        assert 0.0 <= pred["confidence"] <= 1.0
        assert pred["text"] == " ".join(w["word"] for w in pred["words"])
        import soundfile as sf

        duration = sf.info(row.utterance.audio).duration
        ends = 0.0
        for w in pred["words"]:
            assert 0.0 <= w["confidence"] <= 1.0
            assert ends <= w["start"] <= w["end"] <= duration + 1e-6
            ends = w["end"]
    assert preds[0]["model_version"] == read_meta(out).model_version


def test_resume_continues_from_last_step(tiny_checkpoint, fsdd_manifests, tmp_path):
    import shutil

    from training.asr.config import load_asr_config
    from training.asr.train import train_asr
    from training.tracking import Tracker

    from .conftest import TINY

    out, _, _ = tiny_checkpoint
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    # what a run killed at step 43 had logged after the state it saved at step 40 (TensorBoard
    # reads a folder's event files in name order, whose first field is the second they were
    # opened: the resumed run's file must come after, as it would after a real kill)
    killed = Tracker(copy / "tb")
    for step in (41, 42, 43):
        killed.scalars(step, {"loss": 999.0}, "train/")
    killed.close()
    time.sleep(1.1)
    cfg = load_asr_config(None, (*TINY, "train.max_steps=45"))
    steps: list[int] = []
    result = train_asr(
        cfg,
        fsdd_manifests["train"],
        fsdd_manifests["dev"],
        copy,
        resume=True,
        on_progress=lambda d: steps.append(d["step"]),
        log=lambda _: None,
    )
    assert steps == [41, 42, 43, 44, 45]
    assert result.metrics["steps"] == 45
    losses = tb_scalars(copy / "tb")["train/loss"]  # one curve: the killed run's tail purged
    assert [s for s, _ in losses] == list(range(1, 46)) and max(v for _, v in losses) < 999


def test_resume_after_a_kill_between_the_swaps_renames(tiny_checkpoint, fsdd_manifests, tmp_path):
    import shutil

    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    from .conftest import TINY

    out, _, _ = tiny_checkpoint
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    # save_state renames last/ to .last.old, then the new .last.tmp to last/: killed between.
    (copy / "last").rename(copy / ".last.tmp")
    steps: list[int] = []
    result = train_asr(
        load_asr_config(None, (*TINY, "train.max_steps=42")),
        fsdd_manifests["train"],
        fsdd_manifests["dev"],
        copy,
        resume=True,
        on_progress=lambda d: steps.append(d["step"]),
        log=lambda _: None,
    )
    assert steps == [41, 42]
    assert result.metrics["steps"] == 42
    assert json.loads((copy / "last" / "trainer_state.json").read_text())["step"] == 42


def test_asr_model_follows_the_model_contract(tiny_checkpoint, fsdd_manifests, tmp_path):
    from training.asr.transcribe import ASRModel

    out, _, _ = tiny_checkpoint
    model = ASRModel(out, device="cpu")
    rows = read_manifest(fsdd_manifests["dev"])[:3]
    preds = list(model.predict(rows))
    assert [p.id for p in preds] == [r.id for r in rows]
    assert model.kind == "asr" and preds[0].model_version == model.model_version
    model.save(tmp_path / "saved")
    again = ASRModel(tmp_path / "saved", device="cpu")
    assert [p.text for p in again.predict(rows)] == [p.text for p in preds]


def test_training_returns_the_checkpoint_and_the_metrics_it_records(tiny_checkpoint):
    from training.result import TrainResult

    out, result, _ = tiny_checkpoint
    assert isinstance(result, TrainResult)
    assert result.checkpoint == out
    assert json.dumps(result.metrics, sort_keys=True) == json.dumps(
        read_meta(out).metrics, sort_keys=True
    )


def test_resume_with_nothing_saved_says_so_and_starts_from_scratch(fsdd_manifests, tmp_path):
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    from .conftest import TINY

    cfg = load_asr_config(None, (*TINY, "train.max_steps=2", "decoding.method=greedy"))
    log: list[str] = []
    steps: list[int] = []
    result = train_asr(
        cfg,
        fsdd_manifests["train"],
        fsdd_manifests["dev"],
        tmp_path / "new",
        resume=True,
        on_progress=lambda d: steps.append(d["step"]),
        log=log.append,
    )
    assert any("nothing to resume" in line for line in log)
    assert steps == [1, 2] and result.metrics["steps"] == 2
    assert read_meta(result.checkpoint).parent is None
