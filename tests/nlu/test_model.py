"""NLU model tests with real (tiny) training: loss, round trip, spans, calibration, encoders."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from factories import tb_scalars, tb_texts

from earmark.core.text import normalize
from training.checkpoint import read_meta
from training.nlu.config import load_nlu_config
from training.nlu.data import load_examples
from training.nlu.model import JointNLU, ModelSettings, Temperatures, pretrained_encoder
from training.nlu.predict import NLUModel, infer, predict
from training.nlu.schema import LabelSchema
from training.nlu.tokenize import train_tokenizer
from training.nlu.train import get_batch, loss_fn, make_optimizer, train_nlu

# every test here trains a real (tiny) model for a few seconds
pytestmark = pytest.mark.slow

ODD_INPUTS = [
    "",
    "   ",
    "!!! ??? ...",
    "PLAY Taylor-Swift's 3rd album @ 7:30pm, in the KITCHEN!!!",
    "uh um the the the to to a",
    "xqzv blorf quuxle zzzzzz",
    "wake me up " * 40,  # far longer than max_length tokens
    "play taylor swift",
    "turn off the lights in the kitchen and set an alarm for seven am tomorrow",
    "ça va? naïve café",
]


def test_a_few_training_steps_lower_the_loss(nlu_data, tiny) -> None:
    torch.manual_seed(0)
    examples = load_examples(nlu_data["train"])[:64]
    config = load_nlu_config(None, tiny)
    schema = LabelSchema.from_examples(examples)
    tokenizer = train_tokenizer((e.text for e in examples), vocab_size=400)
    from training.nlu.build import config_scratch_encoder

    encoder = config_scratch_encoder(config.model, len(tokenizer), dropout=0.0)
    model = JointNLU(encoder, schema, ModelSettings(dropout=0.0))
    batch = get_batch(examples, model, tokenizer)
    optimizer = make_optimizer(model, config)
    before = loss_fn(model, batch, 1.0).item()
    for _ in range(15):
        loss = loss_fn(model, batch, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = loss_fn(model, batch, 1.0).item()
    assert after < 0.7 * before


def test_trained_checkpoint_has_metadata_and_learns(tiny_checkpoint: Path) -> None:
    meta = read_meta(tiny_checkpoint, kind="nlu")
    assert meta.model_version.startswith("nlu-")
    assert meta.config["model"]["hidden_size"] == 32
    assert meta.train_manifest_hash
    dev = meta.metrics["dev"]
    assert set(dev) >= {"intent_accuracy", "entity_f1", "slu_f1", "ece", "calibration"}
    # 4 epochs of a 32-wide model on 400 sentences: far above chance (1/29) already
    assert dev["intent_accuracy"]["value"] > 0.3
    assert (tiny_checkpoint / "last" / "trainer.pt").is_file()
    assert (tiny_checkpoint / "tokenizer.json").is_file()


def test_save_load_round_trip_gives_identical_outputs(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    texts = [(f"t{i}", t) for i, t in enumerate(ODD_INPUTS)]
    loaded = NLUModel.load(tiny_checkpoint)
    before = list(loaded.predict_texts(texts))
    loaded.save(tmp_path / "copy")
    after = list(predict(tmp_path / "copy", texts))
    assert after == before
    again = NLUModel.load(tmp_path / "copy")
    norm = [normalize(t) for _, t in texts]
    for a, b in zip(
        infer(loaded.model, loaded.tokenizer, norm),
        infer(again.model, again.tokenizer, norm),
        strict=True,
    ):
        assert torch.equal(a.intent_logits, b.intent_logits)
        assert torch.equal(a.word_tag_logits, b.word_tag_logits)


def test_predictions_have_the_contract_and_spans_match_the_text(tiny_checkpoint: Path) -> None:
    schema_intents = set(json.loads((tiny_checkpoint / "nlu.json").read_text())["intents"])
    texts = [(f"t{i}", t) for i, t in enumerate(ODD_INPUTS)]
    preds = [p.to_dict() for p in predict(tiny_checkpoint, texts)]
    assert [p["id"] for p in preds] == [i for i, _ in texts]
    n_entities = 0
    for (_, raw), p in zip(texts, preds, strict=True):
        assert p["text"] == normalize(raw)
        assert p["intent"] in schema_intents
        assert 0 <= p["confidence"] <= 1 and 0 <= p["intent_confidence"] <= 1
        assert len(p["alternatives"]) == 3
        assert p["alternatives"][0]["intent"] == p["intent"]
        assert p["alternatives"][0]["p"] >= p["alternatives"][1]["p"] >= p["alternatives"][2]["p"]
        last_end = -1
        for e in p["entities"]:
            n_entities += 1
            assert 0 <= e["start"] < e["end"] <= len(p["text"])
            assert p["text"][e["start"] : e["end"]] == e["value"]
            assert e["value"] == e["value"].strip() and e["start"] > last_end
            # whole words only
            assert e["start"] == 0 or p["text"][e["start"] - 1] == " "
            assert e["end"] == len(p["text"]) or p["text"][e["end"]] == " "
            last_end = e["end"]
            assert 0 <= e["confidence"] <= 1
        assert p["model_version"].startswith("nlu-")
    assert n_entities > 0  # the check above has something to check


def test_spans_stay_valid_on_random_garbage(tiny_checkpoint: Path) -> None:
    import random

    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz     '0123456789.,!?-"
    texts = [
        (str(i), "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))))
        for i in range(60)
    ]
    for p in [q.to_dict() for q in predict(tiny_checkpoint, texts)]:
        for e in p["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(p["text"])
            assert p["text"][e["start"] : e["end"]] == e["value"]


def test_calibration_changes_confidence_not_predictions(tiny_checkpoint: Path) -> None:
    calibrated = NLUModel.load(tiny_checkpoint)
    temps = calibrated.model.settings.temperatures
    assert temps != Temperatures()  # fitting on dev moved something
    raw = NLUModel.load(tiny_checkpoint)
    raw.model.settings = dataclasses.replace(raw.model.settings, temperatures=Temperatures())
    texts = [(str(i), t) for i, t in enumerate(ODD_INPUTS)]
    a = [p.to_dict() for p in calibrated.predict_texts(texts)]
    b = [p.to_dict() for p in raw.predict_texts(texts)]
    strip = ("type", "start", "end", "value")
    for x, y in zip(a, b, strict=True):
        assert x["intent"] == y["intent"]
        assert [x_["intent"] for x_ in x["alternatives"]] == [
            y_["intent"] for y_ in y["alternatives"]
        ]
        assert [{k: e[k] for k in strip} for e in x["entities"]] == [
            {k: e[k] for k in strip} for e in y["entities"]
        ]
    assert [x["confidence"] for x in a] != [y["confidence"] for y in b]


def test_warm_start_grows_heads_for_new_labels(
    tiny_checkpoint: Path, nlu_data, tiny, tmp_path: Path
) -> None:
    old = json.loads((tiny_checkpoint / "nlu.json").read_text())
    train = tmp_path / "train.jsonl"
    lines = nlu_data["train"].read_text().splitlines()[:100]
    lines.append(
        json.dumps(
            {
                "id": "new-1",
                "text": "beam me up scotty",
                "intent": "teleport_now",
                "entities": [{"type": "crew_member", "start": 11, "end": 17}],
            }
        )
    )
    train.write_text("\n".join(lines) + "\n")
    log: list[str] = []
    config = load_nlu_config(None, (*tiny, "optim.max_epochs=1"))
    train_nlu(
        config, train, nlu_data["dev"], tmp_path / "warm", init=tiny_checkpoint, log=log.append
    )
    new = json.loads((tmp_path / "warm" / "nlu.json").read_text())
    assert new["intents"][: len(old["intents"])] == old["intents"]
    assert new["intents"][-1] == "teleport_now"
    assert new["entity_types"][-1] == "crew_member"
    assert any("resized" in line and "teleport_now" in line for line in log)
    assert read_meta(tmp_path / "warm").parent == str(tiny_checkpoint)
    preds = list(predict(tmp_path / "warm", [("x", "beam me up scotty")]))
    assert preds[0].intent in new["intents"]


def test_resume_continues_from_last(nlu_data, tiny, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = load_nlu_config(None, (*tiny, "optim.max_epochs=1"))
    train_nlu(first, nlu_data["train"], nlu_data["dev"], out, log=lambda _: None)
    steps_one_epoch = read_meta(out).step
    log: list[str] = []
    second = load_nlu_config(None, (*tiny, "optim.max_epochs=2"))
    train_nlu(second, nlu_data["train"], nlu_data["dev"], out, resume=True, log=log.append)
    assert any(line.startswith("resuming") for line in log)
    assert read_meta(out).step == 2 * steps_one_epoch
    # TensorBoard: one loss curve over both runs, dev scored at each epoch's end, the config
    curves = tb_scalars(out / "tb")
    assert [s for s, _ in curves["train/loss"]] == list(range(1, 2 * steps_one_epoch + 1))
    assert [s for s, _ in curves["dev/intent_accuracy"]] == [steps_one_epoch, 2 * steps_one_epoch]
    assert 0 <= curves["final/intent_accuracy"][-1][1] <= 1
    assert "max_epochs: 1" in tb_texts(out / "tb")["config"]  # the config it started with


def test_hf_encoder_checkpoint_loads_as_the_encoder(nlu_data, tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    texts = [e.text for e in load_examples(nlu_data["train"])]
    tokenizer = train_tokenizer(texts, vocab_size=500)
    torch.manual_seed(1)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=80,
        )
    )
    hf_dir = tmp_path / "tiny-bert"
    bert.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    encoder, loaded_tok = pretrained_encoder(str(hf_dir))
    assert type(encoder).__name__ == "BertModel"
    ref = dict(bert.named_parameters())
    for name, p in encoder.named_parameters():
        assert torch.equal(p, ref[name]), name
    assert loaded_tok("play jazz")["input_ids"] == tokenizer("play jazz")["input_ids"]

    config = load_nlu_config(
        None,
        (
            "model.encoder=" + str(hf_dir),
            "optim.max_epochs=1",
            "optim.min_steps=0",
            "optim.lr=0.003",
        ),
    )
    out = tmp_path / "ckpt"
    train_nlu(config, nlu_data["train"], nlu_data["dev"], out, log=lambda _: None)
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 32
    assert len(list(predict(out, [("a", "play some jazz")]))) == 1


def test_missing_encoder_is_a_clear_error(tmp_path: Path) -> None:
    from earmark.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="cannot load encoder"):
        pretrained_encoder(str(tmp_path / "nowhere"))


def test_train_on_asr_hypotheses_adds_projected_examples(
    nlu_data, tiny, grammar_manifest, tmp_path: Path
) -> None:
    rows = [json.loads(x) for x in nlu_data["train"].read_text().splitlines()[:50]]
    hyps = tmp_path / "hyps.jsonl"
    hyps.write_text(
        "".join(
            json.dumps({"id": r["id"], "text": "uh " + r["text"], "confidence": 0.5, "words": []})
            + "\n"
            for r in rows
        )
    )
    log: list[str] = []
    config = load_nlu_config(None, (*tiny, "optim.max_epochs=1"))
    grammar_manifest(tmp_path / "small.jsonl", 50, seed=1)
    train_nlu(
        config,
        tmp_path / "small.jsonl",
        nlu_data["dev"],
        tmp_path / "ckpt",
        asr_predictions=hyps,
        log=log.append,
    )
    assert any("ASR hypotheses: 50 extra examples" in line for line in log)
    assert any("100 train" in line for line in log)


def test_time_budget_stops_training_and_still_writes_a_checkpoint(
    nlu_data, tiny, tmp_path: Path
) -> None:
    from training.budget import BudgetClock
    from training.schedule import warmup_linear

    # the schedule follows the clock when the budget is further along than the steps
    assert BudgetClock(1.0, wall=30.0).progress(10, 1000) == 0.5
    assert warmup_linear(1.0, 1.0, warmup=0.1) == pytest.approx(0.1)
    log: list[str] = []
    config = load_nlu_config(None, (*tiny, "optim.max_minutes=0.002"))
    train_nlu(config, nlu_data["train"], nlu_data["dev"], tmp_path / "b", log=log.append)
    assert any("time budget" in line for line in log)
    assert read_meta(tmp_path / "b").step < 25 * 40  # far fewer than 40 epochs of 25 steps
    assert len(list(predict(tmp_path / "b", [("a", "play jazz")]))) == 1


def test_resume_with_nothing_saved_says_so_and_returns_a_train_result(
    nlu_data, tiny, tmp_path: Path
) -> None:
    from training.result import TrainResult

    config = load_nlu_config(None, (*tiny, "optim.max_steps=5"))
    log: list[str] = []
    steps: list[int] = []
    result = train_nlu(
        config,
        nlu_data["train"],
        nlu_data["dev"],
        tmp_path / "new",
        resume=True,
        on_progress=lambda d: steps.append(d["step"]),
        log=log.append,
    )
    assert any("nothing to resume" in line for line in log)
    assert isinstance(result, TrainResult) and result.checkpoint == tmp_path / "new"
    meta = read_meta(result.checkpoint)
    assert json.dumps(result.metrics, sort_keys=True) == json.dumps(meta.metrics, sort_keys=True)
    assert steps == [1, 2, 3, 4, 5] and meta.step == 5
    assert set(result.metrics["dev"]) >= {"intent_accuracy", "entity_f1", "calibration"}


def test_a_resumed_run_follows_the_uninterrupted_learning_rate_schedule(
    nlu_data, tiny, tmp_path: Path
) -> None:
    config = load_nlu_config(None, (*tiny, "optim.max_epochs=2"))
    whole: dict[int, float] = {}
    train_nlu(
        config, nlu_data["train"], nlu_data["dev"], tmp_path / "whole",
        log=lambda _: None, on_progress=lambda d: whole.__setitem__(d["step"], d["lr"]),
    )  # fmt: skip
    per_epoch = len(whole) // 2

    class Killed(Exception):
        pass

    def die_in_epoch_two(d: dict) -> None:
        if d["step"] > per_epoch:
            raise Killed

    with pytest.raises(Killed):  # killed early in epoch 2, after epoch 1's last/ was saved
        train_nlu(
            config, nlu_data["train"], nlu_data["dev"], tmp_path / "cut",
            log=lambda _: None, on_progress=die_in_epoch_two,
        )  # fmt: skip
    resumed: dict[int, float] = {}
    train_nlu(
        config, nlu_data["train"], nlu_data["dev"], tmp_path / "cut", resume=True,
        log=lambda _: None, on_progress=lambda d: resumed.__setitem__(d["step"], d["lr"]),
    )  # fmt: skip
    assert min(resumed) == per_epoch + 1
    assert resumed == pytest.approx({s: lr for s, lr in whole.items() if s > per_epoch})


def test_min_steps_lengthens_a_short_schedule_past_max_epochs(nlu_data, tiny, tmp_path) -> None:
    """A few hundred labels need more epochs than max_epochs gives a few thousand."""
    one = load_nlu_config(None, (*tiny, "optim.max_epochs=1", "optim.patience=100"))
    train_nlu(one, nlu_data["train"], nlu_data["dev"], tmp_path / "one", log=lambda _: None)
    per_epoch = read_meta(tmp_path / "one").step
    longer = load_nlu_config(
        None,
        (*tiny, "optim.max_epochs=1", "optim.patience=100", f"optim.min_steps={2 * per_epoch + 1}"),
    )
    train_nlu(longer, nlu_data["train"], nlu_data["dev"], tmp_path / "two", log=lambda _: None)
    assert read_meta(tmp_path / "two").step == 3 * per_epoch
