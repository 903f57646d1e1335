"""Word n-gram language model, lexicon and beam-search CTC decoding.

Greedy CTC decoding spells each word from the acoustics alone; a small recogniser trained for
minutes gets most characters right and still misspells a word in most sentences ("con cele"
for "cancel"). Beam search over a lexicon with a word n-gram language model (the classic
CTC + LM recipe; here flashlight-text's decoder through ``torchaudio.models.decoder``) only
proposes words it knows and weighs them by context.

The LM and lexicon are built from the transcripts the checkpoint was trained on and live in
the checkpoint folder, so a checkpoint decodes the same way wherever it is loaded::

    lm.arpa          interpolated Kneser-Ney word n-gram (ARPA), read by KenLM
    lexicon.txt      one line per word: the word, its characters, then the word separator
    decoding.json    beam size, LM weight and word score (tuned on dev), n-gram order, sizes

Words outside the lexicon cannot be output: an utterance with a new name comes back as the
closest known words. Confidence comes from the n-best list (``confidence.nbest_words``): a
word's confidence is the posterior mass of the hypotheses that agree with it, the utterance's
that of the best hypothesis. The entropy of the acoustic frames is no guide here: the LM
corrects most low-entropy misspellings, and what it gets wrong the acoustics were sure of.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from earmark.core.errors import CheckpointError, ConfigError
from earmark.core.fileio import atomic_write, write_json
from training.asr.tokens import BLANK, UNK, WORD_SEP

ARPA_FILE = "lm.arpa"
LEXICON_FILE = "lexicon.txt"
DECODING_FILE = "decoding.json"
LM_FILES = (ARPA_FILE, LEXICON_FILE, DECODING_FILE)
BOS, EOS, UNK_WORD = "<s>", "</s>", "<unk>"
END_FLOOR = -30.0  # log-probability of every token but the separator on the appended frame


def kneser_ney_arpa(sentences: Iterable[str], order: int = 3, discount: float = 0.75) -> str:
    """An interpolated Kneser-Ney word n-gram model of ``sentences`` as ARPA text.

    Lower orders use continuation counts (how many different words precede an n-gram), except
    for n-grams starting with ``<s>``, which cannot be extended to the left and keep raw counts
    (as KenLM does). The unigram distribution is interpolated with a uniform one over the
    vocabulary (with ``</s>`` and ``<unk>``), so every word has a probability. An interpolated
    model is exactly an ARPA back-off model whose back-off weight for history ``h`` is
    ``D * |{w: c(h w) > 0}| / c(h)``.
    """
    if order < 2:
        raise ValueError("order must be at least 2 (KenLM reads bigram models and up)")
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i : i + n])
                if gram != (BOS,):
                    raw[n][gram] += 1
    if not raw[1]:
        raise ValueError("no words to build a language model from")

    # Counts per order: raw at the top order and for <s>-initial n-grams, continuation below.
    counts: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    counts[order] = {g: float(c) for g, c in raw[order].items()}
    for n in range(order - 1, 0, -1):
        cont: Counter[tuple[str, ...]] = Counter()
        for gram in raw[n + 1]:
            cont[gram[1:]] += 1
        counts[n] = {
            g: float(c) if g[0] == BOS else float(cont.get(g, c)) for g, c in raw[n].items()
        }

    vocab = sorted({g[0] for g in counts[1]} | {EOS, UNK_WORD})
    prob: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    backoff: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]

    # Unigrams, interpolated with the uniform distribution.
    total = sum(counts[1].values())
    types = len(counts[1])
    for w in vocab:
        c = counts[1].get((w,), 0.0)
        prob[1][(w,)] = max(c - discount, 0.0) / total + discount * types / total / len(vocab)
    prob[1][(BOS,)] = 0.0

    for n in range(2, order + 1):
        hist_total: dict[tuple[str, ...], float] = defaultdict(float)
        hist_types: dict[tuple[str, ...], int] = defaultdict(int)
        for gram, c in counts[n].items():
            hist_total[gram[:-1]] += c
            hist_types[gram[:-1]] += 1
        for h, s in hist_total.items():
            backoff[n - 1][h] = discount * hist_types[h] / s
        for gram, c in counts[n].items():
            h = gram[:-1]
            lower = _prob(prob, backoff, gram[1:])
            prob[n][gram] = max(c - discount, 0.0) / hist_total[h] + backoff[n - 1][h] * lower

    lines = ["", "\\data\\"]
    lines += [f"ngram {n}={len(prob[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(prob[n]):
            p = prob[n][gram]
            logp = -99.0 if p <= 0 else math.log10(p)
            entry = f"{logp:.6f}\t{' '.join(gram)}"
            if n < order:
                bo = backoff[n].get(gram)
                entry += f"\t{math.log10(bo):.6f}" if bo else "\t0"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _prob(
    prob: list[dict[tuple[str, ...], float]],
    backoff: list[dict[tuple[str, ...], float]],
    gram: tuple[str, ...],
) -> float:
    """``p(w | h)`` of the model built so far, backing off through shorter histories."""
    n = len(gram)
    if gram in prob[n]:
        return prob[n][gram]
    if n == 1:
        return prob[1][(UNK_WORD,)]
    return backoff[n - 1].get(gram[:-1], 1.0) * _prob(prob, backoff, gram[1:])


@dataclass(frozen=True)
class DecodingConfig:
    """How a checkpoint decodes (``configs/asr.yaml`` ``decoding:``).

    ``method``: ``beam`` (lexicon + word n-gram LM from the training transcripts) or
    ``greedy``. ``lm_weights`` x ``word_scores`` is the grid tuned on dev at the end of
    training; the winner is stored in the checkpoint's ``decoding.json``. When the best LM
    weight (word score) is at an end of its list, up to ``grid_extensions`` more values are
    tried beyond it, one step of the list's outer spacing each (LM weights stop at 0), until
    a worse value lies on each side; one dev decoding each. A one-value list is used as given.
    """

    method: Literal["beam", "greedy"] = "beam"
    lm_order: int = 4
    beam_size: int = 256
    nbest: int = 16  # hypotheses kept per utterance: their posteriors are the confidence
    beam_threshold: float = 25.0
    lm_weights: tuple[float, ...] = (2.0, 3.0, 4.0)
    word_scores: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    grid_extensions: int = 3

    def __post_init__(self) -> None:
        if self.lm_order < 2:
            raise ConfigError(f"decoding.lm_order must be at least 2, got {self.lm_order}")
        if self.beam_size < 1:
            raise ConfigError(f"decoding.beam_size must be at least 1, got {self.beam_size}")
        if not 1 <= self.nbest <= self.beam_size:
            raise ConfigError(f"decoding.nbest must be in [1, beam_size], got {self.nbest}")
        if not self.lm_weights or not self.word_scores:
            raise ConfigError("decoding.lm_weights and decoding.word_scores need a value each")
        if min(self.lm_weights) < 0:
            raise ConfigError(f"decoding.lm_weights must be >= 0, got {list(self.lm_weights)}")
        if self.grid_extensions < 0:
            raise ConfigError(
                f"decoding.grid_extensions must be at least 0, got {self.grid_extensions}"
            )


def lexicon_lines(words: Iterable[str], vocab: dict[str, int], word_sep: str) -> list[str]:
    """One lexicon line per word that the character vocabulary can spell."""
    out = []
    for w in sorted(set(words)):
        if w and all(ch in vocab for ch in w):
            out.append(f"{w} {' '.join(w)} {word_sep}")
    return out


def write_lm(
    directory: str | Path,
    sentences: Sequence[str],
    vocab: dict[str, int],
    word_sep: str,
    config: DecodingConfig,
) -> dict[str, Any]:
    """Write ``lm.arpa`` and ``lexicon.txt`` built from ``sentences`` (normalised text)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arpa = kneser_ney_arpa(sentences, order=config.lm_order)
    words = [w for s in sentences for w in s.split()]
    lex = lexicon_lines(words, vocab, word_sep)
    with atomic_write(directory / ARPA_FILE) as f:
        f.write(arpa)
    with atomic_write(directory / LEXICON_FILE) as f:
        f.write("\n".join(lex) + "\n")
    return {"sentences": len(sentences), "lexicon_words": len(lex), "order": config.lm_order}


