"""``earmark base``: the base model of the deployment scenario, built once per config and seed
(real synthesis, real training), reused when cached, rebuilt when its config changes, and
taken by a loop config as its round 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from earmark.cli.main import app
from earmark.loop.base import BASE_FILE, TRAINED_FILE, build_base, load_base_config
from earmark.loop.config import load_loop_config
from training.checkpoint import read_meta

# a tiny scenario: 3 source voices, 40% of pool, dev and test shifted; models that train in
# seconds (the test checks the caching and the bookkeeping, not the models' quality)
TINY = {
    "corpus": "configs/corpus_deploy.yaml",
    "corpus_overrides": [
        "sizes.seed=16", "sizes.pool=10", "sizes.dev=10", "sizes.test=10", "n_voices=8",
        "seed_profile.voices=3",
    ],
    "asr": {"config": "configs/asr.yaml", "minutes": 0,
            "overrides": ["train.max_steps=3", "train.eval_max_utterances=10"]},
    "nlu": {"config": "configs/nlu.yaml", "minutes": 0,
            "overrides": ["optim.max_epochs=2", "optim.min_steps=0", "model.encoder=null"]},
    "eval_resamples": 20,
}  # fmt: skip


@pytest.fixture
def base_config(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    cfg = {**TINY, "corpus_out": str(tmp_path / "corpus"), "cache": str(tmp_path / "cache")}
    path.write_text(yaml.safe_dump(cfg))
    return path


def base_cli(config: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["base", "--config", str(config), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


@pytest.mark.slow
def test_a_base_is_built_once_reused_and_rebuilt_when_its_config_changes(base_config: Path):
    said: list[str] = []
    built = base_cli(base_config, "--seed", "1")
    assert built["reused"] is False
    folder = Path(built["base"])
    info = json.loads((folder / BASE_FILE).read_text())
    assert info["seed"] == 1 and not list(folder.parent.glob("*.partial"))
    # measured on test, overall and on the source-like and shifted rows apart
    assert {"wer", "wer@domain=source", "wer@domain=shifted"} <= set(info["test"]["asr"])
    assert {"intent_accuracy@domain=source", "intent_accuracy@domain=shifted"} <= set(
        info["test"]["nlu"]
    )
    # trained on the source domain alone, its checkpoint chosen on dev's source rows
    corpus = Path(info["corpus"])
    dev_rows = [json.loads(line) for line in Path(info["dev"]).read_text().splitlines()]
    assert dev_rows and {r["domain"] for r in dev_rows} == {"source"}
    cache = folder.parent
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}

    # the same config and seed: reused, nothing trained or written again
    cfg = load_base_config(base_config, [])
    again = build_base(cfg, 1, said.append)
    assert again.reused and again.folder == folder
    assert not any("training" in line for line in said)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == stamps

    # a changed NLU config: a new base beside the first, its NLU trained again, its ASR reused
    said.clear()
    changed = build_base(
        load_base_config(base_config, ["nlu.overrides=[optim.max_epochs=3,model.encoder=null]"]),
        1, said.append,
    )  # fmt: skip
    assert not changed.reused and changed.folder != folder and (folder / BASE_FILE).is_file()
    assert read_meta(changed.checkpoints["nlu"]).config["optim"]["max_epochs"] == 3
    assert changed.checkpoints["asr"] == again.checkpoints["asr"]
    assert changed.checkpoints["nlu"] != again.checkpoints["nlu"]
    assert [line.split(" on ")[0] for line in said if "training" in line] == ["base: training NLU"]

    # a loop starts its round 1 from it
    assert again.corpus == corpus and corpus.name == "seed1"
    data = [f"data.{k}={v}" for k, v in again.loop_data().items()]
    loop = load_loop_config(None, [*data, *again.loop_overrides(), "eval_by=[domain]"])
    assert Path(loop.data.answers).is_file() and Path(loop.data.schema).is_file()
    assert (Path(loop.asr.init), Path(loop.nlu.init)) == (
        again.checkpoints["asr"],
        again.checkpoints["nlu"],
    )
    assert read_meta(loop.asr.init, kind="asr") and read_meta(loop.nlu.init, kind="nlu")


def test_only_finished_models_and_bases_are_reused(base_config: Path, tmp_path: Path):
    """A base folder without its base.json is measured again (nothing trained); a model folder
    without its trained.json (a build killed before the rename cannot leave one; a hand-made
    one must not fool it) is trained again."""
    cfg = load_base_config(base_config, ["kinds=[nlu]"])
    first = build_base(cfg, 0, lambda _: None)
    (first.folder / BASE_FILE).unlink()
    said: list[str] = []
    again = build_base(cfg, 0, said.append)
    assert not again.reused and not any("training" in line for line in said)
    assert again.checkpoints == first.checkpoints
    model_folder = next(p for p in first.checkpoints["nlu"].parents if p.name.startswith("nlu-"))
    (model_folder / TRAINED_FILE).unlink()
    (first.folder / BASE_FILE).unlink()
    said.clear()
    build_base(cfg, 0, said.append)
    assert any("training NLU" in line for line in said)


@pytest.mark.slow
def test_a_build_killed_at_any_write_resumes_and_trains_nothing_twice(
    base_config: Path, tmp_path: Path
):
    """``earmark base`` ended (like SIGKILL) right before a write no earlier kill reached, again
    and again, then run on until it finishes: one base, each model's training finished once,
    the same key as an undisturbed build."""
    import os
    import random
    import subprocess
    import sys

    from earmark.core.faults import KILL_NEW_ENV, KILLED_EXIT, TRACE_ENV

    cfg = load_base_config(base_config, [])
    from earmark.core.config import load_config
    from earmark.corpus.synth import SynthConfig, build_corpus

    synth = load_config(SynthConfig, cfg.corpus, list(cfg.corpus_overrides))
    build_corpus(
        Path(cfg.corpus_out) / "seed2", synth, 2
    )  # the corpus first: its audio is not the test
    trace, rng, kills = tmp_path / "trace.tsv", random.Random(0), 0
    command = [sys.executable, "-m", "earmark.cli.main", "base", "--config", str(base_config)]
    for _attempt in range(60):
        env = {**os.environ, TRACE_ENV: str(trace), KILL_NEW_ENV: str(rng.randint(1, 4))}
        done = subprocess.run([*command, "--seed", "2"], env=env, capture_output=True, text=True)
        if done.returncode == 0:
            break
        assert done.returncode == KILLED_EXIT, done.stderr[-2000:]
        kills += 1
    else:
        pytest.fail("the build never finished")
    assert kills >= 5  # the kills walked through the build's writes
    lines = trace.read_text().splitlines()
    for kind in ("asr", "nlu"):  # each model's training was finished (and recorded) once
        finished = [x for x in lines if f"/{kind}-" in x and TRAINED_FILE in x and "KILL" not in x]
        assert len(finished) == 1, finished
    folder = Path(json.loads(done.stdout[done.stdout.index("{") :])["base"])
    assert folder.name == f"base-{build_base(cfg, 2, lambda _: None).key}"  # reused, same key
    assert not list(folder.parent.glob("*.partial"))
    assert read_meta(json.loads((folder / BASE_FILE).read_text())["checkpoints"]["asr"])


@pytest.mark.slow
@pytest.mark.labelstudio
def test_a_loop_on_the_base_starts_from_it_and_reports_each_domain(base_config: Path, studio):
    """The scenario end to end against the real server: round 1 is the base itself (measured,
    not trained again), round 2 fine-tunes it on the seed set and the annotators' labels, and
    every round's test figures come per domain too."""
    from loop_support import BATCH, loop_config, run_cli

    base = build_base(load_base_config(base_config, []), 4, lambda _: None)
    config = loop_config(base.corpus, studio, rounds=1, data=base.loop_data())
    cfg = yaml.safe_load(config.read_text())
    for kind in ("asr", "nlu"):
        cfg[kind]["init"] = str(base.checkpoints[kind])
        cfg[kind]["init_is_round_one"] = True
    config.write_text(yaml.safe_dump({**cfg, "eval_by": ["domain"]}))
    out = run_cli(config, studio.workspace)
    assert out.returncode == 0, out.stderr[-3000:]

    run = studio.workspace
    first = json.loads((run / "rounds" / "r001" / "checkpoints.json").read_text())
    assert first == {k: str(v) for k, v in base.checkpoints.items()}
    assert not (run / "rounds" / "r001" / "asr").exists()  # nothing trained in round 1
    second = json.loads((run / "rounds" / "r002" / "checkpoints.json").read_text())
    assert read_meta(second["asr"]).parent == str(base.checkpoints["asr"])
    rows = json.loads((run / "metrics.json").read_text())
    assert [r["labelled"] for r in rows] == [16, 16 + BATCH]
    info = json.loads((base.folder / BASE_FILE).read_text())
    assert rows[0]["wer@domain=shifted"] == info["test"]["asr"]["wer@domain=shifted"]
    for r in rows:
        assert {"wer@domain=source", "intent_accuracy@domain=shifted"} <= set(r)
