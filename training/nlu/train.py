"""Training loop for the joint NLU, readable top to bottom (nanoGPT style).

``train_nlu(train, dev, out)`` writes the best-on-dev model to ``out/`` (Hugging Face folder
+ ``nlu.json`` + ``earmark.json``, calibrated on dev) and the resumable state to
``out/last/`` (model, optimiser, step, epoch). Warm start (``init``) loads another NLU
checkpoint; labels that appeared since are appended to its heads.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from earmark.config import load_config, to_dict
from earmark.errors import CheckpointError, ConfigError
from earmark.manifest import manifest_hash
from training.checkpoint import CheckpointMeta, recover_folder, replace_folder, write_meta
from training.nlu import calibration
from training.nlu.data import Example, load_examples, read_asr_predictions, with_hypotheses
from training.nlu.evaluate import score_predictions
from training.nlu.model import (
    JointNLU,
    ModelSettings,
    Temperatures,
    load_model,
    pretrained_encoder,
    resolve_encoder_name,
    save_model,
    scratch_encoder,
)
from training.nlu.predict import RawOutput, decode, infer
from training.nlu.schema import LabelSchema
from training.nlu.tokenize import encode, token_labels, train_tokenizer, word_tags

LAST = "last"
TRAINER_STATE = "trainer.pt"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "nlu.yaml"


@dataclass(frozen=True)
class ModelConfig:
    """``encoder``: None = small BERT from scratch; else a HF id/folder, or ``minilm``."""

    encoder: str | None = None
    vocab_size: int = 3000
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 256
    max_length: int = 64
    dropout: float = 0.1
    pooling: Literal["mean", "cls"] = "mean"


@dataclass(frozen=True)
class OptimConfig:
    """``encoder_lr`` (None = ``lr``) lets a pretrained encoder move slower than the heads."""

    lr: float = 1e-3
    encoder_lr: float | None = None
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    batch_size: int = 32
    max_epochs: int = 40
    max_steps: int | None = None
    patience: int = 6
    grad_clip: float = 1.0
    tag_loss_weight: float = 1.0


@dataclass(frozen=True)
class NLUConfig:
    """Everything ``earmark train nlu`` reads from ``configs/nlu.yaml`` (section ``nlu``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schema: str | None = None
    seed: int = 0
    budget_minutes: float | None = None
    threads: int | None = None


Log = Callable[[str], None]


def load_nlu_config(path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> NLUConfig:
    """``configs/nlu.yaml`` (or ``path``) plus dotted overrides such as ``optim.lr=3e-4``."""
    if path is None and not DEFAULT_CONFIG.is_file():
        return load_config(NLUConfig, None, overrides)
    return load_config(NLUConfig, path or DEFAULT_CONFIG, overrides)


def load_data(
    train_path: Path, dev_path: Path, asr_predictions: Path | None, log: Log
) -> tuple[list[Example], list[Example]]:
    train, dev = load_examples(train_path), load_examples(dev_path)
    if not train:
        raise ConfigError(f"{train_path}: no labelled rows (with an intent) to train on")
    if not dev:
        raise ConfigError(f"{dev_path}: no labelled rows (with an intent) to pick the best model")
    if asr_predictions is not None:
        extra = with_hypotheses(train, read_asr_predictions(asr_predictions))
        kept = sum(len(e.entities) for e in extra)
        log(f"ASR hypotheses: {len(extra)} extra examples ({kept} entities projected)")
        train = train + extra
    return train, dev


def build_schema(
    config: NLUConfig, train: list[Example], dev: list[Example], paths: tuple[Path, Path]
) -> LabelSchema:
    if config.schema is None:
        return LabelSchema.from_examples(train, dev)
    schema = LabelSchema.from_file(config.schema)
    schema.check([e for e in train if e.line], path=str(paths[0]))
    schema.check(dev, path=str(paths[1]))
    return schema


def build_model(
    config: NLUConfig, schema: LabelSchema, train: list[Example], init: Path | None, log: Log
) -> tuple[JointNLU, Any]:
    """A fresh model, or the ``init`` checkpoint with its heads grown to ``schema``."""
    mc = config.model
    settings = ModelSettings(pooling=mc.pooling, max_length=mc.max_length, dropout=mc.dropout)
    if init is not None:
        model, tokenizer = load_model(init)
        grown, new_intents, new_types = model.schema.extended(schema)
        if new_intents or new_types:
            log(
                f"warm start from {init}: heads resized for {len(new_intents)} new intent(s) "
                f"{new_intents} and {len(new_types)} new entity type(s) {new_types}"
            )
            model.grow(grown)
        else:
            log(f"warm start from {init} (same labels; its tokenizer is kept)")
        model.settings = dataclasses.replace(model.settings, temperatures=Temperatures())
        return model, tokenizer
    if mc.encoder is not None:
        encoder, tokenizer = pretrained_encoder(resolve_encoder_name(mc.encoder))
        log(f"encoder {mc.encoder}: {sum(p.numel() for p in encoder.parameters()):,} parameters")
    else:
        tokenizer = train_tokenizer((e.text for e in train), vocab_size=mc.vocab_size)
        encoder = scratch_encoder(
            len(tokenizer),
            hidden_size=mc.hidden_size,
            layers=mc.layers,
            heads=mc.heads,
            intermediate_size=mc.intermediate_size,
            max_length=mc.max_length,
            dropout=mc.dropout,
        )
    return JointNLU(encoder, schema, settings), tokenizer


def get_batch(examples: list[Example], model: JointNLU, tokenizer: Any) -> dict[str, torch.Tensor]:
    """Padded ``(B, T)`` ids/mask, ``(B,)`` intent targets and ``(B, T)`` tag targets."""
    batch, word_ids = encode(
        tokenizer, [e.text for e in examples], max_length=model.settings.max_length
    )
    length = batch["input_ids"].shape[1]
    intents = model.schema.intent_index()
    batch["intent"] = torch.tensor([intents[e.intent] for e in examples])
    batch["tags"] = torch.tensor(
        [
            token_labels(w, word_tags(e, model.schema), length)
            for e, w in zip(examples, word_ids, strict=True)
        ]
    )
    return batch


def loss_fn(model: JointNLU, batch: dict[str, torch.Tensor], tag_weight: float) -> torch.Tensor:
    intent_logits, tag_logits = model(batch["input_ids"], batch["attention_mask"])
    intent_loss = torch.nn.functional.cross_entropy(intent_logits, batch["intent"])
    tag_loss = torch.nn.functional.cross_entropy(
        tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=-100
    )
    return intent_loss + tag_weight * tag_loss


def make_optimizer(model: JointNLU, oc: OptimConfig) -> torch.optim.Optimizer:
    enc = list(model.encoder.parameters())
    enc_ids = {id(p) for p in enc}
    heads = [p for p in model.parameters() if id(p) not in enc_ids]
    return torch.optim.AdamW(
        [
            {"params": enc, "lr": oc.encoder_lr if oc.encoder_lr is not None else oc.lr},
            {"params": heads, "lr": oc.lr},
        ],
        weight_decay=oc.weight_decay,
    )


def training_progress(step: int, total: int, elapsed_s: float, budget_s: float | None) -> float:
    """How far through the plan we are, in [0, 1]: steps, or the time budget if further along.

    With a time budget (the loop retrains every round within minutes) the schedule follows
    the clock, so the learning rate has decayed when the budget runs out.
    """
    frac = step / max(1, total)
    if budget_s:
        frac = max(frac, elapsed_s / budget_s)
    return min(frac, 1.0)


def lr_factor(progress: float, warmup_frac: float) -> float:
    """Linear warm-up over ``warmup_frac`` of the plan, then linear decay to 10% of the peak."""
    if progress < warmup_frac:
        return max(0.02, progress / warmup_frac)
    return max(0.1, 1 - 0.9 * (progress - warmup_frac) / max(1e-9, 1 - warmup_frac))


def dev_score(scores: dict[str, Any]) -> float:
    """Model selection: mean of intent accuracy and entity F1 (intent alone without entities)."""
    acc, f1 = scores["intent_accuracy"].value, scores["entity_f1"].value
    return acc if math.isnan(f1) else (acc + f1) / 2


def predict_examples(
    model: JointNLU, tokenizer: Any, examples: list[Example], version: str
) -> tuple[list[RawOutput], list[dict[str, Any]]]:
    raws = infer(model, tokenizer, [e.text for e in examples])
    temps = model.settings.temperatures
    preds = [
        decode(e.id, e.text, r, model.schema, temps, version)
        for e, r in zip(examples, raws, strict=True)
    ]
    return raws, preds


def calibrate(model: JointNLU, tokenizer: Any, dev: list[Example], version: str) -> Temperatures:
    """Fit the intent and tag temperatures, then the utterance-confidence map, on dev."""
    raws = infer(model, tokenizer, [e.text for e in dev])
    intents = model.schema.intent_index()
    t_intent = calibration.fit_temperature(
        torch.stack([r.intent_logits for r in raws]), torch.tensor([intents[e.intent] for e in dev])
    )
    word_logits = [r.word_tag_logits for r in raws if r.word_tag_logits.shape[0]]
    word_targets = [torch.tensor(word_tags(e, model.schema)) for e in dev if e.text]
    t_tag = (
        calibration.fit_temperature(torch.cat(word_logits), torch.cat(word_targets))
        if word_logits
        else 1.0
    )
    temps = Temperatures(intent=t_intent, tag=t_tag)
    preds = [
        decode(e.id, e.text, r, model.schema, temps, version)
        for e, r in zip(dev, raws, strict=True)
    ]
    correct = [
        p["intent"] == e.intent
        and sorted((x["type"], x["start"], x["end"]) for x in p["entities"])
        == sorted((x.type, x.start, x.end) for x in e.entities)
        for e, p in zip(dev, preds, strict=True)
    ]
    scale, shift = calibration.fit_utterance_map([p["raw_confidence"] for p in preds], correct)
    return Temperatures(t_intent, t_tag, scale, shift)


def save_last(
    model: JointNLU, tokenizer: Any, optimizer: torch.optim.Optimizer, state: dict, out: Path
) -> None:
    """Replace ``out/last/`` whole (``training.checkpoint.replace_folder``): a kill mid-save
    never leaves weights and optimiser state of different epochs to resume from."""

    def write(tmp: Path) -> None:
        save_model(model, tokenizer, tmp)
        torch.save({**state, "optimizer": optimizer.state_dict()}, tmp / TRAINER_STATE)

    replace_folder(out / LAST, write, TRAINER_STATE)


def train_nlu(
    train_path: str | Path,
    dev_path: str | Path,
    out_dir: str | Path,
    config: NLUConfig | None = None,
    *,
    init: str | Path | None = None,
    resume: bool = False,
    asr_predictions: str | Path | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Train, keep the best model on dev, calibrate it, and return its dev metrics."""
    config = config or NLUConfig()
    oc = config.optim
    train_path, dev_path, out = Path(train_path), Path(dev_path), Path(out_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    t0 = time.monotonic()

    train, dev = load_data(
        train_path, dev_path, Path(asr_predictions) if asr_predictions else None, log
    )
    schema = build_schema(config, train, dev, (train_path, dev_path))
    state: dict[str, Any] = {"step": 0, "epoch": 0, "best": -1.0, "best_epoch": 0, "bad": 0}
    state["version"] = "nlu-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if resume and recover_folder(out / LAST, TRAINER_STATE, log):
        model, tokenizer = load_model(out / LAST)
        if model.schema.extended(schema)[0] != model.schema:
            raise CheckpointError(f"{out / LAST}: cannot resume, the training labels changed")
        saved = torch.load(out / LAST / TRAINER_STATE, weights_only=True)
        optimizer = make_optimizer(model, oc)
        optimizer.load_state_dict(saved.pop("optimizer"))
        state.update(saved)
        log(f"resuming {out / LAST} at epoch {state['epoch']}, step {state['step']}")
    else:
        if resume:
            log(f"nothing to resume in {out / LAST}: starting from the beginning")
        model, tokenizer = build_model(config, schema, train, Path(init) if init else None, log)
        optimizer = make_optimizer(model, oc)
    schema = model.schema
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"{len(train)} train / {len(dev)} dev examples, {len(schema.intents)} intents, "
        f"{len(schema.entity_types)} entity types, {n_params:,} parameters"
    )

    steps_per_epoch = math.ceil(len(train) / oc.batch_size)
    total = oc.max_steps or steps_per_epoch * oc.max_epochs
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    budget_s = 60 * config.budget_minutes if config.budget_minutes else None
    stop_reason = "max epochs"
    while state["epoch"] < oc.max_epochs:
        model.train()
        order = list(range(len(train)))
        # seeded per epoch, so a resumed run sees the same order as an uninterrupted one
        random.Random(config.seed * 1000 + state["epoch"]).shuffle(order)
        losses = []
        for i in range(0, len(order), oc.batch_size):
            batch = get_batch([train[j] for j in order[i : i + oc.batch_size]], model, tokenizer)
            elapsed = time.monotonic() - t0
            if budget_s is not None and elapsed > budget_s:
                break  # out of time: score what we have
            progress = training_progress(state["step"], total, elapsed, budget_s)
            factor = lr_factor(progress, oc.warmup_frac)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            loss = loss_fn(model, batch, oc.tag_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), oc.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            state["step"] += 1
            if oc.max_steps and state["step"] >= oc.max_steps:
                break
        state["epoch"] += 1

        _, preds = predict_examples(model, tokenizer, dev, state["version"])
        scores = score_predictions(dev, preds, n_resamples=0)
        score = dev_score(scores)
        improved = score > state["best"]
        if improved:
            state.update(best=score, best_epoch=state["epoch"], bad=0)
            save_model(model, tokenizer, out)
        else:
            state["bad"] += 1
        save_last(model, tokenizer, optimizer, state, out)
        log(
            f"epoch {state['epoch']:3d} step {state['step']:5d} "
            f"loss {sum(losses) / max(1, len(losses)):.4f} "
            f"dev intent {scores['intent_accuracy'].value:.4f} "
            f"entity F1 {scores['entity_f1'].value:.4f}{'  *best*' if improved else ''} "
            f"[{time.monotonic() - t0:.0f}s]"
        )
        if oc.max_steps and state["step"] >= oc.max_steps:
            stop_reason = "max steps"
            break
        if state["bad"] >= oc.patience:
            stop_reason = f"no dev improvement for {oc.patience} epochs"
            break
        if budget_s is not None and time.monotonic() - t0 > budget_s:
            stop_reason = f"time budget of {config.budget_minutes} min"
            break

    model, tokenizer = load_model(out)
    temps = calibrate(model, tokenizer, dev, state["version"])
    model.settings = dataclasses.replace(model.settings, temperatures=temps)
    save_model(model, tokenizer, out)
    _, preds = predict_examples(model, tokenizer, dev, state["version"])
    scores = score_predictions(dev, preds, n_resamples=200)
    metrics = {k: v.to_dict() for k, v in scores.items()}
    metrics["calibration"] = temps.to_dict()
    write_meta(
        out,
        CheckpointMeta(
            kind="nlu",
            model_version=state["version"],
            config=to_dict(config),
            train_manifest_hash=manifest_hash(train_path),
            parent=str(init) if init else None,
            metrics={"dev": metrics, "best_epoch": state["best_epoch"]},
            step=state["step"],
        ),
    )
    log(
        f"stopped ({stop_reason}); best epoch {state['best_epoch']}: "
        f"dev intent {scores['intent_accuracy']}, entity F1 {scores['entity_f1']}, "
        f"ECE {scores['ece']} (T_intent {temps.intent:.2f}, T_tag {temps.tag:.2f}) -> {out}"
    )
    return metrics
