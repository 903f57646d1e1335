"""The ASR training loop, top to bottom.

Checkpoint layout of ``out_dir``::

    out_dir/               the best checkpoint by dev WER: HF folder (model, feature extractor,
                           tokenizer) + confidence.json (fitted temperature) + earmark.json
    out_dir/last/          the latest state for resuming: HF folder + optimizer.pt +
                           trainer_state.json (step, elapsed seconds, best dev WER, epoch)
    out_dir/.last.tmp/     only during a save (and .last.old): see ``save_state``

Features are computed once before training (feature extraction every epoch would cost as
much CPU as the model). Batches are length-bucketed. The learning rate warms up linearly and
decays with a cosine over the budget (``max_minutes`` and/or ``max_steps``, whichever ends
first), so a time-limited run still anneals.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from earmark.config import to_dict
from earmark.errors import CheckpointError, ConfigError, ManifestError
from earmark.fileio import write_json
from earmark.manifest import ManifestRow, manifest_hash, read_manifest
from earmark.text import normalize
from training.asr.confidence import fit_temperature, search_grid
from training.asr.config import ASRConfig, TrainConfig
from training.asr.data import bucket_batches, collate
from training.asr.features import Example, load_examples, load_views, spec_augment
from training.asr.lm import (
    LM_FILES,
    DecodingConfig,
    attach_decoder,
    make_decoder,
    write_decoding,
    write_lm,
)
from training.asr.metrics import align_words, corpus_rates, score_utterance
from training.asr.model import WORD_SEP, Recogniser, build_recogniser, load_recogniser
from training.asr.transcribe import batch_log_probs, decode, pick_device
from training.checkpoint import CheckpointMeta, recover_folder, replace_folder, write_meta

LAST = "last"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()


def labelled_rows(path: str | Path) -> list[ManifestRow]:
    """Rows with a non-empty normalised transcript; the rest cannot train a recogniser."""
    rows = [r for r in read_manifest(path) if r.label is not None and r.label.text is not None]
    rows = [r for r in rows if r.label is not None and normalize(r.label.text or "")]
    if not rows:
        raise ManifestError(f"{path}: no rows with a transcript ('text') to train or evaluate on")
    return rows


def lr_at(progress: float, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr`` then cosine decay to ``lr * final_lr_fraction``; progress in [0, 1]."""
    if progress < cfg.warmup:
        return cfg.lr * max(progress / cfg.warmup, 0.01)
    rest = min(1.0, (progress - cfg.warmup) / max(1e-9, 1 - cfg.warmup))
    low = cfg.lr * cfg.final_lr_fraction
    return low + (cfg.lr - low) * 0.5 * (1 + math.cos(math.pi * rest))


def use_bf16(device: torch.device, precision: str) -> bool:
    """Whether to train under bfloat16 autocast (see ``TrainConfig.precision``)."""
    if precision == "fp32":
        return False
    native = device.type == "cuda" or (
        device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    )
    if precision == "bf16" and not native:
        raise ConfigError(
            f"train.precision=bf16: {device.type} has no native bfloat16 here "
            "(use train.precision=auto or fp32)"
        )
    return native


def ctc_loss(
    rec: Recogniser, batch: dict[str, torch.Tensor], device: torch.device, bf16: bool = False
) -> torch.Tensor:
    """Mean CTC loss per target token over a collated batch (see ``data.collate``); the model
    runs under bfloat16 autocast when ``bf16``, the loss is always fp32."""
    inputs = {
        rec.input_name: batch["features"].to(device),
        "attention_mask": batch["attention_mask"].to(device),
    }
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = rec.model(**inputs).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
    out_lengths = rec.output_lengths(batch["lengths"].to(device)).clamp(max=log_probs.shape[0])
    return F.ctc_loss(
        log_probs,
        batch["labels"].to(device),
        out_lengths,
        batch["label_lengths"].to(device),
        blank=rec.blank_id,
        reduction="mean",
        zero_infinity=True,
    )


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


