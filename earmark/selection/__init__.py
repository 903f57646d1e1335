"""Selection: from per-utterance scores to the ids worth a human's time.

Scoring (model outputs -> ``UtteranceScores``) happens in ``training``; strategies here only
choose. Convention: a strategy's ``priority`` is higher for utterances more worth a human's time.
"""

from earmark.selection.scores import UtteranceScores, read_scores, write_scores
from earmark.selection.strategies import (
    STRATEGIES,
    AsrEntropy,
    AsrLeastConfidence,
    Combined,
    Diverse,
    NluEntropy,
    NluMargin,
    Random,
    Strategy,
    make_strategy,
)

__all__ = [
    "STRATEGIES",
    "AsrEntropy",
    "AsrLeastConfidence",
    "Combined",
    "Diverse",
    "NluEntropy",
    "NluMargin",
    "Random",
    "Strategy",
    "UtteranceScores",
    "make_strategy",
    "read_scores",
    "write_scores",
]
