"""Import annotations incrementally, validate them, and write labels with provenance.

Every annotation version (id + ``updated_at``) is imported once into ``state/imported.jsonl``
(already in our terms); running ``pull`` again imports nothing new. The outputs are then
recomputed from that log, so a later edit supersedes an earlier one:

- ``labels.jsonl``: a manifest of accepted human labels (``source: human``, ``version``: the
  annotator's pseudonym, ``annotated_at`` and ``annotation_tasks`` as provenance, and
  ``transcript_confirmed``: whether a person confirmed the transcript in a transcription
  task, having heard the audio; false for the understanding-only labels of the
  ``push.asr_confident`` shortcut, whose text is the ASR's own and trains the NLU only);
- ``rejected.jsonl``: invalid annotations with the reason (never trained on; the task stays
  listed by ``earmark review`` until the annotation is fixed in Label Studio and pulled again);
- ``flagged.jsonl``: utterances an annotator flagged, with the flags and comment;
- ``disagreements.jsonl``: tasks where annotators disagree.

How several annotators on one task are reconciled is ``labelling.decisions``; a rejected
task is reopened in Label Studio, so another annotator can answer it. Confirmed transcripts
get their understanding task here (``labelling.tasks.push_understanding``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from earmark.core.fileio import write_json
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Label
from labelling import audit, convert
from labelling.agreement import agreement
from labelling.client import StudioClient
from labelling.configs import Tags
from labelling.decisions import Entry, Outcome, TaskRef, decide_all
from labelling.forget import delete_upload_files
from labelling.overlap import Overlap
from labelling.projects import project_tags
from labelling.settings import StudioConfig
from labelling.state import State, append_jsonl, read_jsonl, read_log, write_jsonl
from labelling.tasks import UnderstandingItem, push_understanding, stored_nlu


@dataclass
class PullSummary:
    """What one ``pull`` found; ``accepted`` to ``disagreements`` count all pulls so far."""

    new: int = 0  # annotation versions imported by this pull
    accepted: int = 0  # utterances with an accepted label (all pulls)
    rejected: int = 0
    flagged: int = 0
    skipped: int = 0
    disagreements: int = 0
    followups: int = 0  # understanding tasks created for newly confirmed transcripts
    audio_deleted: int = 0  # uploaded files of decided transcriptions deleted by this pull
    agreement: dict[str, Any] = field(default_factory=dict)  # labelling.agreement, all pulls
    reasons: dict[str, int] = field(default_factory=dict)


def _user_id(annotation: dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id")
    return str(who)


def _task_annotations(client: StudioClient, task: dict[str, Any]) -> list[dict[str, Any]]:
    anns = task.get("annotations")
    if anns is None:
        anns = client.get(f"/api/tasks/{task['id']}/annotations/", what="reading annotations")
    return list(anns or [])


def fetch_new(
    client: StudioClient, state: State, tags: dict[str, tuple[int, Tags]]
) -> tuple[list[Entry], set[int], dict[int, tuple[bool, int]]]:
    """Log entries for annotation versions not imported yet, the ids of all current
    annotations, and task id -> (is labelled, number of annotations).

    Only tasks earmark pushed (their ref is in ``pushed.jsonl``) are read.
    """
    refs = state.ref_index()
    seen = {(e["annotation_id"], e["updated_at"]) for e in read_log(state.imported)}
    new: list[Entry] = []
    current: set[int] = set()
    task_info: dict[int, tuple[bool, int]] = {}
    for kind, (pid, ktags) in tags.items():
        for task in client.paginate(
            "/api/tasks/", what=f"listing {kind} tasks", params={"project": pid, "fields": "all"}
        ):
            data = task.get("data") or {}
            pushed = refs.get(str(data.get(convert.REF_KEY)))
            if pushed is None:
                continue  # not a task earmark pushed
            anns = _task_annotations(client, task)
            task_info[int(task["id"])] = (bool(task.get("is_labeled")), len(anns))
            for ann in anns:
                current.add(int(ann["id"]))
                if (int(ann["id"]), str(ann.get("updated_at"))) not in seen:
                    answer = convert.parse_annotation(ann, data, ktags)
                    new.append(_entry(state, TaskRef(kind, int(task["id"])), pushed, ann, answer))
    return new, current, task_info


def _entry(
    state: State,
    task: TaskRef,
    pushed: dict[str, Any],
    ann: dict[str, Any],
    answer: convert.Answer,
) -> Entry:
    """The ``imported.jsonl`` line of one annotation version, in our terms."""
    return {
        "annotation_id": int(ann["id"]),
        "updated_at": str(ann.get("updated_at")),
        "kind": task.kind,
        "task_id": task.task_id,
        "utterance_id": pushed["utterance_id"],
        "annotator": state.pseudonym(_user_id(ann)),
        "answer": answer.to_dict(),
        "imported_at": datetime.now(UTC).isoformat(),
    }


def reopen(client: StudioClient, task_id: int, n_annotations: int) -> None:
    """Put a task back into the labelling queue: one more annotation wanted, not labelled."""
    client.patch(
        f"/api/tasks/{task_id}/",
        {"is_labeled": False, "overlap": n_annotations + 1},
        what=f"reopening task {task_id} for review",
    )


def pull(
    client: StudioClient,
    workspace: str | Path,
    config: StudioConfig | None = None,
    *,
    followup: bool = True,
) -> PullSummary:
    """Import new annotation versions, rewrite the outputs, and queue understanding follow-ups.

    Differing answers are settled by ``projects.resolution``; a rejected or undecided task is
    reopened for one more annotator while fewer than ``privacy.max_listeners`` have answered
    it, and a transcription task that many have answered is closed. With
    ``privacy.delete_audio_after_import`` (on by default) the audio of every transcription
    decided (transcript confirmed, or flagged) or closed at the listener limit is deleted from
    the server's upload folder; a flagged task is closed so that no other annotator is offered
    it. Agreement figures go to ``studio/agreement.json`` (``labelling.agreement``). Nothing is
    written unless every request succeeded (no partial state).
    """
    config = config or StudioConfig()
    state = State.of(workspace)
    tags = project_tags(client, workspace)
    new, current, task_info = fetch_new(client, state, tags)
    entries = read_log(state.imported) + new
    outcome = decide_all(entries, current, tags, config.projects.resolution)
    _write(state, new, outcome)
    summary_agreement = agreement(entries, current)
    write_json(state.agreement, summary_agreement)
    audit.record_submissions(state)
    summary = PullSummary(
        new=len(new),
        accepted=len(outcome.labels),
        rejected=len(outcome.rejected),
        flagged=len({f.id for f in outcome.flagged}),
        skipped=outcome.skipped,
        disagreements=len(outcome.disagreements),
        agreement=summary_agreement,
    )
    limit = config.privacy.max_listeners
    for r in outcome.rejected:
        summary.reasons[r.reason] = summary.reasons.get(r.reason, 0) + 1
        labelled, n_annotations = task_info.get(r.task.task_id, (False, 0))
        if labelled and (limit is None or n_annotations < limit):
            reopen(client, r.task.task_id, n_annotations)  # back in the queue for one more
    transcribed = [r for r in state.pushed_rows() if r["kind"] == "transcription"]
    heard = _close_heard(client, transcribed, outcome, task_info, limit)
    if config.privacy.delete_audio_after_import:
        # a transcript confirmed while its task still waits for more annotators (overlap)
        # keeps its audio until they have heard it
        waiting = {
            r["utterance_id"] for r in transcribed if not task_info.get(r["task_id"], (True, 0))[0]
        }
        done = (set(outcome.confirmed) - waiting) | {f.id for f in outcome.flagged} | heard
        summary.audio_deleted = delete_upload_files(
            state, {state.opaque_id(u) for u in done}, ("transcription",)
        )
    if followup and "understanding" in tags:
        pid, utags = tags["understanding"]
        items = _followups(state, outcome)
        made = push_understanding(client, state, pid, utags, items, overlap=Overlap.of(config))
        summary.followups = len(made)
        audit.record_exposures(state)
    return summary


def _close(client: StudioClient, task_id: int, n_annotations: int, why: str) -> None:
    """Take a task out of the labelling queue (``overlap`` = the annotations it has)."""
    client.patch(
        f"/api/tasks/{task_id}/",
        {"is_labeled": True, "overlap": max(n_annotations, 1)},
        what=f"closing task {task_id} to other annotators ({why})",
    )


def _close_heard(
    client: StudioClient,
    transcribed: list[dict[str, Any]],
    outcome: Outcome,
    task_info: dict[int, tuple[bool, int]],
    limit: int | None,
) -> set[str]:
    """Close flagged transcription tasks still open to more annotators, and every
    transcription task ``limit`` annotators have answered; returns the utterances of the
    latter (their audio goes too)."""
    for f in outcome.flagged:
        labelled, n_annotations = task_info.get(f.task.task_id, (True, 0))
        if f.task.kind == "transcription" and not labelled:
            _close(client, f.task.task_id, n_annotations, "flagged")
    if limit is None:
        return set()
    heard: set[str] = set()
    for row in transcribed:  # the transcription rows of pushed.jsonl
        if row["task_id"] not in task_info:
            continue
        labelled, n_annotations = task_info[row["task_id"]]
        if n_annotations >= limit:
            heard.add(row["utterance_id"])
            if not labelled:
                _close(client, row["task_id"], n_annotations, "privacy.max_listeners")
    return heard


def _write(state: State, new: list[Entry], outcome: Outcome) -> None:
    """Log the new annotation versions, then rewrite the four outputs from the outcome."""
    state.make_private()
    if new:
        append_jsonl(state.imported, new)
    write_manifest(state.labels, outcome.labels)
    write_jsonl(state.rejected, (r.to_dict() for r in outcome.rejected))
    write_jsonl(state.flagged, (f.to_dict() for f in outcome.flagged))
    write_jsonl(state.disagreements, (d.to_dict() for d in outcome.disagreements))


def _followups(state: State, outcome: Outcome) -> list[UnderstandingItem]:
    """Confirmed transcripts with no understanding task yet (and nothing rejected), each with
    the NLU prediction kept at push time."""
    pushed = {(r["utterance_id"], r["kind"]) for r in state.pushed_rows()}
    nlu = stored_nlu(state)
    rejected = {r.id for r in outcome.rejected}
    return [
        (uid, text, nlu.get(uid))
        for uid, text in outcome.confirmed.items()
        if (uid, "understanding") not in pushed and uid not in rejected
    ]


def excluded_ids(workspace: str | Path) -> set[str]:
    """Utterances that must not be trained on: flagged, or with a rejected annotation."""
    state = State.of(workspace)
    return {r["id"] for r in read_jsonl(state.flagged)} | {
        r["id"] for r in read_jsonl(state.rejected)
    }


def transcript_confirmed(row: ManifestRow) -> bool:
    """Whether a person confirmed this ``labels.jsonl`` row's transcript in a transcription
    task (read from ``transcript_confirmed``; rows written before that field from
    ``annotation_tasks``)."""
    extra = row.utterance.extra
    if "transcript_confirmed" in extra:
        return extra["transcript_confirmed"] is True
    return any(str(t).startswith("transcription/") for t in extra.get("annotation_tasks", ()))


def build_training_manifest(
    workspace: str | Path,
    pool_manifest: str | Path,
    out: str | Path,
    *,
    require_intent: bool = False,
) -> int:
    """Write a training manifest: the pool's audio joined with the human labels pulled so far.

    Flagged utterances and utterances with a rejected annotation are left out. Without
    ``require_intent`` (the ASR's manifest) only transcripts a person confirmed in a
    transcription task are kept, never the understanding-only labels of the
    ``push.asr_confident`` shortcut (their text is the ASR's own, unheard); with
    ``require_intent`` (the NLU's) every fully understood utterance is kept. Returns the row
    count.
    """
    state = State.of(workspace)
    labels: dict[str, Label] = {}
    if state.labels.is_file():
        labels = {
            r.id: r.label
            for r in read_manifest(state.labels)
            if r.label is not None and (require_intent or transcript_confirmed(r))
        }
    skip = excluded_ids(workspace)
    rows = []
    for row in read_manifest(pool_manifest):
        label = labels.get(row.id)
        if label is None or row.id in skip or (require_intent and label.intent is None):
            continue
        rows.append(ManifestRow(row.utterance, label))
    n = write_manifest(out, rows)
    audit.record_exported(state, [r.id for r in rows], out, "nlu" if require_intent else "asr")
    return n
