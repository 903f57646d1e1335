"""The training budget both trainers share: a time limit on one clock, and a step cap.

Both apply and the first reached ends training; 0 turns either off. The ASR's are
``train.max_minutes``, ``train.max_steps`` and ``train.budget_clock``, the NLU's the same
names under ``optim`` (where ``max_epochs`` and early stopping may end training sooner).

The clock is ``wall`` (wall-clock seconds) or ``cpu`` (this process's CPU seconds divided by
its torch threads: minutes of that many dedicated cores, which keeps a budgeted run comparable
when other jobs share the cores). It counts the training loop, steps and the dev evaluations
between them, from its first step (not data loading or feature extraction), and carries on
across a resume: the seconds spent are saved with the rest of ``last/``.

The learning-rate schedules (``training.schedule``) follow ``progress``: the fraction of the
budget spent, by time or by steps, whichever is further along, so a time-limited run anneals.
"""

from __future__ import annotations

import math
import time
from typing import Literal, Protocol

from earmark.core.errors import ConfigError

Clock = Literal["wall", "cpu"]


class BudgetSettings(Protocol):
    """The three budget fields of a trainer's config section."""

    @property
    def max_minutes(self) -> float: ...

    @property
    def max_steps(self) -> int: ...

    @property
    def budget_clock(self) -> Clock: ...


class BudgetClock:
    """Seconds of a time budget spent: ``tick`` reads the clocks, the rest report that reading.

    ``wall`` and ``cpu`` are the seconds already spent when the clock starts (a resumed run's).
    """

    def __init__(
        self,
        minutes: float,
        clock: Clock = "wall",
        *,
        threads: int = 1,
        wall: float = 0.0,
        cpu: float = 0.0,
    ) -> None:
        if clock not in ("wall", "cpu"):
            raise ConfigError(f"budget_clock: {clock!r} is not one of ['wall', 'cpu']")
        self.limit_s = minutes * 60 if minutes > 0 else math.inf
        self.clock = clock
        self.threads = max(1, threads)
        self.wall, self.cpu = wall, cpu
        self._wall0 = time.perf_counter() - wall
        self._cpu0 = time.process_time() - cpu

    @classmethod
    def of(
        cls, settings: BudgetSettings, *, threads: int, wall: float = 0.0, cpu: float = 0.0
    ) -> BudgetClock:
        """The clock of a config section's ``max_minutes`` and ``budget_clock``."""
        return cls(settings.max_minutes, settings.budget_clock, threads=threads, wall=wall, cpu=cpu)

    def tick(self) -> None:
        """Read both clocks now."""
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0

    def used(self) -> float:
        """Seconds of the budget spent at the last ``tick``: wall, or CPU time per thread."""
        return self.cpu / self.threads if self.clock == "cpu" else self.wall

    def fraction(self) -> float:
        """The part of the time budget spent (0.0 without one); may exceed 1."""
        return self.used() / self.limit_s if self.limit_s < math.inf else 0.0

    def spent(self) -> bool:
        """Whether the time budget is used up (never, without one)."""
        return self.used() >= self.limit_s

    def progress(self, step: int, planned_steps: int) -> float:
        """How far through the plan a run is, in [0, 1]: ``step`` of ``planned_steps`` (0 = no
        step plan) or the time budget's fraction, whichever is further along."""
        by_steps = step / planned_steps if planned_steps > 0 else 0.0
        return min(1.0, max(self.fraction(), by_steps))
