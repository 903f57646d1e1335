"""Voice anonymisation of what annotators hear: the McAdams coefficient method.

The VoicePrivacy Challenge's signal-processing baseline (B2; Patino et al., "Speaker
anonymisation using the McAdams coefficient", Interspeech 2021): each 20 ms frame (10 ms hop,
Hann window) is split by linear prediction (order 20) into a spectral envelope and a residual;
the angle ``phi`` of every complex pole of the envelope becomes ``phi ** alpha`` (its radius
kept), which moves the formants, and the residual is filtered through the new envelope and the
frames overlap-added. ``alpha`` = 1 is the identity; the challenge's baseline uses 0.8, smaller
is stronger. No training, no model: numpy only, so the labelling layer stays free of torch.

Only what annotators hear is changed: the transcript, the model and the run keep the original
(``privacy.mcadams_alpha`` in the studio config; ``scripts/bench_privacy.py`` measures the
speaker-verification error and the recogniser's WER over ``alpha``).
"""

from __future__ import annotations

import numpy as np

ORDER = 20
WIN_MS, HOP_MS = 20.0, 10.0


def mcadams(samples: np.ndarray, sample_rate: int, alpha: float) -> np.ndarray:
    """``samples`` (mono, float) with its formants moved by the McAdams coefficient ``alpha``;
    the result has the same length and the same peak amplitude."""
    if not 0.0 < alpha <= 1.5:
        raise ValueError(f"McAdams coefficient must be in (0, 1.5], got {alpha}")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"mono audio expected, got shape {x.shape}")
    if alpha == 1.0 or not np.any(x):
        return x.astype(np.float32)
    win = max(round(sample_rate * WIN_MS / 1000), ORDER + 2)
    hop = max(round(sample_rate * HOP_MS / 1000), 1)
    n_frames = 1 + int(np.ceil(max(len(x) - win, 0) / hop))
    padded = np.zeros((n_frames - 1) * hop + win)
    padded[: len(x)] = x
    index = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = padded[index] * np.hanning(win)[None, :]
    a = _lpc(frames, ORDER)
    a_new = _warp(a, alpha)
    nfft = 1 << int(np.ceil(np.log2(4 * win)))  # room for the synthesis filter's tail
    spec = np.fft.rfft(frames, nfft) * np.fft.rfft(a, nfft) / np.fft.rfft(a_new, nfft)
    out_frames = np.fft.irfft(spec, nfft)[:, :win]
    summed = np.zeros_like(padded)
    np.add.at(summed, index, out_frames)
    out = summed[: len(x)]
    peak_in, peak_out = np.max(np.abs(x)), np.max(np.abs(out))
    if peak_out > 0:
        out = out * (peak_in / peak_out)
    return out.astype(np.float32)


def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomials ``[1, a1..ap]`` per frame (autocorrelation method, Levinson-Durbin)."""
    n = frames.shape[1]
    spec = np.fft.rfft(frames, 2 * n)
    r = np.fft.irfft(np.abs(spec) ** 2, 2 * n)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12  # white-noise floor: silent frames stay stable
    a = np.zeros((frames.shape[0], order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)
        k = -acc / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1 - k**2)
    return a


def _warp(a: np.ndarray, alpha: float) -> np.ndarray:
    """The polynomials whose complex roots' angles are raised to ``alpha``."""
    order = a.shape[1] - 1
    companion = np.zeros((a.shape[0], order, order))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    poles = np.linalg.eigvals(companion)
    angle, radius = np.angle(poles), np.abs(poles)
    complex_ = np.abs(poles.imag) > 1e-9
    warped = np.sign(angle) * np.abs(angle) ** alpha
    poles = np.where(complex_, radius * np.exp(1j * warped), poles)
    coeffs = np.ones((a.shape[0], 1), dtype=complex)
    for k in range(order):  # multiply out prod (1 - p_k z^-1), every frame at once
        root = poles[:, k : k + 1]
        coeffs = np.concatenate([coeffs, np.zeros_like(root)], axis=1)
        coeffs[:, 1:] = coeffs[:, 1:] - root * coeffs[:, :-1]
    return coeffs.real
