"""Fixtures for the corpus tests: real audio files and every way of breaking them."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

NOBODY = 65534


def tone(
    seconds: float = 0.5, sr: int = 16_000, *, peak: float = 0.5, channels: int = 1
) -> np.ndarray:
    """A 220 Hz sine, ``(frames,)`` or ``(frames, channels)`` float32."""
    t = np.arange(int(seconds * sr)) / sr
    wave = (peak * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def write_tone(path: Path, seconds: float = 0.5, sr: int = 16_000, **kwargs) -> Path:
    """Write a tone with soundfile (format from the suffix; ``subtype`` passes through)."""
    subtype = kwargs.pop("subtype", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sr, **kwargs), sr, subtype=subtype)
    return path


def _wav_bytes(seconds: float = 0.5) -> bytes:
    path = Path(tempfile.mkdtemp()) / "x.wav"
    write_tone(path, seconds)
    data = path.read_bytes()
    shutil.rmtree(path.parent)
    return data


def make_broken(folder: Path) -> dict[str, tuple[Path, str, str]]:
    """Broken files in ``folder``: case -> (path, expected reason, phrase of the detail)."""
    folder.mkdir(parents=True, exist_ok=True)
    wav = _wav_bytes()
    cases: dict[str, tuple[Path, str, str]] = {}

    def put(case: str, name: str, data: bytes, reason: str, phrase: str) -> None:
        path = folder / name
        path.write_bytes(data)
        cases[case] = (path, reason, phrase)

    put("empty", "empty.wav", b"", "empty_file", "the file is 0 bytes")
    put("header_cut", "header_cut.wav", wav[:30], "truncated", "starts like WAV audio")
    put("data_cut", "data_cut.wav", wav[: len(wav) // 2], "truncated", "the WAV header promises")
    rng = np.random.default_rng(0)
    put("random", "random.wav", rng.bytes(4000), "not_audio", "not an audio file")
    put("text", "notes.wav", b"this is a text file, renamed\n" * 20, "not_audio", "not an audio")
    zero = folder / "zero.wav"
    sf.write(str(zero), np.zeros(0, dtype=np.float32), 16_000, subtype="PCM_16")
    cases["zero_samples"] = (zero, "zero_samples", "holds no audio samples")
    nan = folder / "nan.wav"
    wave = tone(0.5)
    wave[100], wave[200], wave[300] = np.nan, np.inf, -np.inf
    sf.write(str(nan), wave, 16_000, subtype="FLOAT")
    cases["nan_inf"] = (nan, "nan_inf", "3 sample(s) are NaN or infinite")
    silent = folder / "silent.wav"
    sf.write(str(silent), np.zeros(8000, dtype=np.float32), 16_000, subtype="PCM_16")
    cases["silent"] = (silent, "silent", "all samples are silent")
    cases["too_long"] = (
        write_tone(folder / "long.flac", 31.0, 8000),
        "too_long",
        "31.0 s is over the maximum of 30 s",
    )
    cases["missing"] = (folder / "missing.wav", "not_found", "no such file")
    return cases


@pytest.fixture
def tone_file() -> Callable[..., Path]:
    """``tone_file(path, seconds=0.5, sr=16000, peak=0.5, channels=1, subtype=None) -> path``."""
    return write_tone


@pytest.fixture
def broken(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    return make_broken(tmp_path / "broken")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary folder every user may enter and write (for the unreadable-file tests)."""
    path = Path(tempfile.mkdtemp(prefix="earmark-perm-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def unreadable(
    open_dir: Path,
) -> Iterator[tuple[Path, Callable[[], contextlib.AbstractContextManager]]]:
    """``(path, as_user)``: a real WAV with mode 000, and a context in which reading it fails.

    Root reads any file whatever its mode, so as root ``as_user()`` switches the effective
    user to ``nobody`` (the real user stays root and switches back); the failure is the
    kernel's, not a simulation.
    """
    path = write_tone(open_dir / "locked.wav")
    path.chmod(0)

    @contextlib.contextmanager
    def as_user() -> Iterator[None]:
        if os.geteuid() != 0:
            yield
            return
        try:
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
        except OSError as exc:  # a container that took CAP_SETUID away from root
            os.setegid(0)
            pytest.skip(
                f"running as root without the right to switch users ({exc}), so no "
                "file can be made unreadable"
            )
        try:
            yield
        finally:
            os.seteuid(0)
            os.setegid(0)

    yield path, as_user
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
