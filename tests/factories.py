"""Factories for test records and manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


def write_wav(path: Path, seconds: float = 0.5, sr: int = 16_000, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
    return path


def line(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "u0001", "audio": "audio/u0001.wav"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def write_lines(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


def tb_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a TensorBoard folder as ``(step, value)`` points, read by
    TensorBoard's own loader (which applies a resumed run's purge)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def tb_texts(folder: Path) -> dict[str, str]:
    """Every text tag of a TensorBoard folder: its first value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return {
        tag.removesuffix("/text_summary"): acc.Tensors(tag)[0].tensor_proto.string_val[0].decode()
        for tag in acc.Tags()["tensors"]
    }
