"""What the annotators really spent: edits from the pre-filled guess to the final label.

Counting utterances alone flatters a strategy that sends only the hardest clips: each of them
costs more to fix. For every utterance a person labelled, the guess they were shown is the
selecting round's prediction (``rounds/rNNN/{asr,nlu}_predictions.jsonl``) and the answer is
the imported label (``labelling`` state's ``labels.jsonl``):

- ``word_edits``: word-level edit distance from the pre-filled transcript to the final one
  (the same count as a WER numerator; a transcript typed from nothing costs its word count);
  ``prefill_costlier``: transcripts whose guess cost more edits than typing them would have,
  also per bin of the recogniser's confidence (``by_asr_confidence``): where a guess is better
  shown as a hint over an empty box than pre-filled;
- ``intent_changes``: final intent differs from the pre-selected one;
- ``entity_changes``: entities added, removed or changed (type or value): the larger of
  (final spans not shown, shown spans not kept), so retyping one span counts once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from earmark.core.manifest import read_manifest
from earmark.core.predictions import ASRHypothesis, NLUPrediction, read_predictions
from earmark.core.text import normalize
from earmark.core.wer import score_utterance
from earmark.loop.state import RunFolder
from labelling.state import State


@dataclass
class Effort:
    """One round's (or a run's) annotation effort; see the module docstring."""

    utterances: int = 0
    transcripts: int = 0  # utterances whose transcript a person confirmed or corrected
    words: int = 0  # words in the final transcripts
    word_edits: int = 0
    prefill_costlier: int = 0  # transcripts whose guess took more edits than typing them
    understood: int = 0  # utterances with a final intent
    intent_changes: int = 0
    entity_changes: int = 0

    def add(self, other: Effort) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["word_edits_per_utterance"] = (
            round(self.word_edits / self.transcripts, 3) if self.transcripts else None
        )
        out["word_edit_rate"] = round(self.word_edits / self.words, 4) if self.words else None
        out["intent_change_rate"] = (
            round(self.intent_changes / self.understood, 4) if self.understood else None
        )
        return out


def _entity_bag(pairs: list[tuple[str, str]]) -> Counter[tuple[str, str]]:
    return Counter((t, normalize(v)) for t, v in pairs)


def run_effort(run_dir: str | Path) -> dict[str, Any]:
    """Per selection round and in total: ``{"rounds": {round: Effort dict}, "total": ...}``."""
    run = RunFolder(run_dir)
    state = State.of(run.root)
    labels = (
        {r.id: r.label for r in read_manifest(state.labels) if r.label is not None}
        if state.labels.is_file()
        else {}
    )
    total = Effort()
    rounds: dict[str, Any] = {}
    by_confidence = [Effort() for _ in CONFIDENCE_BINS]
    for round_files in run.rounds():
        if not round_files.selection.is_file():
            continue
        chosen = [json.loads(x)["id"] for x in round_files.selection.read_text().splitlines() if x]
        asr_path, nlu_path = round_files.predictions("asr"), round_files.predictions("nlu")
        asr = read_predictions(asr_path, ASRHypothesis) if asr_path.is_file() else {}
        nlu = read_predictions(nlu_path, NLUPrediction) if nlu_path.is_file() else {}
        effort = Effort()
        for uid in chosen:
            label = labels.get(uid)
            if label is None:  # flagged, rejected or not yet annotated
                continue
            effort.utterances += 1
            if label.text is not None and uid in asr:
                score = score_utterance(label.text, asr[uid].text)
                for e in (effort, by_confidence[_bin(asr[uid].confidence)]):
                    e.transcripts += 1
                    e.words += score.ref_words
                    e.word_edits += score.word_errors
                    e.prefill_costlier += score.word_errors > score.ref_words
            if label.intent is not None:
                effort.understood += 1
                guess = nlu.get(uid)
                effort.intent_changes += guess is None or guess.intent != label.intent
                final = _entity_bag([(e.type, e.value(label.text or "")) for e in label.entities])
                shown = _entity_bag([(e.type, e.value) for e in guess.entities] if guess else [])
                effort.entity_changes += max(
                    sum((final - shown).values()), sum((shown - final).values())
                )
        rounds[str(round_files.number)] = effort.to_dict()
        total.add(effort)
    binned = {
        f"{low:.1f}-{high:.1f}": by_confidence[i].to_dict()
        for i, (low, high) in enumerate(CONFIDENCE_BINS)
        if by_confidence[i].transcripts
    }
    return {"rounds": rounds, "total": total.to_dict(), "by_asr_confidence": binned}


# the recogniser's confidence in the guess it pre-filled, in bins: where does editing the guess
# cost more than typing the transcript into an empty box? (``prefill_costlier``, ``word_edit_rate``
# above 1)
CONFIDENCE_BINS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0))


def _bin(confidence: float) -> int:
    return min(int(confidence * len(CONFIDENCE_BINS)), len(CONFIDENCE_BINS) - 1)


def print_effort(out: Path, arms: dict[str, Any]) -> None:
    """What the annotators spent per arm and seed (``earmark.loop.effort``): a strategy that
    picks the hardest clips costs more per clip. Prints the table of a benchmark's runs
    (``out/runs/ARM-sSEED``) and fills each of ``arms``' ``effort``."""
    print(
        "\nannotation effort (edits from the pre-filled guess to the final label): utterances, "
        "word edits (per transcript), intent changes, entity changes"
    )
    print(
        f"{'arm':<22}{'seed':>5}{'utts':>7}{'word edits':>12}{'per utt':>9}{'intent':>8}{'entity':>8}"
    )
    binned: dict[str, dict[str, Effort]] = {}
    for arm, data in arms.items():
        data["effort"], data["effort_by_asr_confidence"] = {}, {}
        for seed in data["curves"]:
            run = out / "runs" / f"{arm}-s{seed}"
            effort = run_effort(run) if run.is_dir() else {"total": None, "by_asr_confidence": {}}
            total = data["effort"][seed] = effort["total"]
            data["effort_by_asr_confidence"][seed] = effort["by_asr_confidence"]
            for name, e in effort["by_asr_confidence"].items():
                into = binned.setdefault(arm, {}).setdefault(name, Effort())
                into.add(Effort(**{k: e[k] for k in ("transcripts", "words", "word_edits",
                                                      "prefill_costlier")}))  # fmt: skip
            if total:
                per = total["word_edits_per_utterance"]
                per_utterance = "-" if per is None else f"{per:.3f}"
                print(
                    f"{arm:<22}{seed:>5}{total['utterances']:>7}{total['word_edits']:>12}"
                    f"{per_utterance:>9}{total['intent_changes']:>8}"
                    f"{total['entity_changes']:>8}"
                )
    if binned:
        print(
            "\npre-filled transcripts by the recogniser's confidence (all seeds): transcripts, "
            "word edits per final word, share that cost more edits than typing into an empty box"
        )
        for arm, bins in binned.items():
            cells = [f"{name}: {e.transcripts} {e.word_edits / max(1, e.words):.2f} "
                     f"{e.prefill_costlier / max(1, e.transcripts):.0%}"
                     for name, e in sorted(bins.items())]  # fmt: skip
            print(f"{arm:<22}" + " | ".join(cells))
