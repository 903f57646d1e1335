"""earmark.corpus.phrases: given phrases in the built-in voices (real synthesis)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile as sf

from earmark.core.errors import CorpusError
from earmark.core.manifest import read_manifest
from earmark.corpus.phrases import plan_phrases, speak_phrases
from earmark.corpus.synth import SynthConfig

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


def test_each_phrase_in_a_few_voices_drawn_for_it():
    cfg = SynthConfig(n_voices=6)
    phrases = [f"phrase {n}" for n in range(40)]
    plan = plan_phrases(phrases, cfg, 0, ("espeak-ng", "flite"), repeats=1, voices_per_phrase=2)
    assert len(plan) == 40 * 2
    by_phrase: dict[str, set[str]] = {}
    for u in plan:
        by_phrase.setdefault(u.label.text, set()).add(u.voice.id)
    assert all(len(v) == 2 for v in by_phrase.values())
    assert len({u.voice.id for u in plan}) == 6  # the voices are shared out, not one pair
    again = plan_phrases(phrases, cfg, 0, ("espeak-ng", "flite"), repeats=1, voices_per_phrase=2)
    assert [u.audio_name for u in again] == [u.audio_name for u in plan]


def test_speaks_band_limited_audio_and_reuses_it(tmp_path):
    cfg = SynthConfig(n_voices=2)
    manifest = speak_phrases(["two", "seven"], tmp_path, cfg, repeats=1, sample_rate=8000)
    rows = read_manifest(manifest)
    assert len(rows) == 4 and {r.label.text for r in rows} == {"two", "seven"}
    for r in rows:
        info = sf.info(r.utterance.audio)
        assert info.samplerate == 8000 and info.channels == 1 and 0.2 < info.duration < 3
        assert r.utterance.extra["engine"].startswith(r.utterance.speaker.split("-")[0])
        assert "noise" in r.utterance.extra
    mtimes = {r.id: tmp_path.joinpath(r.utterance.audio).stat().st_mtime_ns for r in rows}
    speak_phrases(["two", "seven"], tmp_path, cfg, repeats=1, sample_rate=8000)
    assert {r.id: tmp_path.joinpath(r.utterance.audio).stat().st_mtime_ns for r in rows} == mtimes


def test_cli_speaks_a_phrase_file_and_names_a_missing_one(tmp_path):
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("Call Mum\n\nturn off the lights\n")
    cmd = [sys.executable, "-m", "earmark.cli.main", "corpus", "speak"]
    out = ["--out", str(tmp_path / "out"), "--set", "n_voices=2"]
    done = subprocess.run([*cmd, str(phrases), *out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 utterances of 2 phrase(s)" in done.stdout
    rows = read_manifest(tmp_path / "out" / "phrases.jsonl", check_audio=True)
    assert {r.label.text for r in rows if r.label} == {"call mum", "turn off the lights"}
    missing = subprocess.run(
        [*cmd, str(tmp_path / "nope.txt"), *out], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "nope.txt" in missing.stderr
