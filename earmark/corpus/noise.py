"""Background noise for synthetic speech: coloured noise, mains hum and babble, mixed at an SNR.

All functions are pure given their ``numpy.random.Generator``; waves are mono float32 of
shape ``(n_samples,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from earmark.core.errors import CorpusError

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")


def _coloured(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    spectrum /= freqs ** (exponent / 2)
    spectrum[0] = 0.0  # no DC offset
    return np.fft.irfft(spectrum, n)


def _hum(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.choice([50.0, 60.0])
    t = np.arange(n) / sample_rate
    phase = rng.uniform(0, 2 * np.pi, size=4)
    wave = sum((0.6**k) * np.sin(2 * np.pi * base * (k + 1) * t + phase[k]) for k in range(4))
    return np.asarray(wave) + 0.05 * rng.standard_normal(n)


def _babble(n: int, bank: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """3-6 talkers cut from ``bank`` at random offsets, looped to length ``n``."""
    if not bank:
        raise CorpusError("babble noise needs a non-empty bank of speech clips")
    out = np.zeros(n, dtype=np.float64)
    for _ in range(int(rng.integers(3, 7))):
        clip = bank[int(rng.integers(len(bank)))]
        reps = -(-n // len(clip)) + 1
        looped = np.tile(clip, reps)
        start = int(rng.integers(len(clip)))
        out += looped[start : start + n] * rng.uniform(0.5, 1.0)
    return out


def make_noise(
    kind: str,
    n: int,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    babble_bank: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """``n`` samples of noise of ``kind`` (one of ``NOISE_KINDS``), unit RMS, float32."""
    if kind == "white":
        wave = rng.standard_normal(n)
    elif kind == "pink":
        wave = _coloured(n, 1.0, rng)
    elif kind == "brown":
        wave = _coloured(n, 2.0, rng)
    elif kind == "hum":
        wave = _hum(n, sample_rate, rng)
    elif kind == "babble":
        wave = _babble(n, babble_bank, rng)
    else:
        raise CorpusError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    rms = float(np.sqrt(np.mean(np.square(wave)))) if n else 0.0
    return (wave / rms if rms > 0 else wave).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + noise`` with the noise scaled so that speech power / noise power = ``snr_db``.

    Speech power is measured over samples above 1% of the peak, so padding silence does not
    make the noise quieter than asked.
    """
    if speech.shape != noise.shape:
        raise CorpusError(f"speech {speech.shape} and noise {noise.shape} differ in shape")
    peak = float(np.max(np.abs(speech))) if speech.size else 0.0
    if peak == 0.0:
        return speech.copy()
    active = speech[np.abs(speech) > 0.01 * peak]
    speech_power = float(np.mean(np.square(active)))
    noise_power = float(np.mean(np.square(noise))) or 1.0
    scale = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)
