"""Language models, lexicon and beam-search CTC decoding, closed and open vocabulary.

Greedy CTC decoding spells each word from the acoustics alone; a small recogniser trained for
minutes gets most characters right and still misspells a word in most sentences ("con cele"
for "cancel"). Beam search over a lexicon with a word n-gram language model (the classic
CTC + LM recipe; here flashlight-text's decoder through ``torchaudio.models.decoder``) only
proposes words it knows and weighs them by context.

The text the LMs learn from is the checkpoint's training transcripts plus any text the user
gives (``decoding.lm_text``: sentences or word lists, e.g. the NLU's training text or a list
of contact and product names; ``training.asr.lmtext``), optionally plus the most frequent
words of general English (``decoding.english_words``, from the ``wordfreq`` package) as
unigrams. Everything lives in the checkpoint folder, so a checkpoint decodes the same way
wherever it is loaded::

    lm.arpa          interpolated Kneser-Ney word n-gram (ARPA), read by KenLM
    lexicon.txt      one line per word: the word, its characters, then the word separator
    char_lm.arpa     character n-gram for the open-vocabulary search (when it was built)
    decoding.json    the method kept, its LM weight and word score (tuned on dev), sizes

Two searches, chosen on dev (``training.asr.tuning``): ``beam`` is limited to the lexicon (a
word outside it comes back as the closest known words); ``open`` is lexicon-free, spelling
with the character LM, so it can output a word that is in no list at all (a new name), at
the cost of misspelling more of the words it knows. Confidence comes from the n-best list
(``confidence.nbest_words``) for both: a word's confidence is the posterior mass of the
hypotheses that agree with it, the utterance's that of the best hypothesis. The entropy of the
acoustic frames is no guide here: the LM corrects most low-entropy misspellings, and what it
gets wrong the acoustics were sure of.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from earmark.core.errors import CheckpointError, ConfigError
from earmark.core.fileio import atomic_write, write_json
from training.asr.ngram import kneser_ney_arpa
from training.asr.tokens import BLANK, UNK, WORD_SEP

ARPA_FILE = "lm.arpa"
LEXICON_FILE = "lexicon.txt"
DECODING_FILE = "decoding.json"
CHAR_ARPA_FILE = "char_lm.arpa"
LM_FILES = (ARPA_FILE, LEXICON_FILE, DECODING_FILE)  # every checkpoint with a beam search
OPTIONAL_LM_FILES = (CHAR_ARPA_FILE,)  # the open-vocabulary search's, when it was built
END_FLOOR = -30.0  # log-probability of every token but the separator on the appended frame
SEARCHES = ("beam", "open")
KENLM_MAX_ORDER = 6  # flashlight-text's KenLM is compiled for n-grams up to this order  # lexicon + word LM; lexicon-free + character LM


@dataclass(frozen=True)
class DecodingConfig:
    """How a checkpoint decodes (``configs/asr.yaml`` ``decoding:``).

    ``method``: ``beam`` (beam search with the LMs, tuned on dev) or ``greedy``. The LMs
    learn from the training transcripts plus ``lm_text`` (files of sentences or words, one a
    line) plus, when ``english_words`` > 0, that many of the most frequent English words (the
    ``wordfreq`` package, the ``words`` extra) sharing ``english_words_mass`` of the unigram
    probability. With ``open_vocabulary`` the lexicon-free search over a character LM of
    order ``char_lm_order`` is tuned too (``open_lm_weights`` x ``open_word_scores``), and
    whichever of greedy, ``beam`` and ``open`` has the lowest dev WER is kept.

    ``lm_weights`` x ``word_scores`` is the lexicon search's grid. When the best value of a
    list is at one of its ends, up to ``grid_extensions`` more values are tried beyond it, one
    step of the list's outer spacing each (LM weights stop at 0), until a worse value lies on
    each side; one dev decoding each. A one-value list is used as given.
    """

    method: Literal["beam", "greedy"] = "beam"
    lm_order: int = 4
    beam_size: int = 256
    nbest: int = 16  # hypotheses kept per utterance: their posteriors are the confidence
    beam_threshold: float = 25.0
    lm_weights: tuple[float, ...] = (2.0, 3.0, 4.0)
    word_scores: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    grid_extensions: int = 3
    lm_text: tuple[str, ...] = ()
    english_words: int = 0
    english_words_mass: float = 0.05
    open_vocabulary: bool = False
    char_lm_order: int = 6
    open_lm_weights: tuple[float, ...] = (0.5, 1.0, 1.5)
    open_word_scores: tuple[float, ...] = (0.0, 1.0, 2.0)
    open_beam_size: int = 64  # the lexicon-free search expands every token at every frame

    def __post_init__(self) -> None:
        if not (
            2 <= self.lm_order <= KENLM_MAX_ORDER and 2 <= self.char_lm_order <= KENLM_MAX_ORDER
        ):
            raise ConfigError(
                f"decoding.lm_order and decoding.char_lm_order must be in [2, {KENLM_MAX_ORDER}] "
                f"(the orders KenLM is built for in flashlight-text), got {self.lm_order} and "
                f"{self.char_lm_order}"
            )
        if self.beam_size < 1:
            raise ConfigError(f"decoding.beam_size must be at least 1, got {self.beam_size}")
        if not 1 <= self.nbest <= min(self.beam_size, self.open_beam_size):
            raise ConfigError(
                f"decoding.nbest must be in [1, beam_size] and at most open_beam_size, got "
                f"{self.nbest}"
            )
        for name in ("lm_weights", "word_scores", "open_lm_weights", "open_word_scores"):
            if not getattr(self, name):
                raise ConfigError(f"decoding.{name} needs a value")
        for name in ("lm_weights", "open_lm_weights"):
            if min(getattr(self, name)) < 0:
                raise ConfigError(f"decoding.{name} must be >= 0, got {list(getattr(self, name))}")
        if self.grid_extensions < 0:
            raise ConfigError(
                f"decoding.grid_extensions must be at least 0, got {self.grid_extensions}"
            )
        if self.english_words < 0 or not 0.0 <= self.english_words_mass < 1.0:
            raise ConfigError(
                "decoding.english_words must be >= 0 and decoding.english_words_mass in [0, 1), "
                f"got {self.english_words} and {self.english_words_mass}"
            )


Speller = Callable[[str], "list[str] | None"]  # a word -> the tokens spelling it, or None


def char_speller(vocab: dict[str, int]) -> Speller:
    """Spell with characters: None for a word with a character the vocabulary lacks."""
    return lambda word: list(word) if word and all(ch in vocab for ch in word) else None


def lexicon_lines(words: Iterable[str], spell: Speller, word_sep: str) -> list[str]:
    """One lexicon line per word the model's tokens can spell: the word, its tokens, ``|``."""
    out = []
    for w in sorted(set(words)):
        if w and (tokens := spell(w)):
            out.append(f"{w} {' '.join(tokens)} {word_sep}")
    return out


