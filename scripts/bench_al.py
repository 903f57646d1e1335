"""Active learning against random selection on the same pool, seeds and budget.

Each arm (a strategy) runs the real loop (training, scoring, Label Studio, the simulated
annotator) once per seed; every run shares one Label Studio server but has its own projects.
The benchmark reports, per arm and seed, the human labels needed to reach a target WER (and a
target intent accuracy), interpolated on the learning curve, and the saving of each arm
against random as a ratio with its spread over seeds. A seed counts in that saving only where
the arm and random selected the same number of labels by the end (unequal budgets are refused,
with the reason) and both reached the target; a seed where the arm never reached it is
censored and listed apart with the bound it implies (a saving of at most 0). Writes
OUT/bench_al.json (``vs_random_legend`` says what each field means) and OUT/bench_al.png and
prints the tables.

    python scripts/bench_al.py --seed-labelled C/seed.jsonl --pool C/pool.jsonl --dev C/dev.jsonl \\
        --test C/test.jsonl --answers C/pool_answers.jsonl --schema C/corpus.json --out runs/bench_al \\
        --seeds 0 1 2 --rounds 4 --batch 100 --target-wer 0.3 --target-intent 0.9
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from earmark.core.config import save_config
from earmark.loop.base import Base, build_base, load_base_config
from earmark.loop.config import LoopConfig, load_loop_config
from earmark.loop.curves import plot_arms
from earmark.loop.effort import print_effort
from earmark.loop.noise import compare_noise, print_noise, retrain_last_round
from earmark.loop.rounds import run_loop
from earmark.loop.savings import (
    labels_to_reach,
    report_vs_random,
    selected_budget,
    target_keys,
)
from earmark.loop.state import RunFolder, copy_trained_round
from earmark.loop.warmup import rank_check_history
from labelling.process import start, stop
from labelling.settings import Paths, load_studio_config

NOISE_SEED = 1000  # the noise floor's training seed is this plus the benchmark seed


def parse_arm(spec: str) -> tuple[str, str, list[str]]:
    """``random``, ``combined`` or ``LABEL=STRATEGY:KEY=VALUE,KEY=VALUE`` (an arm with its own
    loop-config overrides, e.g. ``warmup=combined:selection.min_rank_correlation=0.3``)
    -> (label, strategy, overrides)."""
    if "=" not in spec.split(":", 1)[0]:
        return spec, spec, []
    label, rest = spec.split("=", 1)
    strategy, _, tail = rest.partition(":")
    overrides = [o for o in tail.split(",") if o]
    if not label or not strategy or any("=" not in o for o in overrides):
        raise SystemExit(f"--strategies: cannot read arm {spec!r} (LABEL=STRATEGY:KEY=VALUE,...)")
    return label, strategy, overrides


def share_first_round(args: argparse.Namespace, strategy: str, seed: int, run: Path) -> None:
    """Start every arm of a seed from the same first round (models trained on the seed set
    alone): copy it from an arm that has trained it. Training the same thing twice would
    cost minutes and add noise that is not the strategies' doing (under a time budget two
    runs of one recipe differ); the loop treats a round with metrics as trained."""
    if RunFolder(run).round(1).trained:
        return
    for other in args.strategies:
        src = RunFolder(args.out / "runs" / f"{other}-s{seed}").round(1)
        if other != strategy and src.trained:
            copy_trained_round(src, RunFolder(run))
            print(f"[{strategy}-s{seed}] round 1 shared with {other}-s{seed}", file=sys.stderr)
            return


def data_for(args: argparse.Namespace, seed: int) -> dict[str, str]:
    """The loop's ``data`` for ``seed``: the manifests given, or with ``--slurp`` this seed's
    own split of SLURP into text rows (``earmark corpus split``: seed, dev, test, the rest as
    the pool)."""
    if args.base:
        return base_for(args, seed).loop_data()
    if not args.slurp:
        return {"seed": args.seed_labelled, "pool": args.pool, "dev": args.dev,
                "test": args.test, "answers": args.answers, "schema": args.schema or ""}  # fmt: skip
    from earmark.corpus.importers import import_slurp
    from earmark.corpus.split import split_manifest

    manifest = import_slurp(Path(args.slurp), args.out / "data" / "slurp_import").manifest
    sizes = dict(zip(("seed_size", "dev_size", "test_size"), args.slurp_split, strict=True))
    files = split_manifest(manifest, args.out / "data" / f"s{seed}", seed=seed, **sizes)
    return files.loop_data()


def base_for(args: argparse.Namespace, seed: int) -> Base:
    """``earmark base`` of ``--base`` for ``seed`` (or for ``--base-seed``, shared by every
    seed): built once, then reused from its cache."""
    seed = seed if args.base_seed is None else args.base_seed
    say = lambda m: print(f"[base-s{seed}] {m}", file=sys.stderr, flush=True)  # noqa: E731
    return build_base(load_base_config(args.base, []), seed, say)


def minute_overrides(args: argparse.Namespace) -> list[str]:
    """The training budgets given on the command line (the rest stay the config's)."""
    keys = {"asr_first_minutes": ["asr.first_round_minutes"], "asr_minutes": ["asr.minutes"],
            "nlu_minutes": ["nlu.first_round_minutes", "nlu.minutes"]}  # fmt: skip
    return [f"{k}={v}" for a, ks in keys.items() if (v := getattr(args, a)) is not None for k in ks]


def arm_config(
    args: argparse.Namespace, server_ws: Path, port: int, arm: str, seed: int
) -> tuple[LoopConfig, Path]:
    """The loop config of ``arm`` on ``seed`` and its run folder (its studio config written)."""
    name = f"{arm}-s{seed}"
    strategy, arm_overrides = args.arms[arm]
    run = args.out / "runs" / name
    studio_paths = Paths.of(run)
    # Share the server: its admin secrets and address, refreshed every time (a resumed
    # benchmark starts a new server process); the arm's own annotator secret is kept.
    studio_paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Paths.of(server_ws).secrets, studio_paths.secrets, dirs_exist_ok=True)
    shutil.copy(Paths.of(server_ws).server_json, studio_paths.server_json)
    studio_cfg = load_studio_config(
        None,
        # its own projects and its own annotator account (whose password lives in this
        # run's secrets; the server's secrets only hold the admin's)
        [f"server.port={port}", f"projects.transcription_title=bench {name} transcription",
         f"projects.understanding_title=bench {name} understanding",
         f"server.annotator_email=annotator-{name}@earmark.local"],
    )  # fmt: skip
    save_config(studio_cfg, run / "studio.yaml")
    overrides = [f"data.{k}={v}" for k, v in data_for(args, seed).items()] + [
        f"batch={args.batch}", f"seed={seed}", f"selection.strategy={strategy}",
        f"selection.diverse={str(strategy != 'random').lower()}", f"stopping.rounds={args.rounds}",
        "stopping.patience=0", f"studio_config={run / 'studio.yaml'}",
        *minute_overrides(args), *arm_overrides,
    ]  # fmt: skip
    if args.base:  # round 1 starts from the base; the test is reported per domain too
        overrides += [*base_for(args, seed).loop_overrides(), "eval_by=[domain]"]
    return load_loop_config(args.config, overrides), run


