"""Is the strategy's ranking worth following yet? A check on dev before each selection.

Uncertainty sampling assumes the models' confidence says where they are wrong. Early in a
loop it may not: a from-scratch recogniser at 85% WER errs everywhere, and its confidence
ranks its errors no better than chance (measured on the active-learning benchmark: Spearman
-0.02 to 0.01 in round 1, 0.1 to 0.2 in round 2, 0.4 to 0.6 in round 3). Following such a
ranking spends the annotators' time on whatever it happens to prefer (there: long utterances
and fewer new intents), and loses to random selection.

So, with ``selection.min_rank_correlation`` > 0, each round first scores dev (labelled, so
its errors are known) with the strategy's own priority and measures the rank correlation of
priority with error. Below the threshold, the round selects at random instead and says so;
from the first round where the ranking holds up, the strategy takes over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis, NLUPrediction
from earmark.core.stats import spearman
from earmark.core.wer import score_utterance
from earmark.selection import UtteranceScores
from earmark.selection.strategies import Strategy


@dataclass(frozen=True)
class RankCheck:
    """The rank correlation of a strategy's priority with the models' errors on dev."""

    strategy: str
    utterances: int
    spearman: float | None  # None: undefined (constant priority or constant error)
    threshold: float

    @property
    def informative(self) -> bool:
        return self.spearman is not None and self.spearman >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "informative": self.informative}

    def describe(self) -> str:
        rho = "undefined" if self.spearman is None else f"{self.spearman:.2f}"
        verdict = ">=" if self.informative else "<"
        return (
            f"on dev ({self.utterances} utterances), {self.strategy}'s priority ranks the models' "
            f"errors with Spearman {rho} {verdict} {self.threshold:g}"
        )


def utterance_errors(
    rows: Sequence[ManifestRow],
    asr: Mapping[str, ASRHypothesis],
    nlu: Mapping[str, NLUPrediction],
    asr_weight: float,
) -> dict[str, float]:
    """Per dev utterance, an error in [0, 1] to rank against: the utterance WER (capped at 1)
    and/or whether the intent is wrong, mixed by ``asr_weight`` when both models run."""

    out: dict[str, float] = {}
    for row in rows:
        label = row.label
        if label is None:
            continue
        parts: list[tuple[float, float]] = []
        if row.id in asr and label.text is not None:
            score = score_utterance(label.text, asr[row.id].text)
            wer = score.word_errors / max(1, score.ref_words)
            parts.append((asr_weight, min(1.0, wer)))
        if row.id in nlu and label.intent is not None:
            parts.append((1.0 - asr_weight, float(nlu[row.id].intent != label.intent)))
        weight = sum(w for w, _ in parts)
        if parts and weight > 0:
            out[row.id] = sum(w * e for w, e in parts) / weight
    return out


def rank_check(
    strategy: Strategy,
    scores: Sequence[UtteranceScores],
    errors: dict[str, float],
    threshold: float,
) -> RankCheck:
    """Spearman correlation of ``strategy.priority`` with ``errors`` over the scored ids."""

    kept = [s for s in scores if s.id in errors]
    rho = (
        spearman([strategy.priority(s) for s in kept], [errors[s.id] for s in kept])
        if len(kept) >= 2
        else float("nan")
    )
    return RankCheck(
        strategy=strategy.name,
        utterances=len(kept),
        spearman=None if math.isnan(rho) else round(rho, 4),
        threshold=threshold,
    )


def rank_check_history(run_dir: str | Path) -> list[float | None]:
    """Per selection round of a run, the dev Spearman its warm-up check measured (None: no
    check that round)."""
    from earmark.loop.state import RunFolder

    found: list[float | None] = []
    for rf in RunFolder(run_dir).rounds():
        if rf.selection.is_file():
            check = rf.rank_check
            found.append(json.loads(check.read_text())["spearman"] if check.is_file() else None)
    return found
