"""The recogniser's special tokens, shared by the model and the beam decoder."""

from __future__ import annotations

BLANK = "<pad>"  # the CTC blank
UNK = "<unk>"
WORD_SEP = "|"  # the space between words
