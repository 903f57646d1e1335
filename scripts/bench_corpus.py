"""Corpus benchmark: how long ``earmark corpus synth`` takes for the default corpus.

Builds the default corpus (seed 300, pool 2,700, dev 300, test 500 = 3,800 utterances) from
scratch into ``--work``/corpus, then again (everything reused), checks every manifest with
its audio, and measures a sequential baseline (one worker) on the first ``--baseline-n``
utterances in the same run, so the parallel speed-up is a ratio measured under the same load.
Target: >= 3,000 utterances in under 2 minutes on 2 cores.

Prints a table and writes ``--work``/bench_corpus.json. The cores may be shared with other
jobs: the load average before and after is recorded beside the figures, and so is the CPU
time of the build (this process and the engine processes it started): CPU time / 2 is a
lower bound on the wall time two otherwise idle cores would need.

    python scripts/bench_corpus.py [--work runs/bench_corpus] [--seed 0] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from earmark.core.config import load_config, to_dict
from earmark.core.manifest import validate_manifest
from earmark.corpus.synth import SPLITS, SplitSizes, SynthConfig, build_corpus

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = ("seed", "pool", "pool_answers", "dev", "test")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def fresh(path: Path) -> Path:
    """Remove a previous benchmark corpus (only one this script wrote: it has corpus.json)."""
    if path.exists():
        if not (path / "corpus.json").is_file():
            raise SystemExit(f"{path} exists and is not a corpus folder; choose another --work")
        shutil.rmtree(path)
    return path


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the engines), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_build(out: Path, config: SynthConfig, seed: int) -> dict[str, Any]:
    cpu = cpu_seconds()
    start = time.perf_counter()
    summary = build_corpus(out, config, seed)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    total = summary.info["total"]
    audio_s = summary.info["audio_hours"] * 3600
    return {
        "utterances": total,
        "rendered": summary.rendered,
        "reused": summary.reused,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 1),
        "utterances_per_s": round(total / seconds, 1),
        "audio_seconds_per_wall_second": round(audio_s / seconds, 1),
        "info": summary.info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench_corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "corpus.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--baseline-n", type=int, default=200)
    args = parser.parse_args()
    config = load_config(SynthConfig, args.config, args.overrides)
    args.work.mkdir(parents=True, exist_ok=True)

    load_before = load()
    full = timed_build(fresh(args.work / "corpus"), config, args.seed)
    load_after = load()
    again = timed_build(args.work / "corpus", config, args.seed)
    problems = {
        name: len(validate_manifest(args.work / "corpus" / f"{name}.jsonl", check_audio=True))
        for name in MANIFESTS
    }

    n = args.baseline_n
    small = dataclasses.replace(config, sizes=SplitSizes(seed=0, pool=n, dev=0, test=0))
    sequential = timed_build(
        fresh(args.work / "baseline_1"), dataclasses.replace(small, workers=1), args.seed
    )
    parallel = timed_build(fresh(args.work / "baseline_n"), small, args.seed)

    info = full["info"]
    engines = ", ".join(f"{k} {v['version']} ({v['kind']})" for k, v in info["engines"].items())
    per_engine = {
        e: sum(c for v, c in info["voices"].items() if v.startswith(e)) for e in ("espeak", "flite")
    }
    result = {
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "sizes": info["sizes"],
        "engines": info["engines"],
        "voices": info["n_voices"],
        "utterances_per_engine": per_engine,
        "audio_hours": info["audio_hours"],
        "build": {k: v for k, v in full.items() if k != "info"},
        "rebuild": {k: v for k, v in again.items() if k != "info"},
        "manifest_problems": problems,
        "baseline": {
            "utterances": n,
            "sequential_s": sequential["seconds"],
            "parallel_s": parallel["seconds"],
            "workers": config.workers,
            "speedup": round(sequential["seconds"] / parallel["seconds"], 2),
        },
        # Wall time under whatever else runs here, and the CPU-time bound for 2 idle cores.
        "target_met_wall": full["utterances"] >= 3000 and full["seconds"] < 120,
        "target_met_cpu_on_2_cores": full["utterances"] >= 3000 and full["cpu_seconds"] / 2 < 120,
        "config": to_dict(config),
    }
    out = args.work / "bench_corpus.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    split_sizes = ", ".join(f"{s} {info['sizes'][s]}" for s in SPLITS)
    rows = [
        (
            "utterances",
            f"{full['utterances']} ({split_sizes})",
        ),
        ("voices", f"{info['n_voices']} (utterances: {per_engine})"),
        ("engines", engines),
        ("audio", f"{info['audio_hours']:.2f} h"),
        (
            "build from scratch",
            f"{full['seconds']:.1f} s ({full['utterances_per_s']} utt/s, "
            f"{full['audio_seconds_per_wall_second']}x real time)",
        ),
        (
            "CPU time (all processes)",
            f"{full['cpu_seconds']:.1f} s (/ 2 cores = {full['cpu_seconds'] / 2:.0f} s)",
        ),
        ("rebuild (all reused)", f"{again['seconds']:.1f} s"),
        ("manifest problems", str(sum(problems.values()))),
        (f"baseline {n} utt, 1 worker", f"{sequential['seconds']:.1f} s"),
        (
            f"same, {config.workers} workers",
            f"{parallel['seconds']:.1f} s (x{result['baseline']['speedup']})",
        ),
        ("cpus / load before, after", f"{os.cpu_count()} / {load_before}, {load_after}"),
        (
            ">= 3,000 in < 120 s (wall; CPU / 2)",
            f"{'yes' if result['target_met_wall'] else 'NO'}; "
            f"{'yes' if result['target_met_cpu_on_2_cores'] else 'NO'}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'corpus benchmark':<{width}}  value")
    print("-" * (width + 50))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
