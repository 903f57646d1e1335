"""Metric statistics shared by the ASR and NLU evaluations (numpy only).

Bootstrap confidence intervals, AUROC and rank correlation of a confidence for predicting
errors, and expected calibration error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A metric with its 95% bootstrap interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n_items: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """Percentile bootstrap over items: ``statistic(indices)`` -> float, resampled with replacement.

    ``statistic`` receives an int array of item indices (shape ``(n_items,)``) so corpus-level
    metrics such as WER (total errors / total words) are resampled correctly.
    """
    if n_items == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    value = float(statistic(np.arange(n_items)))
    samples = np.array(
        [statistic(rng.integers(0, n_items, n_items)) for _ in range(n_resamples)], dtype=float
    )
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return Estimate(value, float("nan"), float("nan"))
    alpha = (1 - level) / 2
    return Estimate(
        value, float(np.quantile(samples, alpha)), float(np.quantile(samples, 1 - alpha))
    )


def ratio_statistic(
    numerators: Sequence[float], denominators: Sequence[float]
) -> Callable[[np.ndarray], float]:
    """sum(num[idx]) / sum(den[idx]): the corpus-level rate (WER, CER) for ``bootstrap``."""
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)

    def stat(idx: np.ndarray) -> float:
        total = den[idx].sum()
        return float(num[idx].sum() / total) if total > 0 else float("nan")

    return stat


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    s = np.asarray(values, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``positives`` (ties count one half).

    NaN when either class is absent. For confidence-predicts-error, pass ``-confidence`` (or
    ``1 - confidence``) as the score and "has an error" as the positive.
    """
    y = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of ``x`` and ``y`` (ties share ranks); NaN when either is constant.

    Unlike an AUROC it needs no two classes: "does a lower confidence go with more word
    errors" has an answer even when every utterance has some error (a weak early model).
    """
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 2:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], *, n_bins: int = 15
) -> float:
    """ECE: bin-weighted |accuracy - mean confidence| over equal-width confidence bins."""
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return float("nan")
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(ok[mask].mean() - conf[mask].mean())
    return float(ece)
