"""``earmark corpus synth``: a smart-speaker corpus synthesised locally from the project grammar.

``build_corpus(out_dir, config, seed)`` plans every utterance (text, intent, entities, voice,
noise) as a pure function of ``(config, seed, engines installed)``, renders the audio that is
not already there with espeak-ng and/or flite, and writes the manifests::

    out_dir/audio/*.wav          16 kHz mono 16-bit
    out_dir/seed.jsonl           labelled seed set
    out_dir/pool.jsonl           the unlabelled pool (no text, intent or entities)
    out_dir/pool_answers.jsonl   the pool's true labels: only the simulated annotator and the
                                 benchmarks read it
    out_dir/dev.jsonl, test.jsonl
    out_dir/corpus.json          sizes, voices, engines, intents, entity types, seed, timings,
                                 and per split: voices, intents and noisy utterances

By default every split is drawn from the same voices, noise and intents. ``seed_profile``
narrows the seed split alone (a few voices, less or no noise, a share of the intents) while
pool, dev and test stay broad: the labelled start of an active-learning run then looks like
what a model was first built on, and the pool like the users it then meets, with voices,
noise and intents the seed set lacks (``configs/corpus_al.yaml``). The profile changes the seed split and nothing else: pool, dev
and test (and their audio) are the same as without it.

A second run with the same seed and config reuses the audio (file names carry a hash of what
was rendered) and writes byte-identical manifests.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from earmark.config import to_dict
from earmark.corpus import grammar
from earmark.corpus.noise import NOISE_KINDS, make_noise, mix_at_snr
from earmark.errors import CorpusError
from earmark.manifest import ManifestRow, write_manifest
from earmark.records import Label, LabelSource, Utterance

SAMPLE_RATE = 16_000
SPLITS = ("seed", "pool", "dev", "test")
# Planned in this order so that changing the size of the seed set or pool leaves dev and
# test untouched (a seed_profile's narrow seed split is drawn after all four).
_PLAN_ORDER = ("test", "dev", "seed", "pool")
ENGINES = ("espeak-ng", "flite")
INSTALL_HINT = (
    "install a speech synthesiser: `sudo apt-get install espeak-ng flite` "
    "(both is best: a model trained on one engine does not generalise to the other), "
    "or `pip install earmark[espeak]` for espeak-ng without root"
)

# --- config ------------------------------------------------------------------------------


def _check_range(name: str, pair: tuple[float, ...], low: float, high: float) -> None:
    if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"{name} must be [min, max] with {low} <= min <= max <= {high}")


@dataclass(frozen=True)
class SplitSizes:
    """Utterances per split; ``seed + pool`` is what an ASR benchmark may train on."""

    seed: int = 300
    pool: int = 2700
    dev: int = 300
    test: int = 500

    def __post_init__(self) -> None:
        for name in SPLITS:
            if getattr(self, name) < 0:
                raise ValueError(f"sizes.{name} must be >= 0")

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SPLITS}


@dataclass(frozen=True)
class VoiceGrid:
    """The voice space: a voice is one engine voice x variant x rate x pitch."""

    espeak: tuple[str, ...] = (
        "en-us",
        "en",  # British English; libespeak-ng does not resolve "en-gb" by name
        "en-gb-scotland",
        "en-gb-x-rp",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
        "en-029",
        "en-us-nyc",
    )
    espeak_variants: tuple[str, ...] = (
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
        "klatt",
        "klatt3",
        "Andy",
        "Annie",
    )
    espeak_rates: tuple[int, ...] = (140, 160, 175, 190)  # words per minute
    espeak_pitches: tuple[int, ...] = (35, 45, 55, 65)  # 0-99
    flite: tuple[str, ...] = ("kal", "awb", "rms", "slt")
    flite_stretch: tuple[float, ...] = (0.9, 1.0, 1.15)  # duration_stretch
    flite_f0: tuple[int, ...] = (95, 120, 150, 180)  # int_f0_target_mean (Hz)


@dataclass(frozen=True)
class NoiseConfig:
    """Background noise and level changes, drawn per utterance."""

    prob: float = 0.9  # share of utterances that get background noise
    kinds: tuple[str, ...] = NOISE_KINDS
    snr_db: tuple[float, ...] = (5.0, 30.0)
    gain_db: tuple[float, ...] = (-10.0, 0.0)
    lead_s: tuple[float, ...] = (0.05, 0.4)  # silence before the speech
    trail_s: tuple[float, ...] = (0.05, 0.4)

    def __post_init__(self) -> None:
        if not 0 <= self.prob <= 1:
            raise ValueError("noise.prob must be in [0, 1]")
        unknown = sorted(set(self.kinds) - set(NOISE_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"noise.kinds must be a non-empty subset of {list(NOISE_KINDS)}")
        _check_range("noise.snr_db", self.snr_db, -20, 100)
        _check_range("noise.gain_db", self.gain_db, -60, 20)
        _check_range("noise.lead_s", self.lead_s, 0, 10)
        _check_range("noise.trail_s", self.trail_s, 0, 10)


@dataclass(frozen=True)
class SeedProfile:
    """How the seed split is narrower than pool, dev and test; the defaults narrow nothing."""

    voices: int = 0  # voices the seed split may use, at least one per engine; 0: all of them
    noise_prob: float | None = None  # share of seed utterances with noise; None: noise.prob
    intents: float = 1.0  # share of the grammar's intents the seed split may draw

    def __post_init__(self) -> None:
        if self.voices < 0:
            raise ValueError("seed_profile.voices must be >= 0 (0: every voice)")
        if self.noise_prob is not None and not 0 <= self.noise_prob <= 1:
            raise ValueError("seed_profile.noise_prob must be in [0, 1] or null (noise.prob)")
        if not 0 < self.intents <= 1:
            raise ValueError("seed_profile.intents must be in (0, 1] (1: every intent)")


@dataclass(frozen=True)
class SynthConfig:
    """Everything ``build_corpus`` needs besides the seed (``configs/corpus.yaml``)."""

    sizes: SplitSizes = field(default_factory=SplitSizes)
    engines: tuple[str, ...] = ENGINES  # those wanted; the ones installed are used
    # espeak-ng through: auto (binary, system library, then the wheel) | binary | library | wheel
    espeak_backend: Literal["auto", "library", "binary", "wheel"] = "auto"
    espeak_wheel: bool = True  # with auto: fall back to the espeakng-loader wheel
    n_voices: int = 48  # distinct voices drawn from the grid
    flite_share: float = 0.35  # share of voices and utterances on flite when both exist
    holdout_voices: int = 0  # voices heard only in dev and test
    voices: VoiceGrid = field(default_factory=VoiceGrid)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    seed_profile: SeedProfile = field(default_factory=SeedProfile)
    workers: int = 3  # synthesis threads (each mostly waits on an engine subprocess)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.engines) - set(ENGINES))
        if unknown or not self.engines:
            raise ValueError(f"engines must be a non-empty subset of {list(ENGINES)}")
        if self.n_voices < 1:
            raise ValueError("n_voices must be >= 1")
        if not 0 <= self.flite_share <= 1:
            raise ValueError("flite_share must be in [0, 1]")
        if not 0 <= self.holdout_voices < self.n_voices:
            raise ValueError("holdout_voices must be >= 0 and < n_voices")
        if self.seed_profile.voices > self.n_voices - self.holdout_voices:
            raise ValueError(
                "seed_profile.voices must be <= n_voices - holdout_voices "
                f"({self.n_voices - self.holdout_voices}, the voices a seed utterance can have)"
            )
        if self.workers < 1:
            raise ValueError("workers must be >= 1")


# --- voices and engines ------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker; ``id`` is what the manifests record as the (private) speaker."""

    engine: str
    name: str
    rate: float  # espeak: words per minute; flite: duration stretch
    pitch: int  # espeak: 0-99; flite: mean F0 in Hz (0: the voice's own)

    @property
    def id(self) -> str:
        if self.engine == "espeak-ng":
            return f"espeak-{self.name}-r{int(self.rate)}-p{self.pitch}"
        return f"flite-{self.name}-d{self.rate:.2f}-f{self.pitch}"


