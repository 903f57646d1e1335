"""From imported annotations to outcomes: labels, rejections, flags and disagreements.

Pure functions over the entries of ``state/imported.jsonl`` (one per annotation version,
already in our terms: annotation id, ``updated_at``, kind, task id, utterance id, annotator
pseudonym, ``Answer``); nothing here talks to the server or writes a file.

Policy for several annotators on one task: each annotator's latest annotation counts, and
invalid ones are set aside; when the valid answers all agree (same normalised transcript; for
understanding also intent and spans) the most recent one is taken. When they differ, the rule
(``projects.resolution``) decides: ``majority`` takes the answer more than half of them gave
(its most recent copy), ``unanimous`` takes none; a task left undecided is rejected as
"annotators disagree" and reported (``pull`` reopens it for one more annotator while
``privacy.max_listeners`` allows, and ``earmark review`` lists it). Skipped (cancelled)
annotations produce no label and are counted. A flag from any annotator excludes the utterance
from training.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from earmark.core.manifest import ManifestRow
from earmark.core.records import Label, Utterance
from labelling import convert
from labelling.configs import Tags
from labelling.validation import answers_agree, validate_transcription, validate_understanding

Entry = dict[str, Any]  # one line of state/imported.jsonl
DISAGREE = "annotators disagree"
Rule = Literal["majority", "unanimous"]


@dataclass(frozen=True)
class TaskRef:
    """A task on the server: the kind of its project and its id."""

    kind: str
    task_id: int

    @classmethod
    def of(cls, entry: Entry) -> TaskRef:
        """The task an imported annotation belongs to."""
        return cls(str(entry["kind"]), int(entry["task_id"]))

    def __str__(self) -> str:
        """How the output files show it, e.g. ``transcription/12`` (written, never parsed)."""
        return f"{self.kind}/{self.task_id}"


@dataclass(frozen=True)
class Rejection:
    """An annotation that cannot be trained on, with the reason (a row of ``rejected.jsonl``)."""

    id: str  # the utterance
    reason: str
    annotator: str
    task: TaskRef
    annotated_at: str

    @classmethod
    def of(cls, uid: str, reason: str, entry: Entry) -> Rejection:
        return cls(uid, reason, entry["annotator"], TaskRef.of(entry), entry["updated_at"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.task.kind,
            "reason": self.reason,
            "annotator": self.annotator,
            "task": str(self.task),
            "annotated_at": self.annotated_at,
        }


@dataclass(frozen=True)
class Flag:
    """An utterance an annotator flagged, with the flags and comment (a row of ``flagged.jsonl``)."""

    id: str  # the utterance
    flags: tuple[str, ...]
    comment: str | None
    annotator: str
    task: TaskRef
    annotated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flags": list(self.flags),
            "comment": self.comment,
            "annotator": self.annotator,
            "task": str(self.task),
            "annotated_at": self.annotated_at,
        }


@dataclass(frozen=True)
class Disagreement:
    """A task whose annotators gave different valid answers (a row of ``disagreements.jsonl``)."""

    id: str  # the utterance
    kind: str
    annotations: tuple[dict[str, Any], ...]  # each: annotator, answer, task_id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "annotations": list(self.annotations)}


@dataclass(frozen=True)
class Decision:
    """The current outcome for one utterance and one kind of task."""

    kind: str
    label: Label | None
    reason: str | None
    entry: Entry | None  # the annotation the outcome rests on
    skipped: bool = False
    disagreement: tuple[dict[str, Any], ...] | None = None


@dataclass
class Outcome:
    """Everything recomputed from the log."""

    labels: list[ManifestRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    flagged: list[Flag] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    skipped: int = 0
    confirmed: dict[str, str] = field(default_factory=dict)  # accepted transcripts


def latest_per_annotator(entries: list[Entry]) -> list[Entry]:
    """The latest version of each annotator's latest annotation, oldest first."""
    by_ann: dict[int, Entry] = {}
    for e in entries:  # the latest version of each annotation
        old = by_ann.get(e["annotation_id"])
        if old is None or e["updated_at"] >= old["updated_at"]:
            by_ann[e["annotation_id"]] = e
    by_person: dict[str, Entry] = {}
    for e in by_ann.values():  # a later annotation by the same person supersedes
        old = by_person.get(e["annotator"])
        if old is None or e["updated_at"] >= old["updated_at"]:
            by_person[e["annotator"]] = e
    return sorted(by_person.values(), key=lambda e: e["updated_at"])


def _validate(
    kind: str, entry: Entry, answer: convert.Answer, tags: Tags, confirmed_text: str | None
) -> tuple[Label | None, str | None]:
    if kind == "transcription":
        return validate_transcription(answer, entry["annotator"])
    return validate_understanding(
        answer, entry["annotator"], tags.intents, tags.entity_types, confirmed_text
    )


def _settled(
    valid: list[tuple[Entry, convert.Answer, Label]], rule: Rule
) -> tuple[Entry, convert.Answer, Label] | None:
    """The valid answer that decides the task under ``rule``, or None (they disagree).

    Every answer agreeing: the most recent. ``majority``: the most recent of the answers that
    more than half of the annotators gave."""
    support = [sum(answers_agree(a, b) for _, b, _ in valid) for _, a, _ in valid]
    if min(support) == len(valid):
        return valid[-1]
    if rule == "majority":
        winners = [v for v, n in zip(valid, support, strict=True) if 2 * n > len(valid)]
        if winners:
            return winners[-1]
    return None


