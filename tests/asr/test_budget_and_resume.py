"""The pieces both trainers share (``training.budget``, ``training.schedule``,
``training.result``, the resume rule in ``training.checkpoint``), and that both models' configs
and trainers use them alike. No training here: the trainers' own tests run them."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import typing
from pathlib import Path

import pytest

from earmark.core.errors import ConfigError
from training import budget
from training.budget import BudgetClock
from training.checkpoint import LAST, replace_folder, should_resume
from training.result import TrainResult
from training.schedule import warmup_cosine, warmup_linear


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The clocks ``training.budget`` reads, set by hand."""
    clocks = {"wall": 1000.0, "cpu": 500.0}
    monkeypatch.setattr(budget.time, "perf_counter", lambda: clocks["wall"])
    monkeypatch.setattr(budget.time, "process_time", lambda: clocks["cpu"])
    return clocks


def test_wall_clock_reads_at_each_tick_and_carries_a_resumed_runs_seconds(now) -> None:
    clock = BudgetClock(1.0, "wall", wall=15.0)  # a resumed run that had spent 15 s
    assert clock.used() == 15.0 and clock.fraction() == 0.25
    now["wall"] += 30.0
    now["cpu"] += 500.0  # the wall clock ignores CPU time
    assert clock.used() == 15.0  # until the next tick
    clock.tick()
    assert clock.used() == 45.0 and not clock.spent()
    now["wall"] += 15.0
    clock.tick()
    assert clock.spent() and clock.fraction() == 1.0


def test_cpu_clock_counts_cpu_seconds_per_thread(now) -> None:
    clock = BudgetClock(1.0, "cpu", threads=2, cpu=10.0)
    now["cpu"] += 50.0
    now["wall"] += 1000.0
    clock.tick()
    assert clock.cpu == 60.0 and clock.wall == 1000.0
    assert clock.used() == 30.0 and clock.fraction() == 0.5


def test_without_a_time_budget_progress_follows_the_steps(now) -> None:
    clock = BudgetClock(0.0)
    now["wall"] += 1e6
    clock.tick()
    assert not clock.spent() and clock.fraction() == 0.0
    assert clock.progress(5, 10) == 0.5
    assert clock.progress(20, 10) == 1.0
    assert clock.progress(5, 0) == 0.0  # neither budget: nothing to follow


def test_progress_is_the_time_or_the_steps_whichever_is_further_along() -> None:
    clock = BudgetClock(1.0, wall=45.0)
    assert clock.progress(10, 100) == 0.75
    assert clock.progress(90, 100) == 0.9
    assert BudgetClock(1.0, wall=30.0).progress(10, 1000) == 0.5


def test_an_unknown_clock_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="budget_clock"):
        BudgetClock(1.0, "gpu")  # type: ignore[arg-type]


def test_both_configs_name_and_type_the_budget_alike() -> None:
    from training.asr.config import TrainConfig
    from training.nlu.config import OptimConfig

    for section in (TrainConfig, OptimConfig):
        hints = typing.get_type_hints(section)
        assert hints["max_minutes"] is float and hints["max_steps"] is int
        assert hints["budget_clock"] == budget.Clock
    for section in (TrainConfig(max_minutes=2.0, budget_clock="cpu"), OptimConfig(max_minutes=2.0)):
        assert BudgetClock.of(section, threads=2).limit_s == 120.0


def test_the_loops_minutes_and_the_clis_flags_set_typed_values_and_keep_the_other_limit() -> None:
    from training.asr.config import load_asr_config
    from training.asr.config import with_budget as asr_budget
    from training.nlu.config import load_nlu_config
    from training.nlu.config import with_budget as nlu_budget

    asr = load_asr_config(None, ("train.max_steps=7",))
    assert asr_budget(asr, minutes=1.5).train == dataclasses.replace(asr.train, max_minutes=1.5)
    assert asr_budget(asr, max_steps=3).train.max_minutes == asr.train.max_minutes
    assert asr_budget(asr) == asr
    nlu = load_nlu_config(None, ("optim.max_steps=7",))
    assert nlu_budget(nlu, minutes=2).optim == dataclasses.replace(nlu.optim, max_minutes=2.0)
    assert isinstance(nlu_budget(nlu, minutes=2).optim.max_minutes, float)
    assert nlu_budget(nlu, max_steps=3).optim.max_minutes == nlu.optim.max_minutes


def test_the_old_nlu_budget_key_names_its_new_one() -> None:
    from training.nlu.config import load_nlu_config

    with pytest.raises(ConfigError, match=r"optim\.max_minutes"):
        load_nlu_config(None, ("budget_minutes=1",))


