"""Given phrases spoken by every built-in voice: synthetic speech for a vocabulary of your own.

A real corpus with few speakers (FSDD: four training voices) teaches a model those speakers;
the same words in the built-in corpus's 48 synthetic voices, with its noise and level
changes, add the speaker variety the recordings lack. ``speak_phrases`` renders each phrase
in every voice ``repeats`` times (each time its own noise, level and padding) and writes a
manifest; files are named by a hash of what shapes them, so a rebuild reuses them.

    out_dir/phrases.jsonl     one row per rendering: id, audio, text (source: seed)
    out_dir/audio/*.wav       mono 16-bit, at ``sample_rate``

``sample_rate`` below 16 kHz band-limits the audio like the recordings it joins (8 kHz for
telephone speech or FSDD), so the two do not differ in a band only one of them has.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from earmark.core.audio import write_audio
from earmark.core.errors import CorpusError
from earmark.core.fileio import private_dir
from earmark.core.manifest import ManifestRow, write_manifest
from earmark.core.records import Label, LabelSource, Utterance
from earmark.core.text import normalize
from earmark.corpus.config import ENGINES, SAMPLE_RATE, SynthConfig
from earmark.corpus.engines import find_engines
from earmark.corpus.planning import PlannedUtterance, draw_rendering
from earmark.corpus.rendering import one_torch_thread, render
from earmark.corpus.voices import choose_voices
from earmark.dsp import load_audio


def plan_phrases(
    phrases: Sequence[str],
    config: SynthConfig,
    seed: int,
    engines: Sequence[str],
    repeats: int,
    voices_per_phrase: int = 0,
) -> list[PlannedUtterance]:
    """Every (phrase, voice, repeat) rendering, a pure function of the arguments: in every
    voice, or with ``voices_per_phrase`` > 0 in that many voices drawn for each phrase (a test
    set of many phrases each said once). Babble noise is left out (it needs the corpus's
    talkers); the other noise kinds keep their share."""
    texts = [normalize(p) for p in phrases]
    if not texts or any(not t for t in texts):
        raise CorpusError("phrases: need at least one non-empty phrase")
    if repeats < 1 or voices_per_phrase < 0:
        raise CorpusError(
            f"phrases: repeats must be >= 1 and voices_per_phrase >= 0, got {repeats} and "
            f"{voices_per_phrase}"
        )
    kinds = tuple(k for k in config.noise.kinds if k != "babble") or ("white",)
    noise = replace(config.noise, kinds=kinds)
    rng = random.Random(f"earmark-phrases-{seed}")
    voices = choose_voices(config, engines, seed)
    pick = random.Random(f"earmark-phrase-voices-{seed}")
    heard_by = [
        set(pick.sample(range(len(voices)), min(voices_per_phrase, len(voices))))
        if voices_per_phrase
        else set(range(len(voices)))
        for _ in texts
    ]
    plan = []
    for v, voice in enumerate(voices):
        for t, text in enumerate(texts):
            if v not in heard_by[t]:
                continue
            for r in range(repeats):
                uid = f"phrase-{t:03d}-{voice.id}-{r}"
                label = Label(uid, text, source=LabelSource.SEED)
                plan.append(
                    PlannedUtterance(uid, "phrases", label, voice, draw_rendering(noise, rng, ""))
                )
    return plan


def speak_phrases(
    phrases: Sequence[str],
    out_dir: str | Path,
    config: SynthConfig | None = None,
    *,
    seed: int = 0,
    repeats: int = 1,
    voices_per_phrase: int = 0,
    sample_rate: int = SAMPLE_RATE,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``phrases`` in every voice of ``config`` (or ``voices_per_phrase`` of them each)
    into ``out_dir``; returns the manifest.

    Raises ``CorpusError`` when no speech synthesiser is installed or a phrase is empty.
    """
    config = config or SynthConfig()
    if not 8000 <= sample_rate <= SAMPLE_RATE:
        raise CorpusError(f"phrases: sample_rate must be in [8000, {SAMPLE_RATE}] Hz")
    engines = find_engines(
        config.engines, espeak_backend=config.espeak_backend, use_wheel=config.espeak_wheel
    )
    plan = plan_phrases(
        phrases, config, seed, [e for e in ENGINES if e in engines], repeats, voices_per_phrase
    )
    out = private_dir(out_dir)  # audio and labels: its owner's only
    private_dir(out / "audio")

    def path_of(u: PlannedUtterance) -> Path:
        spec = json.dumps([u.audio_name, sample_rate])
        return out / "audio" / f"{u.id}-{hashlib.sha1(spec.encode()).hexdigest()[:10]}.wav"

    def make(u: PlannedUtterance) -> None:
        path = path_of(u)
        if path.is_file():
            return
        tmp = path.with_name(f".{path.name}.16k.wav")
        render(u, engines[u.voice.engine], tmp)
        if sample_rate != SAMPLE_RATE:
            write_audio(tmp, load_audio(tmp, target_sr=sample_rate), sample_rate)
        tmp.replace(path)

    with one_torch_thread(), ThreadPoolExecutor(max_workers=config.workers) as pool:
        for done, _ in enumerate(pool.map(make, plan), start=1):
            if progress is not None:
                progress(done, len(plan))
    rows = [
        ManifestRow(
            Utterance(u.id, str(path_of(u)), u.voice.id, sample_rate=sample_rate, extra=u.fields),
            u.label,
        )
        for u in plan
    ]
    manifest = out / "phrases.jsonl"
    write_manifest(manifest, rows)
    return manifest
