"""The corpus plan: every utterance's text, labels, voice and rendering, before any audio.

``plan_corpus(config, seed, engines)`` is a pure function; ``build_corpus`` renders its
``PlannedUtterance`` rows, whose ``audio_name`` hashes everything that shapes the audio.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from earmark.core.errors import CorpusError
from earmark.core.records import Label, LabelSource
from earmark.corpus import grammar
from earmark.corpus.config import (
    ENGINES,
    SAMPLE_RATE,
    SPLITS,
    NoiseConfig,
    SeedProfile,
    SynthConfig,
)
from earmark.corpus.voices import Voice, babble_voices, choose_voices, holdout_ids

# Planned in this order so that changing the size of the seed set or pool leaves dev and
# test untouched (a seed_profile's narrow seed split is drawn after all four).
_PLAN_ORDER = ("test", "dev", "seed", "pool")


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
    """One utterance of the plan: its seed label (text, intent, entities), voice and rendering."""

    id: str
    split: str
    label: Label
    voice: Voice
    rendering: Rendering
    domain: str = ""  # "source" or "shifted" in a deployment scenario, else ""

    @property
    def fields(self) -> MappingProxyType[str, str]:
        """Its manifest's extra fields: the engine, the noise kind and (in a deployment
        scenario) the domain, for ``earmark evaluate --by engine|noise|domain`` (the voice is
        the manifest's private speaker)."""
        fields = {"engine": self.voice.engine, "noise": self.rendering.noise}
        return MappingProxyType({**fields, **({"domain": self.domain} if self.domain else {})})

    @property
    def audio_name(self) -> str:
        """``{id}-{hash}.wav``: the hash covers everything that shapes the audio."""
        spec = json.dumps(
            [self.label.text, self.voice.id, self.rendering.__dict__, SAMPLE_RATE], sort_keys=True
        )
        return f"{self.id}-{hashlib.sha1(spec.encode()).hexdigest()[:10]}.wav"


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


def draw_rendering(noise: NoiseConfig, rng: random.Random, babble_key: str) -> Rendering:
    """One utterance's rendering drawn from ``rng`` under ``noise``; ``babble_key`` is recorded
    only when the noise drawn is babble."""
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


@dataclass(frozen=True)
class _Shift:
    """A deployment split's other part: ``share`` of its rows drawn from ``scope``."""

    scope: _Scope
    share: float


def _takes(i: int, share: float) -> bool:
    """Whether item ``i`` of a low-discrepancy sequence falls in a part of size ``share``:
    exact proportions, the part present early on."""
    return int((i + 1) * share + 0.5) > int(i * share + 0.5)


def _plan_split(
    split: str,
    n: int,
    scope: _Scope,
    share: float | None,
    seen: set[tuple[str, str]],
    babble_key: str,
    seed: int,
    shift: _Shift | None = None,
) -> list[PlannedUtterance]:
    """``n`` utterances of ``split`` from ``scope``, none with a (text, voice) pair in ``seen``
    (which gains the new pairs); engines alternate in the ratio ``share`` (None: one engine).
    With ``shift``, its share of the rows come from its scope (domain "shifted", the others
    "source")."""
    rng = random.Random(f"earmark-{split}-{seed}")
    scopes = {"source": scope, "shifted": shift.scope} if shift else {"": scope}
    voices_of = {
        d: {e: [v for v in sc.voices if v.engine == e] for e in ENGINES} for d, sc in scopes.items()
    }
    rows: list[PlannedUtterance] = []
    drawn = dict.fromkeys(scopes, 0)  # each domain's engines alternate on their own
    for i in range(n):
        domain = ("shifted" if _takes(i, shift.share) else "source") if shift else ""
        by_engine, intents = voices_of[domain], scopes[domain].intents
        k, drawn[domain] = drawn[domain], drawn[domain] + 1
        if share is None:
            engine = next(e for e in ENGINES if by_engine[e])
        else:
            engine = "flite" if _takes(k, share) else "espeak-ng"
            if not by_engine[engine]:  # a scope with one engine's voices only
                engine = next(e for e in ENGINES if by_engine[e])
        for _attempt in range(100):
            text, intent, entities = grammar.sample(rng, intents)
            voice = rng.choice(by_engine[engine])
            if (text, voice.id) not in seen:
                break
        else:
            raise CorpusError(f"{split}: cannot find an unused (text, voice) pair")
        seen.add((text, voice.id))
        uid = f"{split}-{i:05d}"
        label = Label(uid, text, intent, entities, LabelSource.SEED)
        rendering = draw_rendering(scopes[domain].noise, rng, babble_key)
        rows.append(PlannedUtterance(uid, split, label, voice, rendering, domain))
    return rows


def _babble_key(config: SynthConfig, seed: int, engines: Sequence[str]) -> str:
    """A digest of the babble talkers' voices: babble audio changes when they do."""
    talkers = ",".join(v.id for v in babble_voices(config, seed, engines))
    return hashlib.sha1(f"{seed}:{talkers}".encode()).hexdigest()[:10]


def plan_corpus(config: SynthConfig, seed: int, engines: Sequence[str]) -> list[PlannedUtterance]:
    """Every utterance of the corpus, a pure function of ``(config, seed, engines)``.

    Within a split, utterances alternate between engines in the ratio ``flite_share`` (so
    every split of three or more hears both); no (text, voice) pair occurs twice anywhere.

    ``config.seed_profile`` narrows the voices, noise and intents of the seed split alone:
    the broad seed split is planned all the same (the pool's draws avoid its pairs), then
    replaced by a narrow one drawn last, so pool, dev and test come out exactly as without
    the profile and their audio is shared with a corpus built without it.

    ``config.deployment`` (a shifted share > 0) makes the profile's scope the source domain:
    the seed split is drawn from it alone, and pool, dev and test take the shifted share of
    their rows from the other voices (the corpus's noise, every intent) and the rest from it.
    """
    voices = choose_voices(config, engines, seed)
    held = holdout_ids(voices, config.holdout_voices, seed)
    voiced = [e for e in ENGINES if any(v.engine == e for v in voices)]
    share = config.flite_share if len(voiced) == 2 else None
    babble_key = _babble_key(config, seed, engines)
    trainable = tuple(v for v in voices if v.id not in held)
    broad = {
        split: _Scope(
            tuple(voices) if split in ("dev", "test") else trainable, grammar.INTENTS, config.noise
        )
        for split in SPLITS
    }
    narrow = _seed_scope(config, seed, broad["seed"], share)
    seen: set[tuple[str, str]] = set()
    if config.deployment.shifted_share > 0:  # seed: the source; the rest: source + shifted
        planned = {}
        for split in _PLAN_ORDER:
            shift = None if split == "seed" else _shift(config, broad[split], narrow)
            n = getattr(config.sizes, split)
            planned[split] = _plan_split(split, n, narrow, share, seen, babble_key, seed, shift)
        planned["seed"] = [replace(u, domain="source") for u in planned["seed"]]
        return [u for split in SPLITS for u in planned[split]]
    planned = {
        split: _plan_split(
            split, getattr(config.sizes, split), broad[split], share, seen, babble_key, seed
        )
        for split in _PLAN_ORDER
    }
    if narrow != broad["seed"]:
        seen -= {(u.label.text or "", u.voice.id) for u in planned["seed"]}
        planned["seed"] = _plan_split(
            "seed", config.sizes.seed, narrow, share, seen, babble_key, seed
        )
    return [u for split in SPLITS for u in planned[split]]


def _shift(config: SynthConfig, broad: _Scope, source: _Scope) -> _Shift:
    """A deployment split's shifted part: the voices outside the source's, with ``broad``'s
    noise and every intent."""
    ids = {v.id for v in source.voices}
    others = tuple(v for v in broad.voices if v.id not in ids)
    return _Shift(_Scope(others, grammar.INTENTS, broad.noise), config.deployment.shifted_share)
