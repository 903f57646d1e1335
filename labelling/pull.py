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

Policy for several annotators on one task: each annotator's latest annotation counts, and
invalid ones are set aside (a rejected task is reopened in Label Studio, so another annotator
can answer it); when the valid answers all agree (same normalised transcript; for
understanding also intent and spans) the most recent one is taken, otherwise the task is
rejected as "annotators disagree" and reported. Skipped (cancelled) annotations produce no label and are counted. A flag from any
annotator excludes the utterance from training.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from earmark.manifest import ManifestRow, read_manifest, write_manifest
from earmark.records import Label, Utterance
from labelling import convert
from labelling.client import StudioClient
from labelling.configs import Tags
from labelling.projects import project_tags
from labelling.push import push_understanding, stored_nlu
from labelling.state import State, append_jsonl, read_jsonl, read_log, write_jsonl


@dataclass
class PullSummary:
    new: int = 0  # annotation versions imported by this pull
    accepted: int = 0  # utterances with an accepted label (all pulls)
    rejected: int = 0
    flagged: int = 0
    skipped: int = 0
    disagreements: int = 0
    followups: int = 0  # understanding tasks created for newly confirmed transcripts
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
) -> tuple[list[dict[str, Any]], set[int], dict[int, tuple[bool, int]]]:
    """Log entries for annotation versions not imported yet, the ids of all current
    annotations, and task id -> (is labelled, number of annotations)."""
    refs = state.ref_index()
    seen = {(e["annotation_id"], e["updated_at"]) for e in read_log(state.imported)}
    new: list[dict[str, Any]] = []
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
                key = (int(ann["id"]), str(ann.get("updated_at")))
                if key in seen:
                    continue
                answer = convert.parse_annotation(ann, data, ktags)
                new.append(
                    {
                        "annotation_id": key[0],
                        "updated_at": key[1],
                        "kind": kind,
                        "task_id": int(task["id"]),
                        "utterance_id": pushed["utterance_id"],
                        "annotator": state.pseudonym(_user_id(ann)),
                        "answer": answer.to_dict(),
                        "imported_at": datetime.now(UTC).isoformat(),
                    }
                )
    return new, current, task_info


def reopen(client: StudioClient, task_id: int, n_annotations: int) -> None:
    """Put a task back into the labelling queue: one more annotation wanted, not labelled."""
    client.patch(
        f"/api/tasks/{task_id}/",
        {"is_labeled": False, "overlap": n_annotations + 1},
        what=f"reopening task {task_id} for review",
    )


@dataclass(frozen=True)
class Decision:
    """The current outcome for one utterance and one kind of task."""

    kind: str
    label: Label | None
    reason: str | None
    entry: dict[str, Any] | None  # the annotation the outcome rests on
    skipped: bool = False
    disagreement: list[dict[str, Any]] | None = None