class BeamDecoder:
    """Lexicon + n-gram beam search over one utterance's ``(frames, vocab)`` log-probabilities."""

    def __init__(
        self,
        directory: str | Path,
        vocab: dict[str, int],
        blank: str,
        word_sep: str,
        unk: str,
        *,
        lm_weight: float,
        word_score: float,
        beam_size: int,
        beam_threshold: float,
        nbest: int = 16,
    ) -> None:
        try:
            from torchaudio.models.decoder import ctc_decoder
        except ImportError as exc:  # flashlight-text missing
            raise CheckpointError(
                f"{directory}: beam-search decoding needs flashlight-text "
                "(pip install flashlight-text), or set decoding.method=greedy"
            ) from exc
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        if [vocab[t] for t in tokens] != list(range(len(tokens))):
            raise CheckpointError(f"{directory}: vocabulary ids are not 0..{len(tokens) - 1}")
        self.lm_weight, self.word_score = lm_weight, word_score
        with _native_output_silenced():  # KenLM draws a progress bar on stdout while loading
            self._decoder = ctc_decoder(
                lexicon=str(Path(directory, LEXICON_FILE)),
                tokens=tokens,
                lm=str(Path(directory, ARPA_FILE)),
                nbest=nbest,
                beam_size=beam_size,
                beam_threshold=beam_threshold,
                lm_weight=lm_weight,
                word_score=word_score,
                unk_score=-math.inf,
                sil_score=0.0,
                blank_token=blank,
                sil_token=word_sep,
                unk_word=unk,
            )
        self._tokens = tokens
        self._sil = vocab[word_sep]

    def decode(self, log_probs: np.ndarray) -> BeamResult:
        """The best hypothesis of one utterance ``(frames, vocab)`` and its alternatives."""
        import torch

        if log_probs.shape[0] == 0:
            return BeamResult((), (), (), ((),), (0.0,))
        # One more frame that can only be the word separator: the search must finish the
        # last word to pass it. Without it a hypothesis may end inside a word, which the
        # decoder then leaves out of its words (78 of 200 FSDD digits came back empty).
        end = np.full((1, log_probs.shape[1]), END_FLOOR, dtype=np.float32)
        end[0, self._sil] = 0.0
        frames = np.concatenate([np.asarray(log_probs, dtype=np.float32), end])
        emissions = torch.from_numpy(np.ascontiguousarray(frames))[None]
        hyps = self._decoder(emissions)[0]
        if not hyps:
            return BeamResult((), (), (), ((),), (0.0,))
        best = hyps[0]
        return BeamResult(
            tokens=tuple(int(t) for t in best.tokens),
            timesteps=tuple(int(t) for t in best.timesteps),
            words=tuple(best.words),
            alternatives=tuple(tuple(h.words) for h in hyps),
            scores=tuple(float(h.score) for h in hyps),
        )


