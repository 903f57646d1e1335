"""Audio files in and out with soundfile alone: read as mono float32, check, write.

``inspect_audio`` says whether a file is usable before anything trains on it: every way a
file can be broken maps to one stable reason code (``AUDIO_REASONS``) and a detail that says
what is wrong and what to do. ``read_checked`` does the same checks while reading, in one
pass over the samples. Resampling to the models' 16 kHz is ``earmark.dsp``'s (torchaudio),
so that this module, the CLI and ``labelling`` never load torch.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from earmark.core.errors import AudioError

TARGET_SR = 16_000

#: Reason codes ``AudioError.reason`` takes for a file that cannot be used, in check order.
AUDIO_REASONS = (
    "not_found",
    "permission_denied",
    "empty_file",
    "not_audio",
    "truncated",
    "zero_samples",
    "too_long",
    "nan_inf",
    "silent",
)

_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
# Leading bytes of containers soundfile reads: a file that starts like one of these but does
# not open is damaged (truncated), not "not audio".
_MAGIC = (
    (b"RIFF", "WAV"),
    (b"RIFX", "WAV"),
    (b"RF64", "WAV"),
    (b"fLaC", "FLAC"),
    (b"OggS", "OGG"),
    (b"FORM", "AIFF"),
    (b"ID3", "MP3"),
    (b".snd", "AU"),
    (b"caff", "CAF"),
)
_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class AudioConfig:
    """Limits for accepting audio (``configs/audio.yaml`` holds the same defaults).

    ``max_duration_s``: longer files are rejected (``too_long``): a speech-assistant request
    is a few seconds, and a long file is usually a whole session recorded by mistake.
    ``silence_peak``: a file whose largest absolute sample (float scale, full scale = 1.0) is
    below this is ``silent``. 0.001 is -60 dBFS, about 33 steps of 16-bit PCM: dither or a
    disconnected microphone, never speech (the quietest FSDD recording peaks at 0.0105).
    """

    max_duration_s: float = 30.0
    silence_peak: float = 0.001
    target_sample_rate: int = TARGET_SR

    def __post_init__(self) -> None:
        if not self.max_duration_s > 0:
            raise ValueError(f"max_duration_s must be > 0, got {self.max_duration_s}")
        if not 0 <= self.silence_peak < 1:
            raise ValueError(f"silence_peak must be in [0, 1), got {self.silence_peak}")
        if self.target_sample_rate <= 0:
            raise ValueError(f"target_sample_rate must be > 0, got {self.target_sample_rate}")


@dataclass(frozen=True)
class AudioInfo:
    """What ``inspect_audio`` found: a usable file's facts as stored (before resampling)."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    peak: float

    @property
    def duration(self) -> float:
        """Seconds of audio: ``frames / sample_rate``."""
        return self.frames / self.sample_rate


def to_mono(data: np.ndarray) -> np.ndarray:
    """``(n_samples,)`` or ``(n_samples, channels)`` -> ``(n_samples,)`` by averaging channels."""
    return data if data.ndim == 1 else data.mean(axis=1)


# --- diagnosis -------------------------------------------------------------------------------


