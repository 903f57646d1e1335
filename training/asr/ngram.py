"""Interpolated Kneser-Ney n-gram models written as ARPA text (read by KenLM in the decoder).

Two are built per checkpoint (``training.asr.lm``): a word model over the training
transcripts and any ``decoding.lm_text``, and for the open-vocabulary search a character model
over the same text (each sentence spelled ``p l a y | m u s i c |``). Words from a general word
list join the word model as unigrams only, with a fixed share of the unigram probability
(``extra_unigrams``): enough to be decodable, too little to outvote the domain's own text.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

BOS, EOS, UNK_WORD = "<s>", "</s>", "<unk>"

Counts = list[dict[tuple[str, ...], float]]


def kneser_ney_arpa(
    sentences: Iterable[str],
    order: int = 3,
    discount: float = 0.75,
    *,
    extra_unigrams: Mapping[str, float] | None = None,
    extra_mass: float = 0.0,
) -> str:
    """An interpolated Kneser-Ney n-gram model of ``sentences`` (space-separated tokens) as ARPA.

    Lower orders use continuation counts (how many different tokens precede an n-gram), except
    for n-grams starting with ``<s>``, which cannot be extended to the left and keep raw counts
    (as KenLM does). The unigram distribution is interpolated with a uniform one over the
    vocabulary (with ``</s>`` and ``<unk>``), so every token has a probability. An interpolated
    model is exactly an ARPA back-off model whose back-off weight for history ``h`` is
    ``D * |{w: c(h w) > 0}| / c(h)``.

    ``extra_unigrams`` (token -> relative weight, e.g. a word frequency) receive ``extra_mass``
    of the unigram probability in proportion to their weights; the text's unigrams keep the
    rest. The model stays a distribution after every history.
    """
    if order < 2:
        raise ValueError("order must be at least 2 (KenLM reads bigram models and up)")
    if not 0.0 <= extra_mass < 1.0:
        raise ValueError(f"extra_mass must be in [0, 1), got {extra_mass}")
    raw = count_ngrams(sentences, order)
    if not raw[1]:
        raise ValueError("no words to build a language model from")
    counts = continuation_counts(raw, order)
    extra = {w: float(v) for w, v in (extra_unigrams or {}).items() if v > 0 and w not in (BOS,)}
    prob = _empty(order)
    backoff = _empty(order)
    prob[1] = unigram_probs(counts[1], discount, extra, extra_mass if extra else 0.0)
    for n in range(2, order + 1):
        add_order(prob, backoff, counts[n], n, discount)
    return to_arpa(prob, backoff, order)


def _empty(order: int) -> Counts:
    return [{} for _ in range(order + 1)]


def count_ngrams(sentences: Iterable[str], order: int) -> list[Counter[tuple[str, ...]]]:
    """Raw counts of every n-gram up to ``order`` of the padded sentences (not ``(<s>,)``)."""
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        padded = (BOS, *words, EOS)
        for n in range(1, order + 1):
            raw[n].update(padded[i : i + n] for i in range(len(padded) - n + 1))
    raw[1].pop((BOS,), None)
    return raw


def continuation_counts(raw: list[Counter[tuple[str, ...]]], order: int) -> Counts:
    """Raw counts at the top order and for ``<s>``-initial n-grams, continuation counts below."""
    counts = _empty(order)
    counts[order] = {g: float(c) for g, c in raw[order].items()}
    for n in range(order - 1, 0, -1):
        cont: Counter[tuple[str, ...]] = Counter(gram[1:] for gram in raw[n + 1])
        counts[n] = {
            g: float(c) if g[0] == BOS else float(cont.get(g, c)) for g, c in raw[n].items()
        }
    return counts


def unigram_probs(
    counts: dict[tuple[str, ...], float],
    discount: float,
    extra: Mapping[str, float],
    extra_mass: float,
) -> dict[tuple[str, ...], float]:
    """Discounted unigrams interpolated with a uniform distribution; then ``extra`` words
    share ``extra_mass`` of the total by weight (the rest scaled by ``1 - extra_mass``)."""
    vocab = sorted({g[0] for g in counts} | {EOS, UNK_WORD})
    total = sum(counts.values())
    types = len(counts)
    keep = 1.0 - extra_mass
    probs: dict[tuple[str, ...], float] = {
        (w,): keep
        * (
            max(counts.get((w,), 0.0) - discount, 0.0) / total
            + discount * types / total / len(vocab)
        )
        for w in vocab
    }
    weight = sum(extra.values())
    for w, v in extra.items():
        probs[(w,)] = probs.get((w,), 0.0) + extra_mass * v / weight
    probs[(BOS,)] = 0.0
    return probs


def add_order(
    prob: Counts, backoff: Counts, counts: dict[tuple[str, ...], float], n: int, discount: float
) -> None:
    """Order ``n``'s interpolated probabilities and order ``n - 1``'s back-off weights."""
    hist_total: dict[tuple[str, ...], float] = defaultdict(float)
    hist_types: dict[tuple[str, ...], int] = defaultdict(int)
    for gram, c in counts.items():
        hist_total[gram[:-1]] += c
        hist_types[gram[:-1]] += 1
    for h, s in hist_total.items():
        backoff[n - 1][h] = discount * hist_types[h] / s
    for gram, c in counts.items():
        h = gram[:-1]
        lower = backed_off(prob, backoff, gram[1:])
        prob[n][gram] = max(c - discount, 0.0) / hist_total[h] + backoff[n - 1][h] * lower


def backed_off(prob: Counts, backoff: Counts, gram: tuple[str, ...]) -> float:
    """``p(w | h)`` of the model built so far, backing off through shorter histories."""
    n = len(gram)
    if gram in prob[n]:
        return prob[n][gram]
    if n == 1:
        return prob[1][(UNK_WORD,)]
    return backoff[n - 1].get(gram[:-1], 1.0) * backed_off(prob, backoff, gram[1:])


def to_arpa(prob: Counts, backoff: Counts, order: int) -> str:
    """The model as ARPA text: log10 probabilities and back-off weights, sorted n-grams."""
    lines = ["", "\\data\\"]
    lines += [f"ngram {n}={len(prob[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(prob[n]):
            p = prob[n][gram]
            entry = f"{-99.0 if p <= 0 else math.log10(p):.6f}\t{' '.join(gram)}"
            if n < order:
                bo = backoff[n].get(gram)
                entry += f"\t{math.log10(bo):.6f}" if bo else "\t0"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)
