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
noise and intents the seed set lacks (``configs/corpus_al.yaml``). The profile changes the
seed split and nothing else: pool, dev and test (and their audio) are the same as without it.

A second run with the same seed and config reuses the audio (file names carry a hash of what
was rendered) and writes byte-identical manifests.

This module is the entry point and re-exports the public names of its parts:
``earmark.corpus.config`` (``SynthConfig`` and its sections), ``voices`` (the voice grid and
the voices drawn from it), ``engines`` (espeak-ng and flite), ``planning`` (``plan_corpus``)
and ``rendering`` (``render``, babble talkers).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from earmark.core.config import to_dict
from earmark.core.fileio import private_dir
from earmark.core.manifest import ManifestRow, write_manifest
from earmark.core.records import Utterance
from earmark.core.say import Progress
from earmark.corpus import grammar
from earmark.corpus.config import (
    ENGINES,
    SAMPLE_RATE,
    SPLITS,
    Deployment,
    NoiseConfig,
    SeedProfile,
    SplitSizes,
    SynthConfig,
    VoiceGrid,
)
from earmark.corpus.engines import (
    INSTALL_HINT,
    Engine,
    EspeakCli,
    EspeakLibrary,
    FliteCli,
    find_engines,
)
from earmark.corpus.planning import PlannedUtterance, Rendering, plan_corpus, seed_intents
from earmark.corpus.rendering import babble_bank, render, render_missing
from earmark.corpus.voices import Voice, babble_voices, choose_voices, voice_grid

_AUDIO_NAME = re.compile(r"^(seed|pool|dev|test)-\d{5}-[0-9a-f]{10}\.wav$")


@dataclass(frozen=True)
class CorpusSummary:
    """What ``build_corpus`` did; ``info`` is what it wrote to ``corpus.json``."""

    out_dir: Path
    info: dict[str, Any]
    rendered: int
    reused: int
    seconds: float


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
    Raises ``CorpusError`` when no speech synthesiser is installed or rendering fails.
    """
    config = config or SynthConfig()
    start = time.perf_counter()
    engines = find_engines(
        config.engines, espeak_backend=config.espeak_backend, use_wheel=config.espeak_wheel
    )
    names = [e for e in ENGINES if e in engines]
    plan = plan_corpus(config, seed, names)
    out = private_dir(out_dir)  # audio and labels: its owner's only
    audio_dir = out / "audio"
    todo = _audio_to_render(plan, audio_dir)
    tick = _ticker(len(plan) - len(todo), len(plan), progress)
    talkers = babble_voices(config, seed, names)

    def bank_fn() -> list[np.ndarray]:  # built only when some utterance needs babble
        return babble_bank(engines, talkers, seed)

    render_missing(todo, engines, audio_dir, config, bank_fn, tick)
    rows = {s: _rows([u for u in plan if u.split == s], audio_dir) for s in SPLITS}
    _write_manifests(out, rows)
    seconds = time.perf_counter() - start
    audio_seconds = sum(r.utterance.duration or 0.0 for split in rows.values() for r in split)
    info = _corpus_info(config, seed, engines, plan, seconds, len(todo), audio_seconds)
    (out / "corpus.json").write_text(json.dumps(info, indent=2) + "\n")
    return CorpusSummary(out, info, len(todo), len(plan) - len(todo), seconds)


def _audio_to_render(plan: list[PlannedUtterance], audio_dir: Path) -> list[PlannedUtterance]:
    """Create ``audio_dir``, remove the corpus audio files ``plan`` no longer names, and
    return the utterances of ``plan`` whose file is not there yet."""
    private_dir(audio_dir)
    wanted = {u.audio_name for u in plan}
    for stale in audio_dir.iterdir():
        if _AUDIO_NAME.match(stale.name) and stale.name not in wanted:
            stale.unlink()
    return [u for u in plan if not (audio_dir / u.audio_name).is_file()]


def _ticker(done: int, total: int, progress: Progress | None) -> Callable[[], None]:
    """Report ``progress(done, total)`` now; the returned function reports one more each call."""
    count = done

    def tick() -> None:
        nonlocal count
        count += 1
        if progress is not None:
            progress(count, total)

    if progress is not None:
        progress(done, total)
    return tick


def _rows(utts: list[PlannedUtterance], audio_dir: Path) -> list[ManifestRow]:
    """Manifest rows of ``utts``, their durations read from the rendered files."""
    rows = []
    for u in utts:
        path = audio_dir / u.audio_name
        frames = sf.info(str(path)).frames
        utt = Utterance(u.id, str(path), u.voice.id, frames / SAMPLE_RATE, SAMPLE_RATE, u.fields)
        rows.append(ManifestRow(utt, u.label))
    return rows


def _write_manifests(out: Path, rows: dict[str, list[ManifestRow]]) -> None:
    """seed, dev and test with their labels; the pool without, its labels in pool_answers."""
    for split in ("seed", "dev", "test"):
        write_manifest(out / f"{split}.jsonl", rows[split])
    write_manifest(out / "pool.jsonl", [ManifestRow(r.utterance) for r in rows["pool"]])
    write_manifest(out / "pool_answers.jsonl", rows["pool"])


def _split_counts(utts: list[PlannedUtterance]) -> dict[str, int]:
    """Utterances, distinct voices, distinct intents and noisy utterances of one split."""
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
    """What ``corpus.json`` records about a build: sizes, voices, engines, intents, noise,
    timings and the resolved config."""
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
        **_deployment_info(config, plan),
        "entity_types": sorted({e.type for u in plan for e in u.label.entities}),
        "grammar": {"intents": len(grammar.INTENTS), "entity_types": len(grammar.ENTITY_TYPES)},
        "noise": dict(sorted(Counter(u.rendering.noise for u in plan).items())),
        "audio_hours": round(audio_seconds / 3600, 3),
        "rendered": rendered,
        "reused": len(plan) - rendered,
        "build_seconds": round(seconds, 2),
        "config": to_dict(config),
    }


def _deployment_info(config: SynthConfig, plan: list[PlannedUtterance]) -> dict[str, Any]:
    """In a deployment scenario: its shifted share, the source voices and each split's rows
    per domain (nothing otherwise)."""
    if config.deployment.shifted_share <= 0:
        return {}
    per_split = {
        s: dict(sorted(Counter(u.domain for u in plan if u.split == s).items())) for s in SPLITS
    }
    source = sorted({u.voice.id for u in plan if u.domain == "source"})
    return {
        "deployment": {
            "shifted_share": config.deployment.shifted_share,
            "source_voices": source,
            "domains": per_split,
        }
    }


__all__ = [
    "ENGINES",
    "INSTALL_HINT",
    "SAMPLE_RATE",
    "SPLITS",
    "CorpusSummary",
    "Deployment",
    "Engine",
    "EspeakCli",
    "EspeakLibrary",
    "FliteCli",
    "NoiseConfig",
    "PlannedUtterance",
    "Progress",
    "Rendering",
    "SeedProfile",
    "SplitSizes",
    "SynthConfig",
    "Voice",
    "VoiceGrid",
    "babble_bank",
    "babble_voices",
    "build_corpus",
    "choose_voices",
    "find_engines",
    "plan_corpus",
    "render",
    "seed_intents",
    "voice_grid",
]
