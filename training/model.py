"""The one model contract the loop drives, for the ASR and the NLU alike.

The loop never looks inside a model: it trains one (optionally warm-started), asks it for
predictions with confidence, and saves/loads it as a checkpoint folder. Each model takes what
it reads and nothing more: the ASR manifest rows (their audio), the NLU ``(id, text)`` pairs
(what the ASR heard, or a row's own text); each returns its own record
(``earmark.core.predictions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, overload

from earmark.core.errors import AudioError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis, NLUPrediction

BadAudio = Callable[
    [ManifestRow, AudioError], None
]  # what to do with a row whose audio is unreadable
UtteranceText = tuple[str, str]  # (utterance id, text): what the NLU reads

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
M = TypeVar("M", covariant=True)


class Model(Protocol[In, Out]):
    """What both ``training.asr`` and ``training.nlu`` models provide: ``Model[ManifestRow,
    ASRHypothesis]`` and ``Model[UtteranceText, NLUPrediction]``."""

    kind: str  # "asr" | "nlu"
    model_version: str

    def predict(
        self, items: Iterable[In], /, *, on_bad_audio: BadAudio | None = None
    ) -> Iterator[Out]:
        """One prediction per item, in order, each with the item's ``id`` and a
        ``confidence`` (in [0, 1], temperature-calibrated; higher = more sure). A row whose
        audio cannot be read raises its ``AudioError``, or with ``on_bad_audio`` is passed to
        it and skipped (a model that reads no audio never calls it)."""
        ...

    def save(self, directory: str | Path) -> None:
        """Write a Hugging Face folder plus ``earmark.json`` (see ``training.checkpoint``)."""
        ...


ASRPredictor = Model[ManifestRow, ASRHypothesis]
NLUPredictor = Model[UtteranceText, NLUPrediction]


class Recipe(Protocol[M]):
    """The other half of the contract: how the loop trains, measures and loads one kind of
    model, without knowing its config keys or file layout."""

    kind: str  # "asr" | "nlu"

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
        """Train within ``minutes`` (warm-started from ``init``; resumed when ``out`` holds an
        interrupted run of its own) and return the checkpoint folder to use. ``lm_text``:
        extra text for a recogniser's language models (a model without one ignores it)."""
        ...

    def evaluate(
        self,
        checkpoint: Path,
        rows: list[ManifestRow],
        *,
        n_resamples: int,
        by: Sequence[str] = (),
    ) -> dict[str, float | None]:
        """The learning curve's numbers for this model on ``rows`` (point estimates), and
        for each value of each ``by`` field of the rows the same on those rows alone, keyed
        ``name@field=value`` (``earmark.core.groups.figures_by``)."""
        ...

    def dev_metrics(self, checkpoint: Path) -> dict[str, float | None]:
        """The curve's numbers on dev as measured when training chose ``checkpoint`` (read
        from its ``earmark.json``, no decoding): what the loop's stopping rule reads."""
        ...

    def load(self, checkpoint: Path) -> M:
        """The trained model behind ``Model``."""
        ...


@overload
def recipe(kind: Literal["asr"]) -> Recipe[ASRPredictor]: ...
@overload
def recipe(kind: Literal["nlu"]) -> Recipe[NLUPredictor]: ...
@overload
def recipe(kind: str) -> Recipe[Model[Any, Any]]: ...


def recipe(kind: str) -> Recipe[Any]:
    """The recipe of ``kind`` ("asr" or "nlu"); imports torch and the model's package."""
    # typed locals: mypy checks each recipe (and the model it loads) against the contract
    if kind == "asr":
        from training.asr.recipe import ASRRecipe

        asr: Recipe[ASRPredictor] = ASRRecipe()
        return asr
    if kind == "nlu":
        from training.nlu.recipe import NLURecipe

        nlu: Recipe[NLUPredictor] = NLURecipe()
        return nlu
    raise ValueError(f"unknown model kind {kind!r}; expected 'asr' or 'nlu'")
