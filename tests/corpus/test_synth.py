"""``earmark corpus synth``: planning, real synthesis with both engines, manifests, idempotence."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earmark.core.errors import CorpusError
from earmark.core.manifest import read_manifest, validate_manifest
from earmark.core.text import normalize
from earmark.corpus.noise import NOISE_KINDS, make_noise, mix_at_snr
from earmark.corpus.synth import (
    ENGINES,
    EspeakCli,
    SplitSizes,
    SynthConfig,
    VoiceGrid,
    babble_voices,
    build_corpus,
    choose_voices,
    find_engines,
    plan_corpus,
    voice_grid,
)

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = ("seed", "pool", "pool_answers", "dev", "test")


def _installed() -> list[str]:
    try:
        return list(find_engines())
    except CorpusError:
        return []


needs_both = pytest.mark.skipif(
    set(_installed()) != set(ENGINES), reason="needs espeak-ng and flite installed"
)
TINY = SynthConfig(sizes=SplitSizes(seed=8, pool=10, dev=6, test=6))


# --- planning (no audio) -----------------------------------------------------------------


def test_default_config_matches_configs_corpus_yaml():
    from earmark.core.config import load_config

    cfg = load_config(SynthConfig, REPO / "configs" / "corpus.yaml")
    assert cfg == SynthConfig()
    assert cfg.sizes.seed + cfg.sizes.pool >= 2500
    assert sum(cfg.sizes.as_dict().values()) >= 3000


def test_plan_is_deterministic_and_pairs_of_text_and_voice_are_unique():
    cfg = SynthConfig()
    plan = plan_corpus(cfg, 5, ENGINES)
    assert plan == plan_corpus(cfg, 5, ENGINES)
    assert plan != plan_corpus(cfg, 6, ENGINES)
    assert len(plan) == 3800
    assert len({u.id for u in plan}) == len(plan)
    assert len({(u.label.text, u.voice.id) for u in plan}) == len(plan)
    for u in plan:
        assert u.id.startswith(u.split + "-")
        assert u.label.text is not None and normalize(u.label.text) == u.label.text


def test_every_split_hears_both_engines_in_the_configured_ratio():
    plan = plan_corpus(SynthConfig(), 0, ENGINES)
    for split in ("seed", "pool", "dev", "test"):
        engines = [u.voice.engine for u in plan if u.split == split]
        share = engines.count("flite") / len(engines)
        assert abs(share - 0.35) < 0.01, (split, share)


def test_changing_the_pool_size_leaves_dev_and_test_unchanged():
    small = SynthConfig(sizes=SplitSizes(seed=50, pool=100, dev=40, test=40))
    big = dataclasses.replace(small, sizes=SplitSizes(seed=50, pool=400, dev=40, test=40))
    a = [u for u in plan_corpus(small, 1, ENGINES) if u.split in ("dev", "test")]
    b = [u for u in plan_corpus(big, 1, ENGINES) if u.split in ("dev", "test")]
    assert a == b


def test_holdout_voices_are_heard_only_in_dev_and_test():
    cfg = SynthConfig(holdout_voices=6)
    plan = plan_corpus(cfg, 0, ENGINES)
    train = {u.voice.id for u in plan if u.split in ("seed", "pool")}
    evaluation = {u.voice.id for u in plan if u.split in ("dev", "test")}
    held = evaluation - train
    assert len(held) == 6
    assert {v.split("-")[0] for v in held} == {"espeak", "flite"}
    # nor in the babble noise under training audio
    assert not held & {v.id for v in babble_voices(cfg, 0, ENGINES)}


def test_at_least_20_distinct_voices_are_available_and_chosen():
    grid = voice_grid(SynthConfig().voices, "espeak-ng") + voice_grid(SynthConfig().voices, "flite")
    assert len({v.id for v in grid}) == len(grid) >= 20
    chosen = choose_voices(SynthConfig(), ENGINES, 0)
    assert len({v.id for v in chosen}) == 48
    plan = plan_corpus(SynthConfig(), 0, ENGINES)
    assert len({u.voice.id for u in plan}) >= 20


@pytest.mark.parametrize("engine", ENGINES)
def test_one_engine_alone_still_gives_at_least_20_voices(engine):
    plan = plan_corpus(SynthConfig(), 0, (engine,))
    assert {u.voice.engine for u in plan} == {engine}
    assert len({u.voice.id for u in plan}) >= 20


def test_bad_config_values_name_the_key():
    from earmark.core.config import load_config
    from earmark.core.errors import ConfigError

    with pytest.raises(ConfigError, match="engines"):
        load_config(SynthConfig, None, ["engines=[espeak-ng, festival]"])
    with pytest.raises(ConfigError, match="snr_db"):
        load_config(SynthConfig, None, ["noise.snr_db=[30, 5]"])
    with pytest.raises(ConfigError, match=r"sizes\.dev"):
        load_config(SynthConfig, None, ["sizes.dev=many"])


# --- engines -----------------------------------------------------------------------------


def test_no_engine_error_says_what_to_install(tmp_path):
    with pytest.raises(CorpusError) as err:
        find_engines(ENGINES, espeak_backend="binary", use_wheel=False, search_path=str(tmp_path))
    message = str(err.value)
    assert "apt-get install espeak-ng flite" in message
    assert "pip install earmark[espeak]" in message


@needs_both
def test_voices_of_the_grid_really_sound_different():
    engines = find_engines()
    voices = choose_voices(SynthConfig(n_voices=20), ENGINES, 0)
    digests = set()
    for voice in voices:
        wave, sr = engines[voice.engine].synthesize(voice, "turn on the lights")
        assert sr in (8000, 16000, 22050) and np.max(np.abs(wave)) > 0.05
        digests.add((len(wave), round(float(np.sum(np.abs(wave))), 3)))
    assert len(digests) == 20


@pytest.mark.parametrize("backend", ["library", "binary", "wheel"])
def test_each_espeak_backend_speaks(backend):
    if backend == "wheel":
        pytest.importorskip("espeakng_loader")
    try:
        engine = find_engines(("espeak-ng",), espeak_backend=backend)["espeak-ng"]
    except CorpusError:
        pytest.skip(f"espeak-ng {backend} not installed")
    voice = choose_voices(SynthConfig(n_voices=1), ("espeak-ng",), 0)[0]
    wave, sr = engine.synthesize(voice, "what's the weather like in paris")
    assert sr == 22050
    assert 1.0 < len(wave) / sr < 4.0
    assert np.max(np.abs(wave)) > 0.05


@needs_both
@pytest.mark.parametrize("engine", ENGINES)
def test_a_voice_the_engine_lacks_is_an_error_naming_it(engine, tmp_path):
    grid = VoiceGrid(espeak=("xx-nope",), flite=("nope",))
    cfg = SynthConfig(
        sizes=SplitSizes(seed=1, pool=0, dev=0, test=0), engines=(engine,), voices=grid
    )
    with pytest.raises(CorpusError, match="nope"):
        build_corpus(tmp_path, dataclasses.replace(cfg, n_voices=1), seed=0)


# --- noise -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_is_deterministic_and_mixes_at_the_asked_snr(kind):
    rng_speech = np.random.default_rng(0)
    speech = np.sin(np.arange(16000) / 7.0).astype(np.float32) * 0.3
    bank = [rng_speech.standard_normal(5000).astype(np.float32)]
    a = make_noise(kind, 16000, 16000, np.random.default_rng(1), babble_bank=bank)
    b = make_noise(kind, 16000, 16000, np.random.default_rng(1), babble_bank=bank)
    assert np.array_equal(a, b)
    mixed = mix_at_snr(speech, a, 10.0)
    noise = mixed - speech
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
    assert abs(snr - 10.0) < 0.1


def test_unknown_noise_kind_raises():
    with pytest.raises(CorpusError, match="unknown noise kind"):
        make_noise("rain", 100, 16000, np.random.default_rng(0))


# --- a real corpus -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = build_corpus(out, TINY, seed=11)
    return out, summary.info


@needs_both
@pytest.mark.slow
def test_tiny_corpus_manifests_are_valid_with_audio(tiny_corpus):
    out, info = tiny_corpus
    for name in MANIFESTS:
        assert validate_manifest(out / f"{name}.jsonl", check_audio=True) == []
    assert info["sizes"] == {"seed": 8, "pool": 10, "dev": 6, "test": 6}
    assert set(info["engines"]) == set(ENGINES)
    assert len(info["intents"]) > 5
    assert info["rendered"] == 30
    # audio and labels: nobody but their owner may read the folders holding them
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((out / "audio").stat().st_mode) == 0o700


@needs_both
@pytest.mark.slow
def test_tiny_corpus_audio_is_16k_mono_speech_that_fits_the_text(tiny_corpus):
    out, _ = tiny_corpus
    speakers = set()
    for name in ("seed", "pool_answers", "dev", "test"):
        for row in read_manifest(out / f"{name}.jsonl", check_audio=True):
            assert row.label is not None and row.label.text is not None
            assert row.utterance.audio is not None
            info = sf.info(row.utterance.audio)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            wave, _ = sf.read(row.utterance.audio, dtype="float32")
            assert np.max(np.abs(wave)) > 0.01
            duration = len(wave) / 16000
            assert row.utterance.duration == pytest.approx(duration, abs=1e-3)
            chars = len(row.label.text)
            assert 0.3 + chars / 25 < duration < 1.5 + chars / 5, (row.label.text, duration)
            speakers.add(row.utterance.speaker)
            # engine and noise travel as manifest fields, for `earmark evaluate --by`
            extra = row.utterance.extra
            assert extra["engine"].startswith(row.utterance.speaker.split("-")[0])
            assert extra["noise"] in (*TINY.noise.kinds, "none")
    assert {s.split("-")[0] for s in speakers} == {"espeak", "flite"}


@needs_both
@pytest.mark.slow
def test_pool_is_unlabelled_and_answers_match_its_ids(tiny_corpus):
    out, _ = tiny_corpus
    raw = [json.loads(line) for line in (out / "pool.jsonl").read_text().splitlines()]
    for obj in raw:
        assert not {"text", "intent", "entities"} & set(obj)
    answers = read_manifest(out / "pool_answers.jsonl")
    assert [obj["id"] for obj in raw] == [row.id for row in answers]
    assert [obj["audio"] for obj in raw] == [
        json.loads(line)["audio"] for line in (out / "pool_answers.jsonl").read_text().splitlines()
    ]
    assert all(row.label is not None and row.label.intent for row in answers)


@needs_both
@pytest.mark.slow
def test_rebuilding_reuses_audio_and_writes_identical_manifests(tiny_corpus):
    out, _ = tiny_corpus
    before = {name: (out / f"{name}.jsonl").read_bytes() for name in MANIFESTS}
    summary = build_corpus(out, TINY, seed=11)
    assert (summary.rendered, summary.reused) == (0, 30)
    assert {name: (out / f"{name}.jsonl").read_bytes() for name in MANIFESTS} == before


@needs_both
@pytest.mark.slow
def test_same_seed_gives_the_same_audio_in_another_folder(tmp_path):
    if not isinstance(find_engines()["espeak-ng"], EspeakCli):
        pytest.skip("only the espeak-ng binary is bit-exact (libespeak-ng keeps state)")
    cfg = SynthConfig(sizes=SplitSizes(seed=2, pool=2, dev=1, test=1))
    build_corpus(tmp_path / "a", cfg, seed=3)
    build_corpus(tmp_path / "b", cfg, seed=3)
    for name in MANIFESTS:
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{name}.jsonl"
        ).read_bytes()
    for wav in sorted((tmp_path / "a" / "audio").glob("*.wav")):
        assert wav.read_bytes() == (tmp_path / "b" / "audio" / wav.name).read_bytes()


@needs_both
@pytest.mark.slow
def test_cli_builds_a_corpus_and_reports_config_errors(tmp_path):
    out = tmp_path / "cli"
    sizes = ["--set", "sizes.seed=2", "--set", "sizes.pool=2", "--set", "sizes.dev=1"]
    cmd = [sys.executable, "-m", "earmark.cli.main", "corpus", "synth", "--out", str(out)]
    done = subprocess.run([*cmd, *sizes, "--set", "sizes.test=1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "6 utterances" in done.stdout
    assert len(read_manifest(out / "seed.jsonl", check_audio=True)) == 2
    bad = subprocess.run([*cmd, "--set", "noise.kinds=[rain]"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "noise.kinds" in bad.stderr
