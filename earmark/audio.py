"""Audio in: any file soundfile reads becomes 16 kHz mono float32.

Resampling uses torchaudio, imported lazily so that the CLI and ``labelling`` stay light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from earmark.errors import AudioError

TARGET_SR = 16_000


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a mono float32 wave of shape ``(n_samples,)`` (torchaudio's sinc interpolation)."""
    if orig_sr == target_sr:
        return wave.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(
        torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), orig_sr, target_sr
    )
    return out.numpy()


def to_mono(data: np.ndarray) -> np.ndarray:
    """``(n_samples,)`` or ``(n_samples, channels)`` -> ``(n_samples,)`` by averaging channels."""
    return data if data.ndim == 1 else data.mean(axis=1)


def load_audio(path: str | Path, *, target_sr: int = TARGET_SR) -> np.ndarray:
    """Read ``path`` as mono float32 at ``target_sr``; shape ``(n_samples,)``.

    Raises ``AudioError`` naming the file when soundfile cannot read it.
    """
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(str(path), "unreadable", str(exc)) from exc
    return resample(to_mono(np.asarray(data)), int(sr), target_sr)


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = TARGET_SR) -> None:
    """Write mono float32 ``wave`` as 16-bit PCM WAV."""
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")
