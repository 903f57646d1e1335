"""Rendering planned utterances to audio: synthesis, levelling, padding, noise, gain.

``render`` makes one WAV file; ``render_missing`` renders many in threads; ``babble_bank``
synthesises the background talkers that babble noise mixes from.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from earmark.core.audio import write_audio
from earmark.core.errors import CorpusError
from earmark.corpus import grammar
from earmark.corpus.config import SAMPLE_RATE, SynthConfig
from earmark.corpus.engines import Engine
from earmark.corpus.noise import make_noise, mix_at_snr
from earmark.corpus.planning import PlannedUtterance
from earmark.corpus.voices import Voice
from earmark.dsp import resample


def _db(x: float) -> float:
    """Decibels to an amplitude factor."""
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


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, restoring the count after it.

    Our synthesis threads already run in parallel; torch's own threads would compete with
    them for the same cores while resampling.
    """
    import torch  # heavy: only a build that renders audio needs it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def render_missing(
    todo: list[PlannedUtterance],
    engines: dict[str, Engine],
    audio_dir: Path,
    config: SynthConfig,
    bank_fn: Callable[[], list[np.ndarray]],
    progress: Callable[[], None],
) -> None:
    """Render each of ``todo`` into ``audio_dir / audio_name`` with ``config.workers`` threads,
    calling ``progress()`` as each is done; the first failure cancels the rest and is raised.

    ``bank_fn()`` gives the babble talkers and is called only when some utterance needs them.
    """
    with one_torch_thread(), ThreadPoolExecutor(max_workers=config.workers) as pool:
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
