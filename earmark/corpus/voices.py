"""The corpus's synthetic speakers: the voice grid, the voices a corpus draws from it, and
which of them are held out of training (heard only in dev and test)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from earmark.core.errors import CorpusError
from earmark.corpus.config import ENGINES, SynthConfig, VoiceGrid


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


def holdout_ids(voices: Sequence[Voice], k: int, seed: int) -> set[str]:
    """Up to ``k`` ids of ``voices`` to hear only in dev/test, taken from each engine in turn
    and never an engine's last voice (fewer than ``k`` when that runs out); a pure function
    of the arguments."""
    rng = random.Random(f"earmark-holdout-{seed}")
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
    held = holdout_ids(voices, config.holdout_voices, seed)
    return [v for v in voices if v.id not in held]
