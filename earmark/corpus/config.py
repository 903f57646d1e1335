"""What ``build_corpus`` is configured by: one frozen dataclass per concern.

``SynthConfig`` is the whole of it (``configs/corpus.yaml`` spells out its defaults);
``SplitSizes``, ``VoiceGrid``, ``NoiseConfig``, ``SeedProfile`` and ``Deployment`` are its
parts. Every ``__post_init__`` raises ``ValueError`` naming the key when a value is out of range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from earmark.corpus.noise import NOISE_KINDS

SAMPLE_RATE = 16_000
SPLITS = ("seed", "pool", "dev", "test")
ENGINES = ("espeak-ng", "flite")


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
class Deployment:
    """A launch: the seed split is the source domain a base model is built on (its
    ``seed_profile`` voices, noise and intents), and pool, dev and test mix that domain with
    a ``shifted_share`` drawn outside it (the other voices, with the corpus's noise and every
    intent). Each row's manifest carries ``domain: source | shifted``. 0: no scenario."""

    shifted_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.shifted_share <= 1:
            raise ValueError("deployment.shifted_share must be in [0, 1] (0: no scenario)")


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
    deployment: Deployment = field(default_factory=Deployment)
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
        if self.deployment.shifted_share > 0 and self.seed_profile.voices == 0:
            raise ValueError(
                "deployment.shifted_share needs seed_profile.voices > 0: the source domain is "
                "a few voices, and a shifted utterance is spoken by one of the others"
            )
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
