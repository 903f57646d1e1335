"""A simulated annotator: answers open tasks through the API as a second Label Studio account.

It reads the ground truth from an answer file (a manifest with ``text``/``intent``/
``entities``), and can make mistakes on purpose (wrong word, wrong intent, missing entity, each
with probability ``error_rate``) and flag utterances (``flag_rate``), all from a seeded
generator, so that loops, tests and benchmarks run unattended on the same projects humans use.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earmark.core.manifest import read_manifest
from earmark.core.records import Entity, Label
from earmark.core.say import Progress
from labelling import convert
from labelling.accounts import ensure_annotator
from labelling.client import StudioClient
from labelling.configs import Tags
from labelling.projects import project_tags
from labelling.settings import StudioConfig
from labelling.state import State


@dataclass
class SimSummary:
    annotated: int = 0
    flagged: int = 0
    with_errors: int = 0
    no_answer: int = 0
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (task kind, utterance id)


def annotate_task(
    client: StudioClient,
    task_id: int,
    result: list[dict[str, Any]],
    *,
    cancelled: bool = False,
) -> dict[str, Any]:
    """Submit (or skip, with ``cancelled``) one annotation as the client's user."""
    body = {"result": result, "was_cancelled": cancelled, "lead_time": 1.0}
    return client.post(
        f"/api/tasks/{task_id}/annotations/", body, what=f"annotating task {task_id}"
    )


def update_annotation(
    client: StudioClient, annotation_id: int, result: list[dict[str, Any]]
) -> dict[str, Any]:
    """Edit an existing annotation (a later edit supersedes the earlier one on pull)."""
    return client.patch(
        f"/api/annotations/{annotation_id}/",
        {"result": result},
        what=f"editing annotation {annotation_id}",
    )


def _reanchor(label: Label, text: str) -> tuple[Entity, ...]:
    if label.text == text:
        return label.entities
    out = []
    for etype, value in label.entity_values():
        m = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)
        if m:
            out.append(Entity(etype, m.start(), m.end()))
    return tuple(out)


class Annotator:
    """Ground truth plus seeded mistakes and flags."""

    def __init__(
        self, answers: dict[str, Label], error_rate: float, flag_rate: float, seed: int
    ) -> None:
        self.answers = answers
        self.error_rate = error_rate
        self.flag_rate = flag_rate
        self.rng = random.Random(seed)
        self.vocab = sorted({w for lab in answers.values() for w in (lab.text or "").split()})

    def _flags(self, tags: Tags) -> tuple[tuple[str, ...], str | None]:
        if tags.flag_codes and self.rng.random() < self.flag_rate:
            code = self.rng.choice(sorted(tags.flag_codes))
            return (code,), f"simulated annotator: {tags.flag_codes[code]}"
        return (), None

    def transcription(self, label: Label, tags: Tags) -> tuple[list[dict[str, Any]], bool, bool]:
        words = (label.text or "").split()
        wrong = bool(words) and len(self.vocab) > 1 and self.rng.random() < self.error_rate
        if wrong:
            i = self.rng.randrange(len(words))
            words[i] = self.rng.choice([w for w in self.vocab if w != words[i]])
        flags, comment = self._flags(tags)
        return (
            convert.transcription_result(" ".join(words), tags, flags, comment),
            wrong,
            bool(flags),
        )

    def understanding(
        self, label: Label, text: str, tags: Tags
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        intent = label.intent
        entities = list(_reanchor(label, text))
        wrong = False
        if len(tags.intents) > 1 and self.rng.random() < self.error_rate:
            intent = self.rng.choice([i for i in tags.intents if i != intent])
            wrong = True
        if entities and self.rng.random() < self.error_rate:
            entities.pop(self.rng.randrange(len(entities)))
            wrong = True
        flags, comment = self._flags(tags)
        result = convert.understanding_result(text, intent, entities, tags, flags, comment)
        return result, wrong, bool(flags)


def simulate(
    admin: StudioClient,
    workspace: str | Path,
    config: StudioConfig,
    answers: str | Path,
    *,
    error_rate: float = 0.0,
    flag_rate: float = 0.0,
    seed: int = 0,
    limit: int | None = None,
    annotator: int = 1,
    progress: Progress | None = None,
) -> SimSummary:
    """Answer, as simulated annotator ``annotator`` (its own account), every open task it has
    not answered yet (at most ``limit``); ``SimSummary.wrong`` names the utterances it
    answered wrongly on purpose."""
    truth = {r.id: r.label for r in read_manifest(answers) if r.label is not None}
    bot = Annotator(truth, error_rate, flag_rate, seed)
    tags = project_tags(admin, workspace)
    refs = State.of(workspace).ref_index()
    with StudioClient(ensure_annotator(workspace, config, admin, annotator), config.client) as me:
        my_id = me.whoami()["id"]
        todo: list[tuple[dict[str, Any], Tags]] = []
        for _kind, (pid, ktags) in tags.items():
            for task in me.paginate(
                "/api/tasks/", what="listing open tasks", params={"project": pid, "fields": "all"}
            ):
                done_by = {
                    (a.get("completed_by") or {}).get("id")
                    if isinstance(a.get("completed_by"), dict)
                    else a.get("completed_by")
                    for a in task.get("annotations") or []
                }
                if task.get("is_labeled") or my_id in done_by:
                    continue
                todo.append((task, ktags))
        todo = todo[:limit] if limit is not None else todo
        summary = SimSummary()
        for n, (task, ktags) in enumerate(todo, start=1):
            data = task.get("data") or {}
            pushed = refs.get(str(data.get(convert.REF_KEY)))
            label = truth.get(pushed["utterance_id"]) if pushed else None
            if pushed is None or label is None:
                summary.no_answer += 1
                continue
            if ktags.kind == "transcription":
                result, wrong, flagged = bot.transcription(label, ktags)
            else:
                result, wrong, flagged = bot.understanding(label, str(data[ktags.data_key]), ktags)
            annotate_task(me, int(task["id"]), result)
            summary.annotated += 1
            summary.with_errors += int(wrong)
            if wrong:
                summary.wrong.append((ktags.kind, pushed["utterance_id"]))
            summary.flagged += int(flagged)
            if progress:
                progress(n, len(todo))
    return summary
