"""Model inputs from audio: computed once per utterance and cached, then SpecAugment.

Features are whatever the checkpoint's feature extractor produces for one utterance:
``(frames, n_mels)`` normalised log-mel for FastConformer models, ``(samples,)`` normalised
waveform for Wav2Vec2-style models. Per-utterance normalisation makes the result independent
of the batch, so it can be computed once and reused every epoch.

Mixed bandwidth: audio stored below 16 kHz (8 kHz telephone recordings, FSDD) has nothing
above its Nyquist frequency once resampled but resampling leakage, a few orders of magnitude
below speech. Per-band normalisation blows that leakage up to unit variance, and what it
looks like depends on the recording chain, so a model learns it as a speaker cue. Feature
extractors that carry ``band_limit_features = True`` (ours do) zero the mel bands above the
stored bandwidth instead, as in mixed-bandwidth training (Li et al., Interspeech 2012).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from earmark.core.audio import TARGET_SR
from earmark.core.errors import AudioError
from earmark.core.manifest import ManifestRow
from earmark.core.text import normalize
from earmark.dsp import load_audio_with_rate, resample


@dataclass(frozen=True)
class Example:
    """One utterance ready for the model: features, label ids (empty if unlabelled), seconds."""

    id: str
    features: torch.Tensor
    labels: tuple[int, ...]
    text: str | None
    seconds: float

    @property
    def length(self) -> int:
        return int(self.features.shape[0])


def extract(
    feature_extractor: Any, wave: np.ndarray, bandwidth_hz: float | None = None
) -> torch.Tensor:
    """One utterance's model input: ``(frames, n_mels)`` or ``(samples,)``, float32.

    Extractors that carry ``edge_pad_seconds`` hear that much silence before and after the
    audio (recordings cut at the first burst lose the onset to the window), those that carry
    ``noise_floor_db`` a noise floor (``add_noise_floor``).

    ``bandwidth_hz``: the highest frequency the audio can hold (half its stored sample rate,
    scaled by any speed change); mel bands reaching above it are zeroed when the extractor
    asks for it (``band_limit_features``).
    """
    pad_s = getattr(feature_extractor, "edge_pad_seconds", None)
    if pad_s:
        pad = np.zeros(round(float(pad_s) * TARGET_SR), dtype=np.float32)
        wave = np.concatenate([pad, np.asarray(wave, dtype=np.float32), pad])
    floor_db = getattr(feature_extractor, "noise_floor_db", None)
    if floor_db is not None:
        wave = add_noise_floor(wave, float(floor_db))
    out = feature_extractor(wave, sampling_rate=TARGET_SR, return_tensors="pt")
    name = feature_extractor.model_input_names[0]
    feats = out[name][0]
    if "attention_mask" in out and feats.dim() == 2:
        feats = feats[: int(out["attention_mask"][0].sum())]
    if (
        bandwidth_hz is not None
        and feats.dim() == 2
        and getattr(feature_extractor, "band_limit_features", False)
    ):
        feats[:, band_top_hz(feature_extractor) > bandwidth_hz] = 0.0
    return feats.float().contiguous()


def add_noise_floor(wave: np.ndarray, floor_db: float, frame: int = 400) -> np.ndarray:
    """``wave`` plus white noise ``floor_db`` below its loudest 25 ms frame (RMS), the same
    noise for the same wave (seeded by its length).

    Recordings differ in what their pauses hold: room noise tens of dB below the speech, or
    digital silence, whose log-mel sits at the extractor's guard value far below any room.
    Per-utterance normalisation then maps speech to values that depend on the recording chain,
    and a model trained on a few speakers learns that as a speaker cue. A floor relative to the
    speech level makes every pause look alike (extractors that carry ``noise_floor_db``).
    """
    x = np.asarray(wave, dtype=np.float32)
    n = len(x) // frame
    if n == 0:
        return x
    peak = float(np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)).max())
    if peak <= 0:
        return x
    noise = np.random.default_rng(len(x)).standard_normal(len(x)).astype(np.float32)
    return x + noise * np.float32(peak * 10 ** (-floor_db / 20))


def mel_weights(feature_extractor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A log-mel extractor's filter bank ``(n_mels, n_freq)`` and the frequency of each FFT
    bin ``(n_freq,)`` in Hz."""
    weights = torch.as_tensor(np.asarray(feature_extractor.mel_filters)).double()
    if weights.shape[0] > weights.shape[1]:  # some extractors store (n_freq, n_mels)
        weights = weights.T
    freqs = torch.linspace(0, feature_extractor.sampling_rate / 2, weights.shape[1]).double()
    return weights, freqs


