"""ASR test fixtures: small manifests of real FSDD recordings and one tiny trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from earmark.core.manifest import ManifestRow, write_manifest
from earmark.core.records import Label, Utterance

# A deliberately tiny model so the whole area stays within a few CPU minutes.
TINY = (
    "model.hidden_size=48",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.ff_mult=2",
    "model.subsampling_channels=32",
    "model.conv_kernel_size=9",
    "model.dropout=0.0",
    "train.max_minutes=0",
    "train.lr=0.003",
    "train.warmup=0.1",
    "train.max_frames=4000",
    "train.eval_every_minutes=100",
    "train.spec_augment.time_masks=0",
    "train.spec_augment.freq_masks=0",
    "train.threads=1",
)


def fsdd_rows(shared_data: Path, speakers: tuple[str, ...], per_speaker: int) -> list[ManifestRow]:
    rows = []
    for speaker in speakers:
        for digit in range(10):
            for n in range(per_speaker // 10 or 1):
                path = shared_data / "fsdd" / "recordings" / f"{digit}_{speaker}_{n}.wav"
                uid = path.stem
                rows.append(
                    ManifestRow(Utterance(uid, str(path), speaker), Label(uid, text=str(digit)))
                )
    return rows


@pytest.fixture(scope="session")
def fsdd_manifests(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train: 20 recordings of one speaker; dev: 10 of another (both labelled)."""
    folder = tmp_path_factory.mktemp("fsdd")
    out = {
        "train": folder / "train.jsonl",
        "dev": folder / "dev.jsonl",
    }
    write_manifest(out["train"], fsdd_rows(shared_data, ("george",), 20))
    write_manifest(out["dev"], fsdd_rows(shared_data, ("jackson",), 10))
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(fsdd_manifests: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """A tiny model trained for 40 steps; returns ``(checkpoint_dir, TrainResult, losses)``."""
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    cfg = load_asr_config(None, (*TINY, "train.max_steps=40"))
    out = tmp_path_factory.mktemp("asr") / "ckpt"
    losses: list[float] = []
    result = train_asr(
        cfg,
        fsdd_manifests["train"],
        fsdd_manifests["dev"],
        out,
        on_progress=lambda d: losses.append(d["loss"]),
        log=lambda _: None,
    )
    return out, result, losses
