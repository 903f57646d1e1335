"""Evaluate an ASR checkpoint on a labelled manifest: WER, CER, SER and confidence quality.

Every rate comes with a 95% bootstrap interval over utterances (``earmark.core.stats``). The
confidence AUROCs say how well confidence predicts errors (the positives): per utterance,
"has a word error"; per hypothesis word, "is not a correct word on the alignment".

A checkpoint is decoded once (``score_asr``); its figures (``summarize_scores``), those of any
group of its utterances (``ASRScores.subset``) and its paired difference from another
checkpoint on the same utterances (``compare_scores``) are all computed from that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.errors import EarmarkError, ManifestError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis
from earmark.core.stats import (
    Better,
    Estimate,
    PairedDifference,
    auroc,
    bootstrap,
    expected_calibration_error,
    paired_differences,
    ratio_statistic,
    spearman,
)
from earmark.core.wer import UtteranceScore, score_utterance
from training.asr.transcribe import transcribe

Statistic = Callable[[np.ndarray], float]

# The figures two checkpoints are compared on, and which way is better.
PAIRED_METRICS: dict[str, Better] = {"wer": "lower", "cer": "lower", "ser": "lower"}


@dataclass(frozen=True)
class ASRScores:
    """One checkpoint's scored utterances (manifest order): every figure is computed from it."""

    scores: tuple[UtteranceScore, ...]
    preds: tuple[ASRHypothesis, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.preds)

    def subset(self, positions: Sequence[int]) -> ASRScores:
        """The utterances at ``positions`` (indices into ``ids``), in that order."""
        return ASRScores(
            tuple(self.scores[i] for i in positions), tuple(self.preds[i] for i in positions)
        )


def score_predictions(
    rows: Iterable[ManifestRow], predictions: Iterable[ASRHypothesis]
) -> tuple[list[UtteranceScore], list[ASRHypothesis]]:
    """Pair labelled rows with their predictions (same order) and score each."""
    scores, preds = [], []
    for row, pred in zip(rows, predictions, strict=True):
        if row.label is None or row.label.text is None:
            continue
        scores.append(score_utterance(row.label.text, pred.text))
        preds.append(pred)
    return scores, preds


def rate_statistics(scores: Sequence[UtteranceScore]) -> dict[str, Statistic]:
    """Bootstrap statistics (utterance indices -> rate) of ``wer`` and ``cer`` (corpus-level
    ratios: errors / reference words or characters) and ``ser`` (share of utterances with a
    word error)."""
    has_error = [float(s.word_errors > 0) for s in scores]
    return {
        "wer": ratio_statistic([s.word_errors for s in scores], [s.ref_words for s in scores]),
        "cer": ratio_statistic([s.char_errors for s in scores], [s.ref_chars for s in scores]),
        "ser": ratio_statistic(has_error, [1.0] * len(scores)),
    }


def word_auroc_statistic(
    scores: Sequence[UtteranceScore], preds: Sequence[ASRHypothesis]
) -> Statistic:
    """Word-level confidence AUROC over the hypothesis words of the resampled utterances
    (those whose word confidences line up with the alignment's words)."""
    word_conf = [np.array([w.confidence for w in p.words], dtype=float) for p in preds]
    word_wrong = [~np.array(s.hyp_word_correct, dtype=bool) for s in scores]
    usable = [len(c) == len(w) for c, w in zip(word_conf, word_wrong, strict=True)]

    def stat(idx: np.ndarray) -> float:
        keep = [i for i in idx if usable[i]]
        if not keep:
            return float("nan")
        c = np.concatenate([word_conf[i] for i in keep])
        y = np.concatenate([word_wrong[i] for i in keep])
        return auroc(-c, y)

    return stat


def confidence_estimates(
    scores: Sequence[UtteranceScore], preds: Sequence[ASRHypothesis], n_resamples: int
) -> dict[str, Estimate]:
    """``confidence_auroc`` (low confidence predicts an utterance error),
    ``confidence_spearman`` (rank correlation of low confidence with utterance WER) and
    ``word_confidence_auroc``."""
    n = len(scores)
    conf = np.array([p.confidence for p in preds], dtype=float)
    has_error = np.array([s.word_errors > 0 for s in scores], dtype=bool)
    # graded: does lower confidence go with a higher utterance WER (defined even when every
    # utterance has an error, where the AUROC rests on a handful of correct ones or none)
    utt_wer = np.array([s.word_errors / max(1, s.ref_words) for s in scores], dtype=float)
    return {
        "confidence_auroc": bootstrap(
            lambda idx: auroc(-conf[idx], has_error[idx]), n, n_resamples=n_resamples
        ),
        "confidence_spearman": bootstrap(
            lambda idx: spearman(-conf[idx], utt_wer[idx]), n, n_resamples=n_resamples
        ),
        "word_confidence_auroc": bootstrap(
            word_auroc_statistic(scores, preds), n, n_resamples=n_resamples
        ),
    }


