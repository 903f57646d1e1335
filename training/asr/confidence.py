"""Entropy-based confidence for CTC, per frame, word and utterance, with a fitted temperature.

Following Laptev & Ginsburg (2022), "Fast entropy-based methods of word-level confidence
estimation for end-to-end automatic speech recognition" (SLT 2022): a frame's confidence is
one minus its normalised Gibbs entropy, ``1 - H(softmax(z / T)) / log V``; only non-blank
frames of the greedy path count; a word's confidence aggregates its frames (minimum by
default) and an utterance's its words. The temperature ``T`` is fitted on dev data (minimum
Brier score of word confidence against word correctness). The temperature changes the
confidence only: the greedy hypothesis is an argmax and does not depend on it.

With beam search and a language model the hypothesis is no longer the frames' argmax, and the
confidence is the n-best posterior instead (``nbest_words``); its temperature scales the
hypotheses' total scores and is fitted on dev in the same way.

Both the temperature and the decoding settings (``tuning.tune_decoding``) are chosen on a grid
by ``search_grid``, which grows the grid past an edge whose value wins, so that the value
chosen is a minimum with a worse value on either side (or a stated bound).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from training.asr.lm import BeamResult

TEMPERATURE_GRID = tuple(float(t) for t in np.round(np.geomspace(0.25, 4.0, 17), 4))
# Grid steps (x 2^(1/4) each) the temperature search may take past either end of the grid:
# up to 32 or down to 1/32. Each costs one pass over the dev hypotheses, no decoding.
TEMPERATURE_EXTENSIONS = 12


@dataclass(frozen=True)
class GridSearch:
    """What ``search_grid`` found: the best value, the score of every value tried (grid order,
    then the values added past its edges, ``added``), and ``edge``: ``"low"``/``"high"`` when
    the best is still the lowest/highest value tried (a bound or the step limit stopped the
    search), None when it is a minimum with a value on each side (or a tie with an inner one).
    """

    best: float
    scores: dict[float, float]
    added: tuple[float, ...]
    edge: Literal["low", "high"] | None
    at_bound: bool = False

    def describe(self, name: str) -> str | None:
        """One line for the log when the grid was extended or its best is on an edge."""
        if not self.added and self.edge is None:
            return None
        tried = ", ".join(f"{v:g}" for v in self.added)
        grown = f"grid extended to {tried}" if tried else "grid not extended"
        if self.edge is None:
            return f"{name}: {grown}; best {self.best:g} is now inside"
        why = "its bound" if self.at_bound else f"the limit of {len(self.added)} extensions"
        return f"{name}: {grown}; best {self.best:g} is still at the {self.edge} edge ({why})"


def _winning_edge(scores: Mapping[float, float]) -> Literal["low", "high"] | None:
    """The end of the tried values that is strictly better than every other value, if one is."""
    values = sorted(scores)
    if len(values) < 2:
        return None
    if scores[values[0]] < min(scores[v] for v in values[1:]):
        return "low"
    if scores[values[-1]] < min(scores[v] for v in values[:-1]):
        return "high"
    return None


def _beyond(
    values: Sequence[float], edge: str, log_scale: bool, lower: float, upper: float
) -> float | None:
    """The next value past ``edge``, one outermost grid step on, clipped to the bound; None at
    the bound."""
    a, b = (values[0], values[1]) if edge == "low" else (values[-1], values[-2])
    new = a * (a / b) if log_scale else a + (a - b)
    new = round(min(max(new, lower), upper), 6)
    return None if new in values else new


def search_grid(
    objective: Callable[[float], float],
    grid: Sequence[float],
    *,
    log_scale: bool = False,
    lower: float = -math.inf,
    upper: float = math.inf,
    max_extensions: int = 3,
    known: Mapping[float, float] | None = None,
) -> GridSearch:
    """Minimise ``objective`` over ``grid``, growing the grid while an edge value wins.

    After evaluating the grid, while the lowest (highest) value tried is strictly better than
    all the others, one more value is tried a grid step beyond it (the outermost spacing, or
    ratio with ``log_scale``), clipped to ``[lower, upper]``, at most ``max_extensions``
    times. A one-value grid is taken as pinned and not searched. Ties go to the value tried
    first. ``known`` holds scores already computed (they are not evaluated again).
    """
    scores: dict[float, float] = {}
    for v in dict.fromkeys(float(g) for g in grid):
        scores[v] = known[v] if known is not None and v in known else objective(v)
    if not scores:
        raise ValueError("search_grid needs at least one value")
    if log_scale and min(scores) <= 0:
        raise ValueError(f"a log-scale grid needs positive values, got {min(scores)}")
    added: list[float] = []
    at_bound = False
    edge = _winning_edge(scores)
    while edge is not None and len(added) < max_extensions:
        new = _beyond(sorted(scores), edge, log_scale, lower, upper)
        if new is None:
            at_bound = True
            break
        scores[new] = known[new] if known is not None and new in known else objective(new)
        added.append(new)
        edge = _winning_edge(scores)
    best = min(scores, key=scores.__getitem__)
    return GridSearch(best, scores, tuple(added), edge, at_bound)


@dataclass(frozen=True)
class Word:
    """A hypothesis word: its text, confidence in [0, 1], and start/end output-frame indices
    (``end`` exclusive)."""

    word: str
    confidence: float
    start_frame: int
    end_frame: int


def frame_confidence(log_probs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``(frames, vocab)`` log-probabilities -> ``(frames,)`` confidence in [0, 1]."""
    z = log_probs.astype(np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    entropy = -(p * np.log(np.clip(p, 1e-30, None))).sum(axis=-1)
    return np.clip(1.0 - entropy / math.log(log_probs.shape[-1]), 0.0, 1.0)


def _aggregate(values: Sequence[float] | np.ndarray, how: str) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if how == "min":
        return float(arr.min())
    if how == "mean":
        return float(arr.mean())
    if how == "prod":
        return float(np.exp(np.log(np.clip(arr, 1e-12, None)).sum()))
    raise ValueError(f"unknown aggregation {how!r}; use min, mean or prod")


def greedy_words(
    log_probs: np.ndarray,
    id_to_token: dict[int, str],
    blank_id: int,
    word_sep: str,
    *,
    temperature: float = 1.0,
    word_agg: str = "min",
) -> list[Word]:
    """Greedy CTC decoding of one utterance ``(frames, vocab)`` into words with confidence.

    Frames whose argmax is blank or the word separator count toward no word; a repeated
    token on consecutive frames is one emission spanning those frames.
    """
    best = log_probs.argmax(axis=-1)
    conf = frame_confidence(log_probs, temperature)
    words: list[Word] = []
    chars: list[str] = []
    frames: list[int] = []
    prev = -1

    def flush() -> None:
        if chars:
            words.append(
                Word("".join(chars), _aggregate(conf[frames], word_agg), frames[0], frames[-1] + 1)
            )
        chars.clear()
        frames.clear()

    for t, tok in enumerate(best.tolist()):
        if tok == blank_id:
            prev = tok
            continue
        token = id_to_token.get(tok, "")
        if token == word_sep or token == " ":
            flush()
        elif tok == prev:
            frames.append(t)  # the same emission continues
        elif token and not (token.startswith("<") and token.endswith(">")):
            chars.append(token.lower())
            frames.append(t)
        prev = tok
    flush()
    return words


def nbest_posteriors(scores: Sequence[float], temperature: float) -> np.ndarray:
    """Posterior of each n-best hypothesis: softmax of its total score over ``temperature``."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    if z.size == 0:
        return z
    p = np.exp(z - z.max())
    return np.asarray(p / p.sum())


def nbest_words(
    result: BeamResult,
    id_to_token: dict[int, str],
    word_sep: str,
    *,
    temperature: float = 1.0,
    n_frames: int = 0,
) -> tuple[list[Word], float]:
    """Words of a beam search's best hypothesis with n-best confidence, and the utterance's.

    A word's confidence is the summed posterior of the n-best hypotheses that contain it at the
    same place (aligned to the best one); the utterance's is the summed posterior of the n-best
    entries with exactly the best hypothesis's words (the probability that the whole transcript
    is right: entries that differ only in their CTC path, e.g. where a blank falls, say the
    same words, just as they all count for each word). Word frames come from the best path's
    token timesteps. (How well this ranks errors is measured by ``scripts/bench_asr.py``; the
    README's recogniser section has the last figures.)
    """
    post = nbest_posteriors(result.scores, temperature)
    best = list(result.words)
    best_seq = tuple(best)
    conf = np.zeros(len(best))
    for p, alt in zip(post, result.alternatives, strict=True):
        matcher = difflib.SequenceMatcher(a=best, b=list(alt), autojunk=False)
        for a, _, n in matcher.get_matching_blocks():
            conf[a : a + n] += p
    # Frames per word from the token path; it may end in a word the search left unfinished.
    spans: list[list[int]] = [[]]
    for tok, t in zip(result.tokens, result.timesteps, strict=True):
        token = id_to_token.get(tok, "")
        if token == word_sep or token == " ":
            if spans[-1]:
                spans.append([])
        elif token and not (token.startswith("<") and token.endswith(">")):
            spans[-1].append(t)
    spans = [s for s in spans if s]
    words = []
    for i, w in enumerate(best):
        frames = spans[i] if i < len(spans) else [0]
        frames = [min(f, max(0, n_frames - 1)) for f in frames] if n_frames else frames
        words.append(Word(w, float(min(1.0, conf[i])), frames[0], frames[-1] + 1))
    same = [tuple(alt) == best_seq for alt in result.alternatives]
    utterance = float(post[np.asarray(same, dtype=bool)].sum()) if post.size else 0.0
    return words, float(min(1.0, utterance))


def utterance_confidence(words: Sequence[Word], log_probs: np.ndarray, temperature: float) -> float:
    """Minimum word confidence; for an empty hypothesis, the mean confidence of all frames."""
    if words:
        return min(w.confidence for w in words)
    if log_probs.shape[0] == 0:
        return 0.0
    return float(frame_confidence(log_probs, temperature).mean())


def brier(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    c = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    return float(((c - y) ** 2).mean()) if c.size else float("nan")


def fit_temperature(
    log_probs: Sequence[np.ndarray],
    word_correct: Sequence[Sequence[bool]],
    id_to_token: dict[int, str],
    blank_id: int,
    word_sep: str,
    *,
    grid: Sequence[float] = TEMPERATURE_GRID,
    word_agg: str = "min",
    beams: Sequence[BeamResult] | None = None,
    max_extensions: int = TEMPERATURE_EXTENSIONS,
    log: Callable[[str], None] | None = None,
) -> tuple[float, dict[float, float]]:
    """The temperature whose word confidences have the lowest Brier score against
    ``word_correct`` (per utterance, per hypothesis word), searched on ``grid`` and past its
    ends while an end wins (``search_grid`` on a log scale, up to ``max_extensions`` steps;
    ``log`` hears when it extends). The hypotheses are greedy (entropy confidence), or the beam
    searches' ``beams`` (n-best posterior confidence) when given.
    Returns ``(T, {T: brier})`` over every temperature tried, in increasing order."""
    flat_correct = [c for per_utt in word_correct for c in per_utt]
    if not flat_correct:
        return 1.0, {}

    def brier_at(temperature: float) -> float:
        confs: list[float] = []
        for i, lp in enumerate(log_probs):
            if beams is not None:
                words, _ = nbest_words(beams[i], id_to_token, word_sep, temperature=temperature)
            else:
                words = greedy_words(
                    lp, id_to_token, blank_id, word_sep, temperature=temperature, word_agg=word_agg
                )
            confs.extend(w.confidence for w in words)
        return brier(confs, flat_correct)

    found = search_grid(brier_at, grid, log_scale=True, max_extensions=max_extensions)
    note = found.describe("confidence temperature")
    if note and log is not None:
        log(note)
    return found.best, dict(sorted(found.scores.items()))
