"""Speech synthesisers behind the corpus: espeak-ng (binary or in-process library) and flite.

``find_engines`` returns the installed ones by name; each is an ``Engine`` whose
``synthesize(voice, text)`` gives ``(wave float32 (n,), sample_rate)`` at the engine's rate.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import io
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import soundfile as sf

from earmark.core.errors import CorpusError
from earmark.corpus.config import ENGINES
from earmark.corpus.voices import Voice

INSTALL_HINT = (
    "install a speech synthesiser: `sudo apt-get install espeak-ng flite` "
    "(both is best: a model trained on one engine does not generalise to the other), "
    "or `pip install earmark[espeak]` for espeak-ng without root"
)


class Engine:
    """A speech synthesiser: ``synthesize(voice, text) -> (wave float32 (n,), sample_rate)``."""

    name: str = ""
    version: str = ""

    def synthesize(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        raise NotImplementedError


def _read_wav_bytes(data: bytes, what: str) -> tuple[np.ndarray, int]:
    """WAV bytes -> ``(mono float32 wave (n,), sample_rate)``; ``CorpusError`` naming ``what``."""
    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorpusError(f"{what}: the engine wrote no readable WAV ({exc})") from exc
    return np.asarray(wave if wave.ndim == 1 else wave.mean(axis=1)), int(sr)


def _run(cmd: list[str], what: str) -> bytes:
    """``cmd``'s stdout; ``CorpusError`` naming ``what`` when it fails or hangs."""
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()
        raise CorpusError(f"{what}: {cmd[0]} failed (exit {exc.returncode}): {detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CorpusError(f"{what}: {cmd[0]} took more than 60 s") from exc
    return done.stdout


def _version(cmd: list[str]) -> str:
    """The first ``x.y[.z]`` that ``cmd`` prints, or "unknown"."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(r"\d+\.\d+(\.\d+)?", out)
    return match.group(0) if match else "unknown"


class EspeakCli(Engine):
    """The ``espeak-ng`` binary, WAV on stdout."""

    name = "espeak-ng"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.version = _version([binary, "--version"])

    def synthesize(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        cmd = [self.binary, "-v", voice.name, "-s", str(int(voice.rate)), "-p", str(voice.pitch)]
        data = _run([*cmd, "--stdout", text], f"voice {voice.id}")
        return _read_wav_bytes(data, f"voice {voice.id}")


class FliteCli(Engine):
    """The ``flite`` binary; ``-o /dev/stdout`` gets the WAV without a temporary file.

    flite silently speaks with its default voice when asked for one it lacks, so voice names
    are checked against ``flite -lv`` (a path to a ``.flitevox`` file is passed through).
    """

    name = "flite"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.version = _version([binary, "--version"])
        listing = _run([binary, "-lv"], "flite -lv").decode(errors="replace")
        self.voices = frozenset(listing.partition(":")[2].split())

    def synthesize(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        if voice.name not in self.voices and not voice.name.endswith(".flitevox"):
            known = ", ".join(sorted(self.voices))
            raise CorpusError(f"voice {voice.id}: flite has no voice {voice.name!r} ({known})")
        cmd = [self.binary, "-voice", voice.name, "--setf", f"duration_stretch={voice.rate}"]
        if voice.pitch:
            cmd += ["--setf", f"int_f0_target_mean={voice.pitch}"]
        data = _run([*cmd, "-t", text, "-o", "/dev/stdout"], f"voice {voice.id}")
        return _read_wav_bytes(data, f"voice {voice.id}")


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakLibrary(Engine):
    """libespeak-ng in-process through ctypes: the system's, or the ``espeakng-loader`` wheel's.

    Saves starting a process and reloading the dictionary per utterance, but is not
    bit-exact: the library carries synthesis state from one call to the next, so the same
    text and voice can differ by a few samples. Calls are serialised with a lock;
    ``data_path`` None means the built-in data folder.
    """

    name = "espeak-ng"
    _AUDIO_OUTPUT_SYNCHRONOUS = 2
    _RATE, _PITCH = 1, 3
    _POS_CHARACTER = 1
    _CHARS_UTF8 = 1

    def __init__(self, library_path: str, data_path: str | None) -> None:
        self.lib = ctypes.CDLL(library_path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self.sample_rate = self.lib.espeak_Initialize(
            self._AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode() if data_path else None, 0
        )
        if self.sample_rate <= 0:
            raise CorpusError(f"libespeak-ng at {library_path} failed to start (data {data_path})")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lock = threading.Lock()
        version_fn = self.lib.espeak_Info
        version_fn.restype = ctypes.c_char_p
        version_fn.argtypes = [ctypes.c_void_p]
        self.version = (version_fn(None) or b"unknown").decode()

    def _collect(self, wav: Any, n: int, _events: Any) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def synthesize(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise CorpusError(f"voice {voice.id}: libespeak-ng does not know {voice.name!r}")
            self.lib.espeak_SetParameter(self._RATE, int(voice.rate), 0)
            self.lib.espeak_SetParameter(self._PITCH, voice.pitch, 0)
            self._chunks = []
            data = text.encode() + b"\0"
            status = self.lib.espeak_Synth(
                data, len(data), 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None
            )
            if status != 0:
                raise CorpusError(f"voice {voice.id}: libespeak-ng failed (status {status})")
            chunks, self._chunks = self._chunks, []
        wave = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return wave.astype(np.float32) / 32768.0, self.sample_rate


@cache
def _espeak_library(library_path: str, data_path: str | None) -> EspeakLibrary:
    """One engine per library: libespeak-ng has global state, so it must not be set up twice."""
    return EspeakLibrary(library_path, data_path)


def _espeak(backend: str, use_wheel: bool, search_path: str | None) -> Engine | None:
    """espeak-ng by ``backend``: "binary", "library" (the system's libespeak-ng, in-process),
    "wheel" (``espeakng-loader``) or "auto" (those in this order; the wheel only with
    ``use_wheel``).

    Only the binary is bit-exact from run to run: libespeak-ng carries state from one
    utterance to the next, so in-process audio differs by a few samples between builds.
    """
    if backend in ("auto", "binary"):
        binary = shutil.which("espeak-ng", path=search_path)
        if binary:
            return EspeakCli(binary)
    if backend in ("auto", "library"):
        library = ctypes.util.find_library("espeak-ng")
        if library:
            with contextlib.suppress(OSError, CorpusError):
                return _espeak_library(library, None)
    if backend == "wheel" or (backend == "auto" and use_wheel):
        try:
            import espeakng_loader  # type: ignore[import-not-found]
        except ImportError:
            return None
        return _espeak_library(espeakng_loader.get_library_path(), espeakng_loader.get_data_path())
    return None


def find_engines(
    wanted: Sequence[str] = ENGINES,
    *,
    espeak_backend: str = "auto",
    use_wheel: bool = True,
    search_path: str | None = None,
) -> dict[str, Engine]:
    """The wanted engines that are installed, by name; ``search_path`` replaces ``$PATH``.

    See ``_espeak`` for ``espeak_backend``. Raises ``CorpusError`` saying what to install
    when none of ``wanted`` is found.
    """
    found: dict[str, Engine] = {}
    if "espeak-ng" in wanted and (espeak := _espeak(espeak_backend, use_wheel, search_path)):
        found["espeak-ng"] = espeak
    if "flite" in wanted and (binary := shutil.which("flite", path=search_path)):
        found["flite"] = FliteCli(binary)
    if not found:
        raise CorpusError(f"no speech synthesiser found among {', '.join(wanted)}: {INSTALL_HINT}")
    return found
