"""The ASR behind ``training.model.Recipe``: what the loop calls to train, measure and load it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from earmark.manifest import ManifestRow
from training.asr.config import load_asr_config
from training.asr.evaluate import evaluate_asr
from training.asr.train import train_asr
from training.asr.transcribe import ASRModel


class ASRRecipe:
    kind = "asr"

    def train(
        self,
        train: Path,
        dev: Path,
        out: Path,
        *,
        config: str | None,
        overrides: Sequence[str],
        minutes: float,
        init: Path | None,
        log: Callable[[str], None],
    ) -> Path:
        cfg = load_asr_config(config, (*overrides, f"train.max_minutes={minutes}"))
        result = train_asr(
            cfg, train, dev, out,
            init=str(init) if init else None,
            resume=(out / "last" / "trainer_state.json").is_file(),
            log=log,
        )  # fmt: skip
        return Path(result.checkpoint)

    def evaluate(
        self, checkpoint: Path, rows: list[ManifestRow], *, n_resamples: int
    ) -> dict[str, float | None]:
        m = evaluate_asr(checkpoint, rows, n_resamples=n_resamples)
        return {
            "wer": m["wer"]["value"],
            "cer": m["cer"]["value"],
            "asr_confidence_auroc": m["confidence_auroc"]["value"],
        }

    def load(self, checkpoint: Path) -> ASRModel:
        return ASRModel(checkpoint)
