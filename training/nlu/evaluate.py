"""``evaluate_nlu``: the NLU figures of a checkpoint on labelled rows, on gold text or ASR output.

On gold text, entities are scored by exact span (type, start, end on the normalised text); on
ASR output the gold spans do not apply, so ``entity_f1`` compares ``(type, value)`` pairs.
SLU-F1 always compares ``(type, value)`` pairs softened by word and character distance.

A checkpoint predicts once (``score_nlu``, on the texts of ``nlu_texts``); its figures
(``summarize_scores``), those of any group of its utterances (``NLUScores.subset``) and its
paired difference from another checkpoint on the same utterances (``compare_scores``) are all
computed from the per-utterance ``NLUScores``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.errors import EarmarkError, ManifestError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import NLUPrediction
from earmark.core.stats import Better, Estimate, PairedDifference, paired_differences
from training.nlu.data import Example, example_from_row
from training.nlu.metrics import exact_counts, f1_statistic, nlu_scores, slu_counts

Counts = tuple[float, float, float]  # (tp, fp, fn)

# The figures two checkpoints are compared on, and which way is better.
PAIRED_METRICS: dict[str, Better] = {
    "intent_accuracy": "higher",
    "entity_f1": "higher",
    "slu_f1": "higher",
}


@dataclass(frozen=True)
class NLUScores:
    """One checkpoint's per-utterance results (example order): every figure is computed from it.

    ``all_correct``: intent and every entity right; ``on_gold_text``: the NLU read the gold
    text (else ASR output).
    """

    ids: tuple[str, ...]
    intent_correct: tuple[bool, ...]
    entity_counts: tuple[Counts, ...]
    slu: tuple[Counts, ...]
    confidences: tuple[float, ...]
    intent_confidences: tuple[float, ...]
    all_correct: tuple[bool, ...]
    on_gold_text: bool = True

    def subset(self, positions: Sequence[int]) -> NLUScores:
        """The utterances at ``positions`` (indices into ``ids``), in that order."""

        def pick(values: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(values[i] for i in positions)

        return NLUScores(
            pick(self.ids),
            pick(self.intent_correct),
            pick(self.entity_counts),
            pick(self.slu),
            pick(self.confidences),
            pick(self.intent_confidences),
            pick(self.all_correct),
            self.on_gold_text,
        )


def utterance_scores(
    examples: Sequence[Example],
    predictions: Sequence[NLUPrediction],
    *,
    on_gold_text: bool = True,
) -> NLUScores:
    """Score each prediction (same order as ``examples``) against its gold label."""
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
    ids = tuple(ex.id for ex in examples)
    return NLUScores(
        ids,
        tuple(intent_ok),
        tuple(ent_counts),
        tuple(slu),
        tuple(conf),
        tuple(iconf),
        tuple(all_ok),
        on_gold_text,
    )


def estimates(scored: NLUScores, *, n_resamples: int = 1000) -> dict[str, Estimate]:
    """Every NLU figure of ``scored`` with its 95% bootstrap interval (``nlu_scores``)."""
    return nlu_scores(
        intent_correct=scored.intent_correct,
        entity_counts=scored.entity_counts,
        slu=scored.slu,
        confidences=scored.confidences,
        all_correct=scored.all_correct,
        intent_confidences=scored.intent_confidences,
        n_resamples=n_resamples,
    )


def score_predictions(
    examples: Sequence[Example],
    predictions: Sequence[NLUPrediction],
    *,
    on_gold_text: bool = True,
    n_resamples: int = 1000,
) -> dict[str, Estimate]:
    """Score predictions (same order as ``examples``) against the gold labels."""
    scored = utterance_scores(examples, predictions, on_gold_text=on_gold_text)
    return estimates(scored, n_resamples=n_resamples)


def summarize_scores(scored: NLUScores, *, n_resamples: int = 1000) -> dict[str, Any]:
    """``{"intent_accuracy", "entity_f1", "slu_f1", "ece", "intent_ece": {"value", "low",
    "high"}, "n": utterances, "input": "gold_text" | "asr"}``."""
    out: dict[str, Any] = {
        k: v.to_dict() for k, v in estimates(scored, n_resamples=n_resamples).items()
    }
    out["n"] = len(scored.ids)
    out["input"] = "gold_text" if scored.on_gold_text else "asr"
    return out


def paired_statistics(scored: NLUScores) -> dict[str, Callable[[np.ndarray], float]]:
    """Bootstrap statistics (utterance indices -> figure) of ``PAIRED_METRICS``; the same as
    ``nlu_scores`` resamples."""
    ok = np.asarray(scored.intent_correct, dtype=float)
    return {
        "intent_accuracy": lambda idx: float(ok[idx].mean()),
        "entity_f1": f1_statistic(scored.entity_counts),
        "slu_f1": f1_statistic(scored.slu),
    }


def compare_scores(
    baseline: NLUScores, candidate: NLUScores, *, n_resamples: int = 1000
) -> dict[str, PairedDifference]:
    """``candidate - baseline`` of each of ``PAIRED_METRICS``, by a paired bootstrap over the
    utterances both scored (the same ids in the same order, else ``EarmarkError``)."""
    if baseline.ids != candidate.ids:
        raise EarmarkError("cannot pair the two NLU evaluations: they scored different utterances")
    base, cand = paired_statistics(baseline), paired_statistics(candidate)
    return paired_differences(
        base, cand, PAIRED_METRICS, len(baseline.ids), n_resamples=n_resamples
    )


def labelled_examples(rows: Iterable[ManifestRow]) -> list[Example]:
    """The rows that carry an intent, as normalised examples; raises when there are none."""
    examples = [ex for row in rows if (ex := example_from_row(row)) is not None]
    if not examples:
        raise ManifestError("no row carries an intent: nothing to evaluate the NLU on")
    return examples


def nlu_texts(
    rows: Sequence[ManifestRow],
    examples: Sequence[Example],
    asr_checkpoint: str | Path | None = None,
) -> list[tuple[str, str]]:
    """``(id, text)`` the NLU reads for each example: its gold text, or with ``asr_checkpoint``
    the ``training.asr.transcribe.transcribe`` output of its row's audio (end to end)."""
    if asr_checkpoint is None:
        return [(ex.id, ex.text) for ex in examples]
    from training.asr.transcribe import transcribe  # type: ignore[import-not-found]

    wanted = {ex.id for ex in examples}
    hyps = {h.id: h.text for h in transcribe(asr_checkpoint, [r for r in rows if r.id in wanted])}
    missing = sorted(wanted - set(hyps))
    if missing:
        raise ManifestError(
            f"the ASR returned no transcript for {len(missing)} row(s), e.g. {missing[:3]}"
        )
    return [(ex.id, hyps[ex.id]) for ex in examples]


def score_nlu(
    checkpoint: str | Path,
    examples: Sequence[Example],
    texts: Sequence[tuple[str, str]],
    *,
    on_gold_text: bool = True,
) -> NLUScores:
    """Predict ``texts`` (``nlu_texts``) with ``checkpoint`` once and score each utterance."""
    from training.nlu.predict import NLUModel  # torch: the scoring above needs none

    model = NLUModel.load(checkpoint)
    predictions = list(model.predict_texts(texts))
    return utterance_scores(examples, predictions, on_gold_text=on_gold_text)


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
    rows = list(rows)
    examples = labelled_examples(rows)
    texts = nlu_texts(rows, examples, asr_checkpoint)
    scored = score_nlu(checkpoint, examples, texts, on_gold_text=asr_checkpoint is None)
    return summarize_scores(scored, n_resamples=n_resamples)
