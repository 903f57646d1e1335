"""Audio input: every format and rate becomes 16 kHz mono float32; every broken file is named."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earmark.core.audio import AUDIO_REASONS, AudioConfig, inspect_audio
from earmark.core.config import load_config, to_dict
from earmark.core.errors import AudioError, ConfigError
from earmark.dsp import load_audio, load_checked

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "sr", "channels", "subtype"),
    [
        ("stereo.wav", 44_100, 2, "PCM_24"),
        ("mono8k.wav", 8_000, 1, "PCM_16"),
        ("float48k.wav", 48_000, 1, "FLOAT"),
        ("six.flac", 22_050, 6, None),
        ("speech.ogg", 16_000, 1, None),
    ],
)
def test_any_format_becomes_16k_mono_float32(
    tmp_path: Path, tone_file, name: str, sr: int, channels: int, subtype: str | None
) -> None:
    path = tone_file(tmp_path / name, 0.5, sr, channels=channels, subtype=subtype)
    info = inspect_audio(path)
    assert (info.sample_rate, info.channels, info.frames) == (sr, channels, sr // 2)
    assert info.duration == pytest.approx(0.5)
    wave, checked = load_checked(path)
    assert checked == info
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == pytest.approx(8000, abs=2)
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.05)  # channels averaged, not summed
    assert np.allclose(load_audio(path), wave, atol=1e-6)


def test_channels_are_averaged(tmp_path: Path) -> None:
    left = (0.8 * np.sin(np.arange(4000) / 10)).astype(np.float32)
    path = tmp_path / "lr.wav"
    sf.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), 16_000, subtype="FLOAT")
    assert np.allclose(load_audio(path), left / 2, atol=1e-6)


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "header_cut",
        "data_cut",
        "random",
        "text",
        "zero_samples",
        "nan_inf",
        "silent",
        "too_long",
        "missing",
    ],
)
def test_each_broken_file_gets_its_reason_and_a_readable_detail(
    broken: dict[str, tuple[Path, str, str]], case: str
) -> None:
    path, reason, phrase = broken[case]
    with pytest.raises(AudioError) as err:
        inspect_audio(path)
    assert err.value.reason == reason
    assert phrase in err.value.detail
    assert str(path) in str(err.value)  # the message names the file
    assert reason in AUDIO_REASONS
    with pytest.raises(AudioError) as again:
        load_checked(path)  # the loading path says the same
    assert again.value.reason == reason


def test_truncated_flac_and_ogg_are_truncated_not_not_audio(tmp_path: Path, tone_file) -> None:
    for name in ("a.flac", "a.ogg"):
        data = tone_file(tmp_path / name, 1.0).read_bytes()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(AudioError) as err:
            inspect_audio(cut)
        assert err.value.reason == "truncated", err.value


def test_unreadable_permissions_are_permission_denied(unreadable) -> None:
    path, as_user = unreadable
    with as_user(), pytest.raises(AudioError) as err:
        inspect_audio(path)
    assert err.value.reason == "permission_denied"
    assert "give this user read permission" in err.value.detail
    inspect_audio(path)  # the file itself is fine for a user allowed to read it


def test_limits_are_configurable(tmp_path: Path, tone_file) -> None:
    path = tone_file(tmp_path / "three.wav", 3.0)
    assert inspect_audio(path).duration == pytest.approx(3.0)
    with pytest.raises(AudioError, match=r"3\.0 s is over the maximum of 2 s") as err:
        inspect_audio(path, max_duration_s=2)
    assert err.value.reason == "too_long"
    quiet = tone_file(tmp_path / "quiet.wav", 0.5, peak=0.0105)  # the quietest FSDD take
    assert inspect_audio(quiet).peak == pytest.approx(0.0105, abs=1e-4)
    with pytest.raises(AudioError) as err:
        inspect_audio(quiet, config=AudioConfig(silence_peak=0.02))
    assert err.value.reason == "silent"


def test_dither_level_noise_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "dither.wav"
    lsb = np.random.default_rng(1).integers(-3, 4, 16_000).astype(np.int16)
    sf.write(str(path), lsb, 16_000, subtype="PCM_16")
    with pytest.raises(AudioError, match="all samples are silent") as err:
        inspect_audio(path)
    assert err.value.reason == "silent"


def test_load_audio_stays_lenient_but_names_unreadable_files(broken) -> None:
    silent, _, _ = broken["silent"]
    assert np.all(load_audio(silent) == 0)
    for case in ("random", "header_cut", "empty", "missing"):
        path, reason, _ = broken[case]
        with pytest.raises(AudioError) as err:
            load_audio(path)
        assert err.value.reason == reason


def test_config_file_holds_the_defaults() -> None:
    config = load_config(AudioConfig, REPO / "configs" / "audio.yaml")
    assert config == AudioConfig()
    assert to_dict(config) == {
        "max_duration_s": 30.0,
        "silence_peak": 0.001,
        "target_sample_rate": 16_000,
    }
    with pytest.raises(ConfigError, match="silence_peak"):
        load_config(AudioConfig, overrides=["silence_peak=2"])
    with pytest.raises(ConfigError, match="max_duration_s"):
        load_config(AudioConfig, overrides=["max_duration_s=fast"])


@pytest.mark.shared
def test_real_fsdd_take_is_resampled_from_8k(shared_data: Path) -> None:
    path = shared_data / "fsdd" / "recordings" / "7_jackson_0.wav"
    wave, info = load_checked(path)
    assert info.sample_rate == 8000 and info.channels == 1
    assert len(wave) == pytest.approx(2 * info.frames, abs=2)
    assert wave.dtype == np.float32


def test_a_pipe_named_wav_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file") as err:
        inspect_audio(fifo)
    assert err.value.reason == "not_audio"
    folder = tmp_path / "dir.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="a folder"):
        inspect_audio(folder)
