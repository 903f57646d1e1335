"""Self-training: the previous round's confident predictions as model labels.

Pure functions from a round's prediction dicts (``rounds/r00N/asr_predictions.jsonl`` and
``nlu_predictions.jsonl``, keyed by utterance id) to pseudo-labelled ``ManifestRow``s whose
``Label`` has ``source=model``, the model version and the confidence the threshold was applied
to. They read no files and import no torch; ``earmark.loop.rounds`` decides where the rows go
(the round folder and the training manifest, never Label Studio or the human labels file)
and whether to call them at all (``settings.enabled``, round 2 on).

Every candidate goes through the manifest reader's own checks (``parse_row``), so a pseudo
row is always a valid manifest line; a prediction that is malformed, low-confidence, for an
excluded id or for an id not in the pool is skipped, never raised on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from earmark.core.manifest import ENTITY_KEYS, ManifestRow, parse_row
from earmark.core.records import Label, LabelSource
from earmark.core.text import normalize
from earmark.loop.config import SelfTrainingConfig

Prediction = Mapping[str, Any]


def pseudo_asr_rows(
    pool: Iterable[ManifestRow],
    asr: Mapping[str, Prediction],
    *,
    exclude: set[str],
    settings: SelfTrainingConfig,
    version: str,
) -> list[ManifestRow]:
    """Transcripts the recogniser is sure of, as training rows for the next ASR.

    For each pool row with audio whose id is not in ``exclude`` and has a prediction
    ``{"text", "confidence", ...}`` in ``asr``: kept when the hypothesis is non-empty and
    ``confidence >= settings.min_asr_confidence``. The row keeps the pool row's utterance;
    its label is ``Label(text=hypothesis, source=model, version=version, confidence=...)``.
    Returns at most ``settings.max_per_round`` rows (0 = all), most confident first, ties by id.
    """
    out: list[ManifestRow] = []
    for row in pool:
        pred = asr.get(row.id)
        if row.id in exclude or pred is None or row.utterance.audio is None:
            continue
        conf = _confidence(pred)
        text = pred.get("text")
        if conf is None or conf < settings.min_asr_confidence:
            continue
        if not isinstance(text, str) or not text.strip():
            continue
        label = _checked_label(row.id, {"text": text}, conf, version)
        if label is not None:
            out.append(ManifestRow(row.utterance, label))
    return _most_confident(out, settings.max_per_round)


def pseudo_nlu_rows(
    pool: Iterable[ManifestRow],
    nlu: Mapping[str, Prediction],
    asr: Mapping[str, Prediction],
    *,
    exclude: set[str],
    settings: SelfTrainingConfig,
    version: str,
) -> list[ManifestRow]:
    """Intents and entities the NLU is sure of, as training rows for the next NLU.

    The NLU read the ASR hypothesis where ``asr`` has a prediction for the id (pass ``{}`` for
    an NLU-only corpus), else the pool row's own text; that is what ``score_round`` feeds it.
    A row is kept when its id is not in ``exclude``, the NLU ``confidence >=
    settings.min_nlu_confidence``, the ASR confidence (when there is an ASR prediction) passes
    ``settings.min_asr_confidence``, the prediction's ``text`` is that input text normalised,
    and its entity spans are valid for that text (else the row is dropped). The label's text is
    the prediction's (normalised) text the spans refer to; its confidence is the NLU's.
    Returns at most ``settings.max_per_round`` rows (0 = all), most confident first, ties by id.
    """
    out: list[ManifestRow] = []
    for row in pool:
        pred = nlu.get(row.id)
        if row.id in exclude or pred is None:
            continue
        conf = _confidence(pred)
        if conf is None or conf < settings.min_nlu_confidence:
            continue
        heard = asr.get(row.id)
        if heard is not None:
            asr_conf = _confidence(heard)
            if asr_conf is None or asr_conf < settings.min_asr_confidence:
                continue
            source_text = heard.get("text")
        else:
            source_text = row.label.text if row.label else None
        text = pred.get("text", source_text)
        if not isinstance(source_text, str) or not isinstance(text, str) or not text.strip():
            continue
        if normalize(text) != normalize(source_text):  # predicted on some other text: stale
            continue
        fields = {"text": text, "intent": pred.get("intent"), "entities": pred.get("entities", [])}
        label = _checked_label(row.id, fields, conf, version)
        if label is not None and label.intent is not None:
            out.append(ManifestRow(row.utterance, label))
    return _most_confident(out, settings.max_per_round)


def _confidence(pred: Prediction) -> float | None:
    """The prediction's ``confidence`` as a float in [0, 1]; None when absent or malformed."""
    value = pred.get("confidence")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def _checked_label(
    uid: str, fields: dict[str, Any], confidence: float, version: str
) -> Label | None:
    """A model label through the manifest reader's checks (spans inside the text, ``value``
    matching, no overlaps, non-empty intent); None when any check fails."""
    entities = fields.get("entities")
    if isinstance(entities, list):  # predictions carry per-entity confidence: not a manifest key
        fields["entities"] = [
            {k: v for k, v in e.items() if k in ENTITY_KEYS} if isinstance(e, dict) else e
            for e in entities
        ]
    obj = {
        "id": uid,
        **{k: v for k, v in fields.items() if v is not None},
        "source": LabelSource.MODEL.value,
        "version": version,
        "confidence": confidence,
    }
    row, problems = parse_row(obj, base_dir=Path("."))
    return row.label if row is not None and not problems else None


def _most_confident(rows: list[ManifestRow], cap: int) -> list[ManifestRow]:
    """Rows by decreasing label confidence, ties by id; the first ``cap`` (0 = all)."""

    def key(row: ManifestRow) -> tuple[float, str]:
        conf = row.label.confidence if row.label is not None else None
        return (-(conf or 0.0), row.id)

    ranked = sorted(rows, key=key)
    return ranked[:cap] if cap else ranked
