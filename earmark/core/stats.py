"""Metric statistics shared by the ASR and NLU evaluations (numpy only).

Bootstrap confidence intervals (of one system, and of the paired difference of two systems
scored on the same items), AUROC and rank correlation of a confidence for predicting errors,
and expected calibration error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

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


Better = Literal["lower", "higher"]  # which values of a metric are the better ones


@dataclass(frozen=True)
class PairedDifference:
    """``candidate - baseline`` of one metric on the same items, with its 95% paired-bootstrap
    interval.

    ``p_better`` is the share of resamples in which the candidate is strictly better (by
    ``better``: "lower" or "higher" values); ``p_two_sided`` is the bootstrap's two-sided
    p-value-like figure ``2 * min(share(diff <= 0), share(diff >= 0))``, capped at 1 (1 when
    the two never differ).
    """

    value: float
    low: float
    high: float
    baseline: float
    candidate: float
    better: Better
    p_better: float
    p_two_sided: float

    def to_dict(self) -> dict[str, float | str]:
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "better": self.better,
            "p_better": self.p_better,
            "p_two_sided": self.p_two_sided,
        }

    def __str__(self) -> str:
        return f"{self.value:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_bootstrap(
    baseline: Callable[[np.ndarray], float],
    candidate: Callable[[np.ndarray], float],
    n_items: int,
    *,
    better: Better,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """Percentile bootstrap of ``candidate(idx) - baseline(idx)`` over the same resampled items.

    Both statistics score the same ``n_items`` items (the same utterances, in the same order)
    and receive the same index array in each resample, so what the two systems share (hard
    utterances) cancels out of the difference: a corpus-level ratio such as WER is recomputed
    for both systems on the same indices before the two are subtracted. The draws are those
    of ``bootstrap`` with the same ``seed``. ``better`` ("lower" or "higher") only decides
    ``p_better``. Resamples where either statistic is NaN are dropped.
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"paired_bootstrap: better must be 'lower' or 'higher', got {better!r}")
    nan = float("nan")
    if n_items == 0:
        return PairedDifference(nan, nan, nan, nan, nan, better, nan, nan)
    rng = np.random.default_rng(seed)
    every = np.arange(n_items)
    base, cand = float(baseline(every)), float(candidate(every))
    diffs = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n_items, n_items)
        diffs.append(float(candidate(idx)) - float(baseline(idx)))
    samples = np.array(diffs, dtype=float)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return PairedDifference(cand - base, nan, nan, base, cand, better, nan, nan)
    improvement = -samples if better == "lower" else samples
    p_two_sided = min(1.0, 2 * min(float((samples <= 0).mean()), float((samples >= 0).mean())))
    alpha = (1 - level) / 2
    return PairedDifference(
        cand - base,
        float(np.quantile(samples, alpha)),
        float(np.quantile(samples, 1 - alpha)),
        base,
        cand,
        better,
        float((improvement > 0).mean()),
        p_two_sided,
    )


def paired_differences(
    baseline: Mapping[str, Callable[[np.ndarray], float]],
    candidate: Mapping[str, Callable[[np.ndarray], float]],
    metrics: Mapping[str, Better],
    n_items: int,
    *,
    n_resamples: int = 1000,
) -> dict[str, PairedDifference]:
    """``paired_bootstrap`` of each named metric (name -> which direction is better)."""
    return {
        name: paired_bootstrap(
            baseline[name], candidate[name], n_items, better=better, n_resamples=n_resamples
        )
        for name, better in metrics.items()
    }


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


def ece_floor(
    confidences: Sequence[float], *, n_bins: int = 15, draws: int = 200, seed: int = 0
) -> float:
    """The ECE a perfectly calibrated model with these confidences would show on this many
    utterances (outcomes drawn as Bernoulli(confidence), mean over ``draws``): the noise floor
    of ``expected_calibration_error`` at this sample size."""
    conf = np.asarray(confidences, dtype=float)
    if conf.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [
                expected_calibration_error(
                    conf.tolist(), (rng.random(conf.size) < conf).tolist(), n_bins=n_bins
                )
                for _ in range(draws)
            ]
        )
    )