def _open_bytes(path: str) -> tuple[int, bytes]:
    """``(file size, first 64 KiB)``; raises ``AudioError`` for missing/unreadable/empty files."""
    try:
        st = os.stat(path)
        size = st.st_size
        if stat.S_ISDIR(st.st_mode):
            raise AudioError(path, "not_audio", "this is a folder, not an audio file")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise AudioError(path, "not_audio", "not a regular file (a pipe or device?)")
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except FileNotFoundError as exc:
        raise AudioError(
            path,
            "not_found",
            "no such file; check the path (relative paths are read against the manifest's folder)",
        ) from exc
    except PermissionError as exc:
        raise AudioError(
            path,
            "permission_denied",
            f"cannot read the file ({exc.strerror}); give this user read permission "
            "(e.g. chmod a+r) or copy the file somewhere readable",
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise AudioError(path, "permission_denied", f"cannot read the file ({exc})") from exc
        raise AudioError(
            path, "not_audio", f"cannot read the file as a regular file ({exc})"
        ) from exc
    if size == 0:
        raise AudioError(path, "empty_file", "the file is 0 bytes; re-export or re-copy it")
    return size, head


def _magic_format(head: bytes) -> str | None:
    if head.startswith(b"RIFF") and len(head) >= 12 and head[8:12] != b"WAVE":
        return None  # RIFF is also AVI, WebP...: only WAVE is audio
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3"  # an MPEG audio frame sync without an ID3 tag
    return None


def _wav_data_shortfall(head: bytes, size: int) -> tuple[int, int] | None:
    """For a RIFF/WAVE file: ``(bytes the data chunk claims, bytes present)`` when it claims more.

    libsndfile quietly reads what is there, so a copy cut short would pass unnoticed.
    Streaming writers put 0 or 0xFFFFFFFF in the size field; those are not checked.
    """
    if not (head.startswith(b"RIFF") and head[8:12] == b"WAVE"):
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (chunk_size,) = struct.unpack("<I", head[pos + 4 : pos + 8])
        if chunk_id == b"data":
            present = size - (pos + 8)
            if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                return None
            return chunk_size, present
        pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _classify_open_error(path: str, head: bytes, exc: Exception) -> AudioError:
    fmt = _magic_format(head)
    if fmt is None:
        return AudioError(
            path,
            "not_audio",
            f"not an audio file soundfile can read ({exc}); it may be text or another format "
            "renamed to an audio extension: convert it to WAV or FLAC",
        )
    return AudioError(
        path,
        "truncated",
        f"starts like {fmt} audio but cannot be opened ({exc}); the file was probably cut short "
        "(an interrupted copy or download): re-copy or re-export it",
    )


def _open_info(path: str, config: AudioConfig) -> tuple[sf.SoundFile, bytes]:
    size, head = _open_bytes(path)
    try:
        snd = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise AudioError(path, "permission_denied", f"cannot read the file ({exc})") from exc
        raise _classify_open_error(path, head, exc) from exc
    try:
        shortfall = _wav_data_shortfall(head, size)
        if shortfall is not None:
            claimed, present = shortfall
            raise AudioError(
                path,
                "truncated",
                f"the WAV header promises {claimed} bytes of audio but only {present} are "
                "there; the file was cut short (an interrupted copy or download): re-copy or "
                "re-export it",
            )
        if snd.frames <= 0:
            raise AudioError(
                path,
                "zero_samples",
                "the header is valid but the file holds no audio samples; record it again",
            )
        duration = snd.frames / snd.samplerate
        if duration > config.max_duration_s:
            raise AudioError(
                path,
                "too_long",
                f"{duration:.1f} s is over the maximum of {config.max_duration_s:g} s; cut it "
                "into single requests or raise the limit (--max-duration / max_duration_s)",
            )
    except BaseException:
        snd.close()
        raise
    return snd, head


def _scan(path: str, snd: sf.SoundFile, keep: bool) -> tuple[float, np.ndarray | None]:
    """Decode every block once: peak, NaN/inf count, and the mono wave when ``keep``."""
    peak = 0.0
    bad = 0
    first_bad: int | None = None
    pieces: list[np.ndarray] = []
    done = 0
    check_finite = snd.subtype in _FLOAT_SUBTYPES
    try:
        for block in snd.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            if check_finite:
                finite = np.isfinite(block)
                if not finite.all():
                    n_bad = int(block.size - np.count_nonzero(finite))
                    if first_bad is None:
                        first_bad = done + int(np.argmin(finite.all(axis=1)))
                    bad += n_bad
                    block = np.where(finite, block, 0.0).astype(np.float32)
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
            if keep:
                pieces.append(to_mono(block) if block.shape[1] > 1 else block[:, 0])
            done += len(block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            path,
            "truncated",
            f"decoding failed after {done} of {snd.frames} frames ({exc}); the file is cut "
            "short or damaged: re-copy or re-export it",
        ) from exc
    if bad:
        first_bad = first_bad or 0
        raise AudioError(
            path,
            "nan_inf",
            f"{bad} sample(s) are NaN or infinite (first at {first_bad / snd.samplerate:.3f} s); "
            "the program that wrote it produced invalid numbers: re-export it",
        )
    wave = np.concatenate(pieces).astype(np.float32, copy=False) if keep and pieces else None
    return peak, wave


def _check_peak(path: str, peak: float, config: AudioConfig) -> None:
    if peak < config.silence_peak:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.0f}"
        raise AudioError(
            path,
            "silent",
            f"all samples are silent (peak {peak:.2g}, {level} dBFS, below the "
            f"{config.silence_peak:g} threshold); check the microphone and record it again",
        )


def resolve_config(config: AudioConfig | None, max_duration_s: float | None) -> AudioConfig:
    config = config or AudioConfig()
    if max_duration_s is not None:
        config = AudioConfig(max_duration_s, config.silence_peak, config.target_sample_rate)
    return config


def inspect_audio(
    path: str | Path,
    *,
    max_duration_s: float | None = None,
    config: AudioConfig | None = None,
) -> AudioInfo:
    """Check that ``path`` is usable audio and return its facts; decodes the samples once.

    Raises ``AudioError(path, reason, detail)`` with ``reason`` one of ``AUDIO_REASONS``.
    ``max_duration_s`` overrides ``config.max_duration_s`` (default ``AudioConfig()``).
    Memory stays flat: samples are read in blocks of 65,536 frames.
    """
    cfg = resolve_config(config, max_duration_s)
    path = str(path)
    snd, _ = _open_info(path, cfg)
    with snd:
        peak, _ = _scan(path, snd, keep=False)
        info = AudioInfo(
            path, snd.samplerate, snd.channels, snd.frames, snd.format, snd.subtype, peak
        )
    _check_peak(path, peak, cfg)
    return info


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = TARGET_SR) -> None:
    """Write mono float32 ``wave`` as 16-bit PCM WAV."""
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sample_rate, subtype="PCM_16")


def read_checked(
    path: str | Path,
    *,
    config: AudioConfig | None = None,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, AudioInfo]:
    """``inspect_audio`` that keeps the samples: ``(wave, info)``, ``wave`` mono float32 at
    the stored rate, shape ``(n_samples,)`` (``earmark.dsp.load_checked`` resamples it)."""
    cfg = resolve_config(config, max_duration_s)
    path = str(path)
    snd, _ = _open_info(path, cfg)
    with snd:
        peak, wave = _scan(path, snd, keep=True)
        info = AudioInfo(
            path, snd.samplerate, snd.channels, snd.frames, snd.format, snd.subtype, peak
        )
    _check_peak(path, peak, cfg)
    if wave is None:  # unreachable: frames > 0 was checked on open
        wave = np.zeros(0, dtype=np.float32)
    return wave, info


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any readable file as ``(mono float32 wave (n_samples,), stored sample rate)``; raises
    ``AudioError`` naming the file with a reason from ``AUDIO_REASONS`` when it cannot be read."""
    path = str(path)
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        _, head = _open_bytes(path)  # raises not_found / permission_denied / empty_file
        raise _classify_open_error(path, head, exc) from exc
    return to_mono(np.asarray(data)), int(sr)
