"""A warm round's training set: a replayed share of the seed, the deployment's labels weighted."""

from __future__ import annotations

import pytest

from earmark.core.errors import ConfigError
from earmark.core.manifest import ManifestRow, read_manifest
from earmark.core.records import Label, LabelSource, Utterance
from earmark.loop.config import ModelRun, load_loop_config
from earmark.loop.trainset import warm_mix


def _rows(prefix: str, n: int, source: LabelSource) -> list[ManifestRow]:
    return [
        ManifestRow(
            Utterance(f"{prefix}{i}", f"/a/{prefix}{i}.wav"),
            Label(f"{prefix}{i}", f"t {i}", source=source),
        )
        for i in range(n)
    ]


def test_a_warm_round_replays_part_of_the_seed_and_repeats_every_human_label() -> None:
    seed, human = _rows("s", 50, LabelSource.SEED), _rows("h", 4, LabelSource.HUMAN)
    mix = warm_mix(seed, human, ModelRun(replay=10, label_repeats=3), salt=7)
    ids = [r.id for r in mix]
    assert len(ids) == len(set(ids)) == 10 + 4 * 3
    assert set(ids[:10]) < {r.id for r in seed}
    assert ids[10:] == ["h0", "h1", "h2", "h3"] + [f"h{i}~{k}" for k in (2, 3) for i in range(4)]
    copy = mix[-1]
    assert copy.label is not None and copy.label.utterance_id == "h3~3"
    assert (copy.utterance.audio, copy.label.text, copy.label.source) == (
        "/a/h3.wav",
        "t 3",
        LabelSource.HUMAN,
    )
    # the subset is the salt's: the same round draws the same rows, another round others
    assert warm_mix(seed, human, ModelRun(replay=10), salt=7)[:10] == mix[:10]
    assert warm_mix(seed, human, ModelRun(replay=10), salt=8)[:10] != mix[:10]
    # the defaults change nothing: all of the seed, each label once
    assert warm_mix(seed, human, ModelRun(), salt=7) == seed + human


@pytest.mark.parametrize("override", ["asr.replay=-1", "nlu.label_repeats=0"])
def test_bad_mix_values_are_config_errors(override: str) -> None:
    with pytest.raises(ConfigError, match="label_repeats"):
        load_loop_config(
            None, ["data.seed=s.jsonl", "data.pool=p.jsonl", "data.dev=d.jsonl", override]
        )


def test_the_seed_a_warm_asr_round_does_not_replay_still_reaches_its_lm(tmp_path) -> None:
    from earmark.core.manifest import write_manifest
    from earmark.core.text import normalize
    from earmark.loop.state import RunFolder
    from earmark.loop.trainset import write_training_manifest
    from training.asr.lmtext import read_lm_text

    seed = _rows("s", 20, LabelSource.SEED)
    write_manifest(tmp_path / "seed.jsonl", seed)
    write_manifest(tmp_path / "pool.jsonl", [ManifestRow(r.utterance, None) for r in seed[:1]])
    cfg = load_loop_config(
        None,
        [f"data.seed={tmp_path / 'seed.jsonl'}", f"data.pool={tmp_path / 'pool.jsonl'}",
         "data.dev=d.jsonl", "asr.replay=5"],
    )  # fmt: skip
    run = RunFolder(tmp_path / "run")
    run.round(2).dir.mkdir(parents=True)
    path, labelled, _ = write_training_manifest(cfg, run, 2, "asr", warm=True)
    trained = {r.label.text for r in read_manifest(path) if r.label}
    lm = set(read_lm_text([run.round(2).unreplayed_text]))
    assert labelled == 20 and len(trained) == 5
    trained = {normalize(t) for t in trained}  # as the LM reads text ("t 1" -> "t one")
    assert trained | lm == {normalize(r.label.text or "") for r in seed if r.label}
    assert not trained & lm
    # a round that replays everything (or the NLU's) writes no such file
    path, _, _ = write_training_manifest(cfg, run, 2, "nlu", warm=True)
    assert run.round(2).unreplayed_text.is_file()  # the ASR's, untouched by the NLU
    cfg_all = load_loop_config(
        None, [f"data.seed={tmp_path / 'seed.jsonl'}", f"data.pool={tmp_path / 'pool.jsonl'}",
               "data.dev=d.jsonl"],
    )  # fmt: skip
    write_training_manifest(cfg_all, run, 2, "asr", warm=True)
    assert not run.round(2).unreplayed_text.exists()
