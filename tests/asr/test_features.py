"""Feature front end: mixed bandwidth, on real FSDD audio (8 kHz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ParakeetFeatureExtractor

from earmark.core.manifest import ManifestRow
from earmark.core.records import Utterance
from training.asr.features import (
    add_noise_floor,
    band_center_hz,
    band_top_hz,
    load_example,
    vtlp,
    warp_sources,
)
from training.asr.model import ModelConfig, build_recogniser

pytestmark = pytest.mark.shared


def _row(shared_data: Path) -> ManifestRow:
    path = shared_data / "fsdd" / "recordings" / "5_jackson_1.wav"
    return ManifestRow(Utterance("u1", str(path)), None)


def test_bands_above_an_8k_recording_are_zero_and_the_rest_is_kept(shared_data, tmp_path):
    rec = build_recogniser(ModelConfig())
    rec.feature_extractor.save_pretrained(tmp_path)  # the setting travels with the checkpoint
    fe = ParakeetFeatureExtractor.from_pretrained(tmp_path)
    slow, plain, fast = load_example(_row(shared_data), fe, rec.encode, (0.9, 1.0, 1.1))
    top = band_top_hz(fe)
    for view, limit in ((slow, 3600), (plain, 4000), (fast, 4400)):
        above = top > limit
        assert view.features[:, above].abs().sum() == 0  # nothing but leakage was there
        assert (view.features[:, ~above].abs().sum(0) > 0).all()  # speech bands untouched
    assert int((top > 4000).sum()) == 18  # of 80: what 4-8 kHz spans on the mel scale


def test_an_extractor_without_the_setting_keeps_every_band(shared_data):
    rec = build_recogniser(ModelConfig())
    fe = ParakeetFeatureExtractor(feature_size=80)  # e.g. a pretrained checkpoint's
    (view,) = load_example(_row(shared_data), fe, rec.encode)
    assert (view.features.abs().sum(0) > 0).all()


def test_vtlp_warps_the_speech_bands_and_keeps_the_empty_ones_empty(shared_data):
    rec = build_recogniser(ModelConfig())
    (view,) = load_example(_row(shared_data), rec.feature_extractor, rec.encode)
    feats = view.features[None]
    lengths = torch.tensor([view.length])
    centers = band_center_hz(rec.feature_extractor)
    gen = torch.Generator().manual_seed(0)
    draws = [vtlp(feats, lengths, centers, max_warp=0.1, generator=gen) for _ in range(10)]
    empty = (feats[0] == 0).all(dim=0)  # the bands above FSDD's 4 kHz
    assert empty.sum() == 18
    assert all((w[0][:, empty] == 0).all() for w in draws)
    change = [float((w - feats).abs().mean()) for w in draws]
    assert max(change) > 0.05  # real warps, each its own
    assert len({round(c, 6) for c in change}) == 10
    assert vtlp(feats, lengths, centers, max_warp=0.0) is feats


def test_a_warp_up_moves_energy_to_higher_bands():
    centers = torch.linspace(50, 4000, 40)
    up, flat, down = (warp_sources(centers, 40, a) for a in (1.1, 1.0, 0.9))
    assert torch.allclose(flat, torch.arange(40.0), atol=1e-4)
    # Output band 10 hears a lower input band when formants move up, a higher one when down.
    assert up[10] < 10 < down[10]
    assert up[-1] == down[-1] == 39  # the top band stays where it is
    assert (up.diff() > 0).all() and (down.diff() > 0).all()


def test_the_noise_floor_evens_out_digital_silence(shared_data):
    wave = np.zeros(16000, dtype=np.float32)
    wave[4000:8000] = 0.3 * np.sin(np.arange(4000) * 0.1)  # a tone between digital silence
    floored = add_noise_floor(wave, 40.0)
    pause = floored[:4000]
    tone_rms = 0.3 / np.sqrt(2)
    assert 20 * np.log10(tone_rms / pause.std()) == pytest.approx(40.0, abs=0.5)
    assert np.array_equal(floored, add_noise_floor(wave, 40.0))  # the same every time


def test_the_noise_floor_travels_with_the_checkpoint(shared_data, tmp_path):
    rec = build_recogniser(ModelConfig(noise_floor_db=40.0))
    rec.feature_extractor.save_pretrained(tmp_path)
    fe = ParakeetFeatureExtractor.from_pretrained(tmp_path)
    assert fe.noise_floor_db == 40.0
    (with_floor,) = load_example(_row(shared_data), fe, rec.encode)
    (without,) = load_example(
        _row(shared_data), build_recogniser(ModelConfig()).feature_extractor, rec.encode
    )
    assert not torch.equal(with_floor.features, without.features)


def test_edge_padding_adds_silence_on_both_sides_and_travels_with_the_checkpoint(
    shared_data, tmp_path
):
    rec = build_recogniser(ModelConfig(edge_pad_seconds=0.1))
    rec.feature_extractor.save_pretrained(tmp_path)
    fe = ParakeetFeatureExtractor.from_pretrained(tmp_path)
    assert fe.edge_pad_seconds == 0.1
    (padded,) = load_example(_row(shared_data), fe, rec.encode)
    (plain,) = load_example(
        _row(shared_data), build_recogniser(ModelConfig()).feature_extractor, rec.encode
    )
    assert padded.length - plain.length == 20  # 0.1 s each side at 100 frames a second
    assert padded.seconds == plain.seconds  # the recording's own length