def voice_grid(grid: VoiceGrid, engine: str) -> list[Voice]:
    """Every distinct voice of ``engine`` in ``grid``.

    flite's ``rms`` ignores ``int_f0_target_mean``, so its pitch variants would be the same
    voice twice: they are collapsed to one.
    """
    voices: list[Voice] = []
    if engine == "espeak-ng":
        for base in grid.espeak:
            for variant in grid.espeak_variants:
                for rate in grid.espeak_rates:
                    for pitch in grid.espeak_pitches:
                        voices.append(Voice(engine, f"{base}+{variant}", rate, pitch))
    else:
        for name in grid.flite:
            for stretch in grid.flite_stretch:
                for f0 in (0,) if name == "rms" else grid.flite_f0:
                    voices.append(Voice(engine, name, stretch, f0))
    return voices


class Engine:
    """A speech synthesiser: ``synthesize(voice, text) -> (wave float32 (n,), sample_rate)``."""

    name: str = ""
    version: str = ""

    def synthesize(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        raise NotImplementedError


def _read_wav_bytes(data: bytes, what: str) -> tuple[np.ndarray, int]:
    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorpusError(f"{what}: the engine wrote no readable WAV ({exc})") from exc
    return np.asarray(wave if wave.ndim == 1 else wave.mean(axis=1)), int(sr)


def _run(cmd: list[str], what: str) -> bytes:
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()
        raise CorpusError(f"{what}: {cmd[0]} failed (exit {exc.returncode}): {detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CorpusError(f"{what}: {cmd[0]} took more than 60 s") from exc
    return done.stdout


def _version(cmd: list[str]) -> str:
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

    About three times faster than starting the binary per utterance (no process start, no
    reloading of the dictionary), but not bit-exact: the library carries synthesis state
    from one call to the next, so the same text and voice can differ by a few samples.
    Calls are serialised with a lock; ``data_path`` None means the built-in data folder.
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


# --- planning ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendering:
    """How one utterance's audio is made, beyond text and voice; all drawn per utterance."""

    noise: str  # a noise kind or "none"
    babble: str  # with babble noise: a digest of the talkers' voices (part of the file hash)
    snr_db: float
    gain_db: float
    lead_s: float
    trail_s: float
    noise_seed: int


@dataclass(frozen=True)
class PlannedUtterance:
    id: str
    split: str
    label: Label
    voice: Voice
    rendering: Rendering

    @property
    def audio_name(self) -> str:
        """``{id}-{hash}.wav``: the hash covers everything that shapes the audio."""
        spec = json.dumps(
            [self.label.text, self.voice.id, self.rendering.__dict__, SAMPLE_RATE], sort_keys=True
        )
        return f"{self.id}-{hashlib.sha1(spec.encode()).hexdigest()[:10]}.wav"


def choose_voices(config: SynthConfig, engines: Sequence[str], seed: int) -> list[Voice]:
    """``n_voices`` distinct voices drawn from the grid, split between the engines present
    (fewer when an engine's grid is smaller than its share)."""
    rng = random.Random(f"earmark-voices-{seed}")
    n_flite = 0
    if "flite" in engines:
        n_flite = (
            config.n_voices
            if "espeak-ng" not in engines
            else round(config.n_voices * config.flite_share)
        )
    counts = {"flite": n_flite, "espeak-ng": config.n_voices - n_flite}
    chosen: list[Voice] = []
    for engine in ENGINES:
        if engine not in engines or counts[engine] == 0:
            continue
        grid = voice_grid(config.voices, engine)
        if not grid:
            raise CorpusError(f"voices: the {engine} grid is empty")
        # A grid smaller than asked (flite alone has 39 voices) gives all it has.
        chosen += rng.sample(grid, min(counts[engine], len(grid)))
    return chosen


def _holdout(voices: list[Voice], k: int, rng: random.Random) -> set[str]:
    """``k`` voice ids heard only in dev/test, taken from each engine in turn."""
    by_engine: dict[str, list[Voice]] = {}
    for v in voices:
        by_engine.setdefault(v.engine, []).append(v)
    pools = [rng.sample(vs, len(vs)) for _, vs in sorted(by_engine.items())]
    held: set[str] = set()
    while len(held) < k:
        for pool in pools:
            if len(held) < k and len(pool) > 1:  # keep at least one voice per engine to train
                held.add(pool.pop().id)
        if all(len(p) <= 1 for p in pools):
            break
    return held


def babble_voices(config: SynthConfig, seed: int, engines: Sequence[str]) -> list[Voice]:
    """The talkers of babble noise: the corpus voices minus the held-out ones (a held-out
    voice must not leak into training audio, even as background)."""
    voices = choose_voices(config, engines, seed)
    held = _holdout(voices, config.holdout_voices, random.Random(f"earmark-holdout-{seed}"))
    return [v for v in voices if v.id not in held]


@dataclass(frozen=True)
class _Scope:
    """What a split's utterances are drawn from."""

    voices: tuple[Voice, ...]
    intents: tuple[str, ...]
    noise: NoiseConfig


def _seed_voices(
    voices: tuple[Voice, ...], k: int, share: float | None, seed: int
) -> tuple[Voice, ...]:
    """``k`` of ``voices`` for the seed split (all for ``k`` 0), split between the engines in
    the ratio ``share`` but with at least one voice per engine, so that ``k`` is raised to
    the number of engines when it is smaller."""
    if k == 0:
        return voices
    by_engine = {e: [v for v in voices if v.engine == e] for e in ENGINES}
    k = max(k, sum(1 for e in ENGINES if by_engine[e]))
    if k >= len(voices):
        return voices
    flite = 0
    if by_engine["flite"]:
        flite = k if share is None else min(max(round(k * share), 1), k - 1)
    espeak = min(k - flite, len(by_engine["espeak-ng"]))
    counts = {"espeak-ng": espeak, "flite": min(k - espeak, len(by_engine["flite"]))}
    rng = random.Random(f"earmark-seed-voices-{seed}")
    picked = {v.id for e in ENGINES for v in rng.sample(by_engine[e], counts[e])}
    return tuple(v for v in voices if v.id in picked)


def seed_intents(profile: SeedProfile, seed: int) -> tuple[str, ...]:
    """The intents the seed split may draw: a share ``profile.intents`` of the grammar's (at
    least one), chosen by ``seed``; the others are heard only in pool, dev and test."""
    if profile.intents >= 1:
        return grammar.INTENTS
    n = max(1, round(profile.intents * len(grammar.INTENTS)))
    rng = random.Random(f"earmark-seed-intents-{seed}")
    return tuple(sorted(rng.sample(grammar.INTENTS, n)))


def _seed_scope(config: SynthConfig, seed: int, broad: _Scope, share: float | None) -> _Scope:
    """The seed split's scope under ``config.seed_profile`` (``broad`` when it narrows nothing)."""
    profile = config.seed_profile
    noise = broad.noise
    if profile.noise_prob is not None and profile.noise_prob != noise.prob:
        noise = replace(noise, prob=profile.noise_prob)
    return _Scope(
        _seed_voices(broad.voices, profile.voices, share, seed), seed_intents(profile, seed), noise
    )


def _draw_rendering(noise: NoiseConfig, rng: random.Random, babble_key: str) -> Rendering:
    kind = rng.choice(noise.kinds) if rng.random() < noise.prob else "none"
    return Rendering(
        noise=kind,
        babble=babble_key if kind == "babble" else "",
        snr_db=round(rng.uniform(*noise.snr_db[:2]), 2),
        gain_db=round(rng.uniform(*noise.gain_db[:2]), 2),
        lead_s=round(rng.uniform(*noise.lead_s[:2]), 3),
        trail_s=round(rng.uniform(*noise.trail_s[:2]), 3),
        noise_seed=rng.getrandbits(32),
    )


def _plan_split(
    split: str,
    n: int,
    scope: _Scope,
    share: float | None,
    seen: set[tuple[str, str]],
    babble_key: str,
    seed: int,
) -> list[PlannedUtterance]:
    """``n`` utterances of ``split`` from ``scope``, none with a (text, voice) pair in ``seen``
    (which gains the new pairs); engines alternate in the ratio ``share`` (None: one engine)."""
    rng = random.Random(f"earmark-{split}-{seed}")
    by_engine = {e: [v for v in scope.voices if v.engine == e] for e in ENGINES}
    rows: list[PlannedUtterance] = []
    for i in range(n):
        if share is None:
            engine = next(e for e in ENGINES if by_engine[e])
        else:  # a low-discrepancy sequence: exact proportions, both engines early on
            engine = "flite" if int((i + 1) * share + 0.5) > int(i * share + 0.5) else "espeak-ng"
        for _attempt in range(100):
            text, intent, entities = grammar.sample(rng, scope.intents)
            voice = rng.choice(by_engine[engine])
            if (text, voice.id) not in seen:
                break
        else:
            raise CorpusError(f"{split}: cannot find an unused (text, voice) pair")
        seen.add((text, voice.id))
        uid = f"{split}-{i:05d}"
        label = Label(uid, text, intent, entities, LabelSource.SEED)
        rendering = _draw_rendering(scope.noise, rng, babble_key)
        rows.append(PlannedUtterance(uid, split, label, voice, rendering))
    return rows


def plan_corpus(config: SynthConfig, seed: int, engines: Sequence[str]) -> list[PlannedUtterance]:
    """Every utterance of the corpus, a pure function of ``(config, seed, engines)``.

    Within a split, utterances alternate between engines in the ratio ``flite_share`` (so
    every split of three or more hears both); no (text, voice) pair occurs twice anywhere.

    ``config.seed_profile`` narrows the voices, noise and intents of the seed split alone:
    the broad seed split is planned all the same (the pool's draws avoid its pairs), then
    replaced by a narrow one drawn last, so pool, dev and test come out exactly as without
    the profile and their audio is shared with a corpus built without it.
    """
    voices = choose_voices(config, engines, seed)
    held = _holdout(voices, config.holdout_voices, random.Random(f"earmark-holdout-{seed}"))
    voiced = [e for e in ENGINES if any(v.engine == e for v in voices)]
    share = config.flite_share if len(voiced) == 2 else None
    talkers = ",".join(v.id for v in babble_voices(config, seed, engines))
    babble_key = hashlib.sha1(f"{seed}:{talkers}".encode()).hexdigest()[:10]
    trainable = tuple(v for v in voices if v.id not in held)
    broad = {
        split: _Scope(
            tuple(voices) if split in ("dev", "test") else trainable, grammar.INTENTS, config.noise
        )
        for split in SPLITS
    }
    seen: set[tuple[str, str]] = set()
    planned = {
        split: _plan_split(
            split, getattr(config.sizes, split), broad[split], share, seen, babble_key, seed
        )
        for split in _PLAN_ORDER
    }
    narrow = _seed_scope(config, seed, broad["seed"], share)
    if narrow != broad["seed"]:
        seen -= {(u.label.text or "", u.voice.id) for u in planned["seed"]}
        planned["seed"] = _plan_split(
            "seed", config.sizes.seed, narrow, share, seen, babble_key, seed
        )
    return [u for split in SPLITS for u in planned[split]]


# --- rendering ---------------------------------------------------------------------------


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def render(
    utt: PlannedUtterance,
    engine: Engine,
    path: Path,
    *,
    babble_bank: Sequence[np.ndarray] = (),
) -> int:
    """Synthesise ``utt`` into ``path`` (16 kHz mono 16-bit WAV, written atomically).

    The speech is levelled to a peak of 0.5, padded with silence, mixed with noise at the
    planned SNR (plus a faint noise floor) and scaled by the planned gain. Returns the number
    of samples written.
    """
    from earmark.audio import resample, write_audio

    assert utt.label.text is not None  # planned utterances always carry text
    wave, sr = engine.synthesize(utt.voice, utt.label.text)
    wave = resample(wave, sr, SAMPLE_RATE)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak < 1e-4:
        raise CorpusError(f"{utt.id}: voice {utt.voice.id} produced silence for {utt.label.text!r}")
    r = utt.rendering
    lead, trail = int(r.lead_s * SAMPLE_RATE), int(r.trail_s * SAMPLE_RATE)
    speech = np.concatenate(
        [np.zeros(lead, np.float32), 0.5 * wave / peak, np.zeros(trail, np.float32)]
    )
    rng = np.random.default_rng(r.noise_seed)
    if r.noise != "none":
        noise = make_noise(r.noise, speech.size, SAMPLE_RATE, rng, babble_bank=babble_bank)
        speech = mix_at_snr(speech, noise, r.snr_db)
    # A floor of about -80 dBFS: engines write runs of exact zeros, which no microphone does.
    speech = speech + 1e-4 * rng.standard_normal(speech.size).astype(np.float32)
    speech = speech * _db(r.gain_db)
    peak = float(np.max(np.abs(speech)))
    if peak > 0.99:  # loud noise at low SNR: scale down rather than clip
        speech *= 0.99 / peak
    tmp = path.with_name(f".{path.name}.tmp.wav")
    write_audio(tmp, speech, SAMPLE_RATE)
    os.replace(tmp, path)
    return int(speech.size)


def babble_bank(engines: dict[str, Engine], voices: Sequence[Voice], seed: int) -> list[np.ndarray]:
    """Twelve grammar sentences in random voices, 16 kHz, unit peak: talkers for babble noise."""
    from earmark.audio import resample

    rng = random.Random(f"earmark-babble-{seed}")
    bank: list[np.ndarray] = []
    for _ in range(12):
        voice = rng.choice(list(voices))
        text = " ".join(grammar.sample(rng)[0] for _ in range(3))
        wave, sr = engines[voice.engine].synthesize(voice, text)
        wave = resample(wave, sr, SAMPLE_RATE)
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        if peak > 0:
            bank.append(wave / peak)
    return bank


# --- the corpus --------------------------------------------------------------------------

_AUDIO_NAME = re.compile(r"^(seed|pool|dev|test)-\d{5}-[0-9a-f]{10}\.wav$")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CorpusSummary:
    """What ``build_corpus`` did; ``info`` is what it wrote to ``corpus.json``."""

    out_dir: Path
    info: dict[str, Any]
    rendered: int
    reused: int
    seconds: float


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Resample with one intra-op thread: our threads already run in parallel, and torch's
    own threads fighting over two busy cores made resampling 50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _render_missing(
    todo: list[PlannedUtterance],
    engines: dict[str, Engine],
    audio_dir: Path,
    config: SynthConfig,
    bank_fn: Callable[[], list[np.ndarray]],
    progress: Callable[[], None],
) -> None:
    """Render ``todo`` with ``config.workers`` threads; the first failure cancels the rest."""
    with _one_torch_thread(), ThreadPoolExecutor(max_workers=config.workers) as pool:
        bank = bank_fn() if any(u.rendering.noise == "babble" for u in todo) else []
        futures = [
            pool.submit(
                render, u, engines[u.voice.engine], audio_dir / u.audio_name, babble_bank=bank
            )
            for u in todo
        ]
        try:
            for future in as_completed(futures):
                future.result()
                progress()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _rows(utts: list[PlannedUtterance], audio_dir: Path) -> list[ManifestRow]:
    rows = []
    for u in utts:
        path = audio_dir / u.audio_name
        frames = sf.info(str(path)).frames
        utt = Utterance(u.id, str(path), u.voice.id, frames / SAMPLE_RATE, SAMPLE_RATE)
        rows.append(ManifestRow(utt, u.label))
    return rows


def build_corpus(
    out_dir: str | Path,
    config: SynthConfig | None = None,
    seed: int = 0,
    *,
    progress: Progress | None = None,
) -> CorpusSummary:
    """Build (or bring up to date) the synthetic corpus in ``out_dir``; see the module doc.

    ``progress(done, total)`` is called as utterances are ready (reused ones count at once).
    Audio files of this corpus's naming scheme that the plan no longer uses are removed.
    """
    config = config or SynthConfig()
    start = time.perf_counter()
    engines = find_engines(
        config.engines, espeak_backend=config.espeak_backend, use_wheel=config.espeak_wheel
    )
    names = [e for e in ENGINES if e in engines]
    plan = plan_corpus(config, seed, names)
    out = Path(out_dir)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    wanted = {u.audio_name for u in plan}
    for stale in audio_dir.iterdir():
        if _AUDIO_NAME.match(stale.name) and stale.name not in wanted:
            stale.unlink()
    todo = [u for u in plan if not (audio_dir / u.audio_name).is_file()]
    done = len(plan) - len(todo)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(plan))

    if progress is not None:
        progress(done, len(plan))
    talkers = babble_voices(config, seed, names)

    def bank_fn() -> list[np.ndarray]:  # built only when some utterance needs babble
        return babble_bank(engines, talkers, seed)

    _render_missing(todo, engines, audio_dir, config, bank_fn, tick)

    rows = {s: _rows([u for u in plan if u.split == s], audio_dir) for s in SPLITS}
    for split in ("seed", "dev", "test"):
        write_manifest(out / f"{split}.jsonl", rows[split])
    write_manifest(out / "pool.jsonl", [ManifestRow(r.utterance) for r in rows["pool"]])
    write_manifest(out / "pool_answers.jsonl", rows["pool"])

    seconds = time.perf_counter() - start
    audio_seconds = sum(r.utterance.duration or 0.0 for split in rows.values() for r in split)
    info = _corpus_info(config, seed, engines, plan, seconds, len(todo), audio_seconds)
    (out / "corpus.json").write_text(json.dumps(info, indent=2) + "\n")
    return CorpusSummary(out, info, len(todo), len(plan) - len(todo), seconds)


def _split_counts(utts: list[PlannedUtterance]) -> dict[str, int]:
    return {
        "utterances": len(utts),
        "voices": len({u.voice.id for u in utts}),
        "intents": len({u.label.intent for u in utts}),
        "noisy": sum(u.rendering.noise != "none" for u in utts),
    }


def _corpus_info(
    config: SynthConfig,
    seed: int,
    engines: dict[str, Engine],
    plan: list[PlannedUtterance],
    seconds: float,
    rendered: int,
    audio_seconds: float,
) -> dict[str, Any]:
    voices = Counter(u.voice.id for u in plan)
    split_voices = {s: sorted({u.voice.id for u in plan if u.split == s}) for s in SPLITS}
    intents = sorted({u.label.intent for u in plan if u.label.intent})
    seed_heard = {u.label.intent for u in plan if u.split == "seed"}
    return {
        "seed": seed,
        "sizes": {s: sum(u.split == s for u in plan) for s in SPLITS},
        "total": len(plan),
        "engines": {
            name: {"version": e.version, "kind": type(e).__name__} for name, e in engines.items()
        },
        "voices": dict(sorted(voices.items())),
        "n_voices": len(voices),
        "voices_per_split": {s: len(v) for s, v in split_voices.items()},
        "holdout_voices": sorted(
            set(split_voices["dev"] + split_voices["test"])
            - set(split_voices["seed"] + split_voices["pool"])
        ),
        "intents": intents,
        # How narrow the seed split is next to the others (see seed_profile).
        "splits": {s: _split_counts([u for u in plan if u.split == s]) for s in SPLITS},
        "intents_not_in_seed": [i for i in intents if i not in seed_heard],
        "entity_types": sorted({e.type for u in plan for e in u.label.entities}),
        "grammar": {"intents": len(grammar.INTENTS), "entity_types": len(grammar.ENTITY_TYPES)},
        "noise": dict(sorted(Counter(u.rendering.noise for u in plan).items())),
        "audio_hours": round(audio_seconds / 3600, 3),
        "rendered": rendered,
        "reused": len(plan) - rendered,
        "build_seconds": round(seconds, 2),
        "config": to_dict(config),
    }


__all__ = [
    "ENGINES",
    "SPLITS",
    "CorpusSummary",
    "Engine",
    "NoiseConfig",
    "SeedProfile",
    "SplitSizes",
    "SynthConfig",
    "Voice",
    "VoiceGrid",
    "build_corpus",
    "find_engines",
    "plan_corpus",
    "render",
    "seed_intents",
    "voice_grid",
]
