"""``evaluate_nlu``: the NLU figures of a checkpoint on labelled rows, on gold text or ASR output.

On gold text, entities are scored by exact span (type, start, end on the normalised text); on
ASR output the gold spans do not apply, so ``entity_f1`` compares ``(type, value)`` pairs.
SLU-F1 always compares ``(type, value)`` pairs softened by word and character distance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from earmark.core.errors import ManifestError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import NLUPrediction
from earmark.core.stats import Estimate
from training.nlu.data import Example, example_from_row
from training.nlu.metrics import exact_counts, nlu_scores, slu_counts


def score_predictions(
    examples: Sequence[Example],
    predictions: Sequence[NLUPrediction],
    *,
    on_gold_text: bool = True,
    n_resamples: int = 1000,
) -> dict[str, Estimate]:
    """Score predictions (same order as ``examples``) against the gold labels."""
    intent_ok, ent_counts, slu, conf, iconf, all_ok = [], [], [], [], [], []
    for ex, pred in zip(examples, predictions, strict=True):
        gold_pairs = [(e.type, ex.text[e.start : e.end]) for e in ex.entities]
        pred_pairs = [(e.type, e.value) for e in pred.entities]
        if on_gold_text:
            counts = exact_counts(
                [(e.type, e.start, e.end) for e in ex.entities],
                [(e.type, e.start, e.end) for e in pred.entities],
            )
        else:
            counts = exact_counts(gold_pairs, pred_pairs)
        ok = pred.intent == ex.intent
        intent_ok.append(ok)
        ent_counts.append((float(counts[0]), float(counts[1]), float(counts[2])))
        slu.append(slu_counts(gold_pairs, pred_pairs))
        conf.append(pred.confidence)
        iconf.append(pred.intent_confidence)
        all_ok.append(ok and counts[1] == 0 and counts[2] == 0)
    return nlu_scores(
        intent_correct=intent_ok,
        entity_counts=ent_counts,
        slu=slu,
        confidences=conf,
        all_correct=all_ok,
        intent_confidences=iconf,
        n_resamples=n_resamples,
    )


def labelled_examples(rows: Iterable[ManifestRow]) -> list[Example]:
    """The rows that carry an intent, as normalised examples; raises when there are none."""
    examples = [ex for row in rows if (ex := example_from_row(row)) is not None]
    if not examples:
        raise ManifestError("no row carries an intent: nothing to evaluate the NLU on")
    return examples


def evaluate_nlu(
    checkpoint: str | Path,
    rows: Iterable[ManifestRow],
    *,
    asr_checkpoint: str | Path | None = None,
    n_resamples: int = 1000,
) -> dict[str, Any]:
    """NLU figures with 95% bootstrap intervals.

    Returns ``{"intent_accuracy", "entity_f1", "slu_f1", "ece", "intent_ece": {"value",
    "low", "high"}, "n": utterances, "input": "gold_text" | "asr"}``. With ``asr_checkpoint``
    the NLU reads ``training.asr.transcribe.transcribe`` output of each row's audio instead of
    the gold text (end to end).
    """
    from training.nlu.predict import NLUModel

    rows = list(rows)
    examples = labelled_examples(rows)
    model = NLUModel.load(checkpoint)
    if asr_checkpoint is None:
        texts = [(ex.id, ex.text) for ex in examples]
    else:
        from training.asr.transcribe import transcribe  # type: ignore[import-not-found]

        wanted = {ex.id for ex in examples}
        hyps = {
            h.id: h.text for h in transcribe(asr_checkpoint, [r for r in rows if r.id in wanted])
        }
        missing = sorted(wanted - set(hyps))
        if missing:
            raise ManifestError(
                f"the ASR returned no transcript for {len(missing)} row(s), e.g. {missing[:3]}"
            )
        texts = [(ex.id, hyps[ex.id]) for ex in examples]
    predictions = list(model.predict_texts(texts))
    scores = score_predictions(
        examples, predictions, on_gold_text=asr_checkpoint is None, n_resamples=n_resamples
    )
    out: dict[str, Any] = {k: v.to_dict() for k, v in scores.items()}
    out["n"] = len(examples)
    out["input"] = "gold_text" if asr_checkpoint is None else "asr"
    return out
