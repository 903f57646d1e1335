"""The one model contract the loop drives, for the ASR and the NLU alike.

The loop never looks inside a model: it trains one (optionally warm-started), asks it for
predictions with confidence, and saves/loads it as a checkpoint folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from earmark.manifest import ManifestRow


class Model(Protocol):
    """What both ``training.asr`` and ``training.nlu`` models provide."""

    kind: str  # "asr" | "nlu"
    model_version: str

    def predict(self, rows: Iterable[ManifestRow]) -> Iterator[dict[str, Any]]:
        """One JSON-able prediction per row, in order, each with ``id`` and ``confidence``
        (in [0, 1], temperature-calibrated; higher = more sure)."""
        ...

    def save(self, directory: str | Path) -> None:
        """Write a Hugging Face folder plus ``earmark.json`` (see ``training.checkpoint``)."""
        ...
