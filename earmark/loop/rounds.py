"""One active-learning run, round by round: train -> score -> select -> push -> annotate -> pull.

Read it top to bottom: ``run_loop`` holds the run folder's lock and walks the phases of
``earmark.loop.state``; each phase is one small function that reads the files of earlier
phases and writes its own artefact atomically before the state moves on. Killing the process
at any point and running the same command again repeats at most the phase that was cut off,
and every phase is safe to repeat (training resumes from its last checkpoint, push never makes
a second task, pull never imports twice).

After the last selection round, one more training phase measures what the final labels bought,
so a run of N rounds has N + 1 points on its learning curve.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from earmark import faults
from earmark.config import to_dict
from earmark.errors import AudioError, EarmarkError, EmptyPoolError
from earmark.fileio import iter_id_records, read_jsonl, write_json, write_jsonl
from earmark.loop.config import LoopConfig
from earmark.loop.curves import append_row, plot_curves
from earmark.loop.pseudo import pseudo_asr_rows, pseudo_nlu_rows
from earmark.loop.state import RunFolder, RunState
from earmark.loop.warmup import RankCheck, rank_check, utterance_errors
from earmark.manifest import ManifestRow, read_manifest, write_manifest
from earmark.records import Label, LabelSource
from earmark.selection import UtteranceScores, make_strategy, read_scores, write_scores
from earmark.selection.strategies import Combined, Diverse, Random, Strategy

Say = Callable[[str], None]
BadAudio = Callable[[ManifestRow, AudioError], None]


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


# -- training --------------------------------------------------------------------------------


def labelled_rows(
    cfg: LoopConfig, workspace: Path, round_dir: Path, *, need_intent: bool
) -> list[ManifestRow]:
    """Seed rows plus the human labels pulled so far (flagged and rejected ones left out)."""
    from labelling.pull import build_training_manifest

    human = round_dir / ("human_nlu.jsonl" if need_intent else "human_asr.jsonl")
    build_training_manifest(workspace, cfg.data.pool, human, require_intent=need_intent)
    seed = [
        r
        for r in read_manifest(cfg.data.seed)
        if r.label and (r.label.intent if need_intent else r.label.text)
    ]
    return seed + read_manifest(human)


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
    prev = run.round_dir(round_no - 1)
    asr = _read_predictions(prev / "asr_predictions.jsonl", "ASR predictions")
    exclude = unavailable_ids(run.root) | {r.id for r in human}
    version = str(previous_checkpoint(run, round_no, kind) or f"round {round_no - 1} {kind}")
    pool = read_manifest(cfg.data.pool)
    if kind == "nlu":
        nlu = _read_predictions(prev / "nlu_predictions.jsonl", "NLU predictions")
        rows = pseudo_nlu_rows(
            pool, nlu, asr, exclude=exclude, settings=cfg.self_training, version=version
        )
    else:
        rows = pseudo_asr_rows(
            pool, asr, exclude=exclude, settings=cfg.self_training, version=version
        )
    write_manifest(run.round_dir(round_no) / f"pseudo_{kind}.jsonl", rows)
    return rows


def write_training_manifest(
    cfg: LoopConfig, run: RunFolder, round_no: int, kind: str
) -> tuple[Path, int, int]:
    """Write this round's ``train_{kind}.jsonl``: seed and human rows (with intents for the
    NLU, transcripts for the ASR), then any self-training rows. Returns ``(path, human,
    pseudo)``; only the human count is "labelled"."""
    rd = run.round_dir(round_no)
    human = labelled_rows(cfg, run.root, rd, need_intent=kind == "nlu")
    pseudo = pseudo_rows(cfg, run, round_no, human, kind)
    path = rd / f"train_{kind}.jsonl"
    write_manifest(path, human + pseudo)
    return path, len(human), len(pseudo)


def _read_predictions(path: Path, what: str) -> dict[str, dict[str, Any]]:
    """``{id: prediction}`` of a round's predictions file; empty when the round wrote none."""
    if not path.is_file():
        return {}
    return {obj["id"]: obj for _, obj in iter_id_records(path, what=what, error=EarmarkError)}