def run_arm(
    args: argparse.Namespace, server_ws: Path, port: int, arm: str, seed: int
) -> list[dict[str, Any]]:
    cfg, run = arm_config(args, server_ws, port, arm, seed)
    share_first_round(args, arm, seed, run)
    run_loop(cfg, run, say=lambda m: print(f"[{arm}-s{seed}] {m}", file=sys.stderr, flush=True))
    return list(json.loads(RunFolder(run).metrics.read_text()))


def noise_floor(args: argparse.Namespace, server_ws: Path, seed: int) -> dict[str, Any]:
    """Random's last round on ``seed`` trained again with another training seed (the same
    labels, start and recipe: ``earmark.loop.noise``); cached in OUT/noise/sN."""
    cfg, run = arm_config(args, server_ws, args.port, "random", seed)
    return retrain_last_round(
        cfg, run, args.out / "noise" / f"s{seed}", seed=NOISE_SEED + seed,
        say=lambda m: print(f"[noise-s{seed}] {m}", file=sys.stderr, flush=True),
    )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name in ("seed-labelled", "pool", "dev", "test", "answers"):
        p.add_argument(f"--{name}", default="", help="a manifest (or give --slurp)")
    p.add_argument(
        "--slurp",
        default="",
        help="SLURP JSONL instead of manifests: the NLU half alone on real requests, each seed "
        "its own split (--slurp-split)",
    )
    p.add_argument(
        "--slurp-split",
        nargs=3,
        type=int,
        default=[200, 200, 400],
        metavar=("SEED", "DEV", "TEST"),
        help="sizes of the labelled seed set, dev and test; the rest is the pool",
    )
    p.add_argument(
        "--base",
        default="",
        help="the deployment scenario: an `earmark base` config (configs/base_deploy.yaml); "
        "each seed's corpus and base models come from it (built once, cached), round 1 starts "
        "from the base and the test is reported per domain too",
    )
    p.add_argument(
        "--base-seed",
        type=int,
        default=None,
        help="with --base: every seed starts from this seed's corpus and base (one base to "
        "build; the seeds still differ in pool samples, selections and replayed seed rows)",
    )
    p.add_argument("--schema", default="")
    p.add_argument("--config", default=None, help="base loop config (defaults otherwise)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_al"))
    p.add_argument(
        "--strategies",
        nargs="+",
        default=["random", "combined"],
        help="arms: a strategy name, or LABEL=STRATEGY:KEY=VALUE,... for one with its own "
        "loop-config overrides",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batch", type=int, default=100)
    for flag in ("asr-first-minutes", "asr-minutes", "nlu-minutes"):
        p.add_argument(f"--{flag}", type=float, default=None, help="default: the --config's")
    p.add_argument(
        "--target-wer",
        type=float,
        default=None,
        help="WER to reach (default: the random arm's final WER on each seed)",
    )
    p.add_argument(
        "--target-intent",
        type=float,
        default=None,
        help="intent accuracy to reach (default: the random arm's final value on each seed)",
    )
    p.add_argument("--port", type=int, default=8095)
    p.add_argument(
        "--noise-floor",
        action="store_true",
        help="also train random's last round again on the same labels with another training "
        "seed, per seed: the spread no strategy caused, printed beside the savings",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="recompute the table, JSON and plot from the run folders already in --out",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="with --report-only: cut every curve at this many selected labels (the "
        "saving a smaller budget would have shown); writes bench_al_budgetN.json/png",
    )
    args = p.parse_args()
    if args.budget is not None and not args.report_only:
        p.error("--budget reads finished runs: give --report-only too")
    given = [args.seed_labelled, args.pool, args.dev, args.test, args.answers]
    if not args.report_only and not args.slurp and not args.base and not all(given):
        p.error("give --seed-labelled, --pool, --dev, --test and --answers, --slurp or --base")
    args.out.mkdir(parents=True, exist_ok=True)
    args.arms = {label: (strategy, ovr) for label, strategy, ovr in map(parse_arm, args.strategies)}
    args.strategies = list(args.arms)

    curves: dict[str, dict[int, list[dict[str, Any]]]] = {s: {} for s in args.strategies}
    if args.report_only:
        for strategy in args.strategies:
            for seed in args.seeds:
                path = RunFolder(args.out / "runs" / f"{strategy}-s{seed}").metrics
                if path.is_file():
                    rows = list(json.loads(path.read_text()))
                    cut = rows[0]["labelled"] + (args.budget if args.budget is not None else 1e9)
                    curves[strategy][seed] = [r for r in rows if r["labelled"] <= cut]
    else:
        server_ws = args.out / "server"
        studio_cfg = load_studio_config(None, [f"server.port={args.port}"])
        start(server_ws, studio_cfg, say=lambda m: print(m, file=sys.stderr))
        try:
            for seed in args.seeds:
                for strategy in args.strategies:
                    curves[strategy][seed] = run_arm(args, server_ws, args.port, strategy, seed)
                if args.noise_floor and "random" in args.strategies:
                    noise_floor(args, server_ws, seed)
        finally:
            stop(server_ws)
    report(args, curves)


def final_mean(by_seed: dict[int, list[dict[str, Any]]], key: str) -> float | None:
    values = [rows[-1][key] for rows in by_seed.values() if rows and rows[-1].get(key) is not None]
    return float(np.mean(values)) if values else None


def report(args: argparse.Namespace, curves: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    """Labels to reach each target per arm and seed, the ratio to random, table, JSON, plot.

    Labels are counted two ways: all human-labelled training utterances (seed set included)
    and only those the loop selected beyond the seed set (what the strategy decided); the
    saving is reported on the selected ones, as in the literature.
    """
    random_arm = curves.get("random", {})
    given = {"wer": args.target_wer, "intent_accuracy": args.target_intent}

    def target_for(key: str, seed: int) -> float | None:
        """The given target, else what random reached at the end of this seed's budget."""
        if given.get(key) is not None:
            return float(given[key])  # type: ignore[arg-type]
        rows = random_arm.get(seed)
        if rows and rows[-1].get(key) is not None:
            return float(rows[-1][key])
        return final_mean(random_arm, key)

    seeds = sorted({s for by_seed in curves.values() for s in by_seed})
    keys = target_keys(curves)
    per_seed = {key: {str(s): target_for(key, s) for s in seeds} for key in keys}
    result: dict[str, Any] = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "targets": per_seed,
        "arms": {},
    }
    targets = [(key, key.startswith("wer")) for key in keys]
    for strategy, by_seed in curves.items():
        arm: dict[str, Any] = {"curves": {str(s): rows for s, rows in by_seed.items()}}
        for key, lower in targets:
            reached = {}
            for s, rows in by_seed.items():
                t = per_seed[key][str(s)]
                reached[str(s)] = None if t is None else labels_to_reach(rows, key, t, lower)
            seed_size = {str(s): rows[0]["labelled"] for s, rows in by_seed.items() if rows}
            arm[f"labels_to_{key}"] = reached
            arm[f"selected_to_{key}"] = {
                s: (v - seed_size[s] if v is not None else None) for s, v in reached.items()
            }
        arm["rank_checks"] = {
            str(s): rank_check_history(args.out / "runs" / f"{strategy}-s{s}") for s in by_seed
        }
        result["arms"][strategy] = arm
    print(
        "targets per seed (default: random's final value on that seed): "
        + ", ".join(
            f"seed {s} WER {_f(per_seed['wer'][str(s)])} intent "
            f"{_f(per_seed['intent_accuracy'][str(s)])}"
            for s in seeds
        )
    )
    print(
        "per seed: sel->WER, sel->intent = labels selected beyond the seed set when the curve "
        "reached the seed's target (- never); selected = the run's budget (selected at the "
        "end); final labels include the seed set"
    )
    print(
        f"{'arm':<22}{'seed':>5}{'sel->WER':>10}{'sel->intent':>13}{'selected':>10}"
        f"{'final labels':>14}{'final WER':>11}{'final intent':>14}  test conf-WER Spearman "
        "by round"
    )
    for strategy, arm in result["arms"].items():
        for seed, rows in arm["curves"].items():
            last = rows[-1]
            lw = arm.get("selected_to_wer", {}).get(seed)
            li = arm.get("selected_to_intent_accuracy", {}).get(seed)
            print(
                f"{strategy:<22}{seed:>5}{_f(lw):>10}{_f(li):>13}"
                f"{_i(selected_budget(rows)):>10}{last['labelled']:>14}"
                f"{_f(last.get('wer')):>11}{_f(last.get('intent_accuracy')):>14}  "
                + " ".join(_f(r.get("asr_confidence_spearman")) for r in rows)
            )
    print_effort(args.out, result["arms"])
    if "random" in result["arms"]:
        report_vs_random(args.seeds, curves, result)
    retrained = {
        s: json.loads(f.read_text())
        for s in seeds
        if (f := args.out / "noise" / f"s{s}" / "metrics.json").is_file()
    }
    if retrained:
        finals = {s: rows[-1] for s, rows in random_arm.items() if rows}
        result["noise_floor"] = compare_noise(finals, retrained, keys)
        print_noise(result["noise_floor"])
    name = "bench_al" if getattr(args, "budget", None) is None else f"bench_al_budget{args.budget}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot_arms(curves, args.out / f"{name}.png")
    print(f"wrote {args.out / f'{name}.json'} and {args.out / f'{name}.png'}")


def _i(x: int | None) -> str:
    return "-" if x is None else str(x)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()
