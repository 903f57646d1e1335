"""How far annotators agree where several answered the same task.

Pure functions over the entries of ``state/imported.jsonl`` (``labelling.decisions``): for each
task, each annotator's latest answer that was not a skip. Only tasks answered by two or more
annotators count (``projects.overlap`` and ``projects.overlap_share`` decide how many there
are). The figures, written by ``pull`` to ``studio/agreement.json`` and by the loop into each
round's metrics:

- ``transcript_wer``: word errors between annotators' transcripts, every pair of annotators
  on a task, the earlier answer as reference (summed errors over summed reference words);
- ``transcript_agreement``: share of transcription tasks on which every transcript is the
  same after normalisation;
- ``intent_agreement``: observed pairwise agreement on the intent, and ``intent_alpha``:
  Krippendorff's alpha (nominal; chance-corrected, copes with annotators who answered
  different tasks), computed by NLTK's ``AnnotationTask``;
- ``entity_agreement``: share of understanding tasks on which every answer has the same spans.

A figure with no task to measure it on is ``None``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from earmark.core.text import normalize
from earmark.core.wer import score_utterance
from labelling import convert
from labelling.decisions import Entry, latest_per_annotator


def _answered(
    entries: Iterable[Entry], current: set[int] | None, kind: str
) -> dict[str, list[tuple[str, convert.Answer]]]:
    """utterance id -> [(annotator, answer)] of ``kind`` tasks with at least two annotators'
    live answers (oldest first); ``current``: the annotation ids still on the server."""
    grouped: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        if e["kind"] == kind and (current is None or e["annotation_id"] in current):
            grouped[e["utterance_id"]].append(e)
    out: dict[str, list[tuple[str, convert.Answer]]] = {}
    for uid, es in grouped.items():
        answers = [
            (e["annotator"], convert.Answer.from_dict(e["answer"]))
            for e in latest_per_annotator(es)
        ]
        live = [(who, a) for who, a in answers if not a.cancelled]
        if len(live) >= 2:
            out[uid] = live
    return out


def _share(hits: Iterable[bool]) -> float | None:
    values = list(hits)
    return sum(values) / len(values) if values else None


def transcription_agreement(tasks: dict[str, list[tuple[str, convert.Answer]]]) -> dict[str, Any]:
    """``transcript_wer`` and ``transcript_agreement`` over tasks with several answers."""
    errors = words = 0
    for answers in tasks.values():
        for (_, a), (_, b) in combinations(answers, 2):
            s = score_utterance(a.text or "", b.text or "")
            errors, words = errors + s.word_errors, words + s.ref_words
    same = (len({normalize(a.text or "") for _, a in answers}) == 1 for answers in tasks.values())
    return {
        "transcription_tasks": len(tasks),
        "transcript_wer": errors / words if words else None,
        "transcript_agreement": _share(same),
    }


def understanding_agreement(tasks: dict[str, list[tuple[str, convert.Answer]]]) -> dict[str, Any]:
    """``intent_agreement``, ``intent_alpha`` and ``entity_agreement``."""
    pairs = [
        a.intent == b.intent
        for answers in tasks.values()
        for (_, a), (_, b) in combinations(answers, 2)
    ]
    spans = (
        len({frozenset((s.type, s.start, s.end) for s in a.spans) for _, a in answers}) == 1
        for answers in tasks.values()
    )
    return {
        "understanding_tasks": len(tasks),
        "intent_agreement": _share(pairs),
        "intent_alpha": intent_alpha(tasks),
        "entity_agreement": _share(spans),
    }


def intent_alpha(tasks: dict[str, list[tuple[str, convert.Answer]]]) -> float | None:
    """Krippendorff's alpha (nominal) of the intents; None without tasks, and 1.0 when every
    answer has the same intent (no variation: nothing to correct for chance)."""
    data = [(who, uid, a.intent or "") for uid, answers in tasks.items() for who, a in answers]
    if not data:
        return None
    if len({label for _, _, label in data}) == 1:
        return 1.0
    from nltk.metrics.agreement import AnnotationTask  # a dependency of label-studio-sdk

    return float(AnnotationTask(data=data).alpha())


def agreement(entries: Iterable[Entry], current: set[int] | None = None) -> dict[str, Any]:
    """Every figure, over the annotations still on the server (``current``; all when None)."""
    entries = list(entries)
    trans = _answered(entries, current, "transcription")
    under = _answered(entries, current, "understanding")
    annotators = {
        e["annotator"] for e in entries if current is None or e["annotation_id"] in current
    }
    return {
        "annotators": len(annotators),
        **transcription_agreement(trans),
        **understanding_agreement(under),
    }
