"""Feature front end: mixed bandwidth, on real FSDD audio (8 kHz)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import ParakeetFeatureExtractor

from earmark.core.manifest import ManifestRow
from earmark.core.records import Utterance
from training.asr.features import band_top_hz, load_example
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
