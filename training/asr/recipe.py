"""The ASR behind ``training.model.Recipe``: what the loop calls to train, measure and load it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from earmark.core.groups import figures_by
from earmark.core.manifest import ManifestRow
from training.asr.config import load_asr_config, with_budget, with_lm_text
from training.asr.evaluate import ASRScores, score_asr, summarize_scores
from training.asr.train import train_asr
from training.asr.transcribe import ASRModel
from training.checkpoint import read_meta

MIN_CLASS_FOR_AUROC = 10  # utterances with and without errors, each, for a round's AUROC


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
        lm_text: Sequence[str] = (),
    ) -> Path:
        cfg = with_budget(load_asr_config(config, tuple(overrides)), minutes=minutes)
        cfg = with_lm_text(cfg, lm_text)
        # resume=True: an interrupted run of its own in out/last/ goes on (a save a kill cut
        # mid-swap put back first); with none, training starts from init
        result = train_asr(cfg, train, dev, out, init=init, resume=True, log=log)
        return result.checkpoint

    def evaluate(
        self,
        checkpoint: Path,
        rows: list[ManifestRow],
        *,
        n_resamples: int,
        by: Sequence[str] = (),
    ) -> dict[str, float | None]:
        def figures(scored: ASRScores) -> dict[str, float | None]:
            return curve_figures(summarize_scores(scored, n_resamples=n_resamples))

        return figures_by(score_asr(checkpoint, rows), rows, by, figures)

    def dev_metrics(self, checkpoint: Path) -> dict[str, float | None]:
        m = read_meta(checkpoint, kind="asr").metrics
        return {"wer": m.get("dev_wer"), "cer": m.get("dev_cer")}

    def load(self, checkpoint: Path) -> ASRModel:
        return ASRModel(checkpoint)


def curve_figures(m: dict[str, Any]) -> dict[str, float | None]:
    """The learning curve's numbers of a ``summarize`` result."""
    n_wrong = m["n_utterances"] - m["n_correct"]
    return {
        "wer": m["wer"]["value"],
        "cer": m["cer"]["value"],
        # an AUROC over a handful of correct utterances (a weak early model) reads 1.0 or
        # 0.0 by chance: reported only with enough of both classes
        "asr_confidence_auroc": (
            m["confidence_auroc"]["value"]
            if min(m["n_correct"], n_wrong) >= MIN_CLASS_FOR_AUROC
            else None
        ),
        "asr_correct_utterances": m["n_correct"],
        "asr_confidence_spearman": m["confidence_spearman"]["value"],
    }
