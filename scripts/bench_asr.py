"""ASR benchmark: accuracy, confidence quality, speed against plain transformers, memory.

Parts (run all, or some with ``--parts``; results merge into one JSON file):

- ``builtin``: train on 2,500 labelled utterances of the built-in corpus (seed + pool answers)
  for at most ``--minutes`` (default 20), test on its test set: WER/CER/SER, confidence AUROC.
- ``fsdd``: real speech, leave one FSDD speaker out, each of the five in turn: WER per
  held-out speaker (``scripts/bench_fsdd.py``).
- ``speed``: training throughput (audio-s per wall-s) of ``train_asr`` against the same model
  trained through the plain ``transformers.Trainer`` (features computed by the collator per
  batch), and transcription real-time factor of ``transcribe`` against the
  ``automatic-speech-recognition`` pipeline, measured in the same run.
- ``memory``: peak RSS of transcribing 10,000 against 1,000 utterances (separate processes).
- ``openvocab``: real SLURP requests spoken by the built-in voices, recognised by the
  ``builtin`` checkpoint with LM text, the open-vocabulary search and English words
  (``scripts/bench_openvocab.py``).
- ``voices``: the built-in corpus with eight voices kept out of training: WER on the voices
  heard and on those never heard (``scripts/bench_voices.py``).

The cores are shared with other jobs here: the load average is recorded beside each figure.

    python scripts/bench_asr.py --corpus runs/corpus --work runs/bench_asr
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Utterance

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO.parent / "shared" / "data" / "fsdd" / "recordings"


CLOCK = ["cpu"]  # --budget-clock
THREADS = [2]  # --threads
REUSE = [False]  # --reuse: evaluate checkpoints already trained in --work


def load() -> float:
    return round(os.getloadavg()[0], 2)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()}] {msg}", flush=True)


def builtin_train_manifest(corpus: Path, work: Path, n: int = 2500) -> Path:
    rows = [r for r in read_manifest(corpus / "seed.jsonl") if r.label and r.label.text]
    rows += [r for r in read_manifest(corpus / "pool_answers.jsonl") if r.label and r.label.text]
    if len(rows) < n:
        raise SystemExit(f"{corpus}: only {len(rows)} labelled utterances, need {n}")
    path = work / "builtin_train.jsonl"
    write_manifest(path, rows[:n])
    return path


def train_and_test(
    train: Path, dev: Path, test: Path, out: Path, minutes: float, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
    from training.asr.config import load_asr_config
    from training.asr.evaluate import evaluate_asr
    from training.asr.lm import has_lm
    from training.asr.train import train_asr

    cfg = load_asr_config(
        None,
        (
            f"train.max_minutes={minutes}",
            "train.max_steps=0",
            f"train.budget_clock={CLOCK[0]}",
            f"train.threads={THREADS[0]}",
            *overrides,
        ),
    )
    start_load = load()
    last = [0.0]

    def progress(d: dict[str, Any]) -> None:
        if time.time() - last[0] > 60:
            last[0] = time.time()
            log(f"step {d['step']} loss {d['loss']:.3f} {d['audio_s_per_s']:.1f} audio-s/s")

    if REUSE[0] and (out / "earmark.json").is_file():
        from training.checkpoint import read_meta

        log(f"reusing the trained checkpoint {out} (--reuse)")
        trained = read_meta(out).metrics
    else:
        trained = train_asr(cfg, train, dev, out, on_progress=progress, log=log).metrics
    t0 = time.perf_counter()
    test_rows = read_manifest(test)
    metrics = evaluate_asr(out, test_rows, n_resamples=1000)
    metrics["eval_seconds"] = time.perf_counter() - t0
    if has_lm(out):  # the acoustic model alone, for comparison
        greedy = evaluate_asr(out, test_rows, n_resamples=200, decoding="greedy")
        metrics["greedy"] = {k: greedy[k] for k in ("wer", "cer", "ser", "confidence_auroc")}
    metrics["training"] = {k: v for k, v in trained.items() if not isinstance(v, dict)}
    metrics["load_average"] = {"start": start_load, "end": load()}
    return metrics


def part_openvocab(args: argparse.Namespace) -> dict[str, Any]:
    from bench_openvocab import part_openvocab as run

    variants = [v.strip() for v in args.openvocab_variants.split(",") if v.strip()]
    return run(
        args.work / "builtin_ckpt",
        builtin_train_manifest(args.corpus, args.work),
        args.work / "openvocab",
        log,
        variants,
    )


def part_voices(args: argparse.Namespace) -> dict[str, Any]:
    from bench_voices import part_voices as run

    return run(args, train_and_test, log)


def part_builtin(args: argparse.Namespace) -> dict[str, Any]:
    train = builtin_train_manifest(args.corpus, args.work)
    log(f"builtin: training {args.minutes} min on {train} {' '.join(args.builtin_set)}")
    res = train_and_test(
        train,
        args.corpus / "dev.jsonl",
        args.corpus / "test.jsonl",
        args.work / "builtin_ckpt",
        args.minutes,
        tuple(args.builtin_set),
    )
    res["overrides"] = list(args.builtin_set)
    return res


def part_fsdd(args: argparse.Namespace) -> dict[str, Any]:
    from bench_fsdd import part_fsdd as run

    return run(args, train_and_test, log)


# ---- speed: the same model through the plain transformers Trainer / pipeline -------------


def hf_trainer_throughput(
    rows: list[ManifestRow], seconds: float, lr: float, tuned: bool = False
) -> dict[str, Any]:
    """Train the same architecture with ``transformers.Trainer`` for ``seconds``; audio-s/s.

    Stock: features computed by the collator per batch, batches in random order. ``tuned``:
    what the Trainer's own arguments and the transformers CTC example offer besides bf16:
    features computed once before training (counted in its time, as ours are), and
    ``train_sampling_strategy="group_by_length"`` (batches of similar length, little padding).
    No dataloader workers either way: on two cores they would take the cores training uses.
    """
    import numpy as np
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from earmark.core.text import normalize
    from earmark.dsp import load_audio
    from training.asr.config import load_asr_config
    from training.asr.model import build_recogniser
    from training.asr.start import use_bf16

    cfg = load_asr_config()
    torch.manual_seed(0)
    rec = build_recogniser(cfg.model)
    fe = rec.feature_extractor
    t_start = time.perf_counter()
    waves = [load_audio(r.utterance.audio or "") for r in rows]
    labels = [rec.encode(normalize(r.label.text or "")) for r in rows if r.label]
    data: list[dict[str, Any]] = [
        {"wave": w, "labels": lab} for w, lab in zip(waves, labels, strict=True)
    ]
    if tuned:  # the key LengthGroupedSampler reads lengths from (fe.model_input_names[0])
        for item in data:
            item["input_features"] = fe(item["wave"], sampling_rate=16000, return_tensors="pt")[
                "input_features"
            ][0]
    audio_seconds = [0.0]

    def features(batch: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        if not tuned:
            out = fe([b["wave"] for b in batch], sampling_rate=16000, return_tensors="pt")
            return out["input_features"], out["attention_mask"]
        lengths = torch.tensor([len(b["input_features"]) for b in batch])
        padded = torch.nn.utils.rnn.pad_sequence(
            [b["input_features"] for b in batch], batch_first=True
        )
        return padded, (torch.arange(padded.shape[1])[None, :] < lengths[:, None]).long()

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        feats, mask = features(batch)
        width = max(len(b["labels"]) for b in batch)
        lab = np.full((len(batch), width), -100, dtype=np.int64)
        for i, b in enumerate(batch):
            lab[i, : len(b["labels"])] = b["labels"]
        audio_seconds[0] += sum(len(b["wave"]) for b in batch) / 16000
        return {"input_features": feats, "attention_mask": mask, "labels": torch.from_numpy(lab)}

    class TimeLimit(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.perf_counter() - t_start > seconds:
                control.should_training_stop = True

    targs = TrainingArguments(
        output_dir=str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench_asr_trainer"),
        per_device_train_batch_size=32,
        learning_rate=lr,
        max_steps=100_000,
        warmup_steps=10,
        save_strategy="no",
        report_to=[],
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        max_grad_norm=1.0,
        # the same precision as ours (bf16 autocast where the CPU has native bf16)
        bf16=use_bf16(torch.device("cpu"), cfg.train.precision),
        **({"train_sampling_strategy": "group_by_length"} if tuned else {}),
    )
    trainer = Trainer(
        model=rec.model,
        args=targs,
        train_dataset=data,  # type: ignore[arg-type]
        data_collator=collate,
        callbacks=[TimeLimit()],
        processing_class=fe if tuned else None,
    )
    trainer.train()
    wall = time.perf_counter() - t_start  # all-in: reading, features (tuned), training
    return {
        "audio_seconds": audio_seconds[0],
        "wall_seconds": wall,
        "audio_s_per_s": audio_seconds[0] / wall,
        "tuned": tuned,
    }


def ours_throughput(train: Path, dev: Path, work: Path, seconds: float) -> dict[str, Any]:
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    cfg = load_asr_config(
        None,
        (
            f"train.max_minutes={seconds / 60}",
            "train.max_steps=0",
            "train.eval_every_minutes=1000",
            f"train.threads={THREADS[0]}",
            # the same work as the Trainer: one speed, no LM build and tuning after training
            "train.speed_perturb=[1.0]",
            "decoding.method=greedy",
        ),
    )
    t0 = time.perf_counter()
    res = train_asr(cfg, train, dev, work / "speed_ckpt", log=lambda _: None)
    total = time.perf_counter() - t0
    m = res.metrics
    # everything counted: feature extraction, training, the final dev pass and saving
    return {
        "audio_seconds": m["train_audio_seconds"],
        "wall_seconds": total,
        "audio_s_per_s": m["train_audio_seconds"] / total,
        "audio_s_per_train_s": m["audio_s_per_s"],
        "feature_seconds": m["feature_seconds"],
    }


def transcription_rtf(checkpoint: Path, rows: list[ManifestRow]) -> dict[str, Any]:
    import torch
    from transformers import pipeline

    from earmark.dsp import load_audio
    from training.asr.lm import has_lm
    from training.asr.transcribe import transcribe

    torch.set_num_threads(THREADS[0])
    audio_s = sum(len(load_audio(r.utterance.audio or "")) for r in rows) / 16000
    t0 = time.perf_counter()
    list(transcribe(checkpoint, rows, batch_size=32, device="cpu"))
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = list(transcribe(checkpoint, rows, batch_size=32, device="cpu", decoding="greedy"))
    greedy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    asr = pipeline("automatic-speech-recognition", model=str(checkpoint), device="cpu")
    inputs = [{"raw": load_audio(r.utterance.audio or ""), "sampling_rate": 16000} for r in rows]
    hf = asr(inputs, batch_size=32)  # type: ignore[arg-type]  # a list of inputs: a list out
    hf_s = time.perf_counter() - t0
    # the pipeline decodes greedily: our greedy text must be the same
    agree = sum(o.text == h["text"].strip() for o, h in zip(greedy, hf, strict=True)) / len(rows)
    return {
        "audio_seconds": audio_s,
        "decoding": "beam" if has_lm(checkpoint) else "greedy",
        "ours_rtf": ours_s / audio_s,
        "ours_greedy_rtf": greedy_s / audio_s,
        "hf_pipeline_rtf": hf_s / audio_s,
        "ratio": hf_s / ours_s,
        "ratio_greedy": hf_s / greedy_s,
        "greedy_same_text_share": agree,
    }


def part_speed(args: argparse.Namespace) -> dict[str, Any]:
    if (args.corpus / "seed.jsonl").is_file():
        train = builtin_train_manifest(args.corpus, args.work)
        rows = read_manifest(train)[: args.speed_utts]
        dev, test_rows = args.corpus / "dev.jsonl", read_manifest(args.corpus / "test.jsonl")
    else:
        from bench_fsdd import fsdd_manifests

        m = fsdd_manifests(args.work, "yweweler")
        rows, dev, test_rows = (
            read_manifest(m["train"])[: args.speed_utts],
            m["dev"],
            read_manifest(m["test"]),
        )
    subset = args.work / "speed_train.jsonl"
    write_manifest(subset, rows)
    log(f"speed: ours, {args.speed_seconds}s")
    ours = ours_throughput(subset, dev, args.work, args.speed_seconds)
    log(f"speed: transformers Trainer, {args.speed_seconds}s")
    hf = hf_trainer_throughput(rows, args.speed_seconds, 2e-3)
    log(
        f"speed: transformers Trainer with features once and group_by_length, {args.speed_seconds}s"
    )
    hf_tuned = hf_trainer_throughput(rows, args.speed_seconds, 2e-3, tuned=True)
    log("speed: transcription")
    ckpt = args.work / "builtin_ckpt"
    if not (ckpt / "config.json").is_file():
        ckpt = args.work / "speed_ckpt"
    rtf = transcription_rtf(ckpt, test_rows[: args.rtf_utts])
    return {
        "train": {
            "ours": ours,
            "hf_trainer": hf,
            "hf_trainer_tuned": hf_tuned,
            "ratio": ours["audio_s_per_s"] / hf["audio_s_per_s"],
            "ratio_tuned": ours["audio_s_per_s"] / hf_tuned["audio_s_per_s"],
        },
        "transcribe": rtf,
        "load_average_end": load(),
    }


MEMORY_CHILD = """
import json, sys
from earmark.core.manifest import iter_manifest
from training.asr.transcribe import transcribe
n = 0
for pred in transcribe(sys.argv[1], iter_manifest(sys.argv[2]), batch_size=32, device="cpu"):
    n += 1
