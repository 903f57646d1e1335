"""Bootstrap intervals, AUROC and ECE against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from earmark.core.stats import (
    auroc,
    bootstrap,
    ece_floor,
    expected_calibration_error,
    paired_bootstrap,
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


def test_paired_bootstrap_of_identical_systems_is_exactly_zero() -> None:
    rng = np.random.default_rng(1)
    stat = ratio_statistic(rng.integers(0, 4, 50), rng.integers(2, 9, 50))
    diff = paired_bootstrap(stat, stat, 50, better="lower", n_resamples=200)
    assert (diff.value, diff.low, diff.high) == (0.0, 0.0, 0.0)
    assert diff.baseline == diff.candidate == stat(np.arange(50))
    assert diff.p_better == 0.0  # never strictly better
    assert diff.p_two_sided == 1.0


def test_paired_bootstrap_finds_a_better_system() -> None:
    # the candidate fixes most of the baseline's errors and adds a few of its own
    rng = np.random.default_rng(2)
    words = rng.integers(3, 9, 300)
    base_err = rng.binomial(words, 0.3)
    cand_err = rng.binomial(base_err, 0.5) + rng.binomial(1, 0.05, 300)
    base, cand = ratio_statistic(base_err, words), ratio_statistic(cand_err, words)
    diff = paired_bootstrap(base, cand, 300, better="lower", n_resamples=300)
    assert math.isclose(diff.value, (cand_err.sum() - base_err.sum()) / words.sum())
    assert diff.low <= diff.value <= diff.high < 0  # the interval excludes 0
    assert diff.p_better == 1.0
    assert diff.p_two_sided < 0.01
    # the same figures read the other way round: worse, and "higher is better" flips p_better
    worse = paired_bootstrap(cand, base, 300, better="lower", n_resamples=300)
    assert worse.low > 0 and worse.p_better == 0.0
    assert paired_bootstrap(base, cand, 300, better="higher", n_resamples=300).p_better == 0.0


def test_pairing_narrows_the_interval_on_correlated_systems() -> None:
    # both systems fail on the same hard utterances; the candidate fixes a fifth of the rest
    rng = np.random.default_rng(3)
    n = 200
    hard = rng.random(n) < 0.3
    base_ok = np.where(hard, rng.random(n) < 0.2, rng.random(n) < 0.95)
    cand_ok = base_ok | (rng.random(n) < 0.2)
    base = lambda idx: float(base_ok[idx].mean())  # noqa: E731
    cand = lambda idx: float(cand_ok[idx].mean())  # noqa: E731
    paired = paired_bootstrap(base, cand, n, better="higher", n_resamples=500)
    # unpaired: each system resampled on its own draws
    draws = np.random.default_rng(4)
    unpaired = [cand(draws.integers(0, n, n)) - base(draws.integers(0, n, n)) for _ in range(500)]
    unpaired_width = float(np.quantile(unpaired, 0.975) - np.quantile(unpaired, 0.025))
    assert paired.high - paired.low < unpaired_width / 2
    assert paired.low > 0  # significant paired; the unpaired interval straddles 0
    assert np.quantile(unpaired, 0.025) < 0


def test_paired_bootstrap_drops_nan_resamples_and_rejects_a_bad_direction() -> None:
    stat = ratio_statistic([0, 1], [0, 1])  # NaN whenever only item 0 is drawn
    diff = paired_bootstrap(stat, stat, 2, better="lower", n_resamples=50)
    assert diff.low == diff.high == 0.0
    assert math.isnan(paired_bootstrap(stat, stat, 0, better="lower").value)
    with pytest.raises(ValueError, match="better"):
        paired_bootstrap(stat, stat, 2, better="up")  # type: ignore[arg-type]


def test_ece_floor_is_the_noise_of_a_calibrated_model_and_shrinks_with_n() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    small, large = rng.random(100), rng.random(4000)
    assert ece_floor([0.0, 1.0, 1.0]) == 0.0  # certain and right: nothing to be off by
    assert 0.05 < ece_floor(small) < 0.2  # 100 utterances over 15 bins: a noisy estimate
    assert ece_floor(large) < ece_floor(small) / 3
