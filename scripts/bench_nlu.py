"""NLU benchmark: real SLURP requests (few-shot curve, cross-validation, ASR input, speed)
and the built-in corpus.

Prints a table and writes JSON (``--out``/bench_nlu.json). Parts (``--parts``, in order):

- ``curve``, ``cv``, ``asr``, ``speed``: SLURP ``devel.jsonl`` (``scripts/bench_nlu_slurp.py``
  says how each is split and measured). Targets (issue 15): intent accuracy >= 0.65 from 200
  labelled requests on the rest of devel; 5-fold CV intent accuracy >= 0.85, entity F1 >= 0.75,
  ECE <= 0.05 on the held-out folds; a warm-started round on 1,000 requests <= 30 s and
  predictions over 10,000 requests <= 30 s on 2 cores. Next to them the SLURP paper's gold-text
  baseline (84.84% intent accuracy, 78.19 entity F1, trained on 11,514 sentences).
  ``asr`` needs ``--asr-checkpoint`` and ``--asr-spoken`` (from ``scripts/bench_asr.py --parts
  openvocab``: ``<work>/openvocab/ckpt_lm_text_open`` and ``<work>/openvocab/spoken_test/
  manifest.jsonl``).
- ``builtin``, ``builtin-seed``: the built-in corpus (gold text), trained on seed + pool
  answers or on the seed alone, best epoch on dev, scored on test. Targets: intent accuracy
  >= 0.97, entity F1 >= 0.95. The texts come from ``--corpus`` (``earmark corpus synth``) or,
  without it, from the corpus plan without rendering audio. With ``--asr-checkpoint`` and
  ``--corpus``, also on ASR output of the test audio.

Usage: python scripts/bench_nlu.py --parts curve,cv,speed [--set optim.lr=3e-4 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SLURP = REPO.parent / "shared" / "data" / "slurp" / "devel.jsonl"
PAPER = {"intent_accuracy": 0.8484, "entity_f1": 0.7819}


def builtin_splits(corpus: Path | None, work: Path) -> dict[str, Path]:
    """Manifests train (seed + pool answers), seed, dev, test of the built-in corpus."""
    from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
    from earmark.core.records import Utterance

    out = work / "builtin"
    out.mkdir(parents=True, exist_ok=True)
    if corpus is not None:
        seed = read_manifest(corpus / "seed.jsonl")
        write_manifest(out / "train.jsonl", seed + read_manifest(corpus / "pool_answers.jsonl"))
        write_manifest(out / "seed.jsonl", seed)
        return {
            "train": out / "train.jsonl",
            "seed": out / "seed.jsonl",
            "dev": corpus / "dev.jsonl",
            "test": corpus / "test.jsonl",
        }
    from earmark.corpus.synth import ENGINES, SynthConfig, plan_corpus

    plan = plan_corpus(SynthConfig(), 0, list(ENGINES))
    by_split: dict[str, list[ManifestRow]] = {"train": [], "seed": [], "dev": [], "test": []}
    for u in plan:
        row = ManifestRow(Utterance(u.id), u.label)
        if u.split in ("seed", "pool"):
            by_split["train"].append(row)
        if u.split != "pool":
            by_split[u.split].append(row)
    for name, rows in by_split.items():
        write_manifest(out / f"{name}.jsonl", rows)
    return {name: out / f"{name}.jsonl" for name in by_split}


def run(
    name: str, splits: dict[str, Path], work: Path, overrides: list[str], asr: Path | None = None
) -> dict[str, Any]:
    from earmark.core.manifest import read_manifest
    from training.nlu.config import load_nlu_config
    from training.nlu.evaluate import evaluate_nlu
    from training.nlu.train import train_nlu

    config = load_nlu_config(None, tuple(overrides))
    ckpt = work / "checkpoints" / name
    start = time.perf_counter()
    train_nlu(
        config,
        splits["train"],
        splits["dev"],
        ckpt,
        log=lambda line: print(f"  [{name}] {line}", flush=True),
    )
    train_s = time.perf_counter() - start
    test_rows = read_manifest(splits["test"])
    result: dict[str, Any] = {
        "name": name,
        "checkpoint": str(ckpt),
        "n_train": len(splits["train"].read_text().splitlines()),
        "n_test": len(test_rows),
        "train_seconds": round(train_s, 1),
        "overrides": overrides,
        "gold_text": evaluate_nlu(ckpt, test_rows),
    }
    if asr is not None:
        start = time.perf_counter()
        result["asr"] = evaluate_nlu(ckpt, test_rows, asr_checkpoint=asr)
        result["asr"]["seconds"] = round(time.perf_counter() - start, 1)
        result["asr_intent_gap_points"] = round(
            100
            * (
                result["gold_text"]["intent_accuracy"]["value"]
                - result["asr"]["intent_accuracy"]["value"]
            ),
            2,
        )
    return result


def cell(m: dict[str, float]) -> str:
    return f"{100 * m['value']:.2f} [{100 * m['low']:.1f}, {100 * m['high']:.1f}]"


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="NLU benchmark (percent, 95% bootstrap CI; SLURP devel unless said)")
    for col in ("run", "input", "labelled", "intent acc", "entity F1", "SLU-F1", "ECE", "train s"):
        table.add_column(col)

    def add(name: str, source: str, r: dict[str, Any]) -> None:
        table.add_row(
            name, source, str(r.get("n_labelled", r.get("n_train", ""))),
            cell(r["intent_accuracy"]), cell(r["entity_f1"]), cell(r["slu_f1"]), cell(r["ece"]),
            str(r.get("train_seconds", "")),
        )  # fmt: skip

    for r in results.get("curve", {}).get("runs", []):
        add(f"curve n={r['n_labelled']} seed {r['seed']}", "gold", r)
    if few := results.get("curve", {}).get("fewshot_200"):
        table.add_row(
            "200 labelled: mean / worst seed", "gold", "200",
            f"{100 * few['intent_accuracy_mean']:.2f} / {100 * few['intent_accuracy_min']:.2f}"
            f" (target 65, {'met' if few['met'] else 'NOT met'})", "", "", "", "",
        )  # fmt: skip
    if cv := results.get("cv"):
        for r in cv["runs"]:
            add(f"cv fold {r['fold']}", "gold", r)
        m = cv["mean"]
        table.add_row(
            f"{cv['folds']}-fold mean (sd)", "gold", "",
            *(f"{100 * m[k]['mean']:.2f} ({100 * m[k]['sd']:.1f})"
              for k in ("intent_accuracy", "entity_f1", "slu_f1", "ece")), "",
        )  # fmt: skip
        table.add_row(
            "SLURP paper (11,514 train)", "gold", "11514",
            f"{100 * PAPER['intent_accuracy']:.2f}", f"{100 * PAPER['entity_f1']:.2f}", "", "", "",
        )  # fmt: skip
    if a := results.get("asr"):
        for name, r in a["nlu"].items():
            add(f"spoken, NLU {name}", "gold", {**r["gold_text"], "n_labelled": ""})
            add(
                f"spoken, NLU {name}",
                f"ASR (WER {a['asr_wer']:.3f})",
                {**r["asr"], "n_labelled": ""},
            )
    if sp := results.get("speed"):
        add("warm round (1,000 labelled)", "gold", sp["round"])
        table.add_row(
            f"predict {sp['pool_n']:,} requests", "", "", "", "", "", "",
            f"{sp['predict_seconds']} s",
        )  # fmt: skip
    for r in results.get("builtin", []):
        for key in ("gold_text", "asr"):
            if key in r:
                add(f"built-in {r['name']}", key, {**r[key], "n_train": r["n_train"],
                    "train_seconds": r["train_seconds"]})  # fmt: skip
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "bench_nlu", help="work folder + JSON"
    )
    parser.add_argument(
        "--parts", default="curve,cv,speed", help="curve,cv,asr,speed,builtin,builtin-seed"
    )
    parser.add_argument("--slurp", type=Path, default=SLURP, help="SLURP devel.jsonl")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="NLU config override for every run (repeatable)",
    )
    parser.add_argument("--curve-sizes", default="100,200,500,1000")
    parser.add_argument("--fewshot-seeds", default="0,1,2", help="seeds of the 200 point")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", default=None, help="e.g. 0,1: a cheaper partial CV")
    parser.add_argument("--asr-checkpoint", type=Path, default=None)
    parser.add_argument("--asr-spoken", type=Path, default=None, help="spoken SLURP manifest")
    parser.add_argument("--noisy-copies", type=int, default=1, help="for the asr part's 2nd NLU")
    parser.add_argument("--round-seconds", type=float, default=20.0, help="warm round budget")
    parser.add_argument("--corpus", type=Path, default=None, help="built-in corpus folder")
    args = parser.parse_args(argv)  # fmt: skip

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_nlu_slurp as sl

    work: Path = args.out
    work.mkdir(parents=True, exist_ok=True)
    out_json = work / "bench_nlu.json"
    results: dict[str, Any] = {"overrides": args.set}

    def log(line: str) -> None:
        print(line, flush=True)

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    rows = sl.slurp_rows(args.slurp, work) if {"curve", "cv", "asr", "speed"} & set(parts) else []
    for part in parts:
        start = time.perf_counter()
        if part == "curve":
            sizes = [int(x) for x in args.curve_sizes.split(",")]
            seeds = [int(x) for x in args.fewshot_seeds.split(",")]
            results["curve"] = sl.part_curve(rows, work, sizes, seeds, args.set, log)
        elif part == "cv":
            only = [int(x) for x in args.only_folds.split(",")] if args.only_folds else None
            results["cv"] = sl.part_cv(rows, work, args.folds, only, args.set, log)
        elif part == "asr":
            if args.asr_checkpoint is None or args.asr_spoken is None:
                raise SystemExit("--parts asr needs --asr-checkpoint and --asr-spoken")
            results["asr"] = sl.part_asr(
                rows, work, args.asr_checkpoint, args.asr_spoken, args.noisy_copies, args.set, log
            )
        elif part == "speed":
            results["speed"] = sl.part_speed(rows, work, args.round_seconds, args.set, log)
        elif part in ("builtin", "builtin-seed"):
            builtin = builtin_splits(args.corpus, work)
            if part == "builtin":
                asr = args.asr_checkpoint if args.corpus is not None else None
                r = run("builtin", builtin, work, args.set, asr)
                r["targets"] = {"intent_accuracy": 0.97, "entity_f1": 0.95}
                r["targets_met"] = (
                    r["gold_text"]["intent_accuracy"]["value"] >= 0.97
                    and r["gold_text"]["entity_f1"]["value"] >= 0.95
                )
            else:  # the loop's first round: the 300 seed sentences only
                r = run("builtin-seed", {**builtin, "train": builtin["seed"]}, work, args.set)
            results.setdefault("builtin", []).append(r)
        else:
            raise SystemExit(f"unknown part {part!r}")
        results.setdefault("seconds", {})[part] = round(time.perf_counter() - start, 1)
        out_json.write_text(json.dumps(results, indent=2))  # partial results survive
    print_table(results)
    print(f"JSON -> {out_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
