"""The learning-rate schedules, each a function of ``progress`` in [0, 1] (``training.budget``).

Each model keeps the schedule it was tuned with: the ASR a cosine, the NLU a linear decay.
"""

from __future__ import annotations

import math


def warmup_cosine(progress: float, peak: float, *, warmup: float, final_fraction: float) -> float:
    """ASR: linear warm-up to ``peak`` over the first ``warmup`` of the plan (from 1% of it),
    then cosine decay to ``peak * final_fraction``."""
    if progress < warmup:
        return peak * max(progress / warmup, 0.01)
    rest = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    low = peak * final_fraction
    return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * rest))


def warmup_linear(progress: float, peak: float, *, warmup: float) -> float:
    """NLU: linear warm-up over the first ``warmup`` of the plan (from 2% of ``peak``), then
    linear decay to 10% of ``peak``."""
    if progress < warmup:
        return peak * max(0.02, progress / warmup)
    return peak * max(0.1, 1 - 0.9 * (progress - warmup) / max(1e-9, 1 - warmup))
