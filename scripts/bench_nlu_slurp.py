"""The SLURP parts of ``scripts/bench_nlu.py``: real smart-speaker requests, 2,033 of them.

``../shared/data/slurp/devel.jsonl`` imported by ``earmark.corpus.importers.import_slurp``
(71 intents). Every training run uses ``configs/nlu.yaml`` (plus ``--set`` overrides) on two
threads; its dev set (best epoch, calibration) is a tenth of its own labelled rows, never the
test rows.

- ``curve``: n labelled requests (a seeded shuffle's first n), tested on the rest of devel, for
  n in ``--curve-sizes`` (the few-shot point, 200, on each of ``--fewshot-seeds``). Also the
  share of test requests whose intent occurs among the n at all (no model can do better).
- ``cv``: k-fold cross-validation (fold i tests rows i, i+k, ...; the other folds train):
  intent accuracy, entity F1, SLU-F1 and ECE per held-out fold and their mean and spread.
- ``asr``: requests spoken by the built-in voices (``scripts/bench_asr.py --parts openvocab``
  writes them and the open-vocabulary recogniser), transcribed once; intent accuracy and
  SLU-F1 on the recogniser's hypotheses beside gold text, for an NLU trained on gold text and
  one trained with noisy copies (``augment.noisy_copies``). Both train on every request whose
  sentence is not among the spoken test ones.
- ``speed``: a loop round: warm start from an NLU trained on 500 requests, 1,000 labelled,
  a ``--round-seconds`` training budget, timed from call to calibrated checkpoint; and
  prediction over a pool of 10,000 requests (SLURP texts and noisy copies of them).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.stats import ece_floor, expected_calibration_error

Log = Callable[[str], None]
METRICS = ("intent_accuracy", "entity_f1", "slu_f1", "ece", "intent_ece")


def slurp_rows(slurp: Path, work: Path) -> list[ManifestRow]:
    """SLURP imported by the corpus importer (the same rows every run)."""
    from earmark.corpus.importers import import_slurp

    return read_manifest(import_slurp(slurp, work / "slurp_import").manifest)


def train_and_test(
    name: str,
    labelled: list[ManifestRow],
    test: list[ManifestRow],
    work: Path,
    overrides: list[str],
    log: Log,
    *,
    init: Path | None = None,
    n_dev: int | None = None,
    keep_outputs: bool = False,
) -> dict[str, Any]:
    """Train on ``labelled``, its first ``n_dev`` (default a tenth) as dev; score on ``test``
    (gold text)."""
    from training.nlu.config import load_nlu_config
    from training.nlu.evaluate import labelled_examples, nlu_texts, score_nlu, summarize_scores
    from training.nlu.train import train_nlu

    folder = work / name
    n_dev = n_dev or max(1, len(labelled) // 10)
    write_manifest(folder / "dev.jsonl", labelled[:n_dev])
    write_manifest(folder / "train.jsonl", labelled[n_dev:])
    config = load_nlu_config(None, ("threads=2", *overrides))
    start = time.perf_counter()
    result = train_nlu(
        config,
        folder / "train.jsonl",
        folder / "dev.jsonl",
        folder / "ckpt",
        init=init,
        log=lambda line: log(f"  [{name}] {line}"),
    )
    seconds = time.perf_counter() - start
    seen = {r.label.intent for r in labelled if r.label}
    examples = labelled_examples(test)
    scored = score_nlu(folder / "ckpt", examples, nlu_texts(test, examples))
    scores = summarize_scores(scored, n_resamples=1000)
    out = {
        "name": name,
        "n_labelled": len(labelled),
        "n_test": len(test),
        "train_seconds": round(seconds, 1),
        "best_epoch": result.metrics.get("best_epoch"),
        "intent_seen_share": round(
            sum(r.label is not None and r.label.intent in seen for r in test) / len(test), 4
        ),
        **{k: scores[k] for k in METRICS},
        # what a perfectly calibrated model with these confidences would show on this test
        "ece_floor": round(ece_floor(scored.confidences), 4),
        "intent_ece_floor": round(ece_floor(scored.intent_confidences), 4),
        "checkpoint": str(folder / "ckpt"),
    }
    if keep_outputs:  # per utterance, for figures pooled over several runs
        out["outputs"] = {
            "confidence": list(scored.confidences),
            "all_correct": list(scored.all_correct),
            "intent_confidence": list(scored.intent_confidences),
            "intent_correct": list(scored.intent_correct),
        }
    log(
        f"{name}: intent {out['intent_accuracy']['value']:.4f} entity F1 "
        f"{out['entity_f1']['value']:.4f} SLU-F1 {out['slu_f1']['value']:.4f} "
        f"ECE {out['ece']['value']:.4f} (floor {out['ece_floor']:.4f}) ({seconds:.0f} s)"
    )
    return out


def shuffled(rows: list[ManifestRow], seed: int) -> list[ManifestRow]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows


def part_curve(
    rows: list[ManifestRow],
    work: Path,
    sizes: list[int],
    seeds: list[int],
    overrides: list[str],
    log: Log,
) -> dict[str, Any]:
    runs = []
    for n in sizes:
        for seed in seeds if n == 200 else seeds[:1]:
            order = shuffled(rows, seed)
            runs.append(
                {
                    "seed": seed,
                    **train_and_test(
                        f"curve_{n}_s{seed}", order[:n], order[n:], work, overrides, log
                    ),
                }
            )
    few = [r for r in runs if r["n_labelled"] == 200]
    summary = {}
    if few:
        accs = [r["intent_accuracy"]["value"] for r in few]
        summary = {
            "n": 200,
            "seeds": [r["seed"] for r in few],
            "intent_accuracy_mean": round(statistics.mean(accs), 4),
            "intent_accuracy_min": round(min(accs), 4),
            "target": 0.65,
            "met": min(accs) >= 0.65,
        }
    return {"runs": runs, "fewshot_200": summary}


def part_cv(
    rows: list[ManifestRow],
    work: Path,
    folds: int,
    only: list[int] | None,
    overrides: list[str],
    log: Log,
) -> dict[str, Any]:
    order = shuffled(rows, 0)
    runs = []
    for k in only if only is not None else range(folds):
        test = order[k::folds]
        train = [r for i, r in enumerate(order) if i % folds != k]
        runs.append(
            {
                "fold": k,
                **train_and_test(
                    f"cv{folds}_{k}", train, test, work, overrides, log, keep_outputs=True
                ),
            }
        )
    mean = {
        m: {
            "mean": round(statistics.mean(r[m]["value"] for r in runs), 4),
            "sd": round(statistics.stdev(r[m]["value"] for r in runs), 4) if len(runs) > 1 else 0.0,
        }
        for m in METRICS
    }
    for floor in ("ece_floor", "intent_ece_floor"):
        mean[floor] = {"mean": round(statistics.mean(r[floor] for r in runs), 4), "sd": 0.0}
    # ECE over every held-out prediction at once: on one fold of ~400 requests the estimator's
    # own noise floor (ece_floor) is about 0.06, above the target
    outputs = [r.pop("outputs") for r in runs]
    pooled = {}
    for name, conf, ok in (
        ("ece", "confidence", "all_correct"),
        ("intent_ece", "intent_confidence", "intent_correct"),
    ):
        c = [x for o in outputs for x in o[conf]]
        y = [x for o in outputs for x in o[ok]]
        pooled[name] = round(expected_calibration_error(c, y), 4)
        pooled[f"{name}_floor"] = round(ece_floor(c), 4)
    targets = {"intent_accuracy": 0.85, "entity_f1": 0.75, "ece": 0.05}
    met = {
        "intent_accuracy": mean["intent_accuracy"]["mean"] >= 0.85,
        "entity_f1": mean["entity_f1"]["mean"] >= 0.75,
        "ece_pooled": pooled["ece"] <= 0.05,
    }
    log(f"cv: pooled held-out ECE {pooled}")
    return {
        "folds": folds,
        "runs": runs,
        "mean": mean,
        "pooled_held_out": pooled,
        "targets": targets,
        "met": met,
    }


def spoken_test_rows(
    spoken: Path, rows: list[ManifestRow]
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """The spoken requests with their SLURP labels, and the SLURP rows whose sentence is not
    among them (to train on)."""
    import dataclasses

    from earmark.core.text import normalize

    by_text: dict[str, ManifestRow] = {}
    for r in rows:
        if r.label is not None:
            by_text.setdefault(normalize(r.label.text or ""), r)
    test = []
    for s in read_manifest(spoken):
        labelled = by_text.get(normalize(s.label.text or "")) if s.label else None
        if labelled is not None and labelled.label is not None:
            label = dataclasses.replace(labelled.label, utterance_id=s.id)
            test.append(ManifestRow(s.utterance, label))
    said = {normalize(r.label.text or "") for r in test if r.label}
    train = [r for r in rows if r.label and normalize(r.label.text or "") not in said]
    return test, train


def part_asr(
    rows: list[ManifestRow],
    work: Path,
    asr_checkpoint: Path,
    spoken: Path,
    noisy_copies: int,
    overrides: list[str],
    log: Log,
) -> dict[str, Any]:
    from training.asr.transcribe import transcribe
    from training.nlu.evaluate import labelled_examples, score_nlu, summarize_scores

    test, train = spoken_test_rows(spoken, rows)
    log(f"asr: {len(test)} spoken SLURP requests, {len(train)} requests to train on")
    start = time.perf_counter()
    hyps = {h.id: h.text for h in transcribe(asr_checkpoint, test)}
    asr_seconds = time.perf_counter() - start
    examples = labelled_examples(test)
    from earmark.core.wer import corpus_rates, score_utterance

    wer = corpus_rates([score_utterance(e.text, hyps[e.id]) for e in examples])
    order = shuffled(train, 0)
    out: dict[str, Any] = {
        "asr_checkpoint": str(asr_checkpoint),
        "n_test": len(examples),
        "asr_wer": round(wer["wer"], 4),
        "asr_seconds": round(asr_seconds, 1),
        "nlu": {},
    }
    variants = {"gold_text": [], f"noisy_copies_{noisy_copies}": [
        f"augment.noisy_copies={noisy_copies}"
    ]}  # fmt: skip
    for name, extra in variants.items():
        r = train_and_test(f"asr_{name}", order, test, work, [*overrides, *extra], log)
        ckpt = Path(r["checkpoint"])
        heard = summarize_scores(
            score_nlu(ckpt, examples, [(e.id, hyps[e.id]) for e in examples], on_gold_text=False),
            n_resamples=1000,
        )
        out["nlu"][name] = {
            "train_seconds": r["train_seconds"],
            "gold_text": {k: r[k] for k in METRICS},
            "asr": {k: heard[k] for k in METRICS},
        }
        log(
            f"asr {name}: intent on gold {r['intent_accuracy']['value']:.4f}, on ASR "
            f"{heard['intent_accuracy']['value']:.4f} (ASR WER {wer['wer']:.3f})"
        )
    return out


def part_speed(
    rows: list[ManifestRow], work: Path, round_seconds: float, overrides: list[str], log: Log
) -> dict[str, Any]:
    import torch

    from training.nlu.data import example_from_row
    from training.nlu.noise import noisy_copies
    from training.nlu.predict import NLUModel

    torch.set_num_threads(2)
    order = shuffled(rows, 7)
    test = order[1000:]
    # one dev set for both, as in the loop: the round's dev holds none of the base's training
    base = train_and_test(
        "speed_base_500", order[:500], test, work, [*overrides, "optim.max_epochs=8", "optim.min_steps=0"], log,
        n_dev=50,
    )  # fmt: skip
    warm = train_and_test(
        "speed_round_1000",
        order[:1000],
        test,
        work,
        [*overrides, f"optim.max_minutes={round_seconds / 60:.4f}"],
        log,
        init=Path(base["checkpoint"]),
        n_dev=50,
    )
    examples = [e for r in rows if (e := example_from_row(r)) is not None]
    pool = [(e.id, e.text) for e in examples]
    for copy in noisy_copies(examples, copies=8, word_error_rate=0.15, seed=0):
        pool.append((copy.id, copy.text))
    pool = pool[:10_000]
    model = NLUModel.load(warm["checkpoint"])
    start = time.perf_counter()
    n = sum(1 for _ in model.predict_texts(pool))
    predict_seconds = time.perf_counter() - start
    log(
        f"speed: warm round on 1,000 in {warm['train_seconds']:.1f} s; "
        f"{n} pool predictions in {predict_seconds:.1f} s"
    )
    return {
        "base": base,
        "round": warm,
        "round_budget_seconds": round_seconds,
        "round_seconds": warm["train_seconds"],
        "pool_n": n,
        "predict_seconds": round(predict_seconds, 1),
        "targets": {"round_seconds": 30.0, "predict_seconds": 30.0},
        "met": {
            "round_seconds": warm["train_seconds"] <= 30.0,
            "predict_seconds": predict_seconds <= 30.0,
        },
    }