def spelled(sentence: str, spell: Speller, word_sep: str) -> str:
    """``"play music"`` as the token LM reads it: ``"p l a y | m u s i c |"`` with characters
    (``"pl ay | mus ic |"`` with units); words that cannot be spelled dropped, every word
    ending with the separator, as a decoded path does."""
    return " ".join(
        f"{' '.join(tokens)} {word_sep}" for w in sentence.split() if (tokens := spell(w))
    )


def write_lm(
    directory: str | Path,
    sentences: Sequence[str],
    vocab: dict[str, int],
    word_sep: str,
    config: DecodingConfig,
    extra_words: Mapping[str, float] | None = None,
    spell: Speller | None = None,
) -> dict[str, Any]:
    """Write ``lm.arpa`` and ``lexicon.txt`` built from ``sentences`` (normalised text) and
    ``extra_words`` (word -> frequency: unigrams with ``config.english_words_mass``), and
    ``char_lm.arpa`` when ``config.open_vocabulary``; a stale character LM is removed.
    ``spell``: how the model spells a word (``Recogniser.spell``; default: characters)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spell = spell or char_speller(vocab)
    extra = {w: f for w, f in (extra_words or {}).items() if spell(w)}
    arpa = kneser_ney_arpa(
        sentences,
        order=config.lm_order,
        extra_unigrams=extra,
        extra_mass=config.english_words_mass if extra else 0.0,
    )
    lex = lexicon_lines([*(w for s in sentences for w in s.split()), *extra], spell, word_sep)
    with atomic_write(directory / ARPA_FILE) as f:
        f.write(arpa)
    with atomic_write(directory / LEXICON_FILE) as f:
        f.write("\n".join(lex) + "\n")
    info = {
        "sentences": len(sentences),
        "lexicon_words": len(lex),
        "extra_words": len(extra),
        "order": config.lm_order,
    }
    if config.open_vocabulary:
        chars = kneser_ney_arpa(
            (spelled(s, spell, word_sep) for s in sentences), order=config.char_lm_order
        )
        with atomic_write(directory / CHAR_ARPA_FILE) as f:
            f.write(chars)
        info["char_order"] = config.char_lm_order
    else:
        (directory / CHAR_ARPA_FILE).unlink(missing_ok=True)
    return info


class BeamDecoder:
    """Beam search over one utterance's ``(frames, vocab)`` log-probabilities: over the lexicon
    with the word LM (``lexicon_free=False``), or spelling freely with the character LM, where
    ``word_score`` is the bonus for each word finished (flashlight's silence score)."""

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
        lexicon_free: bool = False,
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
        lm = Path(directory, CHAR_ARPA_FILE if lexicon_free else ARPA_FILE)
        if not lm.is_file():
            raise CheckpointError(
                f"{directory}: no {lm.name} for the {'open' if lexicon_free else 'beam'} search"
            )
        self.lm_weight, self.word_score, self.lexicon_free = lm_weight, word_score, lexicon_free
        with _native_output_silenced():  # KenLM draws a progress bar on stdout while loading
            self._decoder = ctc_decoder(
                lexicon=None if lexicon_free else str(Path(directory, LEXICON_FILE)),
                tokens=tokens,
                lm=str(lm),
                nbest=nbest,
                beam_size=beam_size,
                beam_threshold=beam_threshold,
                lm_weight=lm_weight,
                word_score=0.0 if lexicon_free else word_score,
                unk_score=-math.inf,
                sil_score=word_score if lexicon_free else 0.0,
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
        words = [
            self._spelled_words(h.tokens) if self.lexicon_free else tuple(h.words) for h in hyps
        ]
        best = hyps[0]
        return BeamResult(
            tokens=tuple(int(t) for t in best.tokens),
            timesteps=tuple(int(t) for t in best.timesteps),
            words=words[0],
            alternatives=tuple(words),
            scores=tuple(float(h.score) for h in hyps),
        )

    def _spelled_words(self, token_ids: Iterable[Any]) -> tuple[str, ...]:
        """The words a lexicon-free path spells (special tokens such as ``<unk>`` dropped)."""
        chars = []
        for t in token_ids:
            tok = self._tokens[int(t)]
            if int(t) == self._sil:
                chars.append(" ")
            elif not (tok.startswith("<") and tok.endswith(">")):
                chars.append(tok)
        return tuple("".join(chars).split())


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
    """A decoder for ``rec``'s vocabulary with the LM files in ``directory``: the lexicon-free
    search when ``settings["method"]`` is ``open``, else the lexicon search."""
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
        lexicon_free=settings.get("method") == "open",
    )


def search_settings(directory: str | Path, settings: dict[str, Any], method: str) -> dict[str, Any]:
    """The tuned settings of search ``method`` (``beam`` or ``open``) in ``decoding.json``:
    the kept method's own, or the best of that search on dev (``searches``)."""
    if settings.get("method") == method and "lm_weight" in settings:
        return settings
    tuned = settings.get("searches", {}).get(method)
    if tuned is None:
        have = sorted(settings.get("searches", {})) or ["greedy"]
        raise CheckpointError(
            f"{directory}: no tuned {method!r} search in {DECODING_FILE} (has: {', '.join(have)})"
        )
    return {**tuned, "method": method}


def attach_decoder(rec: Any, directory: str | Path, method: str | None = None) -> None:
    """Decode as the checkpoint's ``decoding.json`` says (or with search ``method``: ``beam``,
    ``open`` or ``greedy``) when it has LM files; otherwise greedily."""
    rec.beam, rec.lm_dir = None, None
    if not has_lm(directory):
        return
    settings = read_decoding(directory)
    rec.lm_dir = Path(directory)
    method = method or settings.get("method", "beam")
    if method in SEARCHES:
        rec.beam = make_decoder(rec, directory, search_settings(directory, settings, method))


def read_decoding(directory: str | Path) -> dict[str, Any]:
    return dict(json.loads(Path(directory, DECODING_FILE).read_text()))


def write_decoding(directory: str | Path, settings: dict[str, Any]) -> None:
    write_json(Path(directory, DECODING_FILE), settings)
