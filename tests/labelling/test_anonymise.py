"""The McAdams anonymiser on real human speech (FSDD): identity at 1, formants moved below it,
length and level kept, and what push uploads is the anonymised voice when it is switched on."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labelling.anonymise import mcadams
from labelling.push import opaque_wav

pytestmark = pytest.mark.shared


def _centroid(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float((spec * np.fft.rfftfreq(len(x), 1 / sr)).sum() / spec.sum())


@pytest.fixture
def recording(shared_data: Path) -> Path:
    return shared_data / "fsdd" / "recordings" / "3_theo_7.wav"


def test_alpha_one_is_the_identity_and_smaller_alphas_raise_the_formants(recording: Path) -> None:
    x, sr = sf.read(recording, dtype="float32")
    assert np.array_equal(mcadams(x, sr, 1.0), x)
    near = mcadams(x, sr, 0.9999999)  # the whole analysis and synthesis, nothing warped
    assert np.corrcoef(x, near)[0, 1] > 0.999
    centroids = [_centroid(mcadams(x, sr, a), sr) for a in (1.0, 0.9, 0.8, 0.6)]
    assert centroids == sorted(centroids) and centroids[-1] > 1.1 * centroids[0]
    y = mcadams(x, sr, 0.8)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)), rel=1e-5)
    assert np.corrcoef(x, y)[0, 1] < 0.95  # not the same waveform


def test_bad_input_is_refused(recording: Path) -> None:
    x, sr = sf.read(recording, dtype="float32")
    with pytest.raises(ValueError, match="McAdams coefficient"):
        mcadams(x, sr, 0.0)
    with pytest.raises(ValueError, match="mono"):
        mcadams(np.stack([x, x], axis=1), sr, 0.8)
    silence = np.zeros(800, dtype=np.float32)
    assert not np.any(mcadams(silence, sr, 0.8))


def test_push_uploads_the_anonymised_voice_only_when_asked(recording: Path) -> None:
    x, sr = sf.read(recording, dtype="int16")
    plain, _ = sf.read(io.BytesIO(opaque_wav(str(recording))), dtype="int16")
    assert np.array_equal(plain, x)
    masked, masked_sr = sf.read(io.BytesIO(opaque_wav(str(recording), 0.8)), dtype="int16")
    assert masked_sr == sr and masked.shape == x.shape and not np.array_equal(masked, x)