def _counts(human: int, pseudo: int) -> str:
    return f"{human} utterances" + (f" + {pseudo} model-labelled" if pseudo else "")


def previous_checkpoint(run: RunFolder, round_no: int, model: str) -> Path | None:
    for r in range(round_no - 1, 0, -1):
        meta = run.round_dir(r) / "checkpoints.json"
        if meta.is_file():
            path = json.loads(meta.read_text()).get(model)
            if path:
                return Path(path)
    return None


def train_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> dict[str, Any]:
    """Train both models (warm-started from the previous round), evaluate on test, log the row."""
    rd = run.round_dir(round_no)
    if (rd / "metrics.json").is_file():  # trained and evaluated before a crash: never train twice
        done: dict[str, Any] = json.loads((rd / "metrics.json").read_text())
        _log_row(run, done)  # a kill may have come before the run's curve had this row
        return done
    rd.mkdir(parents=True, exist_ok=True)
    checkpoints: dict[str, str] = {}
    row: dict[str, Any] = {"round": round_no}
    test_rows = read_manifest(cfg.data.test or cfg.data.dev)  # measured only: nothing reads it back
    if not cfg.data.test:
        say(
            f"round {round_no}: no data.test, so the curve is measured on dev, which also "
            f"chose the checkpoints: it reads better than the models are"
        )
    for kind in halves.kinds:
        from training.model import recipe

        model = recipe(kind)
        settings = cfg.asr if kind == "asr" else cfg.nlu
        train, n_human, n_pseudo = write_training_manifest(cfg, run, round_no, kind)
        init = previous_checkpoint(run, round_no, kind)
        minutes = settings.minutes if init else settings.first_round_minutes
        say(
            f"round {round_no}: training {kind.upper()} on {_counts(n_human, n_pseudo)} "
            f"({minutes:g} min, warm start: {init})"
        )
        checkpoint = model.train(
            train, Path(cfg.data.dev), rd / kind,
            config=settings.config or None, overrides=settings.overrides, minutes=minutes,
            init=init, log=say,
        )  # fmt: skip
        checkpoints[kind] = str(checkpoint)
        row[f"labelled_{kind}"] = n_human
        row.update(model.evaluate(checkpoint, test_rows, n_resamples=cfg.eval_resamples))
        # what the stopping rule reads: dev, which chose the checkpoint anyway
        row.update({f"dev_{k}": v for k, v in model.dev_metrics(checkpoint).items()})
        if cfg.self_training.enabled:
            row[f"pseudo_{kind}"] = n_pseudo
    # the curve's x axis counts seed and human labels only, never the models' own
    row["labelled"] = max(row.get("labelled_asr", 0), row.get("labelled_nlu", 0))
    row = {
        k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()
    }  # NaN -> null
    write_json(rd / "checkpoints.json", checkpoints)
    write_json(rd / "metrics.json", row)
    _log_row(run, row)
    return row


def _log_row(run: RunFolder, row: dict[str, Any]) -> None:
    """Put the round's row on the run's curve (replacing any row of the same round) and redraw."""
    rows_so_far = append_row(run.root, row)
    plot_curves({"run": rows_so_far}, run.root / "learning_curve.png")


# -- scoring and selection -------------------------------------------------------------------


def text_embedding(text: str, dim: int = 128) -> tuple[float, ...]:
    """Hashed character-trigram counts of a hypothesis, L2-normalised: what ``Diverse`` spreads over.

    Cheap and model-free, so a batch is spread over what was said; two utterances of the same
    phrase land on the same point whoever spoke them.
    """
    vec = np.zeros(dim)
    padded = f"  {text} "
    for i in range(len(padded) - 2):
        vec[zlib.crc32(padded[i : i + 3].encode()) % dim] += 1.0
    norm = np.linalg.norm(vec)
    return tuple((vec / norm if norm else vec).round(5).tolist())


