"""The loop's config (``configs/loop.yaml``): data, rounds, selection, models, annotator,
self-training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from earmark.core.config import load_config
from earmark.core.errors import CheckpointError, ConfigError, ManifestError
from earmark.core.groups import check_fields
from earmark.core.manifest import read_manifest, row_to_dict
from training.checkpoint import read_meta


@dataclass(frozen=True)
class DataConfig:
    """Manifests the loop works on. ``seed`` is labelled; ``pool`` is unlabelled; ``answers``
    (the pool's true labels) is read only by the simulated annotator."""

    seed: str = ""
    pool: str = ""
    dev: str = ""
    test: str = ""
    answers: str = ""
    # optional YAML/JSON {intents, entity_types} (the built-in corpus's corpus.json): the
    # labels the annotators choose from, and the NLU's outputs from round 1
    schema: str = ""


@dataclass(frozen=True)
class ModelRun:
    """One model's training per round: its config file, overrides and time budget.

    ``lm_text`` (the ASR's only): files of sentences or words, one a line, that its lexicon and
    language models learn from besides the transcripts (``decoding.lm_text``), e.g. the NLU's
    training text or a list of names the users will say.

    ``init``: a base checkpoint (a folder earmark trained, e.g. by ``earmark train``) that
    round 1 starts from instead of from scratch (a pretrained NLU encoder alone is the NLU
    config's ``model.encoder``); later rounds start from the round before, as always."""

    enabled: bool = True  # also switched off automatically when the data has no such labels
    init: str = ""
    # true: ``init`` was trained on exactly the seed set (``earmark base``), so round 1 is
    # ``init`` itself, measured but not trained again
    init_is_round_one: bool = False
    config: str = ""
    overrides: tuple[str, ...] = ()
    # added to ``overrides`` when a round starts from an earlier checkpoint (the round before,
    # or ``init``): a warm model needs a shorter schedule than one trained from the start
    warm_overrides: tuple[str, ...] = ()
    first_round_minutes: float = 4.0
    minutes: float = 2.0  # later rounds warm-start from the previous round's checkpoint
    lm_text: tuple[str, ...] = ()
    # A warm round's training set (``earmark.loop.trainset.warm_mix``): ``replay`` seed rows (a
    # seeded random subset; 0 = all) and every human label ``label_repeats`` times, so that the
    # labels the deployment gave are not drowned by the data the base already learnt
    replay: int = 0
    label_repeats: int = 1
    # Data-parallel processes a round trains on (torchrun: gloo on CPU, NCCL on GPUs; the
    # ``--nproc`` of ``earmark train``): one global batch split across them
    nproc: int = 1

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ConfigError(f"config key 'nproc' of a model: at least 1, got {self.nproc}")
        if self.replay < 0 or self.label_repeats < 1:
            raise ConfigError(
                "config keys 'replay' (seed rows a warm round keeps, 0 = all) and "
                f"'label_repeats' (at least 1) of a model: got {self.replay} and "
                f"{self.label_repeats}"
            )


@dataclass(frozen=True)
class SelectionConfig:
    strategy: str = "combined"
    diverse: bool = True
    diversity_factor: float = 3.0
    asr_weight: float = 0.5
    # score a seeded random subset of this many selectable pool utterances per round (0 = all):
    # decoding the whole pool every round is most of a round's time on a big pool
    pool_sample: int = 0
    # > 0: select at random in rounds where, on dev, the strategy's priority ranks the models'
    # errors with a Spearman correlation below this (earmark/loop/warmup.py); 0 = always trust it
    min_rank_correlation: float = 0.0
    # ASR scoring split over this many worker processes (earmark/loop/scoring.py), the torch
    # threads shared among them: the same predictions as one process with as many threads
    score_processes: int = 1

    def __post_init__(self) -> None:
        if self.score_processes < 1:
            raise ConfigError(
                f"config key 'selection.score_processes': at least 1, got {self.score_processes}"
            )
        if self.pool_sample < 0:
            raise ConfigError(
                f"config key 'selection.pool_sample': must be >= 0 (0 = the whole pool), "
                f"got {self.pool_sample}"
            )
        if not 0.0 <= self.min_rank_correlation <= 1.0:
            raise ConfigError(
                f"config key 'selection.min_rank_correlation': must be in [0, 1] (0 = off), "
                f"got {self.min_rank_correlation}"
            )


@dataclass(frozen=True)
class AnnotatorConfig:
    kind: Literal["simulated", "human"] = "simulated"
    error_rate: float = 0.0
    flag_rate: float = 0.0
    poll_seconds: float = 10.0
    # Simulated annotator accounts, each with its own seed; with the studio config's
    # projects.overlap > 1 several of them answer the same tasks (agreement figures per round).
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"config key 'annotator.count': at least 1, got {self.count}")