def decide(
    kind: str,
    entries: list[Entry],
    tags: Tags,
    confirmed_text: str | None,
    rule: Rule = "majority",
) -> Decision:
    """The outcome of one utterance's ``kind`` task from its annotations (``entries``).

    ``confirmed_text`` (understanding only) is the accepted transcript, which the spans must
    have been drawn on; ``rule`` settles differing answers (``_settled``).
    """
    latest = latest_per_annotator(entries)
    answers = [(e, convert.Answer.from_dict(e["answer"])) for e in latest]
    live = [(e, a) for e, a in answers if not a.cancelled]
    if not live:
        return Decision(kind, None, None, latest[-1] if latest else None, skipped=True)
    checked = [(e, a, *_validate(kind, e, a, tags, confirmed_text)) for e, a in live]
    valid = [(e, a, label) for e, a, label, _ in checked if label is not None]
    if not valid:  # every annotator's answer is invalid: the latest one's reason
        e, _, _, reason = checked[-1]
        return Decision(kind, None, reason, e)
    settled = _settled(valid, rule)
    if settled is None:
        report = tuple(
            {"annotator": e["annotator"], "answer": a.to_dict(), "task_id": e["task_id"]}
            for e, a, _ in valid
        )
        return Decision(kind, None, DISAGREE, valid[-1][0], disagreement=report)
    entry, _, label = settled
    return Decision(kind, label, None, entry)


def _flags(uid: str, kinds: dict[str, list[Entry]]) -> list[Flag]:
    """Every annotator's current flags on the utterance (cancelled annotations flag nothing)."""
    out = []
    for es in kinds.values():
        for e in latest_per_annotator(es):
            a = convert.Answer.from_dict(e["answer"])
            if a.flags and not a.cancelled:
                out.append(
                    Flag(uid, a.flags, a.comment, e["annotator"], TaskRef.of(e), e["updated_at"])
                )
    return out


def _decisions(
    kinds: dict[str, list[Entry]], tags: dict[str, tuple[int, Tags]], rule: Rule
) -> list[Decision]:
    """Transcription first: its accepted transcript is what understanding spans are checked on."""
    out: list[Decision] = []
    confirmed = None
    if "transcription" in kinds:
        trans = decide(
            "transcription", kinds["transcription"], tags["transcription"][1], None, rule
        )
        out.append(trans)
        confirmed = trans.label.text if trans.label else None
    if "understanding" in kinds:
        out.append(
            decide(
                "understanding", kinds["understanding"], tags["understanding"][1], confirmed, rule
            )
        )
    return out


def _confirmed(decisions: list[Decision]) -> str | None:
    """The accepted transcript of the utterance's transcription task, if any."""
    return next((d.label.text for d in decisions if d.kind == "transcription" and d.label), None)


def _label_row(uid: str, decisions: list[Decision], confirmed: str | None) -> ManifestRow | None:
    """The ``labels.jsonl`` row: the understanding label if accepted, else the transcription
    one, with the provenance of every accepted annotation."""
    best = next(
        (
            d
            for k in ("understanding", "transcription")
            for d in decisions
            if d.kind == k and d.label
        ),
        None,
    )
    if best is None or best.label is None or best.entry is None:
        return None
    used = [d.entry for d in decisions if d.label and d.entry]
    extra = {
        "annotated_at": max(e["updated_at"] for e in used),
        "annotation_tasks": sorted(str(TaskRef.of(e)) for e in used),
        "transcript_confirmed": confirmed is not None,
    }
    return ManifestRow(
        Utterance(uid, extra=MappingProxyType(extra)), best.label.with_(utterance_id=uid)
    )


def _decide_utterance(
    uid: str,
    kinds: dict[str, list[Entry]],
    tags: dict[str, tuple[int, Tags]],
    rule: Rule,
    out: Outcome,
) -> None:
    """Add the utterance's flags, or else its skips, rejections, disagreements and label."""
    flagged = _flags(uid, kinds)
    if flagged:
        out.flagged.extend(flagged)
        return
    decisions = _decisions(kinds, tags, rule)
    for d in decisions:
        if d.skipped:
            out.skipped += 1
        if d.reason and d.entry:
            out.rejected.append(Rejection.of(uid, d.reason, d.entry))
        if d.disagreement:
            out.disagreements.append(Disagreement(uid, d.kind, d.disagreement))
    confirmed = _confirmed(decisions)
    if confirmed is not None:
        out.confirmed[uid] = confirmed
    row = _label_row(uid, decisions, confirmed)
    if row is not None:
        out.labels.append(row)


def decide_all(
    entries: Iterable[Entry],
    current: set[int],
    tags: dict[str, tuple[int, Tags]],
    rule: Rule = "majority",
) -> Outcome:
    """Labels, rejections, flags and disagreements from the imported annotations still on the
    server (``current``: their annotation ids), utterance by utterance in id order, differing
    answers settled by ``rule``."""
    grouped: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        if e["annotation_id"] in current:
            grouped[e["utterance_id"]][e["kind"]].append(e)
    out = Outcome()
    for uid in sorted(grouped):
        _decide_utterance(uid, grouped[uid], tags, rule, out)
    return out
