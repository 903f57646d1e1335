"""``deployment``: a base model's source domain (the seed split) meets a broader population in
pool, dev and test, with the shifted share stated and every row's domain in its manifest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from earmark.core.config import load_config
from earmark.core.errors import ConfigError, CorpusError
from earmark.core.manifest import read_manifest
from earmark.corpus.synth import (
    ENGINES,
    SPLITS,
    Deployment,
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
PLANNED = SynthConfig(sizes=SplitSizes(seed=60, pool=400, dev=60, test=60), n_voices=12)
SCENARIO = dataclasses.replace(PLANNED, seed_profile=NARROW, deployment=Deployment(0.4))


def _split(plan, split):
    return [u for u in plan if u.split == split]


def _both_engines() -> bool:
    try:
        return set(find_engines()) == set(ENGINES)
    except CorpusError:
        return False


@pytest.mark.parametrize("engines", [ENGINES, ("espeak-ng",)])
def test_the_seed_is_the_source_and_the_other_splits_hold_the_stated_shifted_share(engines):
    plan = plan_corpus(SCENARIO, 3, engines)
    seed = _split(plan, "seed")
    source_voices = {u.voice.id for u in seed}
    assert {u.domain for u in seed} == {"source"} and len(source_voices) <= 4
    assert all(u.rendering.noise == "none" for u in seed)
    for split in ("pool", "dev", "test"):
        rows = _split(plan, split)
        shifted = [u for u in rows if u.domain == "shifted"]
        source = [u for u in rows if u.domain == "source"]
        assert len(shifted) == round(0.4 * len(rows)) and len(source) + len(shifted) == len(rows)
        # source rows are what the base was built on; a shifted row is another voice
        assert {u.voice.id for u in source} <= source_voices
        assert not {u.voice.id for u in shifted} & source_voices
        assert all(u.rendering.noise == "none" for u in source)
        assert {u.label.intent for u in source} <= set(seed_intents(NARROW, 3))
        assert {u.fields["domain"] for u in rows} == {"source", "shifted"}
    pool_shifted = [u for u in _split(plan, "pool") if u.domain == "shifted"]
    assert {u.label.intent for u in pool_shifted} - set(seed_intents(NARROW, 3))  # new intents
    assert any(u.rendering.noise != "none" for u in pool_shifted)  # and noise


def test_each_domain_keeps_the_engine_ratio():
    cfg = dataclasses.replace(SCENARIO, sizes=SplitSizes(seed=60, pool=1000, dev=60, test=60))
    pool = _split(plan_corpus(cfg, 0, ENGINES), "pool")
    for domain in ("source", "shifted"):
        rows = [u for u in pool if u.domain == domain]
        flite = sum(u.voice.engine == "flite" for u in rows) / len(rows)
        assert flite == pytest.approx(cfg.flite_share, abs=0.01), domain


def test_without_a_scenario_rows_carry_no_domain_and_the_plan_is_unchanged():
    plain = dataclasses.replace(PLANNED, seed_profile=NARROW)
    off = dataclasses.replace(plain, deployment=Deployment(0.0))
    assert plan_corpus(plain, 1, ENGINES) == plan_corpus(off, 1, ENGINES)
    assert all("domain" not in u.fields for u in plan_corpus(off, 1, ENGINES))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["deployment.shifted_share=1.5"], r"deployment\.shifted_share"),
        (["deployment.shifted_share=-0.1"], r"deployment\.shifted_share"),
        # the source domain is a few voices: without them nothing says what is shifted
        (["deployment.shifted_share=0.4"], r"seed_profile\.voices"),
        (["deployment.share=0.4"], r"deployment\.share"),
    ],
)
def test_bad_deployment_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(SynthConfig, None, overrides)


def test_configs_corpus_deploy_yaml_states_a_realistic_shift():
    cfg = load_config(SynthConfig, REPO / "configs" / "corpus_deploy.yaml")
    assert 0.3 <= cfg.deployment.shifted_share <= 0.6
    plan = plan_corpus(cfg, 0, ENGINES)
    test = _split(plan, "test")
    share = sum(u.domain == "shifted" for u in test) / len(test)
    assert 0.3 <= share <= 0.6


@pytest.mark.skipif(not _both_engines(), reason="needs espeak-ng and flite installed")
@pytest.mark.slow
def test_corpus_json_and_the_manifests_state_the_scenario(tmp_path):
    sizes = SplitSizes(seed=8, pool=10, dev=5, test=5)
    profile = SeedProfile(voices=3, noise_prob=0.0, intents=0.5)
    cfg = SynthConfig(sizes=sizes, n_voices=10, seed_profile=profile, deployment=Deployment(0.4))
    info = build_corpus(tmp_path, cfg, seed=5).info
    assert info == json.loads((tmp_path / "corpus.json").read_text())
    deployment = info["deployment"]
    assert deployment["shifted_share"] == 0.4
    assert deployment["domains"]["seed"] == {"source": 8}
    assert deployment["domains"]["pool"] == {"shifted": 4, "source": 6}
    for split in SPLITS:
        name = "pool_answers" if split == "pool" else split
        rows = read_manifest(tmp_path / f"{name}.jsonl")
        domains = [r.utterance.extra["domain"] for r in rows]
        assert {d: domains.count(d) for d in set(domains)} == deployment["domains"][split]
        assert all(r.utterance.extra["engine"] in ENGINES for r in rows)
