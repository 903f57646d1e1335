"""An NLU-only (text) corpus runs the loop against the real server, and a run can start from a
base checkpoint (``nlu.init``) instead of from scratch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from loop_support import BATCH, loop_config, run_cli
from studio_fixtures import Studio

from earmark.core.errors import ConfigError
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Label
from earmark.loop.config import load_loop_config
from training.checkpoint import read_meta
from training.nlu.model import NLU_FILE


def text_corpus(corpus: Path, out: Path) -> dict[str, str]:
    """The tiny corpus as typed requests: every manifest without its audio (the pool keeps
    only its text, as an unlabelled text request would)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("seed", "pool", "dev", "test", "pool_answers"):
        rows = []
        for r in read_manifest(corpus / f"{name}.jsonl"):
            utt = r.utterance
            text_only = type(utt)(utt.id, None, utt.speaker, None, None, utt.extra)
            label = r.label
            if name == "pool":  # unlabelled: the text of the request, nothing else
                answer = {a.id: a.label for a in read_manifest(corpus / "pool_answers.jsonl")}
                label = Label(r.id, answer[r.id].text)
            rows.append(ManifestRow(text_only, label))
        write_manifest(out / f"{name}.jsonl", rows)
        paths["answers" if name == "pool_answers" else name] = str(out / f"{name}.jsonl")
    return paths


