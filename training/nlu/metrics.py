"""NLU metrics: intent accuracy, exact span F1, SLURP's SLU-F1 and ECE, with bootstrap intervals.

* Span F1 (gold text): an entity is right when type, start and end all match (micro F1).
* Pair F1 (ASR text, where gold spans do not apply): multiset match of ``(type, value)``.
* SLU-F1 (Bastianelli et al., 2020): every predicted entity whose type appears among the
  unmatched gold entities counts one true positive and adds the distance ``d`` to its closest
  same-type gold value to both false positives and false negatives; unmatched predictions
  are false positives, unmatched gold entities false negatives. This is done once with the
  word distance (word error rate of the value) and once with the character distance
  (Levenshtein distance / longer length); SLU-F1 is the F1 of the summed counts.

Corpus-level F1 values are bootstrapped as ratios ``2tp / (2tp + fp + fn)`` over utterances.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from earmark.core.stats import Estimate, bootstrap, expected_calibration_error, ratio_statistic
from earmark.core.wer import edit_distance

Pair = tuple[str, str]
Span = tuple[str, int, int]


def word_distance(truth: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``truth`` (SLURP's word distance; may exceed 1)."""
    t, h = truth.split(), hyp.split()
    if not t:
        return float(len(h) > 0)
    return edit_distance(t, h) / len(t)


def char_distance(truth: str, hyp: str) -> float:
    """Levenshtein distance normalised by the longer string (SLURP's char distance, in [0, 1])."""
    longest = max(len(truth), len(hyp))
    return edit_distance(truth, hyp) / longest if longest else 0.0


def exact_counts(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of a multiset match (spans or ``(type, value)`` pairs)."""
    g, p = Counter(gold), Counter(pred)
    tp = sum((g & p).values())
    return tp, sum(p.values()) - tp, sum(g.values()) - tp


def distance_counts(
    gold: Sequence[Pair], pred: Sequence[Pair], distance: Any
) -> tuple[float, float, float]:
    """SLURP's span-distance ``(tp, fp, fn)`` of one utterance for one distance function."""
    remaining = list(gold)
    tp = fp = fn = 0.0
    for ptype, pvalue in pred:
        candidates = [
            (distance(gv, pvalue), k) for k, (gt, gv) in enumerate(remaining) if gt == ptype
        ]
        if candidates:
            d, k = min(candidates)
            tp += 1
            fp += d
            fn += d
            remaining.pop(k)
        else:
            fp += 1
    fn += len(remaining)
    return tp, fp, fn


def slu_counts(gold: Sequence[Pair], pred: Sequence[Pair]) -> tuple[float, float, float]:
    """Word- plus char-distance counts of one utterance (summed confusion matrices)."""
    w = distance_counts(gold, pred, word_distance)
    c = distance_counts(gold, pred, char_distance)
    return w[0] + c[0], w[1] + c[1], w[2] + c[2]


def f1_statistic(
    counts: Sequence[tuple[float, float, float]],
) -> Callable[[np.ndarray], float]:
    """Bootstrap statistic: micro F1 ``2tp / (2tp + fp + fn)`` over the resampled utterances."""
    arr = np.asarray(counts, dtype=float).reshape(-1, 3)
    tp, fp, fn = arr[:, 0], arr[:, 1], arr[:, 2]
    return ratio_statistic((2 * tp).tolist(), (2 * tp + fp + fn).tolist())


def nlu_scores(
    *,
    intent_correct: Sequence[bool],
    entity_counts: Sequence[tuple[float, float, float]],
    slu: Sequence[tuple[float, float, float]],
    confidences: Sequence[float],
    all_correct: Sequence[bool],
    intent_confidences: Sequence[float] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every NLU figure with its 95% bootstrap interval over utterances.

    ``ece`` is the calibration error of the utterance confidence against "intent and every
    entity right"; ``intent_ece`` (when intent confidences are given) that of the intent
    probability against intent accuracy.
    """
    n = len(intent_correct)
    ok = np.asarray(intent_correct, dtype=float)
    conf = np.asarray(confidences, dtype=float)
    right = np.asarray(all_correct, dtype=bool)
    out = {
        "intent_accuracy": bootstrap(
            lambda idx: float(ok[idx].mean()), n, n_resamples=n_resamples, seed=seed
        ),
        "entity_f1": bootstrap(f1_statistic(entity_counts), n, n_resamples=n_resamples, seed=seed),
        "slu_f1": bootstrap(f1_statistic(slu), n, n_resamples=n_resamples, seed=seed),
        "ece": bootstrap(
            lambda idx: expected_calibration_error(conf[idx], right[idx]),
            n,
            n_resamples=n_resamples,
            seed=seed,
        ),
    }
    if intent_confidences is not None:
        iconf = np.asarray(intent_confidences, dtype=float)
        out["intent_ece"] = bootstrap(
            lambda idx: expected_calibration_error(iconf[idx], ok[idx].astype(bool)),
            n,
            n_resamples=n_resamples,
            seed=seed,
        )
    return out
