"""Bootstrap intervals, AUROC and ECE against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from earmark.core.stats import (
    auroc,
    bootstrap,
    expected_calibration_error,
    ratio_statistic,
    spearman,
)


def test_auroc_perfect_inverse_ties_and_degenerate() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auroc([0.5, 0.5], [False, True]) == 0.5
    # one positive ranked above 2 of 3 negatives
    assert math.isclose(auroc([0.1, 0.2, 0.9, 0.5], [False, False, False, True]), 2 / 3)
    assert math.isnan(auroc([0.1, 0.2], [True, True]))


def test_ece() -> None:
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert math.isclose(expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5), 0.4)


def test_bootstrap_ratio_interval_contains_the_value() -> None:
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 3, 200)
    words = rng.integers(3, 8, 200)
    est = bootstrap(ratio_statistic(errors, words), 200, n_resamples=300)
    assert math.isclose(est.value, errors.sum() / words.sum())
    assert est.low < est.value < est.high
    assert est.high - est.low < 0.2


def test_bootstrap_is_seeded() -> None:
    stat = ratio_statistic([1, 0, 1, 1], [1, 1, 1, 1])
    assert bootstrap(stat, 4, seed=3) == bootstrap(stat, 4, seed=3)


def test_spearman_ranks_not_values_and_handles_ties() -> None:
    # monotone but far from linear: rank correlation 1
    assert spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # every utterance wrong (the case an AUROC cannot score): still defined
    conf = [0.9, 0.5, 0.2, 0.1]
    wer = [0.2, 0.5, 0.8, 1.0]
    assert spearman([1 - c for c in conf], wer) == 1.0
    # ties share ranks: x = ranks (1.5, 1.5, 3), y = (1, 2, 3)
    assert abs(spearman([0, 0, 1], [1, 2, 3]) - 0.8660254) < 1e-6
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [1]))


def test_spearman_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="3 values against 2"):
        spearman([1, 2, 3], [1, 2])