# VmHWM, not ru_maxrss: Linux carries the parent's peak RSS across fork+exec into ru_maxrss
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"n": n, "max_rss_mb": int(hwm) / 1024}))
"""


def part_memory(args: argparse.Namespace) -> dict[str, Any]:
    ckpt = args.work / "fsdd_ckpt_yweweler"
    if not (ckpt / "config.json").is_file():
        ckpt = args.work / "builtin_ckpt"
    base = [ManifestRow(Utterance(w.stem, str(w)), None) for w in sorted(FSDD.glob("*.wav"))]
    out: dict[str, Any] = {"checkpoint": str(ckpt)}
    for n in (1000, 10_000):
        rows = [
            # spread over every recording, so both sizes share one length distribution
            ManifestRow(
                base[(i * len(base) // n) % len(base)].utterance.with_(id=f"m{i:05d}"), None
            )
            for i in range(n)
        ]
        path = args.work / f"memory_{n}.jsonl"
        write_manifest(path, rows)
        log(f"memory: transcribing {n} utterances")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(ckpt), str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": str(THREADS[0])},
        )
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["seconds"] = time.perf_counter() - t0
        out[str(n)] = res
    out["ratio_10k_to_1k"] = out["10000"]["max_rss_mb"] / out["1000"]["max_rss_mb"]
    return out


def table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':58s} {'value':>12s}  target"]

    def row(name: str, value: Any, target: str = "") -> None:
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{name:58s} {text:>12s}  {target}")

    if b := results.get("builtin"):
        row("built-in test WER (2,500 utts, <=20 min)", b["wer"]["value"], "<= 0.10")
        row("  95% CI", f"[{b['wer']['low']:.3f}, {b['wer']['high']:.3f}]")
        if "greedy" in b:
            row("  greedy decoding, no LM: WER", b["greedy"]["wer"]["value"])
        row("built-in test CER", b["cer"]["value"])
        row("built-in test SER", b["ser"]["value"])
        row(
            "utterance confidence AUROC (has word error)", b["confidence_auroc"]["value"], ">= 0.80"
        )
        row("word confidence AUROC (word wrong)", b["word_confidence_auroc"]["value"])
        row(
            "  training minutes (+ feature extraction s)",
            f"{b['training']['wall_seconds'] / 60:.1f} (+{b['training']['feature_seconds']:.0f}s)",
        )
        row("  training audio-s per training-s", b["training"]["audio_s_per_s"])
        row("  load average start/end", f"{b['load_average']['start']}/{b['load_average']['end']}")
    if v := results.get("voices"):
        from bench_voices import voices_rows

        voices_rows(v, row)
    if f := results.get("fsdd"):
        from bench_fsdd import fsdd_rows

        fsdd_rows(f, row)
    if s := results.get("speed"):
        row(
            "train audio-s/s ours (all-in: features, final dev pass, temperature fit)",
            s["train"]["ours"]["audio_s_per_s"],
        )
        row("train audio-s/s transformers Trainer", s["train"]["hf_trainer"]["audio_s_per_s"])
        row("train throughput ratio ours/Trainer (all-in)", s["train"]["ratio"], ">= 2.0")
        if tuned := s["train"].get("hf_trainer_tuned"):
            row("train audio-s/s Trainer, features once + group_by_length", tuned["audio_s_per_s"])
            row(
                "train throughput ratio ours/that Trainer (all-in)",
                s["train"]["ratio_tuned"],
                ">= 2.0",
            )
        loop = s["train"]["ours"]["audio_s_per_train_s"]
        row("train audio-s/s ours (training steps only)", loop)
        row(
            "train throughput ratio ours (steps only)/Trainer",
            loop / s["train"]["hf_trainer"]["audio_s_per_s"],
            ">= 1.0",
        )
        t = s["transcribe"]
        row(f"transcribe RTF ours ({t.get('decoding', 'greedy')} + confidence)", t["ours_rtf"])
        if "ours_greedy_rtf" in t:
            row("transcribe RTF ours (greedy + confidence)", t["ours_greedy_rtf"])
        row("transcribe RTF transformers pipeline (greedy)", t["hf_pipeline_rtf"])
        row("transcribe speed ratio pipeline/ours", t["ratio"], ">= 1.0")
        if "ratio_greedy" in t:
            row("transcribe speed ratio pipeline/ours greedy", t["ratio_greedy"], ">= 1.0")
            row("  same text as the pipeline (ours greedy)", t["greedy_same_text_share"])
    if o := results.get("openvocab"):
        from bench_openvocab import openvocab_rows

        openvocab_rows(o, row)
    if m := results.get("memory"):
        row("peak RSS MB, 1,000 utterances", m["1000"]["max_rss_mb"])
        row("peak RSS MB, 10,000 utterances", m["10000"]["max_rss_mb"])
        row("peak RSS ratio 10k/1k", m["ratio_10k_to_1k"], "<= 1.10")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", type=Path, default=REPO / "runs" / "corpus")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench_asr")
    ap.add_argument("--parts", default="builtin,fsdd,speed,memory")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--fsdd-minutes", type=float, default=8.0)
    ap.add_argument(
        "--fsdd-test-speaker",
        default="all",
        help="fsdd: the speaker held out, or all (leave-one-speaker-out over the five)",
    )
    ap.add_argument(
        "--builtin-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builtin, voices: an ASR config override, e.g. model.units=bpe (repeatable)",
    )
    ap.add_argument(
        "--fsdd-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsdd: an ASR config override for this part (repeatable)",
    )
    ap.add_argument(
        "--fsdd-synthetic",
        type=int,
        default=0,
        metavar="REPEATS",
        help="fsdd: add the ten digits spoken REPEATS times by each built-in voice (8 kHz)",
    )
    ap.add_argument(
        "--budget-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: training budgets count process CPU time / 2 threads (fair on shared cores)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads for every part (1 is far faster when other jobs load the cores)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="builtin/fsdd: evaluate the checkpoint already in --work instead of training again",
    )
    ap.add_argument(
        "--openvocab-variants",
        default="closed,lm_text,lm_text_open,lm_text_english,lm_text_english_open",
        help="openvocab: the decoding variants to build and test (scripts/bench_openvocab.py)",
    )
    ap.add_argument("--speed-seconds", type=float, default=90.0)
    ap.add_argument("--speed-utts", type=int, default=400)
    ap.add_argument("--rtf-utts", type=int, default=300)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    CLOCK[0] = args.budget_clock
    THREADS[0] = args.threads
    REUSE[0] = args.reuse
    import torch

    torch.set_num_threads(args.threads)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if (
        any(p in parts for p in ("builtin", "speed", "openvocab", "voices"))
        and not (args.corpus / "seed.jsonl").is_file()
    ):
        log(f"no corpus at {args.corpus}: running earmark corpus synth")
        cmd = [
            sys.executable,
            "-m",
            "earmark.cli.main",
            "corpus",
            "synth",
            "--out",
            str(args.corpus),
        ]
        subprocess.run(cmd, check=True)
    out_json = args.work / "bench_asr.json"
    runners = {
        "builtin": part_builtin,
        "fsdd": part_fsdd,
        "speed": part_speed,
        "memory": part_memory,
        "openvocab": part_openvocab,
        "voices": part_voices,
    }
    for part in parts:
        if part not in runners:
            raise SystemExit(f"unknown part {part!r}; choose from {sorted(runners)}")
        result = runners[part](args)
        result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        # re-read so that parts run by parallel invocations merge instead of clobbering
        results = json.loads(out_json.read_text()) if out_json.is_file() else {}
        results[part] = result
        out_json.write_text(json.dumps(results, indent=2))
        log(f"{part} done -> {out_json}")
    print(table(json.loads(out_json.read_text()) if out_json.is_file() else {}))


if __name__ == "__main__":
    main()
