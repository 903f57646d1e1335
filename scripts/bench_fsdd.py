"""The ``fsdd`` part of ``scripts/bench_asr.py``: real speech from speakers never heard.

The Free Spoken Digit Dataset (``../shared/data/fsdd``): five speakers, 500 recordings each,
8 kHz. Leave one speaker out: train on four (a tenth of their recordings as dev), test on the
fifth, once per held-out speaker (``--fsdd-test-speaker all``, the default) or for one. Per
speaker: test WER with its 95% interval, greedy WER, confidence AUROC and the digits confused
most; over all five: the mean and the worst speaker.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Label, Utterance

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def fsdd_speakers() -> dict[str, list[ManifestRow]]:
    """Every FSDD recording as a manifest row (its digit's name as the transcript), by speaker."""
    by_speaker: dict[str, list[ManifestRow]] = {}
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, _ = wav.stem.split("_")
        row = ManifestRow(
            Utterance(wav.stem, str(wav), speaker), Label(wav.stem, text=DIGITS[int(digit)])
        )
        by_speaker.setdefault(speaker, []).append(row)
    if not by_speaker:
        raise SystemExit(f"no FSDD recordings under {FSDD}")
    return by_speaker


def fsdd_manifests(work: Path, test_speaker: str) -> dict[str, Path]:
    """Train/dev manifests of the four other speakers (dev: a seeded tenth) and the test
    manifest of ``test_speaker``, written under ``work``."""
    by_speaker = fsdd_speakers()
    if test_speaker not in by_speaker:
        raise SystemExit(f"unknown FSDD speaker {test_speaker}; have {sorted(by_speaker)}")
    train = [r for s, rows in by_speaker.items() if s != test_speaker for r in rows]
    random.Random(0).shuffle(train)
    n_dev = len(train) // 10
    out = {s: work / f"fsdd_{test_speaker}_{s}.jsonl" for s in ("train", "dev", "test")}
    write_manifest(out["train"], train[n_dev:])
    write_manifest(out["dev"], train[:n_dev])
    write_manifest(out["test"], by_speaker[test_speaker])
    return out


def add_synthetic(train: Path, work: Path, repeats: int, log: Any) -> None:
    """The digits in the built-in voices, band-limited to FSDD's 8 kHz, added to ``train``:
    speaker variety that four recorded speakers lack (the held-out speaker is still never
    heard)."""
    from earmark.corpus.phrases import speak_phrases

    t0 = time.perf_counter()
    synth = speak_phrases(DIGITS, work / "fsdd_synthetic", repeats=repeats, sample_rate=8000)
    synthetic = read_manifest(synth)
    rows = read_manifest(train) + synthetic
    random.Random(0).shuffle(rows)
    write_manifest(train, rows)
    log(f"fsdd: + {len(synthetic)} synthetic digits in {time.perf_counter() - t0:.0f}s")


def confusions(checkpoint: Path, test: Path, top: int = 5) -> list[list[Any]]:
    """The ``top`` most frequent (said, heard) pairs among wrong test transcriptions."""
    from training.asr.transcribe import transcribe

    rows = {r.id: r for r in read_manifest(test)}
    pairs: Counter[tuple[str, str]] = Counter()
    for hyp in transcribe(checkpoint, list(rows.values())):
        said = rows[hyp.id].label.text if rows[hyp.id].label else ""
        if hyp.text != said:
            pairs[(said or "", hyp.text or "<empty>")] += 1
    return [[s, h, n] for (s, h), n in pairs.most_common(top)]


def part_fsdd(args: Any, train_and_test: Any, log: Any) -> dict[str, Any]:
    """Leave-one-speaker-out over ``args.fsdd_test_speaker`` (``all`` or one speaker)."""
    speakers = sorted(fsdd_speakers())
    wanted = speakers if args.fsdd_test_speaker == "all" else [args.fsdd_test_speaker]
    per: dict[str, Any] = {}
    for speaker in wanted:
        m = fsdd_manifests(args.work, speaker)
        if args.fsdd_synthetic:
            add_synthetic(m["train"], args.work, args.fsdd_synthetic, log)
        log(f"fsdd: training {args.fsdd_minutes} min on the other four, testing on {speaker}")
        ckpt = args.work / f"fsdd_ckpt_{speaker}"
        res = train_and_test(
            m["train"], m["dev"], m["test"], ckpt, args.fsdd_minutes, tuple(args.fsdd_set)
        )
        res["confusions"] = confusions(ckpt, m["test"])
        per[speaker] = res
        log(f"fsdd: {speaker} WER {res['wer']['value']:.4f}")
    wers = [r["wer"]["value"] for r in per.values()]
    return {
        "speakers": per,
        "mean_wer": sum(wers) / len(wers),
        "worst_wer": max(wers),
        "worst_speaker": max(per, key=lambda s: per[s]["wer"]["value"]),
        "minutes": args.fsdd_minutes,
        "overrides": list(args.fsdd_set),
        "synthetic_repeats": args.fsdd_synthetic,
    }


def fsdd_rows(f: dict[str, Any], row: Any) -> None:
    """The part's lines of the benchmark table (``row(name, value, target)``)."""
    if "speakers" not in f:  # a result from before leave-one-speaker-out
        return
    for speaker, r in f["speakers"].items():
        w = r["wer"]
        row(
            f"FSDD held out {speaker}: WER [95% CI]",
            f"{w['value']:.3f} [{w['low']:.2f}, {w['high']:.2f}]",
            "<= 0.10",
        )
        if "greedy" in r:
            row("  greedy decoding, no LM: WER", r["greedy"]["wer"]["value"])
        row("  utterance confidence AUROC", r["confidence_auroc"]["value"])
        if r.get("confusions"):
            row(
                "  most confused (said>heard n)",
                " ".join(f"{s}>{h}:{n}" for s, h, n in r["confusions"][:3]),
            )
    row(
        "FSDD mean / worst held-out speaker WER",
        f"{f['mean_wer']:.3f}/{f['worst_wer']:.3f}",
        "<= 0.10 each",
    )
    row("  minutes per speaker, overrides", f"{f['minutes']} {' '.join(f['overrides'])}")
