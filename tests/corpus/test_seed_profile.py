"""``seed_profile``: a narrow seed split (few voices, clean, some intents) beside a broad pool."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from earmark.core.config import load_config
from earmark.core.errors import ConfigError, CorpusError
from earmark.core.manifest import read_manifest
from earmark.corpus import grammar
from earmark.corpus.synth import (
    ENGINES,
    SPLITS,
    SeedProfile,
    SplitSizes,
    SynthConfig,
    build_corpus,
    find_engines,
    plan_corpus,
    seed_intents,
)

REPO = Path(__file__).resolve().parents[2]
NARROW = SeedProfile(voices=4, noise_prob=0.0, intents=0.7)
# Small enough to plan in milliseconds, large enough that the pool hears every voice and intent.
PLANNED = SynthConfig(sizes=SplitSizes(seed=60, pool=400, dev=60, test=60), n_voices=12)


def _split(plan, split):
    return [u for u in plan if u.split == split]


def _installed() -> set[str]:
    try:
        return set(find_engines())
    except CorpusError:
        return set()


# --- planning (no audio) -----------------------------------------------------------------


@pytest.mark.parametrize("engines", [ENGINES, ("espeak-ng",), ("flite",)])
def test_the_seed_split_hears_at_most_n_voices_no_noise_and_only_its_intents(engines):
    cfg = dataclasses.replace(PLANNED, seed_profile=NARROW)
    seed = _split(plan_corpus(cfg, 2, engines), "seed")
    assert len(seed) == 60
    assert len({u.voice.id for u in seed}) <= 4
    assert {u.voice.engine for u in seed} == set(engines)
    assert all(u.rendering.noise == "none" for u in seed)
    allowed = seed_intents(NARROW, 2)
    assert len(allowed) == round(0.7 * len(grammar.INTENTS))
    assert {u.label.intent for u in seed} <= set(allowed)


def test_the_pool_still_spans_every_voice_intent_and_noise():
    cfg = dataclasses.replace(PLANNED, seed_profile=NARROW)
    plan = plan_corpus(cfg, 2, ENGINES)
    pool = _split(plan, "pool")
    assert {u.voice.id for u in pool} == {u.voice.id for u in plan}
    assert len({u.voice.id for u in pool}) == 12
    assert {u.label.intent for u in pool} == set(grammar.INTENTS)
    assert sum(u.rendering.noise != "none" for u in pool) > 0.8 * len(pool)
    # the intents kept out of the seed split are in the pool, dev and test
    rare = set(grammar.INTENTS) - set(seed_intents(NARROW, 2))
    for split in ("pool", "dev", "test"):
        assert rare & {u.label.intent for u in _split(plan, split)}, split


def test_the_profile_changes_the_seed_split_and_nothing_else():
    broad = plan_corpus(PLANNED, 4, ENGINES)
    narrow = plan_corpus(dataclasses.replace(PLANNED, seed_profile=NARROW), 4, ENGINES)
    for split in ("pool", "dev", "test"):
        assert _split(broad, split) == _split(narrow, split), split
    assert _split(broad, "seed") != _split(narrow, "seed")
    # no (text, voice) pair twice, the new seed split included
    assert len({(u.label.text, u.voice.id) for u in narrow}) == len(narrow)


def test_the_default_profile_narrows_nothing():
    assert PLANNED.seed_profile == SeedProfile()
    everything = SeedProfile(voices=12, noise_prob=PLANNED.noise.prob, intents=1.0)
    assert plan_corpus(PLANNED, 1, ENGINES) == plan_corpus(
        dataclasses.replace(PLANNED, seed_profile=everything), 1, ENGINES
    )


def test_fewer_voices_than_engines_still_keeps_one_per_engine():
    cfg = dataclasses.replace(PLANNED, seed_profile=SeedProfile(voices=1))
    seed = _split(plan_corpus(cfg, 0, ENGINES), "seed")
    assert {u.voice.engine for u in seed} == set(ENGINES)
    assert len({u.voice.id for u in seed}) == 2


def test_held_out_voices_stay_out_of_the_narrow_seed_split():
    cfg = dataclasses.replace(PLANNED, holdout_voices=8, seed_profile=SeedProfile(voices=2))
    plan = plan_corpus(cfg, 0, ENGINES)
    pool = {u.voice.id for u in _split(plan, "pool")}
    seed = {u.voice.id for u in _split(plan, "seed")}
    assert len(pool) == 4
    assert len(seed) == 2 and seed <= pool


def test_noise_prob_one_makes_every_seed_utterance_noisy():
    cfg = dataclasses.replace(PLANNED, seed_profile=SeedProfile(noise_prob=1.0))
    assert all(u.rendering.noise != "none" for u in _split(plan_corpus(cfg, 0, ENGINES), "seed"))


def test_configs_corpus_al_yaml_narrows_the_seed_split_of_the_default_corpus():
    cfg = load_config(SynthConfig, REPO / "configs" / "corpus_al.yaml")
    assert cfg == dataclasses.replace(SynthConfig(), seed_profile=NARROW)
    broad = plan_corpus(SynthConfig(), 0, ENGINES)
    narrow = plan_corpus(cfg, 0, ENGINES)
    assert [u for u in broad if u.split != "seed"] == [u for u in narrow if u.split != "seed"]
    seed = _split(narrow, "seed")
    assert len({u.voice.id for u in seed}) == 4
    assert len({u.label.intent for u in seed}) == 20
    assert len({u.voice.id for u in _split(narrow, "pool")}) == 48


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("seed_profile.voices=-1", r"seed_profile\.voices"),
        ("seed_profile.voices=49", r"seed_profile\.voices"),
        ("seed_profile.noise_prob=1.5", r"seed_profile\.noise_prob"),
        ("seed_profile.noise_prob=clean", r"seed_profile\.noise_prob"),
        ("seed_profile.intents=0", r"seed_profile\.intents"),
        ("seed_profile.intents=1.2", r"seed_profile\.intents"),
        ("seed_profile.speakers=3", r"seed_profile\.speakers"),
    ],
)
def test_bad_seed_profile_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(SynthConfig, None, [override])


# --- a real corpus -----------------------------------------------------------------------


@pytest.mark.skipif(_installed() != set(ENGINES), reason="needs espeak-ng and flite installed")
@pytest.mark.slow
def test_corpus_json_shows_how_narrow_the_seed_split_is(tmp_path):
    sizes = SplitSizes(seed=12, pool=16, dev=6, test=6)
    profile = SeedProfile(voices=3, noise_prob=0.0, intents=0.3)
    cfg = SynthConfig(sizes=sizes, n_voices=12, seed_profile=profile)
    info = build_corpus(tmp_path, cfg, seed=7).info
    assert info == json.loads((tmp_path / "corpus.json").read_text())
    splits = info["splits"]
    assert {s: splits[s]["utterances"] for s in SPLITS} == sizes.as_dict()
    assert splits["seed"]["voices"] <= 3
    assert splits["seed"]["noisy"] == 0
    assert splits["seed"]["intents"] <= 9
    assert splits["pool"]["voices"] > splits["seed"]["voices"]
    assert splits["pool"]["noisy"] > 0
    assert info["config"]["seed_profile"] == {"voices": 3, "noise_prob": 0.0, "intents": 0.3}
    seed_rows = read_manifest(tmp_path / "seed.jsonl", check_audio=True)
    heard = {row.label.intent for row in seed_rows if row.label is not None}
    assert set(info["intents_not_in_seed"]) == set(info["intents"]) - heard
    assert len({row.utterance.speaker for row in seed_rows}) == splits["seed"]["voices"]
