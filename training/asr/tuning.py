"""Measured on dev: the WER that picks the best weights while training, and after training
the decoding settings (greedy, or beam search with the LM weight and word score tuned) and the
confidence temperature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from earmark.core.text import normalize
from earmark.core.wer import align_words, corpus_rates, score_utterance
from training.asr.confidence import fit_temperature, search_grid
from training.asr.config import ASRConfig
from training.asr.data import bucket_batches
from training.asr.features import Example
from training.asr.lm import (
    LM_FILES,
    DecodingConfig,
    attach_decoder,
    make_decoder,
    write_decoding,
    write_lm,
)
from training.asr.model import Recogniser
from training.asr.tokens import WORD_SEP
from training.asr.transcribe import batch_log_probs, decode
from training.result import Log


def dev_log_probs(
    rec: Recogniser, examples: list[Example], device: torch.device, max_frames: int
) -> list[np.ndarray]:
    """Log-probabilities of every dev utterance, in order (model in eval mode)."""
    rec.model.eval()
    out: list[np.ndarray] = [np.empty(0)] * len(examples)
    lengths = [ex.length for ex in examples]
    for idx in bucket_batches(lengths, max_frames=max_frames, max_batch=64):
        for i, lp in zip(
            idx, batch_log_probs(rec, [examples[i] for i in idx], device), strict=True
        ):
            out[i] = lp
    rec.model.train()
    return out


def evaluate_dev(
    rec: Recogniser, examples: list[Example], device: torch.device, max_frames: int
) -> dict[str, float]:
    """WER/CER/SER on dev with ``rec``'s decoder (greedy while training)."""
    return dev_rates_of(rec, examples, dev_log_probs(rec, examples, device, max_frames))


def dev_rates_of(
    rec: Recogniser, examples: list[Example], log_probs: list[np.ndarray]
) -> dict[str, float]:
    """WER/CER/SER of ``rec``'s decoder (greedy or beam) on precomputed dev log-probabilities."""
    scores = [
        score_utterance(ex.text or "", " ".join(w.word for w in decode(rec, lp)))
        for ex, lp in zip(examples, log_probs, strict=True)
    ]
    return corpus_rates(scores)


def choose_decoding(
    rec: Recogniser,
    out: Path,
    transcripts: list[str],
    dev: list[Example],
    dev_lp: list[np.ndarray],
    dc: DecodingConfig,
    log: Log,
) -> dict[str, Any]:
    """The checkpoint's decoding: beam search tuned on dev (``tune_decoding``) when the config
    asks for it, else greedy; either way attached to ``rec`` and its settings returned."""
    if dc.method == "beam":
        return tune_decoding(rec, out, transcripts, dev, dev_lp, dc, log)
    for name in LM_FILES:  # a stale LM from an earlier run in this folder must not load
        (out / name).unlink(missing_ok=True)
    rec.beam, rec.lm_dir = None, None
    return {"method": "greedy"}


def beam_settings(dc: DecodingConfig, lm_weight: float, word_score: float) -> dict[str, Any]:
    """The beam decoder's settings at one point of the grid."""
    return {
        "method": "beam",
        "lm_weight": lm_weight,
        "word_score": word_score,
        "beam_size": dc.beam_size,
        "beam_threshold": dc.beam_threshold,
        "nbest": dc.nbest,
    }


class BeamWERs:
    """Dev WER of beam decoding per (LM weight, word score), each pair decoded once."""

    def __init__(
        self,
        rec: Recogniser,
        lm_dir: Path,
        dev: list[Example],
        dev_lp: list[np.ndarray],
        dc: DecodingConfig,
    ) -> None:
        self.rec, self.lm_dir, self.dev, self.dev_lp, self.dc = rec, lm_dir, dev, dev_lp, dc
        self.wers: dict[tuple[float, float], float] = {}

    def __call__(self, lm_weight: float, word_score: float) -> float:
        key = (float(lm_weight), float(word_score))
        if key not in self.wers:
            self.rec.beam = make_decoder(self.rec, self.lm_dir, beam_settings(self.dc, *key))
            self.wers[key] = dev_rates_of(self.rec, self.dev, self.dev_lp)["wer"]
        return self.wers[key]

    def best(self) -> tuple[float, float]:
        """The pair with the lowest WER so far (ties: the pair decoded first)."""
        return min(self.wers, key=self.wers.__getitem__)