def _latest_per_annotator(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_ann: dict[int, dict[str, Any]] = {}
    for e in entries:  # the latest version of each annotation
        old = by_ann.get(e["annotation_id"])
        if old is None or e["updated_at"] >= old["updated_at"]:
            by_ann[e["annotation_id"]] = e
    by_person: dict[str, dict[str, Any]] = {}
    for e in by_ann.values():  # a later annotation by the same person supersedes
        old = by_person.get(e["annotator"])
        if old is None or e["updated_at"] >= old["updated_at"]:
            by_person[e["annotator"]] = e
    return sorted(by_person.values(), key=lambda e: e["updated_at"])


def _decide(
    kind: str,
    entries: list[dict[str, Any]],
    tags: Tags,
    confirmed_text: str | None,
) -> Decision:
    latest = _latest_per_annotator(entries)
    answers = [(e, convert.Answer.from_dict(e["answer"])) for e in latest]
    live = [(e, a) for e, a in answers if not a.cancelled]
    if not live:
        return Decision(kind, None, None, latest[-1] if latest else None, skipped=True)
    checked = []
    for e, a in live:
        if kind == "transcription":
            label, reason = convert.validate_transcription(a, e["annotator"])
        else:
            label, reason = convert.validate_understanding(
                a, e["annotator"], tags.intents, tags.entity_types, confirmed_text
            )
        checked.append((e, a, label, reason))
    valid = [(e, a, label) for e, a, label, _ in checked if label is not None]
    if not valid:  # every annotator's answer is invalid: the latest one's reason
        e, _, _, reason = checked[-1]
        return Decision(kind, None, reason, e)
    entry, answer, label = valid[-1]
    if not all(convert.answers_agree(answer, a) for _, a, _ in valid[:-1]):
        report = [
            {"annotator": e["annotator"], "answer": a.to_dict(), "task_id": e["task_id"]}
            for e, a, _ in valid
        ]
        return Decision(kind, None, "annotators disagree", entry, disagreement=report)
    return Decision(kind, label, None, entry)


@dataclass
class Outcome:
    """Everything recomputed from the log."""

    labels: list[ManifestRow] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    confirmed: dict[str, str] = field(default_factory=dict)  # accepted transcripts


def _where(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "annotator": entry["annotator"],
        "task": f"{entry['kind']}/{entry['task_id']}",
        "annotated_at": entry["updated_at"],
    }


def decide_all(
    entries: Iterable[dict[str, Any]], current: set[int], tags: dict[str, tuple[int, Tags]]
) -> Outcome:
    """Labels, rejections, flags and disagreements from the imported annotations still on the server."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e["annotation_id"] in current:
            grouped[e["utterance_id"]][e["kind"]].append(e)
    out = Outcome()
    for uid in sorted(grouped):
        kinds = grouped[uid]
        flags = [
            (e, convert.Answer.from_dict(e["answer"]))
            for es in kinds.values()
            for e in _latest_per_annotator(es)
        ]
        flagged = [(e, a) for e, a in flags if a.flags and not a.cancelled]
        if flagged:
            for e, a in flagged:
                out.flagged.append(
                    {"id": uid, "flags": list(a.flags), "comment": a.comment, **_where(e)}
                )
            continue
        decisions: dict[str, Decision] = {}
        if "transcription" in kinds:
            decisions["transcription"] = _decide(
                "transcription", kinds["transcription"], tags["transcription"][1], None
            )
        trans = decisions.get("transcription")
        confirmed = trans.label.text if trans and trans.label else None
        if "understanding" in kinds:
            decisions["understanding"] = _decide(
                "understanding", kinds["understanding"], tags["understanding"][1], confirmed
            )
        for d in decisions.values():
            if d.skipped:
                out.skipped += 1
            if d.reason and d.entry:
                out.rejected.append(
                    {"id": uid, "kind": d.kind, "reason": d.reason, **_where(d.entry)}
                )
            if d.disagreement:
                out.disagreements.append({"id": uid, "kind": d.kind, "annotations": d.disagreement})
        if confirmed is not None:
            out.confirmed[uid] = confirmed
        best = next(
            (
                decisions[k]
                for k in ("understanding", "transcription")
                if k in decisions and decisions[k].label
            ),
            None,
        )
        if best is None or best.label is None or best.entry is None:
            continue
        used = [d.entry for d in decisions.values() if d.label and d.entry]
        extra = {
            "annotated_at": max(e["updated_at"] for e in used),
            "annotation_tasks": sorted(f"{e['kind']}/{e['task_id']}" for e in used),
            "transcript_confirmed": confirmed is not None,
        }
        out.labels.append(
            ManifestRow(
                Utterance(uid, extra=MappingProxyType(extra)), best.label.with_(utterance_id=uid)
            )
        )
    return out


def pull(client: StudioClient, workspace: str | Path, *, followup: bool = True) -> PullSummary:
    """Import new annotation versions, rewrite the outputs, and queue understanding follow-ups.

    Nothing is written unless every request succeeded (no partial state).
    """
    state = State.of(workspace)
    tags = project_tags(client, workspace)
    new, current, task_info = fetch_new(client, state, tags)
    entries = read_log(state.imported) + new
    outcome = decide_all(entries, current, tags)
    state.make_private()
    if new:
        append_jsonl(state.imported, new)
    write_manifest(state.labels, outcome.labels)
    write_jsonl(state.rejected, outcome.rejected)
    write_jsonl(state.flagged, outcome.flagged)
    write_jsonl(state.disagreements, outcome.disagreements)
    summary = PullSummary(
        new=len(new),
        accepted=len(outcome.labels),
        rejected=len(outcome.rejected),
        flagged=len({f["id"] for f in outcome.flagged}),
        skipped=outcome.skipped,
        disagreements=len(outcome.disagreements),
    )
    for r in outcome.rejected:
        summary.reasons[r["reason"]] = summary.reasons.get(r["reason"], 0) + 1
        task_id = int(r["task"].partition("/")[2])
        labelled, n_annotations = task_info.get(task_id, (False, 0))
        if labelled:  # left open: back in the queue until a valid answer comes
            reopen(client, task_id, n_annotations)
    if followup and "understanding" in tags:
        pushed = {(r["utterance_id"], r["kind"]) for r in state.pushed_rows()}
        nlu = stored_nlu(state)
        rejected = {r["id"] for r in outcome.rejected}
        items = [
            (uid, text, nlu.get(uid))
            for uid, text in outcome.confirmed.items()
            if (uid, "understanding") not in pushed and uid not in rejected
        ]
        pid, utags = tags["understanding"]
        summary.followups = len(push_understanding(client, state, pid, utags, items))
    return summary


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
    return write_manifest(out, rows)
