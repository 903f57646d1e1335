"""WER, CER and sentence error rate by edit distance on normalised text.

Both sides go through ``earmark.core.text.normalize`` (the one normaliser used for training too).
``align_words`` also says which hypothesis words are correct, for word-confidence AUROC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from earmark.core.text import normalize


def _edit_table(ref: Sequence[str], hyp: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(len(ref) + 1):
        table[i][0] = i
    for j in range(len(hyp) + 1):
        table[0][j] = j
    for i in range(1, len(ref) + 1):
        row, prev = table[i], table[i - 1]
        for j in range(1, len(hyp) + 1):
            cost = 0 if ref[i - 1] == hyp[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
    return table


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance (substitutions + deletions + insertions)."""
    return _edit_table(ref, hyp)[len(ref)][len(hyp)]


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, list[bool]]:
    """``(errors, correct)``: the edit distance and, per hypothesis word, whether it is matched
    to an identical reference word on a minimum-edit alignment."""
    table = _edit_table(ref, hyp)
    correct = [False] * len(hyp)
    i, j = len(ref), len(hyp)
    while i > 0 and j > 0:
        if ref[i - 1] == hyp[j - 1] and table[i][j] == table[i - 1][j - 1]:
            correct[j - 1] = True
            i, j = i - 1, j - 1
        elif table[i][j] == table[i - 1][j - 1] + 1:
            i, j = i - 1, j - 1
        elif table[i][j] == table[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return table[len(ref)][len(hyp)], correct


def aligned_pairs(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """``(ref index, hyp index)`` of every matched or substituted pair on a minimum-edit
    alignment, in order (inserted and deleted words have no partner)."""
    table = _edit_table(ref, hyp)
    pairs = []
    i, j = len(ref), len(hyp)
    while i > 0 and j > 0:
        if table[i][j] == table[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i][j] == table[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass(frozen=True)
class UtteranceScore:
    """Error counts of one utterance (normalised ``ref``/``hyp``)."""

    ref: str
    hyp: str
    word_errors: int
    ref_words: int
    char_errors: int
    ref_chars: int
    hyp_word_correct: tuple[bool, ...]

    @property
    def sentence_error(self) -> bool:
        return self.ref != self.hyp


def score_utterance(reference: str, hypothesis: str) -> UtteranceScore:
    ref, hyp = normalize(reference), normalize(hypothesis)
    ref_words, hyp_words = ref.split(), hyp.split()
    word_errors, correct = align_words(ref_words, hyp_words)
    return UtteranceScore(
        ref,
        hyp,
        word_errors,
        len(ref_words),
        edit_distance(list(ref), list(hyp)),
        len(ref),
        tuple(correct),
    )


def corpus_rates(scores: Sequence[UtteranceScore]) -> dict[str, float]:
    """Corpus-level WER and CER (total errors / total reference units) and SER."""
    words = sum(s.ref_words for s in scores)
    chars = sum(s.ref_chars for s in scores)
    return {
        "wer": sum(s.word_errors for s in scores) / words if words else float("nan"),
        "cer": sum(s.char_errors for s in scores) / chars if chars else float("nan"),
        "ser": sum(s.sentence_error for s in scores) / len(scores) if scores else float("nan"),
    }