def scores_from_predictions(
    asr: dict[str, Any] | None, nlu: dict[str, Any] | None, uid: str
) -> UtteranceScores:
    """Per-utterance scores from one ASR and/or NLU prediction.

    ``asr_entropy`` is the mean over words of ``1 - word confidence`` (the word confidence is
    entropy-based), ``nlu_margin`` the gap between the two most likely intents, ``nlu_entropy``
    the normalised entropy of the intent alternatives.
    """
    fields: dict[str, Any] = {"id": uid}
    text = ""
    if asr is not None:
        fields["asr_confidence"] = float(asr["confidence"])
        words = asr.get("words") or []
        fields["asr_entropy"] = (
            float(np.mean([1 - w["confidence"] for w in words])) if words else 1.0
        )
        text = asr["text"]
    if nlu is not None:
        fields["nlu_confidence"] = float(nlu["confidence"])
        probs = np.array(
            [a["p"] for a in nlu.get("alternatives") or [{"p": nlu["intent_confidence"]}]]
        )
        fields["nlu_margin"] = float(probs[0] - (probs[1] if len(probs) > 1 else 0.0))
        p = probs / probs.sum() if probs.sum() > 0 else probs
        fields["nlu_entropy"] = float(-(p * np.log(p + 1e-12)).sum() / np.log(max(len(p), 2)))
        text = text or nlu["text"]
    fields["embedding"] = text_embedding(text)
    return UtteranceScores(**fields)


