"""earmark.corpus.phrases: given phrases in the built-in voices (real synthesis)."""

from __future__ import annotations

import pytest
import soundfile as sf

from earmark.corpus.phrases import plan_phrases, speak_phrases
from earmark.corpus.synth import SynthConfig
from earmark.errors import CorpusError
from earmark.manifest import read_manifest

pytestmark = pytest.mark.slow


def test_plan_covers_every_voice_phrase_and_repeat_deterministically():
    cfg = SynthConfig(n_voices=6)
    plan = plan_phrases(["Five", "nine"], cfg, 0, ("espeak-ng", "flite"), repeats=2)
    assert len(plan) == 6 * 2 * 2
    assert {u.label.text for u in plan} == {"five", "nine"}  # normalised
    assert len({u.id for u in plan}) == len(plan)
    assert all(u.rendering.noise != "babble" for u in plan)
    again = plan_phrases(["Five", "nine"], cfg, 0, ("espeak-ng", "flite"), repeats=2)
    assert [u.audio_name for u in again] == [u.audio_name for u in plan]
    with pytest.raises(CorpusError, match="non-empty"):
        plan_phrases(["five", "  "], cfg, 0, ("espeak-ng",), repeats=1)


def test_speaks_band_limited_audio_and_reuses_it(tmp_path):
    cfg = SynthConfig(n_voices=2)
    manifest = speak_phrases(["two", "seven"], tmp_path, cfg, repeats=1, sample_rate=8000)
    rows = read_manifest(manifest)
    assert len(rows) == 4 and {r.label.text for r in rows} == {"two", "seven"}
    for r in rows:
        info = sf.info(r.utterance.audio)
        assert info.samplerate == 8000 and info.channels == 1 and 0.2 < info.duration < 3
    mtimes = {r.id: tmp_path.joinpath(r.utterance.audio).stat().st_mtime_ns for r in rows}
    speak_phrases(["two", "seven"], tmp_path, cfg, repeats=1, sample_rate=8000)
    assert {r.id: tmp_path.joinpath(r.utterance.audio).stat().st_mtime_ns for r in rows} == mtimes