def worst_utterances(
    scores: Sequence[UtteranceScore], preds: Sequence[ASRHypothesis], n_worst: int
) -> list[dict[str, Any]]:
    """Up to ``n_worst`` utterances with a word error, highest utterance WER first (the least
    confident first among equals)."""
    order = sorted(
        range(len(scores)),
        key=lambda i: (-scores[i].word_errors / max(1, scores[i].ref_words), preds[i].confidence),
    )
    return [
        {
            "id": preds[i].id,
            "ref": scores[i].ref,
            "hyp": scores[i].hyp,
            "word_errors": scores[i].word_errors,
            "confidence": float(preds[i].confidence),
        }
        for i in order[:n_worst]
        if scores[i].word_errors > 0
    ]


def summarize(
    scores: Sequence[UtteranceScore],
    preds: Sequence[ASRHypothesis],
    *,
    n_resamples: int = 1000,
    n_worst: int = 10,
) -> dict[str, Any]:
    """Metrics dict: ``wer``, ``cer``, ``ser``, ``confidence_auroc``, ``confidence_spearman``
    (rank correlation of low confidence with utterance WER), ``word_confidence_auroc`` (each
    ``{"value", "low", "high"}``), ``confidence_ece``, ``n_utterances``, ``n_correct``
    (utterances without a word error), ``worst``."""
    n = len(scores)
    rates = {
        name: bootstrap(stat, n, n_resamples=n_resamples)
        for name, stat in rate_statistics(scores).items()
    }
    confidence = confidence_estimates(scores, preds, n_resamples)
    correct = [s.word_errors == 0 for s in scores]
    return {
        **{name: est.to_dict() for name, est in rates.items()},
        "confidence_auroc": confidence["confidence_auroc"].to_dict(),
        "confidence_spearman": confidence["confidence_spearman"].to_dict(),
        "n_correct": sum(correct),
        "word_confidence_auroc": confidence["word_confidence_auroc"].to_dict(),
        "confidence_ece": expected_calibration_error([p.confidence for p in preds], correct),
        "n_utterances": n,
        "worst": worst_utterances(scores, preds, n_worst),
    }


def summarize_scores(
    scored: ASRScores, *, n_resamples: int = 1000, n_worst: int = 10
) -> dict[str, Any]:
    """``summarize`` of a checkpoint's scored utterances."""
    return summarize(scored.scores, scored.preds, n_resamples=n_resamples, n_worst=n_worst)


def compare_scores(
    baseline: ASRScores, candidate: ASRScores, *, n_resamples: int = 1000
) -> dict[str, PairedDifference]:
    """``candidate - baseline`` of each of ``PAIRED_METRICS``, by a paired bootstrap over the
    utterances both scored (the same ids in the same order, else ``EarmarkError``)."""
    if baseline.ids != candidate.ids:
        raise EarmarkError("cannot pair the two ASR evaluations: they scored different utterances")
    base, cand = rate_statistics(baseline.scores), rate_statistics(candidate.scores)
    return paired_differences(
        base, cand, PAIRED_METRICS, len(baseline.ids), n_resamples=n_resamples
    )


def score_asr(
    checkpoint: str | Path,
    rows: Iterable[ManifestRow],
    *,
    batch_size: int = 32,
    device: str | None = None,
    decoding: str | None = None,
) -> ASRScores:
    """Transcribe the labelled ``rows`` with ``checkpoint`` (its own decoding, or ``decoding``)
    once and score each utterance against its transcript."""
    labelled = [r for r in rows if r.label is not None and r.label.text is not None]
    if not labelled:
        raise ManifestError("no rows with a transcript ('text') to evaluate the ASR on")
    preds = transcribe(
        checkpoint, labelled, batch_size=batch_size, device=device, decoding=decoding
    )
    scores, kept = score_predictions(labelled, preds)
    return ASRScores(tuple(scores), tuple(kept))


def evaluate_asr(
    checkpoint: str | Path,
    rows: Iterable[ManifestRow],
    *,
    n_resamples: int = 1000,
    batch_size: int = 32,
    device: str | None = None,
    decoding: str | None = None,
) -> dict[str, Any]:
    """Transcribe the labelled ``rows`` with ``checkpoint`` (its own decoding, or ``decoding``)
    and summarise (see ``summarize``)."""
    scored = score_asr(checkpoint, rows, batch_size=batch_size, device=device, decoding=decoding)
    return summarize_scores(scored, n_resamples=n_resamples)
