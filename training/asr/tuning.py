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
    OPTIONAL_LM_FILES,
    DecodingConfig,
    attach_decoder,
    make_decoder,
    write_decoding,
    write_lm,
)
from training.asr.lmtext import english_words, read_lm_text
from training.asr.model import Recogniser
from training.asr.tokens import WORD_SEP
from training.asr.transcribe import batch_log_probs, decode
from training.result import Log


def dev_log_probs(
    rec: Recogniser, examples: list[Example], device: torch.device, max_frames: int
) -> list[np.ndarray]:
    """Log-probabilities of every dev utterance, in order (in eval mode; each module's mode,
    frozen ones' included, is restored after)."""
    modes = [(m, m.training) for m in rec.model.modules()]
    rec.model.eval()
    out: list[np.ndarray] = [np.empty(0)] * len(examples)
    lengths = [ex.length for ex in examples]
    for idx in bucket_batches(lengths, max_frames=max_frames, max_batch=64):
        for i, lp in zip(
            idx, batch_log_probs(rec, [examples[i] for i in idx], device), strict=True
        ):
            out[i] = lp
    for module, training in modes:
        module.train(training)
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
    for name in (*LM_FILES, *OPTIONAL_LM_FILES):  # a stale LM in this folder must not load
        (out / name).unlink(missing_ok=True)
    rec.beam, rec.lm_dir = None, None
    return {"method": "greedy"}


def beam_settings(
    dc: DecodingConfig, lm_weight: float, word_score: float, method: str = "beam"
) -> dict[str, Any]:
    """A search's settings (``beam`` or ``open``) at one point of its grid."""
    return {
        "method": method,
        "lm_weight": lm_weight,
        "word_score": word_score,
        "beam_size": dc.open_beam_size if method == "open" else dc.beam_size,
        "beam_threshold": dc.beam_threshold,
        "nbest": dc.nbest,
    }


class BeamWERs:
    """Dev WER of one search (``beam`` or ``open``) per (LM weight, word score), each pair
    decoded once."""

    def __init__(
        self,
        rec: Recogniser,
        lm_dir: Path,
        dev: list[Example],
        dev_lp: list[np.ndarray],
        dc: DecodingConfig,
        method: str = "beam",
    ) -> None:
        self.rec, self.lm_dir, self.dev, self.dev_lp, self.dc = rec, lm_dir, dev, dev_lp, dc
        self.method = method
        self.wers: dict[tuple[float, float], float] = {}

    def __call__(self, lm_weight: float, word_score: float) -> float:
        key = (float(lm_weight), float(word_score))
        if key not in self.wers:
            settings = beam_settings(self.dc, *key, method=self.method)
            self.rec.beam = make_decoder(self.rec, self.lm_dir, settings)
            self.wers[key] = dev_rates_of(self.rec, self.dev, self.dev_lp)["wer"]
        return self.wers[key]

    def best(self) -> tuple[float, float]:
        """The pair with the lowest WER so far (ties: the pair decoded first)."""
        return min(self.wers, key=self.wers.__getitem__)

    def best_settings(self) -> dict[str, Any]:
        """The best pair's settings with its dev WER and the whole grid decoded."""
        lw, ws = self.best()
        grid = {f"{k[0]:g}/{k[1]:g}": w for k, w in self.wers.items()}
        return {
            **beam_settings(self.dc, lw, ws, self.method),
            "dev_wer": self.wers[(lw, ws)],
            "grid_dev_wer": grid,
        }


def search_decoding(
    wer: BeamWERs,
    lm_weights: tuple[float, ...],
    word_scores: tuple[float, ...],
    max_extensions: int,
    log: Log,
) -> None:
    """Decode the grid ``lm_weights`` x ``word_scores``; then search the LM weight along its
    axis at the best word score, and the word score along its axis at the best LM weight
    (``search_grid``: past an edge that wins, ``max_extensions`` values at most each)."""
    for lm_weight in lm_weights:
        for word_score in word_scores:
            wer(lm_weight, word_score)
    _, ws = wer.best()
    lm_axis = search_grid(
        lambda v: wer(v, ws),
        lm_weights,
        lower=0.0,
        max_extensions=max_extensions,
        known={k[0]: w for k, w in wer.wers.items() if k[1] == ws},
    )
    lw = lm_axis.best
    ws_axis = search_grid(
        lambda v: wer(lw, v),
        word_scores,
        max_extensions=max_extensions,
        known={k[1]: w for k, w in wer.wers.items() if k[0] == lw},
    )
    for note in (lm_axis.describe("LM weight"), ws_axis.describe("word score")):
        if note:
            log(f"decoding ({wer.method}): {note}")


