"""Creating tasks once each: import by opaque ref, reconcile with the server, record the result.

Both ``push`` (transcription tasks, and understanding tasks of the ``push.asr_confident``
shortcut) and ``pull`` (understanding follow-ups of confirmed transcripts) create tasks here:

- a task's ``data`` carries the utterance's opaque ref (``convert.REF_KEY``), so the server
  can always be asked which utterances have a task already (``existing_refs``);
- an import whose answer was lost (``OutcomeUnknown``) is followed by such a look-up and only
  the missing tasks are imported again, never a blind repeat (``import_tasks``);
- every task made or found is recorded in ``state/pushed.jsonl`` (``record``), the mapping
  from opaque ref to utterance id that never leaves the workspace.

NLU predictions given at push time are kept in ``state/predictions.jsonl`` (``keep_nlu``)
for the understanding tasks created later (``stored_nlu``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from earmark.core.errors import PredictionError, StudioError
from earmark.core.predictions import NLUPrediction, Prediction
from labelling import convert
from labelling.client import OutcomeUnknown, StudioClient
from labelling.configs import Kind, Tags
from labelling.overlap import Overlap
from labelling.state import State, append_jsonl, read_log

UnderstandingItem = tuple[str, str, NLUPrediction | None]  # utterance id, text, NLU prediction


def existing_refs(client: StudioClient, project_id: int) -> dict[str, int]:
    """opaque ref -> task id for every task of the project (so no utterance is pushed twice)."""
    out: dict[str, int] = {}
    for task in client.paginate(
        "/api/tasks/",
        what="listing tasks",
        params={"project": project_id, "fields": "all"},
    ):
        ref = (task.get("data") or {}).get(convert.REF_KEY)
        if ref:
            out[str(ref)] = int(task["id"])
    return out


def _ref(task: dict[str, Any]) -> str:
    return str(task["data"][convert.REF_KEY])


def import_tasks(client: StudioClient, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
    """Create ``tasks`` (distinct refs) once each; returns their task ids, in order.

    An import that failed after it may have been committed (``OutcomeUnknown``) is not
    repeated as is: the project's tasks are looked up by ref and only the missing ones are
    imported again (``client.retries`` times at most). Raises ``StudioError`` when the server
    answers with another number of tasks than it was sent.
    """
    refs = [_ref(t) for t in tasks]
    ids: dict[str, int] = {}
    attempts = max(1, client.config.retries + 1)
    for attempt in range(attempts):
        todo = [t for t, ref in zip(tasks, refs, strict=True) if ref not in ids]
        try:
            made = _import_once(client, project_id, todo)
        except OutcomeUnknown:
            time.sleep(client.config.backoff_s * 2**attempt)
            found = existing_refs(client, project_id)
            ids.update({ref: found[ref] for ref in refs if ref in found})
            if len(ids) == len(refs):
                break
            if attempt + 1 == attempts:
                raise
            continue
        ids.update(zip([_ref(t) for t in todo], made, strict=True))
        break
    return [ids[ref] for ref in refs]


def _import_once(client: StudioClient, project_id: int, todo: list[dict[str, Any]]) -> list[int]:
    """One import request for ``todo``; the ids of the tasks it made, one per task sent."""
    resp = client.request(
        "POST",
        f"/api/projects/{project_id}/import",
        what=f"creating {len(todo)} tasks",
        params={"return_task_ids": "true"},
        json_body=todo,
    )
    made = [int(t) for t in resp.get("task_ids", [])]
    if len(made) != len(todo):
        raise StudioError(
            f"Label Studio created {len(made)} tasks for {len(todo)} utterances in project "
            f"{project_id}; run `earmark push` again to reconcile (tasks are matched by "
            "opaque id)"
        )
    return made


def set_model_version(client: StudioClient, project_id: int, version: str | None) -> None:
    """Uncertainty sampling ranks the tasks whose predictions carry the project's model version."""
    if version:
        client.patch(
            f"/api/projects/{project_id}/",
            {"model_version": version},
            what="setting the project's model version",
        )


