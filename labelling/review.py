"""What needs a person: flagged utterances, rejected annotations and disagreements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labelling import audit
from labelling.state import State, read_jsonl


@dataclass(frozen=True)
class ReviewItem:
    """One thing to act on; ``where`` is the Label Studio task to open (``kind/task id``)."""

    id: str
    what: str  # flagged | rejected | disagreement
    detail: str  # the flags, or the rejection reason
    comment: str | None
    annotator: str | None
    where: str
    annotated_at: str | None


def review_items(workspace: str | Path) -> list[ReviewItem]:
    """Flagged first (with the annotator's comment), then rejections, then disagreements;
    each listed item is recorded as ``reviewed`` in the audit log (``labelling.audit``)."""
    state = State.of(workspace)
    items = [
        ReviewItem(
            f["id"],
            "flagged",
            ", ".join(f["flags"]),
            f.get("comment"),
            f.get("annotator"),
            f.get("task", ""),
            f.get("annotated_at"),
        )
        for f in read_jsonl(state.flagged)
    ]
    items += [
        ReviewItem(
            r["id"],
            "rejected",
            r["reason"],
            None,
            r.get("annotator"),
            r.get("task", ""),
            r.get("annotated_at"),
        )
        for r in read_jsonl(state.rejected)
        if r["reason"] != "annotators disagree"
    ]
    for d in read_jsonl(state.disagreements):
        anns = d.get("annotations", [])
        who = ", ".join(a["annotator"] for a in anns)
        tasks = sorted({f"{d['kind']}/{a['task_id']}" for a in anns})
        items.append(
            ReviewItem(
                d["id"],
                "disagreement",
                f"{len(anns)} annotators disagree",
                None,
                who,
                ", ".join(tasks),
                None,
            )
        )
    _record(state, items)  # each listing shows these items to a person
    return items


def _record(state: State, items: list[ReviewItem]) -> int:
    """A ``reviewed`` audit event for each item listed to the local account (every listing
    counts; ``labelling.audit``)."""
    if not items:
        return 0
    actor = state.operator_pseudonym(audit.operator_account())
    return audit.AuditLog(state.audit).append(
        audit.Event("reviewed", actor, state.opaque_id(i.id), {"what": i.what, "where": i.where})
        for i in items
    )


def task_url(base_url: str, workspace: str | Path, where: str) -> str | None:
    """The Label Studio page of a ``kind/task id`` reference."""
    kind, _, task = where.partition("/")
    project = State.of(workspace).projects().get(kind)
    if not project or not task.isdigit():
        return None
    return f"{base_url}/projects/{project['id']}/data?task={task}"