@dataclass(frozen=True)
class BeamResult:
    """A beam search's answer: the best path (token ids, the output frame of each, its words)
    and the n-best word sequences with their total scores (acoustic + weighted LM + word
    scores, in nats), best first (``alternatives[0]`` is ``words``)."""

    tokens: tuple[int, ...]
    timesteps: tuple[int, ...]
    words: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]
    scores: tuple[float, ...]


@contextlib.contextmanager
def _native_output_silenced() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null (native code writes there, not to Python's
    streams); errors still arrive as Python exceptions."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def has_lm(directory: str | Path) -> bool:
    return all(Path(directory, f).is_file() for f in LM_FILES)


def make_decoder(rec: Any, directory: str | Path, settings: dict[str, Any]) -> BeamDecoder:
    """A beam decoder for ``rec``'s vocabulary with the LM files in ``directory``."""
    return BeamDecoder(
        directory,
        rec.vocab,
        BLANK,
        WORD_SEP,
        UNK,
        lm_weight=float(settings["lm_weight"]),
        word_score=float(settings["word_score"]),
        beam_size=int(settings.get("beam_size", 256)),
        beam_threshold=float(settings.get("beam_threshold", 25.0)),
        nbest=int(settings.get("nbest", 16)),
    )


def attach_decoder(rec: Any, directory: str | Path, method: str | None = None) -> None:
    """Decode with the checkpoint's LM when it has one and its ``decoding.json`` (or
    ``method``) says ``beam``; otherwise greedily."""
    rec.beam, rec.lm_dir = None, None
    if not has_lm(directory):
        return
    settings = read_decoding(directory)
    rec.lm_dir = Path(directory)
    if (method or settings.get("method", "beam")) == "beam":
        rec.beam = make_decoder(rec, directory, settings)


def read_decoding(directory: str | Path) -> dict[str, Any]:
    return dict(json.loads(Path(directory, DECODING_FILE).read_text()))


def write_decoding(directory: str | Path, settings: dict[str, Any]) -> None:
    write_json(Path(directory, DECODING_FILE), settings)