def tune_decoding(
    rec: Recogniser,
    out: Path,
    transcripts: list[str],
    dev: list[Example],
    dev_lp: list[np.ndarray],
    dc: DecodingConfig,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Build the lexicon + n-gram LM from the training transcripts into ``out`` and pick the
    LM weight and word score with the lowest dev WER; greedy stays when it beats them all.

    The grid ``dc.lm_weights`` x ``dc.word_scores`` is decoded first; then the LM weight is
    searched along its axis at the best word score, and the word score along its axis at the
    best LM weight (``search_grid``: past an edge that wins, ``dc.grid_extensions`` values at
    most each), one dev decoding per new pair."""
    info = write_lm(out, transcripts, rec.vocab, WORD_SEP, dc)
    rec.beam, rec.lm_dir = None, out
    greedy = dev_rates_of(rec, dev, dev_lp)
    wers: dict[tuple[float, float], float] = {}

    def settings_of(lm_weight: float, word_score: float) -> dict[str, Any]:
        return {
            "method": "beam",
            "lm_weight": lm_weight,
            "word_score": word_score,
            "beam_size": dc.beam_size,
            "beam_threshold": dc.beam_threshold,
            "nbest": dc.nbest,
        }

    def dev_wer(lm_weight: float, word_score: float) -> float:
        key = (float(lm_weight), float(word_score))
        if key not in wers:
            rec.beam = make_decoder(rec, out, settings_of(*key))
            wers[key] = dev_rates_of(rec, dev, dev_lp)["wer"]
        return wers[key]

    for lm_weight in dc.lm_weights:
        for word_score in dc.word_scores:
            dev_wer(lm_weight, word_score)
    lw, ws = min(wers, key=wers.__getitem__)
    lm_axis = search_grid(
        lambda v: dev_wer(v, ws),
        dc.lm_weights,
        lower=0.0,
        max_extensions=dc.grid_extensions,
        known={k[0]: w for k, w in wers.items() if k[1] == ws},
    )
    lw = lm_axis.best
    ws_axis = search_grid(
        lambda v: dev_wer(lw, v),
        dc.word_scores,
        max_extensions=dc.grid_extensions,
        known={k[1]: w for k, w in wers.items() if k[0] == lw},
    )
    for note in (lm_axis.describe("LM weight"), ws_axis.describe("word score")):
        if note:
            log(f"decoding: {note}")
    best: dict[str, Any] = {"method": "greedy", "dev_wer": greedy["wer"]}
    lw, ws = min(wers, key=wers.__getitem__)  # ties: the pair decoded first
    if wers[(lw, ws)] < greedy["wer"]:
        best = {**settings_of(lw, ws), "dev_wer": wers[(lw, ws)]}
    grid = {f"{k[0]:g}/{k[1]:g}": w for k, w in wers.items()}
    settings = {**best, **info, "dev_wer_greedy": greedy["wer"], "grid_dev_wer": grid}
    write_decoding(out, settings)
    attach_decoder(rec, out)
    log(
        f"decoding: {best['method']}"
        + (
            f" (LM weight {best['lm_weight']:g}, word score {best['word_score']:g})"
            if rec.beam
            else ""
        )
        + f", dev WER {best['dev_wer']:.4f} (greedy {greedy['wer']:.4f}) over "
        f"{len(wers)} settings; {info['order']}-gram LM and lexicon of "
        f"{info['lexicon_words']} words from {info['sentences']} transcripts"
    )
    return settings


def fit_dev_temperature(
    rec: Recogniser,
    examples: list[Example],
    log_probs: list[np.ndarray],
    cfg: ASRConfig,
    log: Callable[[str], None] | None = None,
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


def save_state(
    rec: Recogniser, optimizer: torch.optim.Optimizer, directory: Path, state: dict[str, Any]
) -> None:
    """Replace ``directory`` (``last/``) with the current weights, optimizer and ``state``,
    whole (``training.checkpoint.replace_folder``): a kill mid-save never leaves a last/
    whose weights, optimizer and step disagree."""

    def write(tmp: Path) -> None:
        rec.save(tmp)
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        write_json(tmp / STATE_FILE, state)

    replace_folder(directory, write, STATE_FILE)


def recover_last(directory: Path, log: Callable[[str], None] = print) -> bool:
    """Whether ``directory`` (``last/``) holds a state to resume from, after putting back a
    save that a kill cut mid-swap (``training.checkpoint.recover_folder``)."""
    return recover_folder(directory, STATE_FILE, log)


def write_checkpoint_meta(
    directory: Path, cfg: ASRConfig, train_hash: str, parent: str | None, metrics: dict, step: int
) -> None:
    version = f"asr-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    write_meta(
        directory,
        CheckpointMeta(
            kind="asr",
            model_version=version,
            config=to_dict(cfg),
            train_manifest_hash=train_hash,
            parent=parent,
            metrics=metrics,
            step=step,
        ),
    )


def train_asr(
    cfg: ASRConfig,
    train_manifest: str | Path,
    dev_manifest: str | Path,
    out_dir: str | Path,
    *,
    init: str | None = None,
    resume: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or resume, or warm-start from ``init``) and return the best checkpoint by dev WER.

    ``on_progress`` receives ``{"fraction", "loss", "audio_s_per_s", "lr", "step"}`` after each
    step (for a progress bar). See the module docstring for the folder layout.
    """
    tc = cfg.train
    if tc.max_minutes <= 0 and tc.max_steps <= 0:
        raise ConfigError("train.max_minutes and train.max_steps are both 0: give a budget")
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    for dtype in (np.float16, np.float32, np.float64):
        np.finfo(dtype)  # cached now: computed after flush-denormal, numpy warns it sees zero
    torch.set_flush_denormal(True)  # denormal floats make CPU matmuls crawl late in training
    device = pick_device(tc.device)
    bf16 = use_bf16(device, tc.precision)
    out = Path(out_dir)
    last = out / LAST
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "best_wer": math.inf, "epoch": 0}
    state.update({"audio_seconds": 0.0, "train_seconds": 0.0, "cpu_seconds": 0.0})

    # 1. The model: resumed, warm-started or fresh.
    parent = init
    if resume:
        if not recover_last(last, log):
            raise CheckpointError(f"{last}: nothing to resume (no {STATE_FILE})")
        rec = load_recogniser(last, for_training=True)
        state.update(json.loads((last / STATE_FILE).read_text()))
        parent = state.get("parent")
        log(f"resuming from {last} at step {state['step']}")
    elif init:
        rec = load_recogniser(init, for_training=True)
    else:
        rec = build_recogniser(cfg.model)
    for note in rec.notes:
        log(note)
    state["parent"] = parent
    rec.model.to(device).train()
    n_params = sum(p.numel() for p in rec.model.parameters())
    log(
        f"model: {type(rec.model).__name__}, {n_params / 1e6:.2f}M parameters, device {device}, "
        f"{'bf16 autocast' if bf16 else 'fp32'}"
    )

    # 2. Data: featurised once, kept in memory.
    train_rows, dev_rows = labelled_rows(train_manifest), labelled_rows(dev_manifest)
    t0 = time.perf_counter()
    speeds = tuple(tc.speed_perturb) or (1.0,)
    views = load_views(train_rows, rec.feature_extractor, rec.encode, speeds)
    dev = load_examples(dev_rows, rec.feature_extractor, rec.encode)
    feature_seconds = time.perf_counter() - t0
    log(
        f"features: {len(views)} train utterances x {len(speeds)} speeds "
        f"({', '.join(f'{s:g}' for s in speeds)}), {len(dev)} dev, in {feature_seconds:.1f}s"
    )

    # 3. Optimiser (restored on resume).
    decay = [p for n, p in rec.model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in rec.model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tc.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tc.lr,
        betas=(0.9, 0.98),
    )
    if resume and (last / OPTIMIZER_FILE).is_file():
        optimizer.load_state_dict(torch.load(last / OPTIMIZER_FILE, map_location=device))

    train_hash = manifest_hash(train_manifest)
    budget_s = tc.max_minutes * 60 if tc.max_minutes > 0 else math.inf

    def budget_used() -> float:
        """Seconds of the budget spent: wall clock, or CPU time per thread."""
        if tc.budget_clock == "cpu":
            return float(state["cpu_seconds"]) / max(1, torch.get_num_threads())
        return float(state["elapsed"])

    def progress() -> float:
        by_time = budget_used() / budget_s if budget_s < math.inf else 0.0
        by_steps = state["step"] / tc.max_steps if tc.max_steps > 0 else 0.0
        return min(1.0, max(by_time, by_steps))

    best_state = None
    if resume and (out / "config.json").is_file():
        best_state = load_recogniser(out, for_training=True).model.state_dict()

    def checkpoint() -> None:
        """Evaluate on (a fixed subset of) dev, keep the best weights in ``out_dir``, the latest in ``last/``."""
        nonlocal best_state
        subset = dev[: tc.eval_max_utterances] if tc.eval_max_utterances > 0 else dev
        rates = evaluate_dev(rec, subset, device, tc.max_frames)
        log(
            f"step {state['step']}: dev ({len(subset)} utts) WER {rates['wer']:.4f} CER {rates['cer']:.4f} "
            f"SER {rates['ser']:.4f}"
        )
        if rates["wer"] < state["best_wer"] or best_state is None:
            state["best_wer"] = rates["wer"]
            best_state = copy.deepcopy(rec.model.state_dict())
            rec.save(out)
            metrics = {f"dev_{k}": v for k, v in rates.items()}
            write_checkpoint_meta(out, cfg, train_hash, parent, metrics, state["step"])
        last.mkdir(parents=True, exist_ok=True)
        save_state(rec, optimizer, last, state)

    # 4. The loop: epochs of shuffled length buckets until the budget is spent.
    start = time.perf_counter() - state["elapsed"]
    cpu_start = time.process_time() - state["cpu_seconds"]
    next_eval = budget_used() + tc.eval_every_minutes * 60
    loss_avg = None
    done = progress() >= 1.0
    while not done:
        rng = random.Random(tc.seed * 1000 + state["epoch"])
        # Each epoch hears every utterance once, at a speed drawn for it.
        train = [v[rng.randrange(len(v))] if len(v) > 1 else v[0] for v in views]
        lengths = [ex.length for ex in train]
        for idx in bucket_batches(
            lengths, max_frames=tc.max_frames, max_batch=tc.max_batch, rng=rng
        ):
            step_t0 = time.perf_counter()
            lr = lr_at(progress(), tc)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = collate([train[i] for i in idx])
            sa = tc.spec_augment
            batch["features"] = spec_augment(
                batch["features"],
                batch["lengths"],
                freq_masks=sa.freq_masks,
                freq_width=sa.freq_width,
                time_masks=sa.time_masks,
                time_width=sa.time_width,
            )
            loss = ctc_loss(rec, batch, device, bf16)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(rec.model.parameters(), tc.grad_clip)
            optimizer.step()

            state["step"] += 1
            state["audio_seconds"] += sum(train[i].seconds for i in idx)
            state["train_seconds"] += time.perf_counter() - step_t0
            state["elapsed"] = time.perf_counter() - start
            state["cpu_seconds"] = time.process_time() - cpu_start
            loss_value = loss.item()
            loss_avg = loss_value if loss_avg is None else 0.95 * loss_avg + 0.05 * loss_value
            if on_progress is not None:
                on_progress(
                    {
                        "fraction": progress(),
                        "loss": loss_avg,
                        "audio_s_per_s": state["audio_seconds"] / max(1e-9, state["train_seconds"]),
                        "lr": lr,
                        "step": state["step"],
                    }
                )
            done = progress() >= 1.0
            eval_due = budget_used() >= next_eval or (
                tc.eval_every_steps > 0 and state["step"] % tc.eval_every_steps == 0
            )
            if eval_due and not done:
                checkpoint()
                next_eval = budget_used() + tc.eval_every_minutes * 60
            if done:
                break
        else:
            state["epoch"] += 1
    checkpoint()

    # 5. The best weights, with a confidence temperature fitted on dev.
    if best_state is not None:  # always set by checkpoint() above
        rec.model.load_state_dict(best_state)
    rec.model.eval()
    dev_lp = dev_log_probs(rec, dev, device, tc.max_frames)
    if cfg.decoding.method == "beam":
        transcripts = [v[0].text for v in views if v[0].text]
        decoding = tune_decoding(rec, out, transcripts, dev, dev_lp, cfg.decoding, log)
    else:
        for name in LM_FILES:  # a stale LM from an earlier run in this folder must not load
            (out / name).unlink(missing_ok=True)
        rec.beam, rec.lm_dir = None, None
        decoding = {"method": "greedy"}
    temperature, briers = fit_dev_temperature(rec, dev, dev_lp, cfg, log)
    rec.temperature = temperature
    rec.save(out)
    metrics = {
        "dev_subset_wer": state["best_wer"],
        "temperature": temperature,
        "temperature_brier": {str(k): v for k, v in briers.items()},
        "steps": state["step"],
        "epochs": state["epoch"],
        "train_audio_seconds": state["audio_seconds"],
        "audio_s_per_s": state["audio_seconds"] / max(1e-9, state["train_seconds"]),
        "wall_seconds": state["elapsed"],
        "cpu_seconds": state["cpu_seconds"],
        "budget_clock": tc.budget_clock,
        "feature_seconds": feature_seconds,
        "parameters": n_params,
        "precision": "bf16" if bf16 else "fp32",
        "decoding": decoding["method"],
    }
    if "dev_wer_greedy" in decoding:
        metrics["dev_wer_greedy"] = decoding["dev_wer_greedy"]
    dev_rates = dev_rates_of(rec, dev, dev_lp)
    metrics.update({f"dev_{k}": v for k, v in dev_rates.items()})
    write_checkpoint_meta(out, cfg, train_hash, parent, metrics, state["step"])
    log(
        f"best dev WER {metrics['dev_wer']:.4f}, temperature {temperature:g}, "
        f"{metrics['audio_s_per_s']:.1f} audio-s per training second"
    )
    return TrainResult(out, metrics, tuple(rec.notes))