@dataclass(frozen=True)
class StoppingConfig:
    """Stop at ``rounds``, at ``label_budget`` human labels, or when the main dev metric has
    not improved by ``min_delta`` for ``patience`` rounds (0 disables the rule)."""

    rounds: int = 3
    label_budget: int = 0  # 0 = no budget
    patience: int = 2
    min_delta: float = 0.002


@dataclass(frozen=True)
class SelfTrainingConfig:
    """Self-training: pool utterances the previous round's models are very sure of join
    training with the models' own labels (``source: model``; never shown as human labels).

    A transcript is used when the ASR confidence is at least ``min_asr_confidence``; an intent
    with entities when the NLU confidence is at least ``min_nlu_confidence`` and, where the
    text is an ASR hypothesis, that hypothesis passes too. ``max_per_round`` caps each model's
    pseudo labels (the most confident first, ties by id; 0 = no cap).
    """

    enabled: bool = False
    min_asr_confidence: float = 0.95
    min_nlu_confidence: float = 0.95
    max_per_round: int = 0

    def __post_init__(self) -> None:
        for name in ("min_asr_confidence", "min_nlu_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"config key 'self_training.{name}': must be in [0, 1], got {value}"
                )
        if self.max_per_round < 0:
            raise ConfigError(
                "config key 'self_training.max_per_round': must be >= 0 (0 = no cap), "
                f"got {self.max_per_round}"
            )


@dataclass(frozen=True)
class LoopConfig:
    data: DataConfig = field(default_factory=DataConfig)
    batch: int = 50
    seed: int = 0
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    asr: ModelRun = field(default_factory=lambda: ModelRun(config="configs/asr.yaml"))
    nlu: ModelRun = field(
        default_factory=lambda: ModelRun(
            config="configs/nlu.yaml", first_round_minutes=1.5, minutes=1.0
        )
    )
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    self_training: SelfTrainingConfig = field(default_factory=SelfTrainingConfig)
    studio_config: str = "configs/studio.yaml"
    eval_resamples: int = 200
    # manifest fields whose values the test figures are also reported by, each round (e.g.
    # [domain]: the deployment scenario's source-like and shifted rows), as name@field=value
    eval_by: tuple[str, ...] = ()


def load_loop_config(
    path: str | Path | None, overrides: tuple[str, ...] | list[str] = ()
) -> LoopConfig:
    cfg = load_config(LoopConfig, path, list(overrides))
    for name in ("seed", "pool", "dev"):
        if not getattr(cfg.data, name):
            raise ConfigError(f"config key 'data.{name}' is required (a manifest path)")
    if cfg.batch <= 0:
        raise ConfigError(f"config key 'batch': must be positive, got {cfg.batch}")
    for kind in ("asr", "nlu"):
        init = getattr(cfg, kind).init
        if init:
            try:
                read_meta(init, kind=kind)
            except CheckpointError as exc:
                raise ConfigError(f"config key '{kind}.init': {exc}") from None
    if cfg.eval_by:
        _check_eval_by(cfg)
    for kind in ("asr", "nlu"):
        if getattr(cfg, kind).init_is_round_one and not getattr(cfg, kind).init:
            raise ConfigError(f"config key '{kind}.init_is_round_one': needs '{kind}.init'")
    if cfg.nlu.lm_text:
        raise ConfigError("config key 'nlu.lm_text': only the ASR takes LM text (asr.lm_text)")
    return cfg


def _check_eval_by(cfg: LoopConfig) -> None:
    """``ConfigError`` before any training when no test row has an ``eval_by`` field."""
    test = cfg.data.test or cfg.data.dev
    try:
        fields_of = {row.id: row_to_dict(row) for row in read_manifest(test)}
        check_fields(fields_of, cfg.eval_by, f"config key 'eval_by' ({test})")
    except ManifestError as exc:
        raise ConfigError(str(exc)) from None