def lm_sentences(transcripts: list[str], dc: DecodingConfig) -> list[str]:
    """What the LMs learn from: the training transcripts, then ``dc.lm_text``'s lines."""
    return [*transcripts, *read_lm_text(dc.lm_text)]


def tune_decoding(
    rec: Recogniser,
    out: Path,
    transcripts: list[str],
    dev: list[Example],
    dev_lp: list[np.ndarray],
    dc: DecodingConfig,
    log: Log,
) -> dict[str, Any]:
    """Build the lexicon and LMs from the transcripts and ``dc``'s extra text into ``out`` and
    tune each search on dev (``search_decoding``: the lexicon search; with
    ``dc.open_vocabulary`` the lexicon-free one too); the lowest dev WER of greedy and the
    searches is kept (``kept_decoding``), and every search's best settings are stored
    (``searches``), so that ``--decoding beam|open`` can pick one later."""
    sentences = lm_sentences(transcripts, dc)
    extra = english_words(dc.english_words)
    info = write_lm(out, sentences, rec.vocab, WORD_SEP, dc, extra, spell=rec.spell)
    info["lm_text"] = list(dc.lm_text)
    rec.beam, rec.lm_dir = None, out
    greedy = dev_rates_of(rec, dev, dev_lp)["wer"]
    grids = {"beam": (dc.lm_weights, dc.word_scores)}
    if dc.open_vocabulary:
        grids["open"] = (dc.open_lm_weights, dc.open_word_scores)
    searches = {}
    for method, (lm_weights, word_scores) in grids.items():
        wer = BeamWERs(rec, out, dev, dev_lp, dc, method)
        search_decoding(wer, lm_weights, word_scores, dc.grid_extensions, log)
        searches[method] = wer.best_settings()
    best = kept_decoding(greedy, searches)
    settings = {
        **best,
        **info,
        "dev_wer_greedy": greedy,
        "grid_dev_wer": searches["beam"]["grid_dev_wer"],
        "searches": searches,
    }
    write_decoding(out, settings)
    attach_decoder(rec, out)
    log(f"decoding: {describe(settings)}")
    return settings


def kept_decoding(greedy_wer: float, searches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The decoding a checkpoint keeps: the search (``beam``/``open``) with the lowest dev WER,
    unless greedy is strictly better.

    A tie keeps the search: on an easy dev set (FSDD's training speakers, 0.015 both ways)
    greedy spelled "the" for "three" on a new speaker, where the lexicon can only say words it
    knows, and the search's n-best posteriors are the better confidence."""
    winner = min(searches.values(), key=lambda s: float(s["dev_wer"]))
    if winner["dev_wer"] <= greedy_wer:
        return {k: v for k, v in winner.items() if k != "grid_dev_wer"}
    return {"method": "greedy", "dev_wer": greedy_wer}


def describe(settings: dict[str, Any]) -> str:
    """One line: the method kept and its dev WER against greedy and the other search."""
    chosen = settings["method"]
    if chosen in settings["searches"]:
        s = settings["searches"][chosen]
        chosen += f" (LM weight {s['lm_weight']:g}, word score {s['word_score']:g})"
    others = ", ".join(
        f"{m} {s['dev_wer']:.4f}"
        for m, s in settings["searches"].items()
        if m != settings["method"]
    )
    lm = (
        f"{settings['order']}-gram LM and lexicon of {settings['lexicon_words']} words from "
        f"{settings['sentences']} sentences"
    )
    if settings.get("extra_words"):
        lm += f" and {settings['extra_words']} English words"
    if "char_order" in settings:
        lm += f"; {settings['char_order']}-gram character LM"
    return (
        f"{chosen}, dev WER {settings['dev_wer']:.4f} (greedy {settings['dev_wer_greedy']:.4f}"
        f"{', ' + others if others else ''}); {lm}"
    )


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
