"""What the recogniser spells with: characters, or subword units learned from the training text.

A character model must emit one token per letter, so it needs many output frames (the
default 2x subsampling, 50 frames a second: at 4x the built-in corpus's fast voices left
under two frames per character and CTC never left the blank plateau). Subword units (a
unigram language model over word pieces, Kudo 2018, trained with the ``tokenizers`` library
on the training transcripts) shorten the targets to about half, so a coarser frame rate
(4x, 8x) fits them, and every layer above the subsampling runs on a half or a quarter of the
frames.

Either way a word is spelled without crossing word boundaries and words are separated by
``|`` (``WORD_SEP``): ``"play music"`` -> ``pl ay | mus ic``, so the greedy decoder, the
lexicon, the character (here: unit) LM and the word confidences read units just as they
read characters. Every single character is a unit too, so any normalised word can be spelled
and the open-vocabulary search can still output a word in no list.

The unit model is saved in the checkpoint as ``units.json`` (the ``tokenizers`` format) and
the vocabulary in the tokenizer's ``vocab.json``; a checkpoint without ``units.json`` spells
with characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from earmark.core.errors import CheckpointError
from training.asr.tokens import BLANK, UNK, WORD_SEP

UNITS_FILE = "units.json"
# The characters earmark.core.text.normalize can produce besides the space: a-z and apostrophe.
LETTERS = ("'", *"abcdefghijklmnopqrstuvwxyz")


def train_units(texts: Iterable[str], vocab_size: int, kind: str = "bpe") -> Any:
    """A word-piece model of ``vocab_size`` pieces at most (every letter among them) trained
    on the words of ``texts`` (normalised): byte-pair merges (``bpe``, Sennrich et al. 2016)
    or a unigram LM (``unigram``); a ``tokenizers.Tokenizer``. On the built-in corpus's
    transcripts 256 BPE units spell a word in 0.43 of its characters, 256 unigram ones 0.50."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if vocab_size < len(LETTERS) + 1:
        raise CheckpointError(
            f"model.unit_vocab_size must be at least {len(LETTERS) + 1} (every letter is a "
            f"unit), got {vocab_size}"
        )
    trainer: Any
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=list(LETTERS),
            special_tokens=[],
            show_progress=False,
        )
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            initial_alphabet=list(LETTERS),
            special_tokens=[],
            max_piece_length=8,
            show_progress=False,
        )
    else:
        raise CheckpointError(f"unknown subword kind {kind!r}: use bpe or unigram")
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(list(texts), trainer)
    return tokenizer


def unit_vocab(units: Any) -> dict[str, int]:
    """Blank (id 0), unknown, the word separator, then the units in the model's own order."""
    pieces = [p for p, _ in sorted(units.get_vocab().items(), key=lambda kv: kv[1])]
    out = {BLANK: 0, UNK: 1, WORD_SEP: 2}
    for piece in pieces:
        if piece not in out:
            out[piece] = len(out)
    missing = [ch for ch in LETTERS if ch not in out]
    if missing:
        raise CheckpointError(f"unit model lacks the letters {missing}: cannot spell every word")
    return out


def save_units(units: Any, directory: str | Path) -> None:
    units.save(str(Path(directory, UNITS_FILE)))


def load_units(directory: str | Path) -> Any | None:
    """The checkpoint's unit model, or None for a character checkpoint."""
    path = Path(directory, UNITS_FILE)
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise CheckpointError(f"{path}: unreadable unit model: {exc}") from exc


def spell_word(units: Any | None, word: str) -> list[str]:
    """The units of one normalised word: its characters, or the unit model's pieces."""
    if units is None:
        return list(word)
    return list(units.encode(word).tokens)
