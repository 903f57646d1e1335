"""Word-piece tokenizer and the word <-> token <-> BIO alignment.

The NLU works on words of the normalised text (split on single spaces). The tokenizer sees
the words (``is_split_into_words``); each word's first sub-token carries the word's BIO tag
and the other sub-tokens are ignored by the loss (-100). Decoding goes back to words, so a
predicted entity is always a run of whole words of the text it was predicted on.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from earmark.core.records import Entity
from training.nlu.data import Example, entity_words, word_spans
from training.nlu.schema import OUTSIDE, LabelSchema

IGNORE = -100
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 4000) -> Any:
    """A WordPiece tokenizer for ``texts`` (normalised), wrapped for transformers.

    The vocabulary is the special tokens, every character (alone and as a ``##`` suffix
    piece) and the most frequent whole words up to ``vocab_size``: an unseen word falls back
    to its longest known prefix and then characters. It is built here rather than by
    ``WordPieceTrainer``, whose merges depend on hash-map order and so differ from one process
    to the next on the same text (huggingface/tokenizers#1794), and with them the model's
    initialisation: two runs on the same labels must train the same model.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = Counter(w for t in texts for w in t.split())
    chars = sorted({c for w in words for c in w})
    vocab = [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocab += ranked[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def word_tags(example: Example, schema: LabelSchema) -> list[int]:
    """BIO tag index of every word of ``example.text``."""
    index = schema.tag_index()
    tags = [index[OUTSIDE]] * len(word_spans(example.text))
    for ent in example.entities:
        first, stop = entity_words(example.text, ent)
        for i in range(first, stop):
            tags[i] = index[("B-" if i == first else "I-") + ent.type]
    return tags


def encode(
    tokenizer: Any, texts: Sequence[str], *, max_length: int
) -> tuple[dict[str, torch.Tensor], list[list[int | None]]]:
    """Tokenize normalised texts word by word.

    Returns ``(batch, word_ids)``: ``input_ids``/``attention_mask`` of shape ``(B, T)`` and,
    per text, the word index of each token (None for special and padding tokens).
    Words beyond ``max_length`` tokens are cut off (they decode as ``O``).
    """
    words = [t.split() or [""] for t in texts]
    enc = tokenizer(
        words,
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    word_ids = [enc.word_ids(i) for i in range(len(texts))]
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    return batch, word_ids


def first_token_of_words(word_ids: Sequence[int | None]) -> dict[int, int]:
    """``{word index: position of its first sub-token}``."""
    out: dict[int, int] = {}
    for pos, w in enumerate(word_ids):
        if w is not None and w not in out:
            out[w] = pos
    return out


def token_labels(word_ids: Sequence[int | None], tags: Sequence[int], length: int) -> list[int]:
    """Per-token training targets: a word's tag on its first sub-token, -100 elsewhere."""
    labels = [IGNORE] * length
    for w, pos in first_token_of_words(word_ids).items():
        labels[pos] = tags[w]
    return labels


@functools.lru_cache(maxsize=16)
def allowed_transitions(tags: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """BIO constraints: ``(start (K,), step (K, K))`` boolean masks of allowed tags.

    ``I-x`` may only follow ``B-x`` or ``I-x`` and may not start a text.
    """
    k = len(tags)
    start = torch.tensor([not t.startswith("I-") for t in tags])
    step = torch.ones(k, k, dtype=torch.bool)
    for j, t in enumerate(tags):
        if t.startswith("I-"):
            etype = t[2:]
            step[:, j] = torch.tensor([p in (f"B-{etype}", f"I-{etype}") for p in tags])
    return start, step


def viterbi(log_probs: torch.Tensor, start: torch.Tensor, step: torch.Tensor) -> list[int]:
    """Best tag path under the BIO constraints; ``log_probs``: ``(n_words, n_tags)``.

    The path maximises the sum of per-word log-probabilities, so scaling the logits by a
    temperature never changes it (each word's normaliser is the same for every tag). In numpy:
    a few small arrays per word, where torch's per-call overhead made decoding slower than the
    model itself.
    """
    n = log_probs.shape[0]
    if n == 0:
        return []
    lp = log_probs.detach().double().numpy()
    score = np.where(start.numpy(), lp[0], -np.inf)
    moves = np.where(step.numpy(), 0.0, -np.inf)  # (prev, next)
    back = []
    for w in range(1, n):
        cand = score[:, None] + moves
        idx = cand.argmax(0)
        back.append(idx)
        score = cand[idx, np.arange(cand.shape[1])] + lp[w]
    path = [int(score.argmax())]
    for idx in reversed(back):
        path.append(int(idx[path[-1]]))
    return path[::-1]


def decode_words(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """BIO word tags -> ``[(type, first word, last word + 1)]``.

    Lenient: an ``I-x`` after ``O`` or after another type starts a new ``x`` entity.
    """
    spans: list[list[Any]] = []
    current: list[Any] | None = None
    for i, tag in enumerate(tags):
        if tag == OUTSIDE or "-" not in tag:
            current = None
            continue
        prefix, etype = tag.split("-", 1)
        if prefix == "I" and current is not None and current[0] == etype:
            current[2] = i + 1
            continue
        current = [etype, i, i + 1]
        spans.append(current)
    return [(str(t), int(a), int(b)) for t, a, b in spans]


def words_to_entity(text: str, etype: str, first: int, stop: int) -> Entity:
    """The character span of words ``first..stop-1`` of ``text``."""
    spans = word_spans(text)
    return Entity(etype, spans[first][0], spans[stop - 1][1])