def test_each_schedule_warms_up_to_its_peak_and_decays_to_its_floor() -> None:
    cosine = [warmup_cosine(p / 100, 2.0, warmup=0.1, final_fraction=0.05) for p in range(101)]
    assert cosine[0] == pytest.approx(0.02) and cosine[10] == pytest.approx(2.0)
    assert cosine[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(cosine[10:]))
    linear = [warmup_linear(p / 100, 2.0, warmup=0.1) for p in range(101)]
    assert linear[0] == pytest.approx(0.04) and linear[10] == pytest.approx(2.0)
    assert linear[55] == pytest.approx(2.0 * 0.55) and linear[100] == pytest.approx(0.2)


def test_train_result_is_one_frozen_type() -> None:
    result = TrainResult(Path("ckpt"), {"dev_wer": 0.5})
    assert result.notes == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.checkpoint = Path("other")  # type: ignore[misc]


def test_both_trainers_have_one_signature() -> None:
    from training.asr.train import train_asr
    from training.nlu.train import train_nlu

    shared = ["config", "train", "dev", "out", "init", "resume", "log", "on_progress"]
    for trainer in (train_asr, train_nlu):
        params = inspect.signature(trainer).parameters
        assert list(params)[: len(shared)] == shared
        assert [p.kind for p in params.values()][:4] == [
            inspect.Parameter.POSITIONAL_OR_KEYWORD
        ] * 4
        assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in shared[4:])
        assert typing.get_type_hints(trainer)["return"] is TrainResult


def _save(last: Path, step: int) -> None:
    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        (tmp / "state.json").write_text(str(step))

    replace_folder(last, write, "state.json")


def test_the_resume_rule(tmp_path: Path) -> None:
    last = tmp_path / "out" / LAST
    last.parent.mkdir()
    log: list[str] = []
    assert not should_resume(last, "state.json", resume=False, log=log.append)
    assert log == []
    # asked to resume with nothing saved: said, and the run starts from init or scratch
    assert not should_resume(last, "state.json", resume=True, log=log.append)
    assert len(log) == 1 and "nothing to resume" in log[0]
    _save(last, 3)
    assert should_resume(last, "state.json", resume=True, log=log.append)
    assert not should_resume(last, "state.json", resume=False, log=log.append)  # a fresh run
    # a kill between the swap's two renames: the complete side folder is put back
    last.rename(last.with_name(".last.tmp"))
    assert should_resume(last, "state.json", resume=True, log=log.append)
    assert (last / "state.json").read_text() == "3"


@pytest.mark.slow
@pytest.mark.shared
def test_an_asr_run_by_epochs_stops_after_that_many_epochs_batches(fsdd_manifests, tmp_path):
    """``train.max_epochs``: a round decided by its labels, whatever the minutes; a lower
    ``max_steps`` still ends it first."""
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    from .conftest import TINY

    def run(*overrides: str) -> dict:
        cfg = load_asr_config(None, (*TINY, "decoding.method=greedy", *overrides))
        out = tmp_path / "_".join(overrides).replace("=", "")
        train, dev = fsdd_manifests["train"], fsdd_manifests["dev"]
        return train_asr(cfg, train, dev, out, log=lambda _: None).metrics

    two = run("train.max_epochs=2")
    three = run("train.max_epochs=3")
    assert (two["epochs"], three["epochs"]) == (2, 3)
    per_epoch = two["steps"] / 2
    assert per_epoch == int(per_epoch) >= 1 and three["steps"] == 3 * per_epoch
    assert run("train.max_epochs=3", "train.max_steps=2")["steps"] == 2
    with pytest.raises(ConfigError, match=r"train\.max_epochs"):
        load_asr_config(None, ("train.max_epochs=-1",))


def test_an_asr_run_with_no_checkpoint_minutes_checks_dev_once_at_the_end(fsdd_manifests, tmp_path):
    """``train.eval_every_minutes=0``: a short round's only dev checkpoint is its last step
    (not one every step)."""
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    from .conftest import TINY

    cfg = load_asr_config(
        None, (*TINY, "decoding.method=greedy", "train.max_steps=4", "train.eval_every_minutes=0")
    )
    log: list[str] = []
    train_asr(cfg, fsdd_manifests["train"], fsdd_manifests["dev"], tmp_path / "m", log=log.append)
    assert [line.split(":")[0] for line in log if ": dev (" in line] == ["step 4"]
