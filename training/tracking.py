"""Metrics where ML teams look: TensorBoard event files beside earmark's own JSON and CSV.

A training run writes its curves (loss and learning rate per step, dev metrics at each
checkpoint or epoch, the final dev metrics) and its config, as text, to ``<out>/tb/``;
a loop writes its learning curve (each round's test and dev metrics against the number of
human labels) to ``RUN/tb/``. ``tensorboard --logdir <folder>`` shows them (``tensorboard``,
Google's own package, is a dependency of earmark; ``torch.utils.tensorboard`` writes the files).

A resumed training run purges what its killed predecessor wrote after the resume step, so a
kill and a resume draw one curve. A loop rewrites its folder from ``metrics.json`` every round,
so a round logged twice (a kill between the two writes) is still one point.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from earmark.core.fileio import private_dir

TB_DIR = "tb"


def config_text(config: Any) -> str:
    """``config`` (a dataclass, a mapping or text) as YAML in a Markdown code block."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    return "```yaml\n" + text.rstrip() + "\n```"


def _number(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (text, None, booleans, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Tracker:
    """TensorBoard scalars of one run in ``folder`` (created private: it names the run's data).

    ``purge_from``: a resumed run's first step; what the run before wrote at or after it (after
    its last saved state) is dropped. ``config``: written once, as text under the tag ``config``.
    """

    def __init__(
        self, folder: str | Path, *, purge_from: int | None = None, config: Any = None
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: on first use

        self.folder = private_dir(folder)
        self._writer = SummaryWriter(str(self.folder), purge_step=purge_from)
        if config is not None and purge_from is None:
            self._writer.add_text("config", config_text(config), 0)

    def scalars(self, step: int, values: Mapping[str, Any], prefix: str = "") -> None:
        """Each numeric value of ``values`` as the scalar ``prefix + key`` at ``step``."""
        for key, value in values.items():
            number = _number(value)
            if number is not None:
                self._writer.add_scalar(prefix + key, number, step)

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()


def rewrite_curve(
    run_dir: Path, rows: list[dict[str, Any]], config: Any = None, step_key: str = "labelled"
) -> Path:
    """The loop's ``RUN/tb/`` made anew from its ``rows`` (``metrics.json``): every numeric
    metric against ``step_key`` (human labels), the round number as ``round``."""
    folder = run_dir / TB_DIR
    shutil.rmtree(folder, ignore_errors=True)
    tracker = Tracker(folder, config=config)
    try:
        for row in rows:
            step = int(row.get(step_key) or 0)
            tracker.scalars(step, {k: v for k, v in row.items() if k != step_key})
    finally:
        tracker.close()
    return folder
