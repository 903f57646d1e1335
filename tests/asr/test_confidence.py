import numpy as np

from training.asr.confidence import fit_temperature, frame_confidence, greedy_words

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
