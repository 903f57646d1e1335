"""Training rows and length-bucketed batches: utterances of similar length together, so
little is padding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch

from earmark.core.errors import ManifestError
from earmark.core.manifest import ManifestRow, read_manifest
from earmark.core.text import normalize
from training.asr.features import Example


def labelled_rows(path: str | Path) -> list[ManifestRow]:
    """Rows with a non-empty normalised transcript; the rest cannot train a recogniser."""
    rows = [r for r in read_manifest(path) if r.label is not None and r.label.text is not None]
    rows = [r for r in rows if r.label is not None and normalize(r.label.text or "")]
    if not rows:
        raise ManifestError(f"{path}: no rows with a transcript ('text') to train or evaluate on")
    return rows


def bucket_batches(
    lengths: Sequence[int], *, max_frames: int, max_batch: int, rng: random.Random | None = None
) -> list[list[int]]:
    """Group indices into batches whose padded size (``longest * count``) stays under ``max_frames``.

    Indices are sorted by length (with a little random jitter when ``rng`` is given, so batches
    differ between epochs) and the batch order is shuffled. A single over-long utterance still
    gets a batch of its own.
    """
    if rng is not None:
        keys = [n * (1 + 0.1 * rng.random()) for n in lengths]
    else:
        keys = [float(n) for n in lengths]
    order = sorted(range(len(lengths)), key=lambda i: keys[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and (new_longest * (len(current) + 1) > max_frames or len(current) >= max_batch):
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    """Pad a batch: ``features`` (B, T, F) or (B, T), ``attention_mask`` (B, T), ``lengths`` (B,),
    ``labels`` (sum of label lengths,) concatenated, ``label_lengths`` (B,)."""
    lengths = torch.tensor([ex.length for ex in examples], dtype=torch.long)
    longest = int(lengths.max())
    first = examples[0].features
    feats = torch.zeros((len(examples), longest, *first.shape[1:]), dtype=first.dtype)
    for b, ex in enumerate(examples):
        feats[b, : ex.length] = ex.features
    mask = torch.arange(longest)[None, :] < lengths[:, None]
    labels = torch.tensor([t for ex in examples for t in ex.labels], dtype=torch.long)
    label_lengths = torch.tensor([len(ex.labels) for ex in examples], dtype=torch.long)
    return {
        "features": feats,
        "attention_mask": mask.long(),
        "lengths": lengths,
        "labels": labels,
        "label_lengths": label_lengths,
    }
