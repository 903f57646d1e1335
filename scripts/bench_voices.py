"""The ``voices`` part of ``scripts/bench_asr.py``: the built-in corpus's new speakers.

The synthetic equivalent of FSDD's held-out speaker: ``N_HELD`` of the corpus's voices (both
engines, in their shares, seeded) are kept out of training and out of dev; the recogniser
trains on up to 2,500 labelled utterances of the other voices (seed + pool answers) for the
``builtin`` part's minutes, and is tested on every test utterance, reported apart for the
voices it heard and those it never heard. The held-out voices' dev utterances join their test
group: nothing tuned on them, and they widen a group that is otherwise a sixth of the test set.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest

N_HELD = 8
N_TRAIN = 2500


def held_voices(rows: list[ManifestRow], k: int = N_HELD, seed: int = 0) -> list[str]:
    """``k`` voice ids of ``rows``, each engine (the id's prefix) in its share of the voices."""
    voices = sorted({r.utterance.speaker for r in rows if r.utterance.speaker})
    by_engine: dict[str, list[str]] = {}
    for v in voices:
        by_engine.setdefault(v.split("-")[0], []).append(v)
    rng = random.Random(f"earmark-bench-voices-{seed}")
    held: list[str] = []
    for _engine, ids in sorted(by_engine.items()):
        share = max(1, round(k * len(ids) / len(voices)))
        held += rng.sample(ids, min(share, len(ids) - 1))
    return sorted(held)


def voice_split(corpus: Path, work: Path) -> dict[str, Any]:
    """Manifests for the split: train and dev without the held-out voices, the test set's
    utterances of seen voices, and the held-out voices' test and dev utterances."""
    train_rows = [
        r
        for name in ("seed.jsonl", "pool_answers.jsonl")
        for r in read_manifest(corpus / name)
        if r.label and r.label.text
    ]
    dev_rows, test_rows = read_manifest(corpus / "dev.jsonl"), read_manifest(corpus / "test.jsonl")
    held = set(held_voices(train_rows + dev_rows + test_rows))

    def unheard(r: ManifestRow) -> bool:
        return r.utterance.speaker in held

    parts = {
        "train": [r for r in train_rows if not unheard(r)][:N_TRAIN],
        "dev": [r for r in dev_rows if not unheard(r)],
        "test_seen": [r for r in test_rows if not unheard(r)],
        "test_unseen": [r for r in test_rows + dev_rows if unheard(r)],
    }
    paths = {name: work / f"voices_{name}.jsonl" for name in parts}
    for name, rows in parts.items():
        write_manifest(paths[name], rows)
    return {"held_voices": sorted(held), "sizes": {k: len(v) for k, v in parts.items()}, **paths}


def part_voices(args: Any, train_and_test: Any, log: Any) -> dict[str, Any]:
    from training.asr.evaluate import evaluate_asr

    split = voice_split(args.corpus, args.work)
    log(f"voices: holding out {split['held_voices']}; sizes {split['sizes']}")
    ckpt = args.work / "voices_ckpt"
    seen = train_and_test(
        split["train"],
        split["dev"],
        split["test_seen"],
        ckpt,
        args.minutes,
        tuple(args.builtin_set),
    )
    unseen = evaluate_asr(ckpt, read_manifest(split["test_unseen"]), n_resamples=1000)
    return {
        "held_voices": split["held_voices"],
        "sizes": split["sizes"],
        "seen": seen,
        "unseen": unseen,
        "minutes": args.minutes,
        "overrides": list(args.builtin_set),
    }


def voices_rows(v: dict[str, Any], row: Any) -> None:
    """The part's lines of the benchmark table (``row(name, value, target)``)."""
    for name in ("seen", "unseen"):
        w = v[name]["wer"]
        n = v["sizes"][f"test_{name}"]
        row(
            f"built-in, voices {name} in training ({n} utts): WER [95% CI]",
            f"{w['value']:.3f} [{w['low']:.2f}, {w['high']:.2f}]",
        )
    row(
        f"  trained on {v['sizes']['train']} utts of the other voices for",
        f"{v['minutes']} min",
    )