class Quarantine:
    """``RUN/quarantine.jsonl``: utterances whose audio could not be read, with the reason.

    They are never scored, selected or pushed again; the file says which and why, so that
    the owner can fix or drop them (``earmark corpus check`` names the problem of each).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "quarantine.jsonl"

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)

    def ids(self) -> set[str]:
        return {r["id"] for r in self.rows()}

    def add(self, row: ManifestRow, exc: AudioError, round_no: int) -> None:
        if row.id in self.ids():
            return
        entry = {"id": row.id, "audio": row.utterance.audio, "reason": exc.reason,
                 "detail": exc.detail, "round": round_no}  # fmt: skip
        write_jsonl(self.path, [*self.rows(), entry])  # rewritten whole: atomic, and small

    def adder(self, round_no: int, say: Say) -> BadAudio:
        def add(row: ManifestRow, exc: AudioError) -> None:
            say(
                f"round {round_no}: utterance {row.id}: cannot read its audio ({exc.reason}: "
                f"{exc.detail}); quarantined in {self.path} and left out of scoring"
            )
            self.add(row, exc, round_no)

        return add


def unavailable_ids(workspace: Path) -> set[str]:
    """Pool utterances that may not be selected: already pushed (queued or labelled), flagged,
    rejected, or quarantined for unreadable audio."""
    from labelling.pull import excluded_ids
    from labelling.state import State

    state = State.of(workspace)
    pushed = {row["utterance_id"] for row in state.pushed_rows()}
    return pushed | excluded_ids(workspace) | Quarantine(workspace).ids()


def _predict(
    ckpts: dict[str, str],
    rows: list[ManifestRow],
    halves: Halves,
    on_bad_audio: BadAudio | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """ASR and/or NLU predictions for ``rows``; the NLU reads what the ASR heard (the rows' own
    text on an NLU-only corpus). Rows whose audio cannot be read go to ``on_bad_audio`` (when
    given) and get no prediction from either model."""
    from training.model import recipe

    asr_preds: dict[str, dict[str, Any]] = {}
    if halves.asr and rows:
        asr = recipe("asr").load(Path(ckpts["asr"]))
        bad: set[str] = set()

        def skip(row: ManifestRow, exc: AudioError) -> None:
            bad.add(row.id)
            if on_bad_audio is not None:
                on_bad_audio(row, exc)

        asr_preds = {p["id"]: p for p in asr.predict(rows, on_bad_audio=on_bad_audio and skip)}
        rows = [r for r in rows if r.id not in bad]
    nlu_preds: dict[str, dict[str, Any]] = {}
    if halves.nlu and rows:
        heard = [
            ManifestRow(r.utterance, heard_label(asr_preds[r.id])) if r.id in asr_preds else r
            for r in rows
        ]
        nlu = recipe("nlu").load(Path(ckpts["nlu"]))
        nlu_preds = {p["id"]: p for p in nlu.predict(heard)}
    return asr_preds, nlu_preds


def heard_label(asr: dict[str, Any]) -> Label:
    """An ASR hypothesis as the text the NLU reads: a ``source: model`` label with the ASR's
    version and confidence (a model's output never carries a seed or human source)."""
    return Label(
        str(asr["id"]),
        text=str(asr["text"]),
        source=LabelSource.MODEL,
        version=str(asr.get("model_version") or "") or None,
        confidence=float(asr["confidence"]) if asr.get("confidence") is not None else None,
    )


def _write_predictions(
    rd: Path, prefix: str, asr: dict[str, dict[str, Any]], nlu: dict[str, dict[str, Any]]
) -> None:
    if asr:
        write_jsonl(rd / f"{prefix}asr_predictions.jsonl", asr.values())
    if nlu:
        write_jsonl(rd / f"{prefix}nlu_predictions.jsonl", nlu.values())


def sample_pool(cfg: LoopConfig, pool: list[ManifestRow], round_no: int) -> list[ManifestRow]:
    """The pool this round scores: all of it, or ``selection.pool_sample`` of it drawn with a
    generator seeded by the run's seed and the round (a resumed round draws the same)."""
    n = cfg.selection.pool_sample
    if not n or len(pool) <= n:
        return pool
    rng = np.random.default_rng([cfg.seed, round_no])
    return [pool[i] for i in np.sort(rng.choice(len(pool), n, replace=False))]


def score_round(cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say) -> None:
    """Predict on the selectable pool (or a sample of it) with this round's models; write
    predictions and scores. With the warm-up check on, predict on dev too (``select_round``
    measures there whether the strategy's ranking can be trusted yet)."""
    rd = run.round_dir(round_no)
    ckpts = json.loads((rd / "checkpoints.json").read_text())
    skip = unavailable_ids(run.root)
    selectable = [r for r in read_manifest(cfg.data.pool) if r.id not in skip]
    pool = sample_pool(cfg, selectable, round_no)
    if len(pool) < len(selectable):
        say(
            f"round {round_no}: scoring a random {len(pool)} of {len(selectable)} selectable "
            f"pool utterances (selection.pool_sample)"
        )
    else:
        say(f"round {round_no}: scoring {len(pool)} pool utterances")
    dev = []
    if _checks_ranking(cfg):
        dev = [r for r in read_manifest(cfg.data.dev) if r.label is not None]
        say(f"round {round_no}: scoring {len(dev)} dev utterances (selection.min_rank_correlation)")
    # one pass, so the models load once; dev and pool ids are disjoint
    quarantined = Quarantine(run.root)
    asr_all, nlu_all = _predict(
        ckpts, dev + pool, halves, on_bad_audio=quarantined.adder(round_no, say)
    )
    pool = [r for r in pool if r.id not in quarantined.ids()]
    if dev:
        dev_ids = {r.id for r in dev}
        _write_predictions(
            rd, "dev_",
            {k: v for k, v in asr_all.items() if k in dev_ids},
            {k: v for k, v in nlu_all.items() if k in dev_ids},
        )  # fmt: skip
    pool_ids = {r.id for r in pool}
    asr_preds = {k: v for k, v in asr_all.items() if k in pool_ids}
    nlu_preds = {k: v for k, v in nlu_all.items() if k in pool_ids}
    _write_predictions(rd, "", asr_preds, nlu_preds)
    write_scores(
        rd / "scores.jsonl",
        (scores_from_predictions(asr_preds.get(r.id), nlu_preds.get(r.id), r.id) for r in pool),
    )


def _checks_ranking(cfg: LoopConfig) -> bool:
    return cfg.selection.min_rank_correlation > 0 and cfg.selection.strategy != "random"


def _dev_rank_check(
    cfg: LoopConfig, rd: Path, strategy: Strategy, asr_weight: float, halves: Halves
) -> RankCheck:
    """How well ``strategy`` ranks this round's models' errors on dev (predicted by ``score_round``)."""
    dev = [r for r in read_manifest(cfg.data.dev) if r.label is not None]
    wanted = [rd / f"dev_{k}_predictions.jsonl" for k in halves.kinds]
    if not all(p.is_file() for p in wanted):  # scored before the check was switched on
        ckpts = json.loads((rd / "checkpoints.json").read_text())
        _write_predictions(rd, "dev_", *_predict(ckpts, dev, halves))
    asr = _read_predictions(rd / "dev_asr_predictions.jsonl", "dev ASR") if halves.asr else {}
    nlu = _read_predictions(rd / "dev_nlu_predictions.jsonl", "dev NLU") if halves.nlu else {}
    scores = [scores_from_predictions(asr.get(r.id), nlu.get(r.id), r.id) for r in dev]
    errors = utterance_errors(dev, asr, nlu, asr_weight)
    return rank_check(strategy, scores, errors, cfg.selection.min_rank_correlation)


def select_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> list[str]:
    rd = run.round_dir(round_no)
    sel = cfg.selection
    name = sel.strategy
    seed = cfg.seed + round_no
    asr_weight = sel.asr_weight if halves.asr and halves.nlu else (1.0 if halves.asr else 0.0)
    strategy: Strategy
    if name == "combined":
        base = Combined(seed=seed, asr_weight=asr_weight)
        strategy = Diverse(base, factor=sel.diversity_factor, seed=seed) if sel.diverse else base
    else:
        strategy = make_strategy(name, seed, diverse=sel.diverse, factor=sel.diversity_factor)
    if _checks_ranking(cfg):
        check = _dev_rank_check(cfg, rd, strategy, asr_weight, halves)
        write_json(rd / "rank_check.json", check.to_dict())
        if check.informative:
            say(f"round {round_no}: {check.describe()}: following it")
        else:
            say(f"round {round_no}: {check.describe()}: selecting at random this round")
            strategy = Random(seed=seed)
    batch = cfg.batch
    if cfg.stopping.label_budget:
        batch = min(batch, cfg.stopping.label_budget - human_labelled(run.root))
    scores = read_scores(rd / "scores.jsonl")
    chosen = (
        strategy.select(scores, max(batch, 0), exclude=unavailable_ids(run.root))
        if batch > 0
        else []
    )
    by_id = {s.id: s for s in scores}
    write_jsonl(
        rd / "selection.jsonl",
        (
            {"id": uid, "score": round(strategy.priority(by_id[uid]), 6), "strategy": strategy.name}
            for uid in chosen
        ),
    )
    say(f"round {round_no}: selected {len(chosen)} utterances with {strategy.name}")
    return chosen


# -- Label Studio ----------------------------------------------------------------------------


def _studio(cfg: LoopConfig, run: RunFolder) -> Any:
    from labelling.settings import load_studio_config

    return load_studio_config(cfg.studio_config if Path(cfg.studio_config).is_file() else None)


def prepare_studio(cfg: LoopConfig, run: RunFolder, say: Say) -> None:
    """Start the run's Label Studio (installed on first use) and create or update its projects."""
    from labelling.client import connect
    from labelling.configs import merge_schemas, schema_from_file, schema_from_manifests
    from labelling.process import start
    from labelling.projects import setup_projects

    studio = _studio(cfg, run)
    info = start(run.root, studio, say=say)
    # Annotators must be able to choose intents the seed never showed: take the corpus schema
    # too. Never the test set's labels: the test set only measures.
    schema = schema_from_manifests([p for p in (cfg.data.seed, cfg.data.dev) if p])
    if cfg.data.schema:
        schema = merge_schemas(schema, schema_from_file(cfg.data.schema))
    with connect(run.root, studio.client) as client:
        setup_projects(client, run.root, schema, studio)
    say(f"Label Studio at {info.url}: projects ready")


def push_round(cfg: LoopConfig, run: RunFolder, round_no: int, say: Say) -> None:
    from labelling.client import connect
    from labelling.push import push

    rd = run.round_dir(round_no)
    studio = _studio(cfg, run)
    with connect(run.root, studio.client) as client:
        summary = push(
            client, run.root, rd / "selection.jsonl", cfg.data.pool, studio,
            asr_predictions=_exists(rd / "asr_predictions.jsonl"),
            nlu_predictions=_exists(rd / "nlu_predictions.jsonl"),
        )  # fmt: skip
    write_json(
        rd / "pushed.json", {"created": summary.created, "already_pushed": summary.already_pushed}
    )
    say(
        f"round {round_no}: pushed {summary.created} task(s) ({summary.already_pushed} already there)"
    )


def annotate_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> bool:
    """Simulated: answer every open task (and the follow-up understanding tasks). Human: report
    progress and wait. Returns False when a human still has tasks to do."""
    from labelling.client import connect
    from labelling.pull import pull
    from labelling.simulate import simulate
    from labelling.status import status

    studio = _studio(cfg, run)
    if cfg.annotator.kind == "human":
        last = ""
        with connect(run.root, studio.client) as client:
            while True:
                # import what is done so far: a confirmed transcript gets its understanding
                # task now, so this round waits for (and trains on) both halves
                pull(client, run.root, followup=halves.nlu)
                projects = status(run.root, studio).projects  # this run's projects
                total = sum(p.tasks for p in projects)
                open_ = sum(p.open for p in projects)
                progress = f"round {round_no}: {total - open_}/{total} tasks done"
                if progress != last:
                    say(progress)
                    last = progress
                if open_ == 0:
                    return True
                time.sleep(cfg.annotator.poll_seconds)
    rd = run.round_dir(round_no)
    log: list[dict[str, Any]] = []
    with connect(run.root, studio.client) as client:
        # transcription first; confirming a transcript creates its understanding task on pull
        for _ in range(2 if halves.nlu else 1):
            sim = simulate(
                client, run.root, studio, cfg.data.answers,
                error_rate=cfg.annotator.error_rate, flag_rate=cfg.annotator.flag_rate, seed=cfg.seed + round_no,
            )  # fmt: skip
            log.append(
                {"annotated": sim.annotated, "flagged": sim.flagged, "with_errors": sim.with_errors}
            )
            if halves.nlu:
                pull(client, run.root, followup=True)
    write_json(rd / "annotated.json", log)
    say(
        f"round {round_no}: simulated annotator answered {sum(x['annotated'] for x in log)} task(s)"
    )
    return True


def pull_round(cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say) -> None:
    from labelling.client import connect
    from labelling.pull import pull

    studio = _studio(cfg, run)
    with connect(run.root, studio.client) as client:
        summary = pull(client, run.root, followup=halves.nlu)
    write_json(run.round_dir(round_no) / "imported.json", summary.__dict__)
    say(
        f"round {round_no}: {summary.accepted} utterance(s) labelled by humans so far, "
        f"{summary.rejected} rejected, {summary.flagged} flagged ({summary.new} new in this pull)"
    )


def human_labelled(workspace: Path) -> int:
    from labelling.state import State

    path = State.of(workspace).labels
    return sum(1 for _ in read_manifest(path)) if path.is_file() else 0


# -- the loop --------------------------------------------------------------------------------


def should_stop(cfg: LoopConfig, run: RunFolder, round_no: int) -> str | None:
    """Why the loop stops before selecting in ``round_no`` (None: carry on)."""
    stop = cfg.stopping
    if round_no > stop.rounds:
        return f"reached {stop.rounds} round(s)"
    if stop.label_budget and human_labelled(run.root) >= stop.label_budget:
        return f"label budget of {stop.label_budget} reached"
    path = run.root / "metrics.json"
    if stop.patience and path.is_file():
        # dev figures only: the test set measures, it never decides when to stop
        rows = json.loads(path.read_text())
        key, sign = (
            ("dev_wer", -1.0) if any("dev_wer" in r for r in rows) else ("dev_intent_accuracy", 1.0)
        )
        values = [sign * r[key] for r in rows if r.get(key) is not None]
        if len(values) > stop.patience:
            best_before = max(values[: -stop.patience])
            if max(values[-stop.patience :]) < best_before + stop.min_delta:
                return f"{key.replace('_', ' ')} has not improved for {stop.patience} round(s)"
    return None


def run_loop(cfg: LoopConfig, run_dir: str | Path, *, say: Say = print) -> RunState:
    """Run (or continue) the loop in ``run_dir`` until it stops or a human has work to do."""
    run = RunFolder(run_dir)
    with run.lock():
        write_json(run.root / "run.json", to_dict(cfg))
        halves = halves_of(cfg)
        state = run.load_state()
        if state.stopped:
            say(f"run {run.root} already finished: {state.stopped}")
            return state
        if cfg.annotator.kind == "simulated" and not cfg.data.answers:
            raise EarmarkError(
                "the simulated annotator needs data.answers (the pool's true labels)"
            )
        prepare_studio(cfg, run, say)
        while True:
            r = state.round
            faults.context(f"round {r} {state.phase}")
            if state.phase == "train":
                train_round(cfg, run, r, halves, say)
                reason = should_stop(cfg, run, r)
                if reason:
                    state = replace(state, phase="done", stopped=reason)
                    run.save_state(state)
                    say(f"stopping: {reason}")
                    return state
            elif state.phase == "score":
                score_round(cfg, run, r, halves, say)
            elif state.phase == "select":
                try:
                    chosen = select_round(cfg, run, r, halves, say)
                except EmptyPoolError as exc:
                    chosen = []
                    say(str(exc))
                if not chosen:
                    state = replace(state, phase="done", stopped="nothing left to select")
                    run.save_state(state)
                    return state
            elif state.phase == "push":
                push_round(cfg, run, r, say)
                if cfg.annotator.kind == "human":
                    run.save_state(state.advance())
                    say(_human_instructions(run))
                    return state.advance()
            elif state.phase == "annotate":
                annotate_round(cfg, run, r, halves, say)
            elif state.phase == "pull":
                pull_round(cfg, run, r, halves, say)
            _crash_point(state.phase)
            state = state.advance()
            if state.phase == "done":  # nothing to do in "done": go to the next round's training
                state = state.advance()
            run.save_state(state)


def _crash_point(phase: str) -> None:
    """Fault injection for the resume tests: ``EARMARK_CRASH_AFTER=<phase>`` kills the process
    right after that phase's work, before the state records it (the worst moment to die)."""
    if os.environ.get("EARMARK_CRASH_AFTER") == phase:
        os._exit(99)


def _human_instructions(run: RunFolder) -> str:
    from labelling.settings import Paths

    info_path = Paths.of(run.root).server_json
    url = (
        json.loads(info_path.read_text()).get("url") if info_path.is_file() else "your Label Studio"
    )
    return (
        f"Tasks are waiting for annotators at {url} (projects 'earmark: transcription' and "
        f"'earmark: understanding').\nWhen they are done, run the same `earmark loop` command again: "
        f"it pulls the annotations and trains the next round (`earmark status --run {run.root}` shows progress)."
    )


def _exists(path: Path) -> Path | None:
    return path if path.is_file() else None
