"""Self-training: the previous round's confident predictions as model labels.

Pure functions from a round's predictions (``rounds/r00N/asr_predictions.jsonl`` and
``nlu_predictions.jsonl`` as records, keyed by utterance id) to pseudo-labelled
``ManifestRow``s whose ``Label`` has ``source=model``, the model version and the confidence the
threshold was applied to. They read no files and import no torch; ``earmark.loop.rounds``
decides where the rows go (the round folder and the training manifest, never Label Studio or
the human labels file) and whether to call them at all (``settings.enabled``, round 2 on).

The records' reader has checked each prediction's types; what a manifest line needs beyond
that is checked here, so a pseudo row is always a valid manifest line: a confidence in [0, 1],
a non-empty transcript or intent, entity spans that fit the text. A prediction that fails, is
low-confidence, for an excluded id or for an id not in the pool is skipped, never raised on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis, NLUPrediction
from earmark.core.records import Label, LabelSource
from earmark.core.text import normalize
from earmark.loop.config import SelfTrainingConfig


def pseudo_asr_rows(
    pool: Iterable[ManifestRow],
    asr: Mapping[str, ASRHypothesis],
    *,
    exclude: set[str],
    settings: SelfTrainingConfig,
    version: str,
) -> list[ManifestRow]:
    """Transcripts the recogniser is sure of, as training rows for the next ASR.

    For each pool row with audio whose id is not in ``exclude`` and has a hypothesis in
    ``asr``: kept when the hypothesis is non-empty and ``confidence >=
    settings.min_asr_confidence``. The row keeps the pool row's utterance; its label is
    ``Label(text=hypothesis, source=model, version=version, confidence=...)``.
    Returns at most ``settings.max_per_round`` rows (0 = all), most confident first, ties by id.
    """
    out: list[ManifestRow] = []
    for row in pool:
        pred = asr.get(row.id)
        if row.id in exclude or pred is None or row.utterance.audio is None:
            continue
        if not _sure(pred.confidence, settings.min_asr_confidence) or not pred.text.strip():
            continue
        label = Label(
            row.id, text=pred.text, source=LabelSource.MODEL, version=version,
            confidence=pred.confidence,
        )  # fmt: skip
        out.append(ManifestRow(row.utterance, label))
    return _most_confident(out, settings.max_per_round)


def pseudo_nlu_rows(
    pool: Iterable[ManifestRow],
    nlu: Mapping[str, NLUPrediction],
    asr: Mapping[str, ASRHypothesis],
    *,
    exclude: set[str],
    settings: SelfTrainingConfig,
    version: str,
) -> list[ManifestRow]:
    """Intents and entities the NLU is sure of, as training rows for the next NLU.

    The NLU read the ASR hypothesis where ``asr`` has one for the id (pass ``{}`` for an
    NLU-only corpus), else the pool row's own text; that is what ``score_round`` feeds it.
    A row is kept when its id is not in ``exclude``, the NLU ``confidence >=
    settings.min_nlu_confidence``, the ASR confidence (when there is an ASR hypothesis) passes
    ``settings.min_asr_confidence``, the prediction's ``text`` is that input text normalised,
    it has an intent, and its entity spans fit that text (else the row is dropped). The label's
    text is the prediction's (normalised) text the spans refer to; its confidence is the NLU's.
    Returns at most ``settings.max_per_round`` rows (0 = all), most confident first, ties by id.
    """
    out: list[ManifestRow] = []
    for row in pool:
        pred = nlu.get(row.id)
        if row.id in exclude or pred is None:
            continue
        if not _sure(pred.confidence, settings.min_nlu_confidence):
            continue
        heard = asr.get(row.id)
        if heard is not None:
            if not _sure(heard.confidence, settings.min_asr_confidence):
                continue
            source_text: str | None = heard.text
        else:
            source_text = row.label.text if row.label else None
        if source_text is None or not pred.text.strip():
            continue
        if normalize(pred.text) != normalize(source_text):  # predicted on some other text: stale
            continue
        if not pred.intent or pred.span_problem() is not None:
            continue
        label = Label(
            row.id,
            text=pred.text,
            intent=pred.intent,
            entities=tuple(sorted((e.entity for e in pred.entities), key=lambda e: e.start)),
            source=LabelSource.MODEL,
            version=version,
            confidence=pred.confidence,
        )
        out.append(ManifestRow(row.utterance, label))
    return _most_confident(out, settings.max_per_round)


def _sure(confidence: float, threshold: float) -> bool:
    """``confidence`` is a usable one (a finite number in [0, 1], as a manifest line needs)
    and at least ``threshold``."""
    return math.isfinite(confidence) and 0.0 <= confidence <= 1.0 and confidence >= threshold


def _most_confident(rows: list[ManifestRow], cap: int) -> list[ManifestRow]:
    """Rows by decreasing label confidence, ties by id; the first ``cap`` (0 = all)."""

    def key(row: ManifestRow) -> tuple[float, str]:
        conf = row.label.confidence if row.label is not None else None
        return (-(conf or 0.0), row.id)

    ranked = sorted(rows, key=key)
    return ranked[:cap] if cap else ranked
