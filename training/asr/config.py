"""ASR settings: one frozen dataclass per concern, loaded from ``configs/asr.yaml``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from earmark.core.config import load_config
from earmark.core.errors import ConfigError
from training.asr.lm import DecodingConfig
from training.asr.model import ModelConfig
from training.budget import Clock

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "asr.yaml"


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: float = 0.05


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe. Budget (``training.budget``, as the NLU's): ``max_minutes`` on
    ``budget_clock`` (``wall``, or ``cpu``: CPU seconds per torch thread) and ``max_steps``
    (lowered to ``max_epochs`` epochs' batches when that is set: rounds decided by the labels,
    not by the minutes) both apply, the first reached ends training (0 = no limit of that
    kind, not all); the learning-rate schedule (linear warm-up, cosine decay) runs over whichever ends first.

    ``precision``: ``auto`` trains under bfloat16 autocast on CUDA and on CPUs with native
    bfloat16 (AVX512-BF16 or AMX; the speed-up is measured by ``scripts/bench_asr.py``), fp32
    elsewhere; the CTC loss is always computed in fp32.

    ``speed_perturb``: speed factors (Ko et al. 2015); each epoch hears every training
    utterance once at a factor drawn for it. Features are computed once per factor.

    ``vtlp``: vocal tract length perturbation (``features.vtlp``): every batch warps each
    utterance's mel axis by a factor drawn from ``[1 - vtlp, 1 + vtlp]`` (0 = off), a new
    speaker's formants for a corpus of few speakers.

    ``freeze``: names of the model's submodules kept as they are (``encoder.subsampling``,
    ``encoder.layers.0``...; ``training.asr.start.freeze``): no gradient, no optimiser state,
    eval mode (batch-norm statistics kept). Fine-tuning only the top of a converged base is a
    round decided by its labels: less to learn from a few hundred, less to compute.
    """

    seed: int = 0
    lr: float = 2.0e-3
    weight_decay: float = 1.0e-2
    warmup: float = 0.08
    final_lr_fraction: float = 0.02
    max_minutes: float = 20.0
    max_steps: int = 0
    max_epochs: int = 0  # 0 = none; else a step cap of this many epochs' batches
    budget_clock: Clock = "wall"
    max_frames: int = 6000
    max_batch: int = 64
    grad_clip: float = 1.0
    eval_every_minutes: float = 3.0
    eval_every_steps: int = 0
    eval_max_utterances: int = 150
    threads: int = 2
    device: str | None = None
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    speed_perturb: tuple[float, ...] = (0.9, 1.0, 1.1)
    vtlp: float = 0.0
    freeze: tuple[str, ...] = ()
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)

    def __post_init__(self) -> None:
        if self.max_epochs < 0:
            raise ConfigError(
                f"train.max_epochs: must be >= 0 (0 = no limit), got {self.max_epochs}"
            )
        bad = [f for f in self.speed_perturb if not 0.5 <= f <= 2.0]
        if bad:
            raise ConfigError(f"train.speed_perturb: factors must be within [0.5, 2.0], got {bad}")
        if not 0.0 <= self.vtlp < 0.5:
            raise ConfigError(f"train.vtlp: a warp within [0, 0.5), got {self.vtlp}")


@dataclass(frozen=True)
class ConfidenceConfig:
    word_aggregation: Literal["min", "mean", "prod"] = "min"


@dataclass(frozen=True)
class ASRConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)


def load_asr_config(path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> ASRConfig:
    """``configs/asr.yaml`` (or ``path``) plus dotted overrides such as ``train.lr=1e-3``."""
    return load_config(ASRConfig, path or DEFAULT_CONFIG, overrides)


def with_budget(
    config: ASRConfig, *, minutes: float | None = None, max_steps: int | None = None
) -> ASRConfig:
    """``config`` with ``train.max_minutes`` and/or ``train.max_steps`` replaced (None keeps the
    config's): what the loop's minutes and the CLI's ``--max-minutes``/``--max-steps`` set."""
    tc = config.train
    tc = dataclasses.replace(
        tc,
        max_minutes=tc.max_minutes if minutes is None else float(minutes),
        max_steps=tc.max_steps if max_steps is None else int(max_steps),
    )
    return dataclasses.replace(config, train=tc)


def with_lm_text(config: ASRConfig, paths: Sequence[str | Path]) -> ASRConfig:
    """``config`` with ``paths`` added to ``decoding.lm_text`` (what ``--lm-text`` and the
    loop's ``asr.lm_text`` give)."""
    if not paths:
        return config
    dc = config.decoding
    dc = dataclasses.replace(dc, lm_text=(*dc.lm_text, *(str(p) for p in paths)))
    return dataclasses.replace(config, decoding=dc)