def latest_version(preds: Iterable[Prediction | None]) -> str | None:
    """The ``model_version`` of the last prediction that has one."""
    versions = [p.model_version for p in preds if p and p.model_version]
    return versions[-1] if versions else None


def record(
    state: State,
    kind: Kind,
    project_id: int,
    refs: list[tuple[str, str]],
    task_ids: list[int],
    preds: Sequence[Prediction | None],
) -> None:
    """Append one ``pushed.jsonl`` row per ``(utterance id, ref)`` with its task and prediction.

    Raises ``StudioError`` (and records nothing) when ``task_ids`` does not match ``refs``.
    """
    if len(task_ids) != len(refs):
        raise StudioError(
            f"Label Studio created {len(task_ids)} tasks for {len(refs)} utterances in project "
            f"{project_id}; run `earmark push` again to reconcile (tasks are matched by opaque id)"
        )
    now = datetime.now(UTC).isoformat()
    append_jsonl(
        state.pushed,
        (
            {
                "ref": ref,
                "utterance_id": uid,
                "kind": kind,
                "project": project_id,
                "task_id": tid,
                "score": (p.confidence if p else None),
                "model_version": (p.model_version if p else None),
                "pushed_at": now,
            }
            for (uid, ref), tid, p in zip(refs, task_ids, preds, strict=True)
        ),
    )


def push_understanding(
    client: StudioClient,
    state: State,
    project_id: int,
    tags: Tags,
    items: Iterable[UnderstandingItem],
    *,
    on_server: dict[str, int] | None = None,
    overlap: Overlap = Overlap(),
) -> list[int]:
    """Understanding tasks for ``(utterance id, confirmed transcript, NLU prediction or None)``;
    returns the ids of the tasks created, each open to the annotators ``overlap`` gives it.

    An utterance whose task is on the server already (``on_server``: ref -> task id, listed
    when not given), e.g. imported just before a kill lost its record, is recorded in
    ``pushed.jsonl`` with that task instead of being created again.
    """
    items = list(items)
    if not items:
        return []
    if on_server is None:
        on_server = existing_refs(client, project_id)
    tasks, refs, preds = [], [], []
    for uid, text, nlu in items:
        ref = state.opaque_id(uid)
        if ref in on_server:
            overlap.apply(client, state, [(uid, on_server[ref])])
            record(state, "understanding", project_id, [(uid, ref)], [on_server[ref]], [nlu])
            continue
        tasks.append(convert.understanding_task(ref, text, tags, nlu))
        refs.append((uid, ref))
        preds.append(nlu)
    if not tasks:
        return []
    task_ids = import_tasks(client, project_id, tasks)
    # before the record: a pull killed in between finds the tasks and sets them again
    overlap.apply(client, state, zip([uid for uid, _ in refs], task_ids, strict=True))
    record(state, "understanding", project_id, refs, task_ids, preds)
    set_model_version(client, project_id, latest_version(preds))
    return task_ids


def keep_nlu(state: State, ids: Iterable[str], nlu: dict[str, NLUPrediction]) -> None:
    """Append the NLU predictions of ``ids`` (those that have one) to ``predictions.jsonl``."""
    append_jsonl(state.predictions, ({"id": i, "nlu": nlu[i].to_dict()} for i in ids if i in nlu))


def stored_nlu(state: State) -> dict[str, NLUPrediction]:
    """NLU predictions kept at push time, for understanding tasks created later; one that is
    malformed raises ``PredictionError`` naming the file and the utterance."""
    out: dict[str, NLUPrediction] = {}
    for row in read_log(state.predictions):
        try:
            out[row["id"]] = NLUPrediction.from_dict(row["nlu"])
        except PredictionError as exc:
            raise PredictionError(
                f"{state.predictions}: utterance {row['id']}: not an NLU prediction: {exc}"
            ) from None
    return out
