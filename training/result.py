"""What a trainer hands back, and the callbacks it talks through, for the ASR and the NLU alike.

Both trainers have one signature::

    train_x(config, train, dev, out, *, init=None, resume=False, log=print, on_progress=None)
        -> TrainResult

(``training.asr.train.train_asr``, ``training.nlu.train.train_nlu``; the NLU adds
``asr_predictions``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Log = Callable[[str], None]  # one line of the run's log
OnProgress = Callable[[dict[str, Any]], None]  # after each step: fraction, loss, lr, step, ...


@dataclass(frozen=True)
class TrainResult:
    """A finished training run.

    ``checkpoint``: the folder to use (the best on dev, calibrated). ``metrics``: what its
    ``earmark.json`` records (``CheckpointMeta.metrics``). ``notes``: what loading the start
    model changed that the caller should know (a replaced CTC head, NLU heads grown for new
    labels); each was logged as well.
    """

    checkpoint: Path
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()