def search_decoding(wer: BeamWERs, dc: DecodingConfig, log: Log) -> None:
    """Decode the grid ``dc.lm_weights`` x ``dc.word_scores``; then search the LM weight along
    its axis at the best word score, and the word score along its axis at the best LM weight
    (``search_grid``: past an edge that wins, ``dc.grid_extensions`` values at most each)."""
    for lm_weight in dc.lm_weights:
        for word_score in dc.word_scores:
            wer(lm_weight, word_score)
    _, ws = wer.best()
    lm_axis = search_grid(
        lambda v: wer(v, ws),
        dc.lm_weights,
        lower=0.0,
        max_extensions=dc.grid_extensions,
        known={k[0]: w for k, w in wer.wers.items() if k[1] == ws},
    )
    lw = lm_axis.best
    ws_axis = search_grid(
        lambda v: wer(lw, v),
        dc.word_scores,
        max_extensions=dc.grid_extensions,
        known={k[1]: w for k, w in wer.wers.items() if k[0] == lw},
    )
    for note in (lm_axis.describe("LM weight"), ws_axis.describe("word score")):
        if note:
            log(f"decoding: {note}")


def tune_decoding(
    rec: Recogniser,
    out: Path,
    transcripts: list[str],
    dev: list[Example],
    dev_lp: list[np.ndarray],
    dc: DecodingConfig,
    log: Log,
) -> dict[str, Any]:
    """Build the lexicon + n-gram LM from the training transcripts into ``out`` and pick the
    LM weight and word score with the lowest dev WER (``search_decoding``, one dev decoding per
    new pair); greedy stays when it beats them all."""
    info = write_lm(out, transcripts, rec.vocab, WORD_SEP, dc)
    rec.beam, rec.lm_dir = None, out
    greedy = dev_rates_of(rec, dev, dev_lp)["wer"]
    wer = BeamWERs(rec, out, dev, dev_lp, dc)
    search_decoding(wer, dc, log)
    best: dict[str, Any] = {"method": "greedy", "dev_wer": greedy}
    lw, ws = wer.best()
    if wer.wers[(lw, ws)] < greedy:
        best = {**beam_settings(dc, lw, ws), "dev_wer": wer.wers[(lw, ws)]}
    grid = {f"{k[0]:g}/{k[1]:g}": w for k, w in wer.wers.items()}
    settings = {**best, **info, "dev_wer_greedy": greedy, "grid_dev_wer": grid}
    write_decoding(out, settings)
    attach_decoder(rec, out)
    chosen = (
        f" (LM weight {best['lm_weight']:g}, word score {best['word_score']:g})"
        if best["method"] == "beam"
        else ""
    )
    log(
        f"decoding: {best['method']}{chosen}, dev WER {best['dev_wer']:.4f} (greedy "
        f"{greedy:.4f}) over {len(wer.wers)} settings; {info['order']}-gram LM and lexicon of "
        f"{info['lexicon_words']} words from {info['sentences']} transcripts"
    )
    return settings


def fit_dev_temperature(
    rec: Recogniser,
    examples: list[Example],
    log_probs: list[np.ndarray],
    cfg: ASRConfig,
    log: Log | None = None,
) -> tuple[float, dict[float, float]]:
    """Fit the confidence temperature on dev: word confidences of the checkpoint's decoder
    (greedy or beam) vs word correctness (``log`` hears when the search leaves the grid)."""
    correct = []
    beams = []
    for ex, lp in zip(examples, log_probs, strict=True):
        if rec.beam is not None:
            beams.append(rec.beam.decode(lp))
            hyp = list(beams[-1].words)
        else:
            hyp = [w.word for w in decode(rec, lp)]
        correct.append(align_words(normalize(ex.text or "").split(), hyp)[1])
    return fit_temperature(
        log_probs,
        correct,
        rec.id_to_token,
        rec.blank_id,
        WORD_SEP,
        word_agg=cfg.confidence.word_aggregation,
        beams=beams if rec.beam is not None else None,
        log=log,
    )
