"""Transcription: batched, sorted by length, streaming with flat memory.

Rows are read in chunks (``chunk_size``); each chunk is featurised, sorted by length, run in
batches and emitted in input order, so memory depends on the chunk, not on the manifest.
Each prediction is an ``earmark.core.predictions.ASRHypothesis``; as a JSONL line::

    {"id": ..., "text": "<hypothesis>", "confidence": 0.93, "model_version": "...",
     "words": [{"word": "play", "confidence": 0.97, "start": 0.12, "end": 0.40}, ...]}
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from earmark.core.errors import AudioError, CheckpointError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis, ASRWord
from training.asr.confidence import Word, greedy_words, nbest_words, utterance_confidence
from training.asr.data import bucket_batches, collate
from training.asr.features import Example, load_example
from training.asr.lm import attach_decoder, has_lm
from training.asr.model import Recogniser, load_recogniser
from training.asr.tokens import WORD_SEP
from training.checkpoint import META_FILE, read_meta, write_meta

BadAudio = Callable[
    [ManifestRow, AudioError], None
]  # what to do with a row whose audio is unreadable

# Padded input frames per inference batch: 32 utterances of 3 s of log-mel (10 ms frames).
MAX_FRAMES = 9600


def _release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and tensors of varying
    sizes fragment the heap so that RSS creeps up over a long manifest)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def batch_log_probs(
    rec: Recogniser, examples: Sequence[Example], device: torch.device
) -> list[np.ndarray]:
    """Run one batch; per utterance its ``(out_frames, vocab)`` log-probabilities (padding cut)."""
    batch = collate(examples)
    inputs = {
        rec.input_name: batch["features"].to(device),
        "attention_mask": batch["attention_mask"].to(device),
    }
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = rec.model(**inputs).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
    out_lengths = rec.output_lengths(batch["lengths"]).clamp(max=log_probs.shape[1])
    return [log_probs[b, : int(n)].numpy() for b, n in enumerate(out_lengths)]


def decode_utterance(
    rec: Recogniser, log_probs: np.ndarray, word_agg: str = "min"
) -> tuple[list[Word], float]:
    """Words with confidence and the utterance's confidence: beam search with the checkpoint's
    LM (n-best posteriors) when it has one, else greedy (frame entropy)."""
    if rec.beam is not None:
        result = rec.beam.decode(log_probs)
        return nbest_words(
            result,
            rec.id_to_token,
            WORD_SEP,
            temperature=rec.temperature,
            n_frames=log_probs.shape[0],
        )
    words = greedy_words(
        log_probs,
        rec.id_to_token,
        rec.blank_id,
        WORD_SEP,
        temperature=rec.temperature,
        word_agg=word_agg,
    )
    return words, utterance_confidence(words, log_probs, rec.temperature)


def decode(rec: Recogniser, log_probs: np.ndarray, word_agg: str = "min") -> list[Word]:
    """The hypothesis words with confidence (see ``decode_utterance``)."""
    return decode_utterance(rec, log_probs, word_agg)[0]


def prediction(
    rec: Recogniser, example: Example, log_probs: np.ndarray, model_version: str
) -> ASRHypothesis:
    """The hypothesis of one utterance; word times in seconds from the decoded CTC path.
    Confidences are rounded to 6 decimals and times to 3, as the predictions files hold them."""
    words, confidence = decode_utterance(rec, log_probs)
    pad = float(getattr(rec.feature_extractor, "edge_pad_seconds", None) or 0.0)
    frame_s = (example.seconds + 2 * pad) / max(1, log_probs.shape[0])

    def at(frame: int) -> float:  # seconds into the recording (padding before it removed)
        return round(min(max(0.0, frame * frame_s - pad), example.seconds), 3)

    return ASRHypothesis(
        id=example.id,
        text=" ".join(w.word for w in words),
        confidence=round(confidence, 6),
        model_version=model_version,
        words=tuple(
            ASRWord(
                word=w.word,
                confidence=round(w.confidence, 6),
                start=at(w.start_frame),
                end=at(w.end_frame),
            )
            for w in words
        ),
    )


def model_version_of(checkpoint_dir: str | Path) -> str:
    if Path(checkpoint_dir, META_FILE).is_file():
        return read_meta(checkpoint_dir).model_version
    return Path(checkpoint_dir).name


def load_for_inference(
    checkpoint_dir: str | Path, device: torch.device, decoding: str | None = None
) -> Recogniser:
    """The checkpoint ready to transcribe; ``decoding`` (``beam``, ``open`` or ``greedy``)
    overrides the method in its ``decoding.json`` (the searches need the checkpoint's LMs)."""
    if Path(checkpoint_dir, META_FILE).is_file():
        read_meta(checkpoint_dir, kind="asr")
    elif Path(checkpoint_dir).exists() and not Path(checkpoint_dir, "config.json").is_file():
        raise CheckpointError(f"{checkpoint_dir}: not an ASR checkpoint folder")
    rec = load_recogniser(checkpoint_dir)
    if decoding is not None:
        if decoding not in ("beam", "open", "greedy"):
            raise CheckpointError(f"unknown decoding {decoding!r}: use beam, open or greedy")
        if decoding != "greedy" and not has_lm(checkpoint_dir):
            raise CheckpointError(
                f"{checkpoint_dir}: has no language model for beam search "
                "(lm.arpa, lexicon.txt, decoding.json); use greedy decoding"
            )
        attach_decoder(rec, checkpoint_dir, decoding)
    rec.model.to(device).eval()
    return rec


def transcribe_with(
    rec: Recogniser,
    rows: Iterable[ManifestRow],
    *,
    model_version: str,
    batch_size: int = 32,
    max_frames: int = MAX_FRAMES,
    chunk_size: int = 128,
    device: torch.device | None = None,
    on_bad_audio: BadAudio | None = None,
) -> Iterator[ASRHypothesis]:
    """Hypotheses for ``rows`` in input order with an already loaded recogniser.

    Rows are read ``chunk_size`` at a time and batched by length: at most ``batch_size``
    utterances and ``max_frames`` padded input frames a batch, so peak memory is set by
    ``max_frames``, not by the longest utterances a manifest happens to hold. A row whose
    audio cannot be read raises its ``AudioError``; with ``on_bad_audio`` it is handed to that
    callback instead and skipped (no prediction for it), and the rest go on.
    """
    device = device or next(rec.model.parameters()).device
    it = iter(rows)
    while chunk := list(itertools.islice(it, chunk_size)):
        chunk, examples = _load_chunk(rec, chunk, on_bad_audio)
        results: dict[int, ASRHypothesis] = {}
        lengths = [ex.length for ex in examples]
        for idx in bucket_batches(lengths, max_frames=max_frames, max_batch=batch_size):
            batch = [examples[i] for i in idx]
            for i, ex, lp in zip(idx, batch, batch_log_probs(rec, batch, device), strict=True):
                results[i] = prediction(rec, ex, lp, model_version)
        del examples
        _release_freed_memory()
        for i in range(len(chunk)):
            yield results[i]


def _load_chunk(
    rec: Recogniser, chunk: list[ManifestRow], on_bad_audio: BadAudio | None
) -> tuple[list[ManifestRow], list[Example]]:
    """The rows whose audio could be read, and their features."""
    kept, examples = [], []
    for row in chunk:
        try:
            examples.append(load_example(row, rec.feature_extractor, rec.encode)[0])
        except AudioError as exc:
            if on_bad_audio is None:
                raise
            on_bad_audio(row, exc)
            continue
        kept.append(row)
    return kept, examples


def transcribe(
    checkpoint_dir: str | Path,
    rows: Iterable[ManifestRow],
    *,
    batch_size: int = 32,
    device: str | None = None,
    decoding: str | None = None,
    chunk_size: int = 128,
) -> Iterator[ASRHypothesis]:
    """Stream one hypothesis per row, in order (see the module docstring). Rows are read and
    batched ``chunk_size`` at a time (``transcribe_with``).

    ``checkpoint_dir`` is an earmark ASR checkpoint (or any HF CTC folder with a tokenizer).
    Memory stays flat however many rows there are; ``device`` defaults to CUDA when present.
    """
    dev = pick_device(device)
    rec = load_for_inference(checkpoint_dir, dev, decoding)
    yield from transcribe_with(
        rec,
        rows,
        model_version=model_version_of(checkpoint_dir),
        batch_size=batch_size,
        chunk_size=chunk_size,
        device=dev,
    )


class ASRModel:
    """The ASR behind the one model contract (``training.model.Model``) the loop drives."""

    kind = "asr"

    def __init__(self, checkpoint_dir: str | Path, *, device: str | None = None) -> None:
        self.source = Path(checkpoint_dir)
        self.device = pick_device(device)
        self.recogniser = load_for_inference(checkpoint_dir, self.device)
        self.model_version = model_version_of(checkpoint_dir)

    def predict(
        self, rows: Iterable[ManifestRow], *, on_bad_audio: BadAudio | None = None
    ) -> Iterator[ASRHypothesis]:
        """One hypothesis per row, in order (see the module docstring); rows
        with unreadable audio go to ``on_bad_audio`` when given (see ``transcribe_with``)."""
        return transcribe_with(
            self.recogniser,
            rows,
            model_version=self.model_version,
            device=self.device,
            on_bad_audio=on_bad_audio,
        )

    def save(self, directory: str | Path) -> None:
        """Write the HF folder, the temperature and (if the source had one) ``earmark.json``."""
        self.recogniser.save(directory)
        if (self.source / META_FILE).is_file():
            write_meta(directory, read_meta(self.source))