@pytest.mark.slow
@pytest.mark.labelstudio
def test_a_text_corpus_runs_two_rounds_of_understanding_tasks(
    tiny_corpus: Path, studio: Studio, tmp_path: Path
) -> None:
    from labelling.state import State

    data = text_corpus(tiny_corpus, tmp_path / "text")
    run = studio.workspace
    config = loop_config(tiny_corpus, studio, rounds=2, data=data)
    cfg = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**cfg, "eval_by": ["engine"]}))  # test figures per engine
    out = run_cli(config, run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "run finished: reached 2 round(s)" in out.stdout

    rows = json.loads((run / "metrics.json").read_text())
    assert [r["labelled"] for r in rows] == [24, 24 + BATCH, 24 + 2 * BATCH]
    assert all(0.0 <= r["intent_accuracy"] <= 1.0 and "wer" not in r for r in rows)
    # each round's test figures per engine: the engines' accuracies, weighted by their rows,
    # give the whole test set's
    test = [r.utterance.extra["engine"] for r in read_manifest(data["test"])]
    for r in rows:
        per_engine = sum(r[f"intent_accuracy@engine={e}"] * test.count(e) for e in set(test))
        assert per_engine / len(test) == pytest.approx(r["intent_accuracy"])
    pushed = State.of(run).pushed_rows()
    assert len(pushed) == 2 * BATCH and {p["kind"] for p in pushed} == {"understanding"}

    # the annotator's intents and entities are the answers, on the request's own text
    answers = {r.id: r.label for r in read_manifest(data["answers"])}
    labels = {r.id: r.label for r in read_manifest(State.of(run).labels)}
    assert set(labels) == {p["utterance_id"] for p in pushed}
    for uid, label in labels.items():
        assert label is not None and (label.text, label.intent, label.entities) == (
            answers[uid].text,  # type: ignore[union-attr]
            answers[uid].intent,  # type: ignore[union-attr]
            answers[uid].entities,  # type: ignore[union-attr]
        )
    # the NLU trained on them; no ASR was trained
    round3 = json.loads((run / "rounds" / "r003" / "checkpoints.json").read_text())
    assert set(round3) == {"nlu"}
    trained_on = read_manifest(run / "rounds" / "r003" / "train_nlu.jsonl")
    assert len(trained_on) == 24 + 2 * BATCH
    # from round 1 the NLU can answer every intent the annotators choose from (data.schema,
    # here the corpus's own), also those its first labels never had
    schema = json.loads((tiny_corpus / "corpus.json").read_text())
    round1 = json.loads((run / "rounds" / "r001" / "checkpoints.json").read_text())
    first = json.loads((Path(round1["nlu"]) / NLU_FILE).read_text())
    seed_intents = {r.label.intent for r in read_manifest(data["seed"]) if r.label}
    assert set(first["intents"]) == set(schema["intents"]) > seed_intents

    # the noise floor: the last round trained again on its labels, from its start, with another
    # training seed; its figures keyed as the round's; a second call reuses it
    from earmark.loop.noise import retrain_last_round

    cfg_loaded = load_loop_config(config)
    again = retrain_last_round(cfg_loaded, run, tmp_path / "noise", seed=7, say=lambda _: None)
    assert again["round"] == 3 and again["training_seed"] == 7
    assert {k for k in rows[-1] if k.startswith("intent_accuracy")} <= set(again)
    meta = read_meta(tmp_path / "noise" / "nlu")
    assert meta.config["seed"] == 7 and meta.parent == round3_start(run)
    stamp = (tmp_path / "noise" / "metrics.json").stat().st_mtime_ns
    assert retrain_last_round(cfg_loaded, run, tmp_path / "noise", seed=7) == again
    assert (tmp_path / "noise" / "metrics.json").stat().st_mtime_ns == stamp


def round3_start(run: Path) -> str:
    """The checkpoint round 3's NLU started from: round 2's."""
    return str(json.loads((run / "rounds" / "r002" / "checkpoints.json").read_text())["nlu"])


@pytest.mark.slow
@pytest.mark.labelstudio
def test_round_one_starts_from_the_base_checkpoint(
    tiny_corpus: Path, studio: Studio, tmp_path: Path
) -> None:
    from training.model import recipe

    base = recipe("nlu").train(
        tiny_corpus / "seed.jsonl", tiny_corpus / "dev.jsonl", tmp_path / "base_nlu",
        config=None, overrides=("optim.max_epochs=1", "optim.min_steps=0", "model.encoder=null"),
        minutes=0, init=None, log=lambda _: None,
    )  # fmt: skip
    config = loop_config(
        tiny_corpus, studio, rounds=1, data=text_corpus(tiny_corpus, tmp_path / "t")
    )
    cfg = yaml.safe_load(config.read_text())
    cfg["nlu"]["init"] = str(base)
    cfg["nlu"]["warm_overrides"] = ["optim.max_epochs=3"]  # a warm start's own schedule
    config.write_text(yaml.safe_dump(cfg))

    run = studio.workspace
    out = run_cli(config, run)
    assert out.returncode == 0, out.stderr[-3000:]
    said = "".join((out.stdout + out.stderr).split())  # the console wraps long paths
    assert (
        "".join(f"round 1: training NLU on 24 utterances (0 min, warm start: {base})".split())
        in said
    )
    first = json.loads((run / "rounds" / "r001" / "checkpoints.json").read_text())["nlu"]
    assert read_meta(first).parent == str(base)
    assert read_meta(first).config["optim"]["max_epochs"] == 3  # not the cold schedule's 2


def test_a_base_checkpoint_of_the_wrong_kind_is_refused_by_name(tmp_path: Path) -> None:
    from training.checkpoint import CheckpointMeta, write_meta

    ckpt = tmp_path / "asr_ckpt"
    ckpt.mkdir()
    write_meta(ckpt, CheckpointMeta(kind="asr", model_version="v", config={}))
    data = [f"data.{k}={tmp_path / k}.jsonl" for k in ("seed", "pool", "dev")]
    with pytest.raises(ConfigError, match=r"'nlu.init'.*is an asr checkpoint, expected nlu"):
        load_loop_config(None, [*data, f"nlu.init={ckpt}"])
    with pytest.raises(ConfigError, match=r"'asr.init'.*not an earmark checkpoint"):
        load_loop_config(None, [*data, f"asr.init={tmp_path / 'nowhere'}"])


def test_eval_by_a_field_no_test_row_has_is_refused_before_training(tiny_corpus: Path) -> None:
    data = [f"data.{k}={tiny_corpus / k}.jsonl" for k in ("seed", "pool", "dev", "test")]
    assert load_loop_config(None, [*data, "eval_by=[engine]"]).eval_by == ("engine",)
    with pytest.raises(ConfigError, match=r"'eval_by'.*test.jsonl.*'domain'.*available: .*engine"):
        load_loop_config(None, [*data, "eval_by=[domain]"])
