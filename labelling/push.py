"""Push selected utterances to Label Studio as pre-annotated tasks (never twice).

A task carries an opaque id, the audio under an opaque file name (re-encoded, so no
metadata of the original file travels either) and the model's predictions; the mapping from
opaque id to utterance id stays in the workspace (``state/pushed.jsonl``).

Routing: an utterance goes to the transcription project. Only when the shortcut
``push.asr_confident`` is set (it is off by default) and the ASR prediction is at least that
sure and an NLU prediction exists does it go straight to the understanding project, showing
the ASR's own transcript: nobody hears the audio there, so such a label trains the NLU only
(``pull.build_training_manifest``). Accepted transcripts are sent on to the understanding
project by ``pull`` (``push_understanding``).

Tasks are never created twice: utterances whose task is on the server already (found by the
opaque ref, e.g. after a kill between an import and its record) are recorded, not re-sent,
and an import whose answer was lost is followed by a look-up, not a blind repeat.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soundfile as sf

from earmark.errors import StudioError
from earmark.fileio import iter_id_records
from earmark.manifest import read_manifest
from earmark.records import Utterance
from labelling import convert
from labelling.client import OutcomeUnknown, StudioClient
from labelling.configs import Tags
from labelling.projects import project_tags
from labelling.settings import StudioConfig
from labelling.state import State, append_jsonl, read_log

Progress = Callable[[int, int], None]


@dataclass
class PushSummary:
    transcription: int = 0
    understanding: int = 0
    already_pushed: int = 0
    task_ids: list[int] = field(default_factory=list)

    @property
    def created(self) -> int:
        return self.transcription + self.understanding


def read_selection(path: str | Path) -> list[str]:
    """Utterance ids of a selection JSONL (``{"id": ..., "score": ...}`` per line), in order."""
    ids = (obj["id"] for _, obj in iter_id_records(path, what="selection", error=StudioError))
    return list(dict.fromkeys(ids))


def read_predictions(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Prediction JSONL (ASR or NLU, one object with an ``id`` per line) by utterance id."""
    if path is None:
        return {}
    return {
        obj["id"]: obj for _, obj in iter_id_records(path, what="prediction", error=StudioError)
    }


