"""The loop's Label Studio phases: start the server and its projects, push a round's
selection, annotate (simulated, or wait for people), pull the annotations back.

Everything Label Studio is behind ``labelling``; these functions only wire a round's files to
it and say what happened.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from earmark.core.fileio import write_json
from earmark.core.manifest import read_manifest
from earmark.core.say import Say
from earmark.loop.config import LoopConfig
from earmark.loop.state import RunFolder
from earmark.loop.trainset import Halves
from labelling.client import connect
from labelling.configs import merge_schemas, schema_from_file, schema_from_manifests
from labelling.process import start
from labelling.projects import setup_projects
from labelling.pull import pull
from labelling.push import push
from labelling.settings import Paths, load_studio_config
from labelling.simulate import simulate
from labelling.state import State
from labelling.status import status


def _studio(cfg: LoopConfig, run: RunFolder) -> Any:

    return load_studio_config(cfg.studio_config if Path(cfg.studio_config).is_file() else None)


def prepare_studio(cfg: LoopConfig, run: RunFolder, say: Say) -> None:
    """Start the run's Label Studio (installed on first use) and create or update its projects."""

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

    rf = run.round(round_no)
    studio = _studio(cfg, run)
    with connect(run.root, studio.client) as client:
        summary = push(
            client, run.root, rf.selection, cfg.data.pool, studio,
            asr_predictions=_exists(rf.predictions("asr")),
            nlu_predictions=_exists(rf.predictions("nlu")),
        )  # fmt: skip
    write_json(rf.pushed, {"created": summary.created, "already_pushed": summary.already_pushed})
    say(
        f"round {round_no}: pushed {summary.created} task(s) ({summary.already_pushed} already there)"
    )


def annotate_round(
    cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say
) -> bool:
    """Simulated: answer every open task (and the follow-up understanding tasks). Human: report
    progress and wait. Returns False when a human still has tasks to do."""

    studio = _studio(cfg, run)
    if cfg.annotator.kind == "human":
        last = ""
        with connect(run.root, studio.client) as client:
            while True:
                # import what is done so far: a confirmed transcript gets its understanding
                # task now, so this round waits for (and trains on) both halves
                pull(client, run.root, studio, followup=halves.nlu)
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
    log: list[dict[str, Any]] = []
    with connect(run.root, studio.client) as client:
        # transcription first; confirming a transcript creates its understanding task on pull
        for _ in range(2 if halves.nlu else 1):
            for who in range(1, cfg.annotator.count + 1):  # each answers what is open to them
                sim = simulate(
                    client, run.root, studio, cfg.data.answers, annotator=who,
                    error_rate=cfg.annotator.error_rate, flag_rate=cfg.annotator.flag_rate,
                    seed=cfg.seed + round_no + 1000 * (who - 1),
                )  # fmt: skip
                log.append(
                    {"annotator": who, "annotated": sim.annotated, "flagged": sim.flagged,
                     "with_errors": sim.with_errors}
                )  # fmt: skip
            if halves.nlu:
                pull(client, run.root, studio, followup=True)
    write_json(run.round(round_no).annotated, log)
    say(
        f"round {round_no}: simulated annotator answered {sum(x['annotated'] for x in log)} task(s)"
    )
    return True


def pull_round(cfg: LoopConfig, run: RunFolder, round_no: int, halves: Halves, say: Say) -> None:

    studio = _studio(cfg, run)
    with connect(run.root, studio.client) as client:
        summary = pull(client, run.root, studio, followup=halves.nlu)
    write_json(run.round(round_no).imported, summary.__dict__)
    say(
        f"round {round_no}: {summary.accepted} utterance(s) labelled by humans so far, "
        f"{summary.rejected} rejected, {summary.flagged} flagged ({summary.new} new in this pull)"
    )


def agreement_figures(workspace: Path) -> dict[str, Any]:
    """The annotators' agreement so far (``labelling.agreement``, written by each pull) as
    metrics columns ``agreement_*``; none until some task had two annotators."""
    path = State.of(workspace).agreement
    figures = json.loads(path.read_text()) if path.is_file() else {}
    if not (figures.get("transcription_tasks") or figures.get("understanding_tasks")):
        return {}
    return {f"agreement_{k}": v for k, v in figures.items() if v is not None}


def human_labelled(workspace: Path) -> int:

    path = State.of(workspace).labels
    return sum(1 for _ in read_manifest(path)) if path.is_file() else 0


def human_instructions(run: RunFolder) -> str:

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
