"""The NLU behind ``training.model.Recipe``: what the loop calls to train, measure and load it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from earmark.core.groups import figures_by
from earmark.core.manifest import ManifestRow
from training.checkpoint import read_meta
from training.nlu.config import load_nlu_config, with_budget
from training.nlu.evaluate import (
    NLUScores,
    labelled_examples,
    nlu_texts,
    score_nlu,
    summarize_scores,
)
from training.nlu.predict import NLUModel
from training.nlu.train import train_nlu


class NLURecipe:
    kind = "nlu"

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
        cfg = with_budget(load_nlu_config(config, tuple(overrides)), minutes=minutes)
        # resume=True: an interrupted run of its own in out/last/ goes on (a save a kill cut
        # mid-swap put back first); with none, training starts from init
        result = train_nlu(cfg, train, dev, out, init=init, resume=True, log=log)
        return result.checkpoint

    def evaluate(
        self,
        checkpoint: Path,
        rows: list[ManifestRow],
        *,
        n_resamples: int,
        by: Sequence[str] = (),
    ) -> dict[str, float | None]:
        def figures(scored: NLUScores) -> dict[str, float | None]:
            m = summarize_scores(scored, n_resamples=n_resamples)
            return {k: m[k]["value"] for k in ("intent_accuracy", "entity_f1", "slu_f1")}

        examples = labelled_examples(rows)
        scored = score_nlu(checkpoint, examples, nlu_texts(rows, examples, None), on_gold_text=True)
        return figures_by(scored, rows, by, figures)

    def dev_metrics(self, checkpoint: Path) -> dict[str, float | None]:
        dev = read_meta(checkpoint, kind="nlu").metrics.get("dev", {})
        return {
            k: (dev[k]["value"] if isinstance(dev.get(k), dict) else None)
            for k in ("intent_accuracy", "entity_f1", "slu_f1")
        }

    def load(self, checkpoint: Path) -> NLUModel:
        return NLUModel.load(checkpoint)