def opaque_wav(audio_path: str) -> bytes:
    """The audio re-encoded as 16-bit WAV: same samples, none of the original file's metadata."""
    try:
        data, sr = sf.read(audio_path, dtype="int16", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise StudioError(f"cannot read audio {audio_path}: {exc}") from None
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def upload_audio(client: StudioClient, project_id: int, ref: str, wav: bytes) -> str:
    """Upload one file as ``<ref>.wav`` without creating a task; returns its URL on the server."""
    resp = client.request(
        "POST",
        f"/api/projects/{project_id}/import",
        what=f"uploading audio for task {ref}",
        params={"commit_to_project": "false"},
        files={"file": (f"{ref}.wav", wav, "audio/wav")},
        # a repeated upload leaves one more unused file, never a task: safe to retry
        idempotent=True,
    )
    upload_id = resp["file_upload_ids"][0]
    info = client.get(f"/api/import/file-upload/{upload_id}", what="reading an uploaded file")
    name = str(info["file"]).lstrip("/")
    return f"/{name}" if name.startswith("data/") else f"/data/{name}"


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


def _import(client: StudioClient, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
    """Create ``tasks`` (distinct refs) once each; returns their task ids, in order.

    An import that failed after it may have been committed (``OutcomeUnknown``) is not
    repeated as is: the project's tasks are looked up by ref and only the missing ones are
    imported again (``client.retries`` times at most).
    """
    refs = [str(t["data"][convert.REF_KEY]) for t in tasks]
    ids: dict[str, int] = {}
    attempts = max(1, client.config.retries + 1)
    for attempt in range(attempts):
        todo = [t for t, ref in zip(tasks, refs, strict=True) if ref not in ids]
        try:
            resp = client.request(
                "POST",
                f"/api/projects/{project_id}/import",
                what=f"creating {len(todo)} tasks",
                params={"return_task_ids": "true"},
                json_body=todo,
            )
        except OutcomeUnknown:
            time.sleep(client.config.backoff_s * 2**attempt)
            found = existing_refs(client, project_id)
            ids.update({ref: found[ref] for ref in refs if ref in found})
            if len(ids) == len(refs):
                break
            if attempt + 1 == attempts:
                raise
            continue
        made = [int(t) for t in resp.get("task_ids", [])]
        if len(made) != len(todo):
            raise StudioError(
                f"Label Studio created {len(made)} tasks for {len(todo)} utterances in project "
                f"{project_id}; run `earmark push` again to reconcile (tasks are matched by "
                "opaque id)"
            )
        ids.update(zip([str(t["data"][convert.REF_KEY]) for t in todo], made, strict=True))
        break
    return [ids[ref] for ref in refs]


def _set_model_version(client: StudioClient, project_id: int, version: str | None) -> None:
    """Uncertainty sampling ranks the tasks whose predictions carry the project's model version."""
    if version:
        client.patch(
            f"/api/projects/{project_id}/",
            {"model_version": version},
            what="setting the project's model version",
        )


def push(
    client: StudioClient,
    workspace: str | Path,
    selection: str | Path,
    manifest: str | Path,
    config: StudioConfig,
    *,
    asr_predictions: str | Path | None = None,
    nlu_predictions: str | Path | None = None,
    progress: Progress | None = None,
) -> PushSummary:
    """Create tasks for the selected utterances; already pushed utterances are counted, not re-sent."""
    ids = read_selection(selection)
    rows = {row.id: row.utterance for row in read_manifest(manifest)}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise StudioError(
            f"{len(missing)} selected id(s) are not in manifest {manifest}: {missing[:5]}"
        )
    no_audio = [i for i in ids if not rows[i].audio]
    if no_audio:
        raise StudioError(f"selected utterances without audio in {manifest}: {no_audio[:5]}")
    asr = read_predictions(asr_predictions)
    nlu = read_predictions(nlu_predictions)
    state = State.of(workspace)
    tags = project_tags(client, workspace)
    state.make_private()
    if nlu:  # kept for the understanding tasks created after transcription
        append_jsonl(
            state.predictions,
            ({"id": i, "nlu": nlu[i]} for i in ids if i in nlu),
        )

    summary = PushSummary()
    pushed = {(r["utterance_id"], r["kind"]) for r in state.pushed_rows()}
    on_server = {kind: existing_refs(client, pid) for kind, (pid, _) in tags.items()}
    todo: list[tuple[str, str]] = []
    for uid in ids:
        ref = state.opaque_id(uid)
        if any((uid, k) in pushed or ref in on_server[k] for k in tags):
            summary.already_pushed += 1
            for kind, (pid, _) in tags.items():  # on the server but lost from the state
                if ref in on_server[kind] and (uid, kind) not in pushed:
                    _record(state, kind, pid, [(uid, ref)], [on_server[kind][ref]], [None])
            continue
        a, n = asr.get(uid), nlu.get(uid)
        shortcut = config.push.asr_confident
        direct = (
            shortcut is not None
            and "understanding" in tags
            and a is not None
            and n is not None
            and float(a.get("confidence", 0.0)) >= shortcut
        )
        todo.append((uid, "understanding" if direct else "transcription"))

    for kind in ("transcription", "understanding"):
        batch = [uid for uid, k in todo if k == kind]
        if not batch:
            continue
        pid, ktags = tags[kind]
        if kind == "transcription":
            made = _push_transcription(
                client, state, pid, ktags, batch, rows, asr, config, progress
            )
            summary.transcription += len(made)
        else:
            items = [(uid, str(asr[uid]["text"]), nlu.get(uid)) for uid in batch]
            made = push_understanding(client, state, pid, ktags, items, on_server=on_server[kind])
            summary.understanding += len(made)
        summary.task_ids.extend(made)
    return summary


def _push_transcription(
    client: StudioClient,
    state: State,
    project_id: int,
    tags: Tags,
    ids: list[str],
    rows: dict[str, Utterance],
    asr: dict[str, dict[str, Any]],
    config: StudioConfig,
    progress: Progress | None,
) -> list[int]:
    tasks, refs = [], []
    for n, uid in enumerate(ids, start=1):
        ref = state.opaque_id(uid)
        audio = rows[uid].audio
        assert audio is not None  # checked by push()
        url = upload_audio(client, project_id, ref, opaque_wav(audio))
        tasks.append(
            convert.transcription_task(
                ref, url, tags, asr.get(uid), config.push.uncertain_word_confidence
            )
        )
        refs.append((uid, ref))
        if progress:
            progress(n, len(ids))
    task_ids = _import(client, project_id, tasks)
    _record(state, "transcription", project_id, refs, task_ids, [asr.get(u) for u, _ in refs])
    versions = [str(asr[u]["model_version"]) for u, _ in refs if u in asr]
    _set_model_version(client, project_id, versions[-1] if versions else None)
    return task_ids


def push_understanding(
    client: StudioClient,
    state: State,
    project_id: int,
    tags: Tags,
    items: Iterable[tuple[str, str, dict[str, Any] | None]],
    *,
    on_server: dict[str, int] | None = None,
) -> list[int]:
    """Understanding tasks for ``(utterance id, confirmed transcript, NLU prediction or None)``;
    returns the ids of the tasks created.

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
            _record(state, "understanding", project_id, [(uid, ref)], [on_server[ref]], [nlu])
            continue
        tasks.append(convert.understanding_task(ref, text, tags, nlu))
        refs.append((uid, ref))
        preds.append(nlu)
    if not tasks:
        return []
    task_ids = _import(client, project_id, tasks)
    _record(state, "understanding", project_id, refs, task_ids, preds)
    versions = [str(p["model_version"]) for p in preds if p and p.get("model_version")]
    _set_model_version(client, project_id, versions[-1] if versions else None)
    return task_ids


def _record(
    state: State,
    kind: str,
    project_id: int,
    refs: list[tuple[str, str]],
    task_ids: list[int],
    preds: list[dict[str, Any] | None],
) -> None:
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
                "score": (float(p.get("confidence", 0.0)) if p else None),
                "model_version": (p.get("model_version") if p else None),
                "pushed_at": now,
            }
            for (uid, ref), tid, p in zip(refs, task_ids, preds, strict=True)
        ),
    )


def stored_nlu(state: State) -> dict[str, dict[str, Any]]:
    """NLU predictions kept at push time, for understanding tasks created later."""
    return {row["id"]: row["nlu"] for row in read_log(state.predictions)}
