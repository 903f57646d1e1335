"""Evaluate an ASR checkpoint on a labelled manifest: WER, CER, SER and confidence quality.

Every rate comes with a 95% bootstrap interval over utterances (``earmark.core.stats``). The
confidence AUROCs say how well confidence predicts errors (the positives): per utterance,
"has a word error"; per hypothesis word, "is not a correct word on the alignment".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.errors import ManifestError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis
from earmark.core.stats import (
    auroc,
    bootstrap,
    expected_calibration_error,
    ratio_statistic,
    spearman,
)
from earmark.core.wer import UtteranceScore, score_utterance
from training.asr.transcribe import transcribe


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


def summarize(
    scores: list[UtteranceScore],
    preds: list[ASRHypothesis],
    *,
    n_resamples: int = 1000,
    n_worst: int = 10,
) -> dict[str, Any]:
    """Metrics dict: ``wer``, ``cer``, ``ser``, ``confidence_auroc``, ``confidence_spearman``
    (rank correlation of low confidence with utterance WER), ``word_confidence_auroc`` (each
    ``{"value", "low", "high"}``), ``confidence_ece``, ``n_utterances``, ``n_correct``
    (utterances without a word error), ``worst``."""
    n = len(scores)
    word_err = [s.word_errors for s in scores]
    wer = bootstrap(
        ratio_statistic(word_err, [s.ref_words for s in scores]), n, n_resamples=n_resamples
    )
    cer = bootstrap(
        ratio_statistic([s.char_errors for s in scores], [s.ref_chars for s in scores]),
        n,
        n_resamples=n_resamples,
    )
    has_error = np.array([s.word_errors > 0 for s in scores])
    ser = bootstrap(lambda idx: float(has_error[idx].mean()), n, n_resamples=n_resamples)
    conf = np.array([p.confidence for p in preds], dtype=float)
    utt_auroc = bootstrap(lambda idx: auroc(-conf[idx], has_error[idx]), n, n_resamples=n_resamples)
    # graded: does lower confidence go with a higher utterance WER (defined even when every
    # utterance has an error, where the AUROC rests on a handful of correct ones or none)
    utt_wer = np.array([s.word_errors / max(1, s.ref_words) for s in scores], dtype=float)
    utt_rank = bootstrap(lambda idx: spearman(-conf[idx], utt_wer[idx]), n, n_resamples=n_resamples)
    # word level: hypothesis words of each utterance, resampled by utterance
    word_conf = [np.array([w.confidence for w in p.words], dtype=float) for p in preds]
    word_wrong = [~np.array(s.hyp_word_correct, dtype=bool) for s in scores]
    usable = [len(c) == len(w) for c, w in zip(word_conf, word_wrong, strict=True)]

    def word_stat(idx: np.ndarray) -> float:
        keep = [i for i in idx if usable[i]]
        if not keep:
            return float("nan")
        c = np.concatenate([word_conf[i] for i in keep])
        y = np.concatenate([word_wrong[i] for i in keep])
        return auroc(-c, y)

    word_auroc = bootstrap(word_stat, n, n_resamples=n_resamples)
    worst = sorted(
        range(n), key=lambda i: (-scores[i].word_errors / max(1, scores[i].ref_words), conf[i])
    )[:n_worst]
    return {
        "wer": wer.to_dict(),
        "cer": cer.to_dict(),
        "ser": ser.to_dict(),
        "confidence_auroc": utt_auroc.to_dict(),
        "confidence_spearman": utt_rank.to_dict(),
        "n_correct": int((~has_error).sum()),
        "word_confidence_auroc": word_auroc.to_dict(),
        "confidence_ece": expected_calibration_error(conf.tolist(), (~has_error).tolist()),
        "n_utterances": n,
        "worst": [
            {
                "id": preds[i].id,
                "ref": scores[i].ref,
                "hyp": scores[i].hyp,
                "word_errors": scores[i].word_errors,
                "confidence": float(conf[i]),
            }
            for i in worst
            if scores[i].word_errors > 0
        ],
    }


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
    labelled = [r for r in rows if r.label is not None and r.label.text is not None]
    if not labelled:
        raise ManifestError("no rows with a transcript ('text') to evaluate the ASR on")
    preds = transcribe(
        checkpoint, labelled, batch_size=batch_size, device=device, decoding=decoding
    )
    scores, kept = score_predictions(labelled, preds)
    return summarize(scores, kept, n_resamples=n_resamples)
