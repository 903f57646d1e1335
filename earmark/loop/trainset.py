"""What each round trains on: seed rows, the human labels pulled so far (flagged and rejected
ones left out), and, with self-training on, the previous round's confident guesses as
``source: model`` rows, counted apart.

The ASR trains only on transcripts a person confirmed in a transcription task, the NLU on every
human intent (``labelling.pull.build_training_manifest``); the files land in the round's folder
(``RoundFiles.train_manifest``), so a reader can open exactly what a model saw.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path

from earmark.core.errors import EarmarkError
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.predictions import ASRHypothesis, NLUPrediction, PredictionT, read_predictions
from earmark.loop.config import LoopConfig, ModelRun
from earmark.loop.forget import is_marked
from earmark.loop.pool import unavailable_ids
from earmark.loop.pseudo import pseudo_asr_rows, pseudo_nlu_rows
from earmark.loop.state import RoundFiles, RunFolder
from labelling.pull import build_training_manifest


@dataclass(frozen=True)
class Halves:
    """Which halves of the loop this corpus supports (an ASR-only or NLU-only corpus runs one)."""

    asr: bool
    nlu: bool

    @property
    def kinds(self) -> tuple[str, ...]:
        """The model kinds to train, ASR first (its hypotheses feed the NLU's scoring)."""
        return tuple(k for k in ("asr", "nlu") if getattr(self, k))


def halves_of(cfg: LoopConfig) -> Halves:
    seed = read_manifest(cfg.data.seed)
    has_audio = any(r.utterance.audio for r in seed)
    has_text = any(r.label and r.label.text for r in seed)
    has_intent = any(r.label and r.label.intent for r in seed)
    halves = Halves(
        asr=cfg.asr.enabled and has_audio and has_text, nlu=cfg.nlu.enabled and has_intent
    )
    if not (halves.asr or halves.nlu):
        raise EarmarkError(
            f"{cfg.data.seed}: the seed set has neither transcribed audio (ASR) nor intents (NLU); "
            "nothing to train"
        )
    return halves


def labelled_rows(
    cfg: LoopConfig, workspace: Path, rf: RoundFiles, *, need_intent: bool
) -> tuple[list[ManifestRow], list[ManifestRow]]:
    """The seed rows, and the human labels pulled so far (flagged and rejected ones left out)."""

    human = rf.human_manifest("nlu" if need_intent else "asr")
    build_training_manifest(workspace, cfg.data.pool, human, require_intent=need_intent)
    seed = [
        r
        for r in read_manifest(cfg.data.seed)
        if r.label and (r.label.intent if need_intent else r.label.text)
    ]
    return seed, read_manifest(human)


def warm_mix(
    seed: list[ManifestRow], human: list[ManifestRow], settings: ModelRun, salt: int
) -> list[ManifestRow]:
    """What a warm round (one that fine-tunes an earlier checkpoint) trains on: ``replay``
    seed rows (a random subset seeded by ``salt``; 0 = all of them), then every human label
    ``label_repeats`` times (the copies' ids end in ``~2``, ``~3``, ...), so the few labels the
    deployment gave weigh against the many the base was trained on."""
    if 0 < settings.replay < len(seed):
        seed = random.Random(salt).sample(seed, settings.replay)
    copies = [_copy(r, k) for k in range(2, settings.label_repeats + 1) for r in human]
    return seed + human + copies


def _copy(row: ManifestRow, k: int) -> ManifestRow:
    uid = f"{row.id}~{k}"
    label = row.label.with_(utterance_id=uid) if row.label else None
    return ManifestRow(dataclasses.replace(row.utterance, id=uid), label)


def pseudo_rows(
    cfg: LoopConfig, run: RunFolder, round_no: int, human: list[ManifestRow], kind: str
) -> list[ManifestRow]:
    """Self-training rows for this round's ``kind`` of model ("asr" or "nlu"); [] when
    ``self_training`` is off or in round 1.

    The previous round's predictions on pool utterances nobody else labels (not pushed,
    flagged or rejected, not in ``human``) that pass the thresholds, labelled ``source: model``
    (``earmark.loop.pseudo``). They are written to ``pseudo_asr.jsonl``/``pseudo_nlu.jsonl`` in
    this round's folder and live only there and in the training manifest: never in Label
    Studio or the human labels file.
    """
    if not cfg.self_training.enabled or round_no <= 1:
        return []
    prev = run.round(round_no - 1)
    asr = read_predictions_file(prev.predictions("asr"), ASRHypothesis)
    exclude = unavailable_ids(run.root) | {r.id for r in human}
    version = str(previous_checkpoint(run, round_no, kind) or f"round {round_no - 1} {kind}")
    pool = read_manifest(cfg.data.pool)
    if kind == "nlu":
        nlu = read_predictions_file(prev.predictions("nlu"), NLUPrediction)
        rows = pseudo_nlu_rows(
            pool, nlu, asr, exclude=exclude, settings=cfg.self_training, version=version
        )
    else:
        rows = pseudo_asr_rows(
            pool, asr, exclude=exclude, settings=cfg.self_training, version=version
        )
    write_manifest(run.round(round_no).pseudo_manifest(kind), rows)
    return rows


def write_training_manifest(
    cfg: LoopConfig, run: RunFolder, round_no: int, kind: str, *, warm: bool = False
) -> tuple[Path, int, int]:
    """Write this round's ``train_{kind}.jsonl``: seed and human rows (with intents for the
    NLU, transcripts for the ASR; for a ``warm`` round mixed by ``warm_mix``), then any
    self-training rows. Returns ``(path, labelled, pseudo)``: seed and human labels, each
    counted once (only they are "labelled"), and the models' own."""
    rf = run.round(round_no)
    seed, human = labelled_rows(cfg, run.root, rf, need_intent=kind == "nlu")
    pseudo = pseudo_rows(cfg, run, round_no, seed + human, kind)
    settings = cfg.asr if kind == "asr" else cfg.nlu
    rows = warm_mix(seed, human, settings, cfg.seed * 1000 + round_no) if warm else seed + human
    if kind == "asr":  # the lexicon and LM are built from the transcripts trained on: give them
        kept = {r.id for r in rows}  # the seed's that replay left out as LM text (none: no file)
        left = [r.label.text for r in seed if r.id not in kept and r.label and r.label.text]
        rf.unreplayed_text.unlink(missing_ok=True)
        if left:
            rf.unreplayed_text.write_text("".join(f"{t}\n" for t in left), encoding="utf-8")
    path = rf.train_manifest(kind)
    write_manifest(path, rows + pseudo)
    return path, len(seed) + len(human), len(pseudo)


def read_predictions_file(path: Path, kind: type[PredictionT]) -> dict[str, PredictionT]:
    """``{id: prediction}`` of a round's predictions file; empty when the round wrote none.
    A malformed line raises ``PredictionError`` naming file and line."""
    if not path.is_file():
        return {}
    return read_predictions(path, kind)


def counts(human: int, pseudo: int) -> str:
    return f"{human} utterances" + (f" + {pseudo} model-labelled" if pseudo else "")


def previous_checkpoint(run: RunFolder, round_no: int, model: str) -> Path | None:
    """The newest checkpoint of ``model`` before round ``round_no``, skipping rounds whose
    models were trained with utterances forgotten since (``earmark forget``); None: start
    from the base (``init``) or from scratch."""
    for r in range(round_no - 1, 0, -1):
        meta = run.round(r).checkpoints
        if meta.is_file() and not is_marked(run.round(r).dir):
            path = json.loads(meta.read_text()).get(model)
            if path:
                return Path(path)
    return None


def lm_text_of(given: tuple[str, ...], rf: RoundFiles, kind: str) -> tuple[str, ...]:
    """The LM text a round's ASR learns from besides its transcripts: the config's, and the
    seed transcripts a warm round did not replay (so its lexicon is the base's, not smaller)."""
    extra = (str(rf.unreplayed_text),) if kind == "asr" and rf.unreplayed_text.is_file() else ()
    return (*given, *extra)