def band_top_hz(feature_extractor: Any) -> torch.Tensor:
    """The highest frequency each mel band of a log-mel extractor reaches, ``(n_mels,)``."""
    weights, freqs = mel_weights(feature_extractor)
    return torch.where(weights > 0, freqs, torch.zeros((), dtype=freqs.dtype)).amax(dim=1).float()


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (Ko et al. 2015, Kaldi/sox ``speed``): play ``factor`` times faster,
    tempo and pitch together, by resampling as if the wave had been recorded at
    ``factor * 16 kHz``."""
    if factor == 1.0:
        return wave
    return resample(wave, round(TARGET_SR * factor), TARGET_SR)


def load_example(
    row: ManifestRow, feature_extractor: Any, encode: Any, speeds: tuple[float, ...] = (1.0,)
) -> tuple[Example, ...]:
    """Read, resample and featurise one row, once per speed factor; its text is normalised and
    encoded if present."""
    if row.utterance.audio is None:
        raise AudioError(row.id, "no_audio", "the manifest row has no audio path")
    wave, stored_sr = load_audio_with_rate(row.utterance.audio)
    text = None
    labels: tuple[int, ...] = ()
    if row.label is not None and row.label.text is not None:
        text = normalize(row.label.text)
        labels = tuple(encode(text))
    views = []
    for factor in speeds:
        w = change_speed(wave, factor)
        # Playing f times faster moves every frequency up f times.
        bandwidth = min(stored_sr, TARGET_SR) / 2 * factor
        feats = extract(feature_extractor, w, bandwidth)
        views.append(Example(row.id, feats, labels, text, len(w) / TARGET_SR))
    return tuple(views)


def load_examples(
    rows: Iterable[ManifestRow], feature_extractor: Any, encode: Any, progress: Any = None
) -> list[Example]:
    """Featurise every row as recorded."""
    views = load_views(rows, feature_extractor, encode, (1.0,), progress)
    return [v[0] for v in views]


def load_views(
    rows: Iterable[ManifestRow],
    feature_extractor: Any,
    encode: Any,
    speeds: tuple[float, ...],
    progress: Any = None,
) -> list[tuple[Example, ...]]:
    """Featurise every row once per speed factor (single-threaded: intra-op threads only add
    overhead to these small per-utterance ops, many times over when other jobs share the
    cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        for row in rows:
            out.append(load_example(row, feature_extractor, encode, speeds))
            if progress is not None:
                progress()
        return out
    finally:
        torch.set_num_threads(threads)


def spec_augment(
    feats: torch.Tensor,
    lengths: torch.Tensor,
    *,
    freq_masks: int,
    freq_width: int,
    time_masks: int,
    time_width: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) on a padded log-mel batch ``(batch, frames, n_mels)``.

    Masks are set to 0 (the mean of normalised features). ``time_width`` is a fraction of
    each utterance's length, so short commands are not wiped out. Raw-waveform inputs
    (2-D tensors) are returned unchanged.
    """
    if feats.dim() != 3:
        return feats
    feats = feats.clone()
    batch, _, n_mels = feats.shape
    for b in range(batch):
        n = int(lengths[b])
        for _ in range(freq_masks):
            w = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
            f0 = int(torch.randint(0, max(1, n_mels - w), (1,), generator=generator))
            feats[b, :, f0 : f0 + w] = 0.0
        max_t = max(1, int(time_width * n))
        for _ in range(time_masks):
            w = int(torch.randint(0, max_t + 1, (1,), generator=generator))
            t0 = int(torch.randint(0, max(1, n - w), (1,), generator=generator))
            feats[b, t0 : t0 + w] = 0.0
    return feats


def band_center_hz(feature_extractor: Any) -> torch.Tensor:
    """The centre frequency (weighted mean) of each mel band of a log-mel extractor, ``(n_mels,)``."""
    weights, freqs = mel_weights(feature_extractor)
    return ((weights * freqs).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-12)).float()


def warp_sources(centers_hz: torch.Tensor, n_active: int, alpha: float) -> torch.Tensor:
    """Fractional source band of each of the first ``n_active`` bands after a vocal tract
    length warp by ``alpha`` (Jaitly & Hinton 2013): frequencies scale by ``alpha`` up to a
    boundary, then a straight line keeps the highest active band where it is, so no band
    leaves the stored bandwidth. Returns ``(n_active,)`` indices into the unwarped bands."""
    centers = centers_hz[:n_active].double()
    top = float(centers[-1])
    boundary = 0.85 * top * min(alpha, 1.0) / alpha
    warped = torch.where(
        centers <= boundary,
        centers * alpha,
        top - (top - boundary * alpha) / (top - boundary) * (top - centers),
    )
    # Output band j hears what the input had at the frequency that warps onto its centre.
    idx = np.interp(centers.numpy(), warped.numpy(), np.arange(n_active, dtype=np.float64))
    return torch.from_numpy(idx).float()


def vtlp(
    feats: torch.Tensor,
    lengths: torch.Tensor,
    centers_hz: torch.Tensor,
    *,
    max_warp: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Vocal tract length perturbation on a padded log-mel batch ``(batch, frames, n_mels)``:
    each utterance's frequency axis is warped by a factor drawn from ``[1 - max_warp,
    1 + max_warp]`` (a new speaker's formants, Jaitly & Hinton 2013), by linear interpolation
    between mel bands. Bands that are zero all through an utterance (above a band-limited
    recording's bandwidth) stay zero. Raw-waveform inputs (2-D) are returned unchanged."""
    if feats.dim() != 3 or max_warp <= 0:
        return feats
    out = feats.clone()
    for b in range(feats.shape[0]):
        x = feats[b, : int(lengths[b])]
        active = torch.nonzero((x != 0).any(dim=0)).flatten()
        n_active = int(active[-1]) + 1 if len(active) else 0
        if n_active < 3:
            continue
        u = float(torch.rand((1,), generator=generator))
        alpha = 1.0 + (2 * u - 1) * max_warp
        src = warp_sources(centers_hz, n_active, alpha).clamp(0, n_active - 1)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=n_active - 1)
        w = src - lo
        out[b, : x.shape[0], :n_active] = x[:, lo] * (1 - w) + x[:, hi] * w
    return out
