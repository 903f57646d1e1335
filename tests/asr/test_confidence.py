import math

import numpy as np
import pytest

from training.asr.confidence import (
    TEMPERATURE_GRID,
    fit_temperature,
    frame_confidence,
    greedy_words,
    nbest_words,
    search_grid,
)
from training.asr.lm import BeamResult

VOCAB = {0: "<pad>", 1: "<unk>", 2: "|", 3: "a", 4: "b"}


def _log_probs(path: list[int], sharpness: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(path), len(VOCAB)))
    logits[np.arange(len(path)), path] += sharpness
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_frame_confidence_is_one_minus_normalised_entropy():
    uniform = np.log(np.full((1, 5), 0.2))
    peaked = np.log(np.array([[1 - 4e-9, 1e-9, 1e-9, 1e-9, 1e-9]]))
    assert np.isclose(frame_confidence(uniform)[0], 0.0)
    assert frame_confidence(peaked)[0] > 0.99


def test_greedy_words_collapse_repeats_and_split_on_separator():
    lp = _log_probs([3, 3, 0, 4, 2, 0, 4, 4, 0, 3], sharpness=8.0)
    words = greedy_words(lp, VOCAB, 0, "|")
    assert [w.word for w in words] == ["ab", "ba"]
    assert [(w.start_frame, w.end_frame) for w in words] == [(0, 4), (6, 10)]
    assert all(0.0 <= w.confidence <= 1.0 for w in words)


def test_temperature_changes_confidence_but_never_the_hypothesis():
    lps = [_log_probs([3, 0, 2, 4, 0], sharpness=s, seed=i) for i, s in enumerate((1, 2, 4, 6))]
    hyps = {
        t: [[w.word for w in greedy_words(lp, VOCAB, 0, "|", temperature=t)] for lp in lps]
        for t in (0.25, 1.0, 4.0)
    }
    assert hyps[0.25] == hyps[1.0] == hyps[4.0]
    confs = {
        t: greedy_words(lps[0], VOCAB, 0, "|", temperature=t)[0].confidence for t in (0.5, 2.0)
    }
    assert confs[0.5] > confs[2.0]
    correct = [[len(w) > 0 for w in h] for h in hyps[1.0]]
    temperature, briers = fit_temperature(lps, correct, VOCAB, 0, "|")
    assert temperature in briers and briers[temperature] == min(briers.values())


def test_nbest_utterance_confidence_sums_entries_with_the_same_words():
    # Four n-best entries, two word sequences: the 1st and 3rd (and the 4th) differ only in
    # their CTC paths. P("a b") = (4 + 1 + 1) / 8, and no word is less sure than that.
    vocab = {0: "<pad>", 1: "|", 2: "a", 3: "b"}
    result = BeamResult(
        tokens=(2, 1, 3),
        timesteps=(0, 2, 4),
        words=("a", "b"),
        alternatives=(("a", "b"), ("a", "a"), ("a", "b"), ("a", "b")),
        scores=tuple(math.log(p) for p in (4.0, 2.0, 1.0, 1.0)),
    )
    words, utterance = nbest_words(result, vocab, "|", temperature=1.0)
    assert utterance == pytest.approx(6 / 8)
    assert [w.confidence for w in words] == pytest.approx([1.0, 6 / 8])
    assert utterance <= min(w.confidence for w in words) + 1e-12


def test_grid_search_moves_off_the_edge_until_the_best_is_inside():
    calls: list[float] = []

    def wer(x: float) -> float:
        calls.append(x)
        return (x - 0.8) ** 2

    found = search_grid(wer, (2.0, 3.0, 4.0), lower=0.0)
    assert found.best == 1.0
    assert found.added == (1.0, 0.0) and found.edge is None
    assert sorted(calls) == [0.0, 1.0, 2.0, 3.0, 4.0]  # every value once


def test_grid_search_stops_at_its_bound_and_after_its_steps():
    at_bound = search_grid(lambda x: x, (1.0, 2.0), lower=0.5)
    assert (at_bound.best, at_bound.added, at_bound.edge) == (0.5, (0.5,), "low")
    assert "bound" in (at_bound.describe("LM weight") or "")
    capped = search_grid(lambda x: -x, (1.0, 2.0), max_extensions=3)
    assert (capped.best, capped.added, capped.edge) == (5.0, (3.0, 4.0, 5.0), "high")
    assert "3 extensions" in (capped.describe("LM weight") or "")


def test_grid_search_keeps_an_inside_optimum_a_tie_and_a_single_value():
    inside = search_grid(lambda x: abs(x - 3.0), (2.0, 3.0, 4.0))
    assert (inside.best, inside.added, inside.describe("w")) == (3.0, (), None)
    tie = search_grid(lambda x: 0.0 if x < 3.5 else 1.0, (2.0, 3.0, 4.0))
    assert (tie.best, tie.added) == (2.0, ())
    assert search_grid(lambda x: x, (2.0,)).added == ()  # one value: pinned, nothing to search


def test_grid_search_on_a_log_scale_multiplies():
    found = search_grid(lambda t: abs(math.log(t / 10.0)), (1.0, 2.0, 4.0), log_scale=True)
    assert found.added == (8.0, 16.0) and found.best == 8.0 and found.edge is None


def test_beam_temperature_is_searched_past_the_grid_until_the_brier_turns():
    # The best of two hypotheses 3 nats apart is right 60% of the time: the calibrated
    # posterior sigmoid(3 / T) = 0.6 wants T ~ 7.4, past the grid's 4.
    vocab = {0: "<pad>", 1: "|", 2: "a", 3: "b"}
    beam = BeamResult((2,), (0,), ("a",), (("a",), ("b",)), (0.0, -3.0))
    correct = [[i % 5 < 3] for i in range(20)]
    lps = [np.zeros((1, 4))] * len(correct)
    temperature, briers = fit_temperature(lps, correct, vocab, 0, "|", beams=[beam] * len(correct))
    assert max(TEMPERATURE_GRID) < temperature < 12.0
    tried = sorted(briers)
    assert tried[0] < temperature < tried[-1]
    assert briers[temperature] == min(briers.values())
