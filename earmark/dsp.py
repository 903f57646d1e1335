"""Audio at the models' rate: torchaudio resampling, the loaders built on it, and the Hugging
Face ``datasets`` export. Above ``earmark.core`` (which reads and checks audio files without
torch), below the training and corpus code that feed models.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from earmark.core.audio import (
    TARGET_SR,
    AudioConfig,
    AudioInfo,
    read_audio,
    read_checked,
    resolve_config,
)
from earmark.core.manifest import ManifestRow

if TYPE_CHECKING:
    import datasets


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a mono float32 wave of shape ``(n_samples,)`` (torchaudio's sinc interpolation)."""
    if orig_sr == target_sr:
        return wave.astype(np.float32, copy=False)
    import torch

    with torch.inference_mode():
        out = _resampler(orig_sr, target_sr)(
            torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        )
    return out.numpy()


@functools.lru_cache(maxsize=16)
def _resampler(orig_sr: int, target_sr: int) -> Any:
    """One torchaudio ``Resample`` per rate pair: building its sinc kernel costs more than using it."""
    import torchaudio.transforms as AT

    return AT.Resample(orig_sr, target_sr)


def load_checked(
    path: str | Path,
    *,
    config: AudioConfig | None = None,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """``inspect_audio`` and ``load_audio`` in one decoding pass.

    Returns ``(wave, info)``: ``wave`` is mono float32 at ``config.target_sample_rate``,
    shape ``(n_samples,)``; ``info`` describes the file as stored.
    """
    cfg = resolve_config(config, max_duration_s)
    wave, info = read_checked(path, config=cfg)
    return resample(wave, info.sample_rate, cfg.target_sample_rate), info


def load_audio(path: str | Path, *, target_sr: int = TARGET_SR) -> np.ndarray:
    """Read ``path`` as mono float32 at ``target_sr``; shape ``(n_samples,)``.

    Lenient: any readable file loads (silent or long ones too). Raises ``AudioError`` naming
    the file with a reason from ``AUDIO_REASONS`` when it cannot be read.
    """
    return load_audio_with_rate(path, target_sr=target_sr)[0]


def load_audio_with_rate(path: str | Path, *, target_sr: int = TARGET_SR) -> tuple[np.ndarray, int]:
    """``load_audio`` plus the file's own sample rate: ``(wave (n_samples,), stored_hz)``.

    The stored rate bounds what the wave can hold: 8 kHz telephone audio resampled to 16 kHz
    has nothing above 4 kHz but resampling leakage.
    """
    wave, sr = read_audio(path)
    return resample(wave, sr, target_sr), sr


def to_hf_dataset(rows: Iterable[ManifestRow], *, sampling_rate: int = 16_000) -> datasets.Dataset:
    """A ``datasets.Dataset`` with an ``Audio`` column, decoded lazily on access.

    Columns: id, audio, text, intent, entities (list of {type, start, end}), speaker. The Audio
    feature is stored undecoded (datasets' own decoder needs torchcodec and FFmpeg); a transform
    decodes each accessed item with soundfile + torchaudio resampling (``earmark.core.audio``), giving
    ``{"path", "array": float32 (n_samples,), "sampling_rate"}`` as datasets' Audio does.
    """
    import datasets

    columns = ("id", "audio", "text", "intent", "entities", "speaker")
    records: dict[str, list[Any]] = {k: [] for k in columns}
    for row in rows:
        lab = row.label
        records["id"].append(row.id)
        records["audio"].append({"bytes": None, "path": row.utterance.audio})
        records["text"].append(lab.text if lab else None)
        records["intent"].append(lab.intent if lab else None)
        records["entities"].append(
            [{"type": e.type, "start": e.start, "end": e.end} for e in lab.entities] if lab else []
        )
        records["speaker"].append(row.utterance.speaker)
    span = {
        "type": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
    }
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "text": datasets.Value("string"),
            "intent": datasets.Value("string"),
            "entities": datasets.List(span),
            "speaker": datasets.Value("string"),
        }
    )
    # Built as a plain struct and then cast: datasets' Audio.encode_example insists on torchcodec.
    dataset = datasets.Dataset.from_dict(records, features=features).cast_column(
        "audio", datasets.Audio(sampling_rate=sampling_rate, decode=False)
    )

    def decode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        batch["audio"] = [
            None
            if item is None or item.get("path") is None
            else {
                "path": item["path"],
                "array": load_audio(item["path"], target_sr=sampling_rate),
                "sampling_rate": sampling_rate,
            }
            for item in batch["audio"]
        ]
        return batch

    return dataset.with_transform(decode)
