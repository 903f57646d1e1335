"""Setting up an ASR run: torch, the model to start from, the features, the optimiser."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from earmark.core.errors import ConfigError
from earmark.core.text import normalize
from training.asr.config import ASRConfig, TrainConfig
from training.asr.data import labelled_rows
from training.asr.features import Example, load_examples, load_views
from training.asr.model import Recogniser, build_recogniser, load_recogniser
from training.asr.state import fresh_state, load_state
from training.asr.transcribe import pick_device
from training.checkpoint import LAST
from training.result import Log

Views = list[tuple[Example, ...]]  # per training utterance, its features at each perturbed speed


def setup_torch(tc: TrainConfig) -> torch.device:
    """Threads, seed and float handling for a reproducible CPU run; the device to train on."""
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    for dtype in (np.float16, np.float32, np.float64):
        np.finfo(dtype)  # cached now: computed after flush-denormal, numpy warns it sees zero
    torch.set_flush_denormal(True)  # denormal floats make CPU matmuls crawl late in training
    return pick_device(tc.device)


def start_model(
    config: ASRConfig,
    out: Path,
    init: str | Path | None,
    resumed: bool,
    log: Log,
    train: str | Path | None = None,
) -> tuple[Recogniser, dict[str, Any]]:
    """The model (resumed from ``out/last/``, warm-started from ``init``, or fresh: its subword
    units, if the config asks for them, learned from ``train``'s transcripts) and the trainer
    state to go on from."""
    state = fresh_state()
    parent = str(init) if init else None
    if resumed:
        rec = load_recogniser(out / LAST, for_training=True)
        state.update(load_state(out / LAST))
        parent = state.get("parent")
        log(f"resuming from {out / LAST} at step {state['step']}")
    elif init:
        rec = load_recogniser(init, for_training=True)
    else:
        texts = (
            [normalize(r.label.text or "") for r in labelled_rows(train) if r.label]
            if (train is not None and config.model.units != "chars")
            else []
        )
        rec = build_recogniser(config.model, texts)
        if rec.units is not None:
            log(f"units: {len(rec.vocab)} subword units learned from {len(texts)} transcripts")
    for note in rec.notes:
        log(note)
    state["parent"] = parent
    return rec, state


def load_features(
    rec: Recogniser, train: str | Path, dev: str | Path, tc: TrainConfig, log: Log
) -> tuple[Views, list[Example], float]:
    """Training views at each perturbed speed and dev examples, featurised once and kept in
    memory; and the seconds that took."""
    train_rows, dev_rows = labelled_rows(train), labelled_rows(dev)
    t0 = time.perf_counter()
    speeds = tuple(tc.speed_perturb) or (1.0,)
    views = load_views(train_rows, rec.feature_extractor, rec.encode, speeds)
    dev_set = load_examples(dev_rows, rec.feature_extractor, rec.encode)
    seconds = time.perf_counter() - t0
    log(
        f"features: {len(views)} train utterances x {len(speeds)} speeds "
        f"({', '.join(f'{s:g}' for s in speeds)}), {len(dev_set)} dev, in {seconds:.1f}s"
    )
    return views, dev_set, seconds


def frozen_modules(model: torch.nn.Module, names: tuple[str, ...]) -> list[torch.nn.Module]:
    """The submodules ``train.freeze`` names (each a module path such as ``encoder.layers.0``);
    a ``ConfigError`` naming the first that is not one, with the paths there are."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules or name == "":
            some = [n for n in modules if n and n.count(".") <= 2][:16]
            raise ConfigError(
                f"train.freeze: {type(model).__name__} has no submodule {name!r} "
                f"(some it has: {', '.join(some)})"
            )
    return [modules[name] for name in names]


def freeze(rec: Recogniser, names: tuple[str, ...], log: Log) -> None:
    """No gradient for the ``train.freeze`` submodules (their parameters get no optimiser
    state either: ``make_optimizer`` skips them)."""
    if not names:
        return
    frozen = 0
    for module in frozen_modules(rec.model, names):
        for p in module.parameters():
            frozen += p.numel() if p.requires_grad else 0
            p.requires_grad_(False)
    total = sum(p.numel() for p in rec.model.parameters())
    log(f"frozen: {', '.join(names)} ({frozen / 1e6:.2f}M of {total / 1e6:.2f}M parameters)")


def train_mode(rec: Recogniser, names: tuple[str, ...]) -> None:
    """The model in training mode, except the frozen submodules (eval: dropout off, batch-norm
    statistics kept as the base learned them)."""
    rec.model.train()
    for module in frozen_modules(rec.model, names):
        module.eval()


def make_optimizer(rec: Recogniser, tc: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the parameters that learn (not ``train.freeze``'s), without weight decay on
    biases and norms."""
    learn = [p for p in rec.model.parameters() if p.requires_grad]
    decay = [p for p in learn if p.dim() >= 2]
    no_decay = [p for p in learn if p.dim() < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tc.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tc.lr,
        betas=(0.9, 0.98),
    )


def saved_best_weights(out: Path) -> dict[str, torch.Tensor] | None:
    """The weights of the best checkpoint an interrupted run saved in ``out``, if any."""
    if not (out / "config.json").is_file():
        return None
    weights: dict[str, torch.Tensor] = load_recogniser(out, for_training=True).model.state_dict()
    return weights


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether to train under bfloat16 autocast (see ``TrainConfig.precision``)."""
    if precision == "fp32":
        return False
    native = device.type == "cuda" or (
        device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    )
    if precision == "bf16" and not native:
        raise ConfigError(
            f"train.precision=bf16: {device.type} has no native bfloat16 here "
            "(use train.precision=auto or fp32)"
        )
    return native
