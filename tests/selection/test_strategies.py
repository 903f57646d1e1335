"""One contract test run against every strategy, plus what each strategy prefers."""

from __future__ import annotations

import numpy as np
import pytest

from earmark.core.errors import EmptyPoolError, SelectionError
from earmark.selection import (
    STRATEGIES,
    Combined,
    Diverse,
    UtteranceScores,
    make_strategy,
    read_scores,
    write_scores,
)


def make_pool(n: int = 60, seed: int = 1) -> list[UtteranceScores]:
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(n):
        # a few exact ties on purpose
        conf = round(float(rng.random()), 1)
        pool.append(
            UtteranceScores(
                id=f"u{i:03d}",
                asr_confidence=conf,
                asr_entropy=1 - conf,
                nlu_confidence=round(float(rng.random()), 1),
                nlu_margin=round(float(rng.random()), 1),
                nlu_entropy=round(float(rng.random()), 1),
                embedding=tuple(rng.normal(size=4).tolist()),
            )
        )
    return pool


ALL = [(name, False) for name in STRATEGIES] + [(name, True) for name in STRATEGIES]


@pytest.mark.parametrize(
    ("name", "diverse"), ALL, ids=[f"{n}{'+diverse' if d else ''}" for n, d in ALL]
)
def test_strategy_contract(name: str, diverse: bool) -> None:
    pool = make_pool()
    excluded = {f"u{i:03d}" for i in range(0, 60, 3)}  # labelled, queued, flagged, quarantined
    strategy = make_strategy(name, seed=7, diverse=diverse)
    chosen = strategy.select(pool, 10, exclude=excluded)
    assert len(chosen) == 10
    assert len(set(chosen)) == 10
    assert not set(chosen) & excluded
    assert set(chosen) <= {p.id for p in pool}
    # deterministic for a seed; more than the pool holds gives the whole (non-excluded) pool
    assert make_strategy(name, seed=7, diverse=diverse).select(pool, 10, exclude=excluded) == chosen
    everything = strategy.select(pool, 1000, exclude=excluded)
    assert sorted(everything) == sorted({p.id for p in pool} - excluded)
    assert strategy.select(pool, 0, exclude=excluded) == []
    with pytest.raises(EmptyPoolError, match="nothing left to select"):
        strategy.select(pool, 5, exclude={p.id for p in pool})
    with pytest.raises(EmptyPoolError):
        strategy.select([], 5)
    with pytest.raises(SelectionError, match="batch size"):
        strategy.select(pool, -1)


def test_random_depends_on_seed() -> None:
    pool = make_pool()
    assert make_strategy("random", seed=1).select(pool, 10) != make_strategy(
        "random", seed=2
    ).select(pool, 10)


def test_least_confidence_takes_the_least_confident() -> None:
    pool = make_pool()
    chosen = make_strategy("asr-least-confidence").select(pool, 5)
    worst = sorted(p.asr_confidence or 0 for p in pool)[4]
    assert all(next(p for p in pool if p.id == c).asr_confidence <= worst for c in chosen)  # type: ignore[operator]


def test_combined_formula_and_missing_sides() -> None:
    s = Combined(asr_weight=0.5)
    assert s.priority(
        UtteranceScores("a", asr_confidence=0.25, nlu_confidence=1.0)
    ) == pytest.approx(0.5)
    assert s.priority(UtteranceScores("a", asr_confidence=0.4)) == pytest.approx(1 - 0.4**0.5)
    with pytest.raises(SelectionError, match="neither"):
        s.priority(UtteranceScores("a"))


def test_missing_score_is_a_clear_error() -> None:
    with pytest.raises(SelectionError, match="utterance x: no 'nlu_margin' score"):
        make_strategy("nlu-margin").select([UtteranceScores("x", asr_confidence=0.3)], 1)
    with pytest.raises(SelectionError, match="unknown strategy 'best'"):
        make_strategy("best")


def test_diverse_spreads_a_batch_over_clusters() -> None:
    # 20 near-identical hard utterances and 20 spread-out slightly easier ones
    rng = np.random.default_rng(0)
    dupes = [
        UtteranceScores(f"d{i}", asr_confidence=0.1, embedding=(1.0, 0.0, 0.0)) for i in range(20)
    ]
    spread = [
        UtteranceScores(f"s{i}", asr_confidence=0.2, embedding=tuple(rng.normal(size=3).tolist()))
        for i in range(20)
    ]
    pool = dupes + spread
    plain = make_strategy("asr-least-confidence").select(pool, 8)
    assert all(c.startswith("d") for c in plain)
    diverse = Diverse(make_strategy("asr-least-confidence"), factor=5).select(pool, 8)
    assert sum(c.startswith("d") for c in diverse) == 1  # one copy of the hard phrase is enough


def test_scores_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(5)
    write_scores(tmp_path / "s.jsonl", pool)
    back = read_scores(tmp_path / "s.jsonl")
    assert [b.id for b in back] == [p.id for p in pool]
    assert back[0].asr_confidence == pool[0].asr_confidence
