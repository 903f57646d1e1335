"""Noisy copies of training text with the kinds of errors a recogniser makes.

The NLU reads what the ASR heard, not what was said. When no ASR hypotheses of the training
audio are at hand (text-only rows, or before the first ASR exists), ``noisy_copies`` gives the
NLU text with recogniser-like errors: a word replaced by a similar-looking word of the training
vocabulary (the character CTC model's typical error: "four" -> "for", "lights" -> "light"), or
by a misspelling of itself when no word is close; a word dropped (short words more often); a
short word inserted. Each copy becomes an example through ``project_onto_hypothesis``, exactly
as a real hypothesis does: the intent is kept, and an entity only where all its words survived.

Deterministic: the errors of copy ``k`` of example ``id`` depend only on ``(seed, id, k)``,
not on the order or the other examples (Python's ``random.Random`` seeded with a string).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Sequence

from training.nlu.data import Example, project_onto_hypothesis

INSERTED = ("a", "the", "and", "to", "in", "it", "i", "is", "of", "on")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def misspell(word: str, rng: random.Random) -> str:
    """One letter dropped, doubled or replaced (what a character recogniser gets wrong)."""
    if len(word) < 2:
        return rng.choice(LETTERS)
    i = rng.randrange(len(word))
    op = rng.randrange(3)
    if op == 0:
        return word[:i] + word[i + 1 :]
    if op == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(LETTERS) + word[i + 1 :]


class Confusions:
    """Similar words of a vocabulary by character overlap (difflib ratio), memoised."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.vocabulary = sorted(set(vocabulary))
        self._near: dict[str, list[str]] = {}

    def near(self, word: str) -> list[str]:
        if word not in self._near:
            close = difflib.get_close_matches(word, self.vocabulary, n=4, cutoff=0.6)
            self._near[word] = [w for w in close if w != word]
        return self._near[word]


def noisy_words(
    words: Sequence[str], confusions: Confusions, rng: random.Random, word_error_rate: float
) -> list[str]:
    """``words`` with about ``word_error_rate`` errors per word (substitution 60%, deletion
    25%, insertion 15%); never empty."""
    out: list[str] = []
    for word in words:
        if rng.random() >= word_error_rate:
            out.append(word)
            continue
        kind = rng.random()
        if kind < 0.6:
            near = confusions.near(word)
            out.append(rng.choice(near) if near else misspell(word, rng))
        elif kind < 0.85:
            if len(word) > 4 and rng.random() < 0.5:
                out.append(word)  # long words are dropped less often than short ones
        else:
            out.extend((word, rng.choice(INSERTED)))
    return out or list(words[:1])


def noisy_copies(
    examples: Sequence[Example], *, copies: int, word_error_rate: float, seed: int
) -> list[Example]:
    """``copies`` noisy versions of every example (those that came out unchanged are left out).

    Their ids are ``{id}~noisy{k}``; entities are kept where all their words survived.
    """
    if copies <= 0 or word_error_rate <= 0:
        return []
    confusions = Confusions([w for e in examples for w in e.text.split()])
    out = []
    for ex in examples:
        words = ex.text.split()
        for k in range(copies):
            rng = random.Random(f"{seed}:{ex.id}:{k}")
            hypothesis = " ".join(noisy_words(words, confusions, rng, word_error_rate))
            if hypothesis == ex.text:
                continue
            projected = project_onto_hypothesis(ex, hypothesis)
            out.append(
                Example(f"{ex.id}~noisy{k}", projected.text, ex.intent, projected.entities, ex.line)
            )
    return out
