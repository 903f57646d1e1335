"""How many labels a strategy saved against random selection, from learning curves.

A curve is a list of rows ``{"labelled": n, <metric>: value, ...}`` (a loop run's
``metrics.json``); the first row is the seed set. ``labels_to_reach`` reads where a curve first
reaches a target; ``compare_to_random`` turns one seed's pair of curves into a saving, refusing
unequal budgets and keeping censored seeds apart; ``summarise_vs_random`` pools the seeds.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def labels_to_reach(
    rows: list[dict[str, Any]], key: str, target: float, lower_is_better: bool
) -> float | None:
    """Human labels at which the curve first reaches ``target`` (linear interpolation); None if never."""
    pts = [(r["labelled"], r[key]) for r in rows if r.get(key) is not None]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        reached0 = y0 <= target if lower_is_better else y0 >= target
        reached1 = y1 <= target if lower_is_better else y1 >= target
        if reached0:
            return float(x0)
        if reached1:
            return float(x0 + (x1 - x0) * (target - y0) / (y1 - y0)) if y1 != y0 else float(x1)
    if pts and (pts[-1][1] <= target if lower_is_better else pts[-1][1] >= target):
        return float(pts[-1][0])
    return None


VS_RANDOM_LEGEND = {
    "per_seed": "seed -> status (reached, censored, refused, not_comparable), selected (the "
    "arm's selected labels to reach the target, None: never), random_selected, budget and "
    "random_budget (selected labels at the end), ratio and saving (reached only), "
    "saving_at_most (censored only), why (refused, not_comparable, censored)",
    "mean_ratio": "mean of arm / random selected labels over the seeds that reached the "
    "target (None: none did)",
    "saving": "1 - mean_ratio: the point estimate, over seeds_reached only",
    "spread": "standard deviation (population) of the ratio over seeds_reached",
    "ratio_per_seed": "seed -> ratio, seeds_reached only",
    "seeds_reached": "seeds in the point estimate",
    "seeds_censored": "seed -> the most the arm can have saved (<= 0): it never reached the "
    "target within a budget equal to random's; not in the point estimate",
    "seeds_refused": "seed -> why: the arm's budget differs from random's on that seed, so "
    "labels to reach the target are not comparable",
    "seeds_not_comparable": "seed -> why: no run, or random never reached the target",
}


def selected_budget(rows: list[dict[str, Any]] | None) -> int | None:
    """Labels the run selected beyond its seed set by its last round (None: no run)."""
    if not rows:
        return None
    return int(rows[-1]["labelled"] - rows[0]["labelled"])


def compare_to_random(
    ours: float | None, base: float | None, budget: int | None, base_budget: int | None
) -> dict[str, Any]:
    """One seed's comparison of an arm with random on one target.

    ``ours`` and ``base`` are the selected labels the arm and random needed to reach the
    target (None: never); ``budget`` and ``base_budget`` what each had selected at the end
    (None: no run). Labels-to-reach compare only on equal budgets: an arm cut short (resumed,
    out of pool, a smaller budget) that never reached the target says nothing about what it
    would have needed, so unequal budgets are refused whatever the curves did. An arm that
    never reached it is censored: it needed more than its whole budget, which bounds its
    saving at ``1 - budget / base`` (<= 0 since random reached the target within the same
    budget); that bound is kept apart and never counted as a saving.
    """
    c: dict[str, Any] = {
        "status": "not_comparable", "selected": ours, "random_selected": base,
        "budget": budget, "random_budget": base_budget,
        "ratio": None, "saving": None, "saving_at_most": None, "why": None,
    }  # fmt: skip
    if budget is None or base_budget is None:
        c["why"] = "no run of this arm on this seed" if budget is None else "no random run"
    elif budget != base_budget:
        c["status"] = "refused"
        c["why"] = f"{budget} selected labels against random's {base_budget}: unequal budgets"
    elif base is None:
        c["why"] = "random never reached the target"
    elif base <= 0:
        c["why"] = "random reached the target on the seed set alone"
    elif ours is None:
        c["status"] = "censored"
        c["saving_at_most"] = min(0.0, 1 - budget / base)
        c["why"] = f"never reached within its {budget} selected labels"
    else:
        c["status"] = "reached"
        c["ratio"] = ours / base
        c["saving"] = 1 - c["ratio"]
    return c


def summarise_vs_random(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The point estimate over the seeds that reached the target; the rest listed apart."""

    def having(status: str, field: str) -> dict[str, Any]:
        return {s: c[field] for s, c in per_seed.items() if c["status"] == status}

    ratios = having("reached", "ratio")
    mean = float(np.mean(list(ratios.values()))) if ratios else None
    return {
        "saving": None if mean is None else 1 - mean,
        "mean_ratio": mean,
        "spread": float(np.std(list(ratios.values()))) if ratios else None,
        "ratio_per_seed": ratios,
        "seeds_reached": list(ratios),
        "seeds_censored": having("censored", "saving_at_most"),
        "seeds_refused": having("refused", "why"),
        "seeds_not_comparable": having("not_comparable", "why"),
        "per_seed": per_seed,
    }


