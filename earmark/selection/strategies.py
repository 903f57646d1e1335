"""Query strategies: one method, ``select(pool, n, exclude)``.

Confidence-based strategies only say how a priority is computed from ``UtteranceScores``
(higher = more worth a human's time); selection (top-n, seeded random tie-breaking,
exclusions) is shared. ``Diverse`` wraps any strategy to spread a batch over embedding space.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np

from earmark.core.errors import EmptyPoolError, SelectionError
from earmark.selection.scores import UtteranceScores


def _need(value: float | None, name: str, uid: str) -> float:
    if value is None or math.isnan(value):
        raise SelectionError(
            f"utterance {uid}: no '{name}' score; this strategy needs the model that produces it"
        )
    return float(value)


class Strategy:
    """Chooses up to ``n`` ids from the pool, never an excluded one."""

    name = "strategy"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def priority(self, item: UtteranceScores) -> float:
        """Higher = more worth a human's time."""
        raise NotImplementedError

    def _candidates(
        self, pool: Sequence[UtteranceScores], exclude: Collection[str]
    ) -> list[UtteranceScores]:
        seen: set[str] = set()
        out = []
        for item in pool:
            if item.id in exclude or item.id in seen:
                continue
            seen.add(item.id)
            out.append(item)
        if not out:
            raise EmptyPoolError(
                f"nothing left to select: the pool has {len(pool)} utterance(s), "
                f"all labelled, queued, flagged or quarantined"
            )
        return out

    def ranked(self, candidates: Sequence[UtteranceScores]) -> list[UtteranceScores]:
        """Candidates by decreasing priority; ties broken by a seeded random key."""
        rng = np.random.default_rng(self.seed)
        tie = rng.random(len(candidates))
        prios = np.array([self.priority(c) for c in candidates], dtype=float)
        order = np.lexsort((tie, -prios))
        return [candidates[i] for i in order]

    def select(
        self, pool: Sequence[UtteranceScores], n: int, exclude: Collection[str] = ()
    ) -> list[str]:
        if n < 0:
            raise SelectionError(f"batch size must be >= 0, got {n}")
        candidates = self._candidates(pool, set(exclude))
        return [c.id for c in self.ranked(candidates)[:n]]


class Random(Strategy):
    """Uniform random: the baseline every other strategy must beat."""

    name = "random"

    def priority(self, item: UtteranceScores) -> float:
        return 0.0  # every item ties: the seeded tie-break is the random order


class AsrLeastConfidence(Strategy):
    name = "asr-least-confidence"

    def priority(self, item: UtteranceScores) -> float:
        return 1.0 - _need(item.asr_confidence, "asr_confidence", item.id)


class AsrEntropy(Strategy):
    name = "asr-entropy"

    def priority(self, item: UtteranceScores) -> float:
        return _need(item.asr_entropy, "asr_entropy", item.id)


class NluMargin(Strategy):
    name = "nlu-margin"

    def priority(self, item: UtteranceScores) -> float:
        return 1.0 - _need(item.nlu_margin, "nlu_margin", item.id)


class NluEntropy(Strategy):
    name = "nlu-entropy"

    def priority(self, item: UtteranceScores) -> float:
        return _need(item.nlu_entropy, "nlu_entropy", item.id)


class Combined(Strategy):
    """ASR and NLU uncertainty together: ``1 - (c_asr ** w) * (c_nlu ** (1 - w))``.

    The product of calibrated confidences is the probability that both the transcript and the
    understanding are right (treating them as independent); ``w`` (default 0.5) tilts it
    towards one model. A missing side (ASR-only or NLU-only corpus) counts as confidence 1.
    """

    name = "combined"

    def __init__(self, seed: int = 0, asr_weight: float = 0.5) -> None:
        super().__init__(seed)
        if not 0.0 <= asr_weight <= 1.0:
            raise SelectionError(f"asr_weight must be in [0, 1], got {asr_weight}")
        self.asr_weight = asr_weight

    def priority(self, item: UtteranceScores) -> float:
        if item.asr_confidence is None and item.nlu_confidence is None:
            raise SelectionError(f"utterance {item.id}: neither asr_confidence nor nlu_confidence")
        c_asr = 1.0 if item.asr_confidence is None else max(item.asr_confidence, 1e-6)
        c_nlu = 1.0 if item.nlu_confidence is None else max(item.nlu_confidence, 1e-6)
        return 1.0 - (c_asr**self.asr_weight) * (c_nlu ** (1.0 - self.asr_weight))


class Diverse(Strategy):
    """Diversity wrapper: the ``factor * n`` highest-priority candidates of ``base``, thinned to
    ``n`` by greedy k-center on their embeddings, starting from the top-priority one.

    So one batch is not twenty copies of the same hard phrase. Items without an embedding
    fall back to the base ranking.
    """

    def __init__(self, base: Strategy, factor: float = 4.0, seed: int = 0) -> None:
        super().__init__(seed)
        if factor < 1:
            raise SelectionError(f"diversity factor must be >= 1, got {factor}")
        self.base = base
        self.factor = factor
        self.name = f"diverse({base.name})"

    def priority(self, item: UtteranceScores) -> float:
        return self.base.priority(item)

    def select(
        self, pool: Sequence[UtteranceScores], n: int, exclude: Collection[str] = ()
    ) -> list[str]:
        if n < 0:
            raise SelectionError(f"batch size must be >= 0, got {n}")
        candidates = self._candidates(pool, set(exclude))
        ranked = self.base.ranked(candidates)[: max(n, math.ceil(self.factor * n))]
        if n == 0:
            return []
        if any(c.embedding is None for c in ranked):
            return [c.id for c in ranked[:n]]
        emb = np.array([c.embedding for c in ranked], dtype=float)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12
        chosen = [0]
        dist = np.linalg.norm(emb - emb[0], axis=1)
        dist[0] = -np.inf
        while len(chosen) < min(n, len(ranked)):
            nxt = int(np.argmax(dist))  # argmax takes the first (= higher priority) on ties
            chosen.append(nxt)
            dist = np.minimum(dist, np.linalg.norm(emb - emb[nxt], axis=1))
            dist[chosen] = -np.inf
        return [ranked[i].id for i in chosen]


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (Random, AsrLeastConfidence, AsrEntropy, NluMargin, NluEntropy, Combined)
}


def make_strategy(
    name: str, seed: int = 0, *, diverse: bool = False, factor: float = 4.0
) -> Strategy:
    """Build a strategy by name (``STRATEGIES``), optionally wrapped in ``Diverse``."""
    if name not in STRATEGIES:
        raise SelectionError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    base = STRATEGIES[name](seed=seed)
    return Diverse(base, factor=factor, seed=seed) if diverse else base