def summary_line(arm: str, target: str, summary: dict[str, Any]) -> str:
    """One sentence for the table: the point estimate, then each kind of excluded seed."""
    n = len(summary["seeds_reached"])
    head = f"{arm} vs random, selected labels to reach each seed's {target} target: " + (
        f"saving {_f(summary['saving'])} ± {_f(summary['spread'])} (ratio "
        f"{_f(summary['mean_ratio'])}; mean ± sd over {n} seed{'s' if n != 1 else ''} "
        "that reached the target)"
        if n
        else "no saving (no seed where both reached it on equal budgets)"
    )
    parts = [head]
    if summary["seeds_censored"]:
        bounds = ", ".join(f"seed {s} <= {_f(b)}" for s, b in summary["seeds_censored"].items())
        parts.append(f"censored (never reached; a bound, not in the estimate): {bounds}")
    for field, name in (("seeds_refused", "refused"), ("seeds_not_comparable", "not comparable")):
        if summary[field]:
            parts.append(
                f"{name}: " + ", ".join(f"seed {s} ({w})" for s, w in summary[field].items())
            )
    return "; ".join(parts)


def saving_cell(c: dict[str, Any]) -> str:
    """One seed's comparison (``compare_to_random``) in a table cell."""
    if c["status"] == "censored":
        return f"<={_f(c['saving_at_most'])}"
    return _f(c["saving"])


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _i(x: int | None) -> str:
    return "-" if x is None else str(x)


def report_vs_random(
    seeds: list[int], curves: dict[str, dict[int, list[dict[str, Any]]]], result: dict[str, Any]
) -> None:
    """Each arm against random per seed and target: print the table, fill ``result``'s
    ``vs_random_<metric>`` (see ``VS_RANDOM_LEGEND``) from its ``selected_to_<metric>``."""
    print(
        "\nvs random, per seed: selected labels each needed to reach the seed's target "
        "(- never), saving = 1 - arm / random; compared only on equal budgets (selected "
        "labels at the end); a censored seed (arm never reached it) gives a bound, not a "
        "saving"
    )
    print(
        f"{'arm':<22}{'seed':>5}  {'target':<22}{'arm sel':>9}{'random sel':>12}"
        f"{'budget':>8}{'saving':>9}  status"
    )
    for strategy in curves:
        if strategy == "random":
            continue
        for key in target_keys(curves):
            per_seed_vs = {
                seed: compare_to_random(
                    result["arms"][strategy][f"selected_to_{key}"].get(seed),
                    result["arms"]["random"][f"selected_to_{key}"].get(seed),
                    selected_budget(curves[strategy].get(int(seed))),
                    selected_budget(curves["random"].get(int(seed))),
                )
                for seed in map(str, seeds)
            }
            for seed, c in per_seed_vs.items():
                print(
                    f"{strategy:<22}{seed:>5}  {_label(key):<22}{_f(c['selected']):>9}"
                    f"{_f(c['random_selected']):>12}{_i(c['budget']):>8}"
                    f"{saving_cell(c):>9}  {c['status']}" + (f": {c['why']}" if c["why"] else "")
                )
            summary = summarise_vs_random(per_seed_vs)
            result["arms"][strategy][f"vs_random_{key}"] = summary
            print(summary_line(strategy, _label(key), summary))
    result["vs_random_legend"] = VS_RANDOM_LEGEND


def target_keys(curves: dict[str, dict[int, list[dict[str, Any]]]]) -> list[str]:
    """WER and intent accuracy, then the same per test subset the runs logged (``eval_by``,
    e.g. ``wer@domain=source``: the deployment scenario's control and its shifted part)."""
    logged = {
        k for by_seed in curves.values() for rows in by_seed.values() for r in rows for k in r
    }
    subsets = sorted(
        k for k in logged if k.split("@")[0] in ("wer", "intent_accuracy") and "@" in k
    )
    return ["wer", "intent_accuracy", *subsets]


def _label(key: str) -> str:
    """``WER``, ``intent``, ``WER domain=source``..."""
    name, _, subset = key.partition("@")
    return f"{ {'wer': 'WER', 'intent_accuracy': 'intent'}[name] } {subset}".strip()
