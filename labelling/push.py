"""Push selected utterances to Label Studio as pre-annotated tasks (never twice).

A task carries an opaque id, the audio under an opaque file name (re-encoded, so no
metadata of the original file travels either) and the model's predictions; the mapping from
opaque id to utterance id stays in the workspace (``state/pushed.jsonl``).

Routing: an utterance with audio goes to the transcription project; a text row (a typed
request, an NLU-only corpus: ``text`` and no ``audio``) goes to the understanding project with
its own text, as nothing was heard. Only when the shortcut
``push.asr_confident`` is set (it is off by default) and the ASR prediction is at least that
sure and an NLU prediction exists does it go straight to the understanding project, showing
the ASR's own transcript: nobody hears the audio there, so such a label trains the NLU only
(``pull.build_training_manifest``). Accepted transcripts are sent on to the understanding
project by ``pull``.

Tasks are never created twice (``labelling.tasks``, shared with ``pull``): utterances whose
task is on the server already (found by the opaque ref, e.g. after a kill between an import
and its record) are recorded, not re-sent, and an import whose answer was lost is followed by
a look-up, not a blind repeat.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from earmark.core.errors import StudioError
from earmark.core.fileio import iter_id_records
from earmark.core.manifest import ManifestRow, read_manifest
from earmark.core.predictions import ASRHypothesis, NLUPrediction, PredictionT, read_predictions
from earmark.core.say import Progress
from labelling import audit, convert
from labelling.anonymise import mcadams
from labelling.client import StudioClient
from labelling.configs import KINDS, Kind, Tags
from labelling.overlap import Overlap
from labelling.projects import project_tags
from labelling.settings import StudioConfig
from labelling.state import State
from labelling.tasks import (
    existing_refs,
    import_tasks,
    keep_nlu,
    latest_version,
    push_understanding,
    record,
    set_model_version,
)


@dataclass
class PushSummary:
    """What one ``push`` did: tasks created per kind, utterances that had a task already."""

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


def _predictions(path: str | Path | None, kind: type[PredictionT]) -> dict[str, PredictionT]:
    """A predictions file's records by utterance id (none without a file); a missing file or
    a malformed line raises ``PredictionError`` naming it."""
    return {} if path is None else read_predictions(path, kind)


def opaque_wav(audio_path: str, mcadams_alpha: float | None = None) -> bytes:
    """The audio re-encoded as 16-bit WAV: same samples, none of the original file's metadata;
    with ``mcadams_alpha``, the voice anonymised first (``labelling.anonymise``)."""
    try:
        data, sr = sf.read(audio_path, dtype="int16", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise StudioError(f"cannot read audio {audio_path}: {exc}") from None
    if mcadams_alpha is not None:
        mono = data.mean(axis=1) if data.ndim == 2 else data
        voice = mcadams(mono.astype("float32") / 32768.0, sr, mcadams_alpha)
        data = (voice * 32767.0).round().astype("int16")
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
    """Create tasks for the selected utterances; already pushed utterances are counted, not re-sent.

    Raises ``StudioError`` before anything is sent when a selected id is not in the manifest
    or has neither audio nor text, or when the workspace has no projects (``earmark studio setup``), and
    ``PredictionError`` when a predictions file is missing or has a malformed line.
    """
    ids = read_selection(selection)
    rows = _selected_rows(ids, manifest)
    asr = _predictions(asr_predictions, ASRHypothesis)
    nlu = _predictions(nlu_predictions, NLUPrediction)
    state = State.of(workspace)
    tags = project_tags(client, workspace)
    state.make_private()
    if nlu:  # kept for the understanding tasks created after transcription
        keep_nlu(state, ids, nlu)

    summary = PushSummary()
    overlap = Overlap.of(config)
    pushed = {(r["utterance_id"], r["kind"]) for r in state.pushed_rows()}
    on_server = {kind: existing_refs(client, pid) for kind, (pid, _) in tags.items()}
    todo: list[tuple[str, Kind]] = []
    for uid in ids:
        if _already_pushed(client, state, uid, tags, pushed, on_server, overlap):
            summary.already_pushed += 1
            continue
        text_only = not rows[uid].utterance.audio  # a typed request: nothing to hear or transcribe
        if text_only and "understanding" not in tags:
            raise StudioError(
                f"utterance {uid} is text without audio, and this workspace has no "
                "understanding project to send it to"
            )
        direct = "understanding" in tags and (
            text_only or _confident(asr.get(uid), nlu.get(uid), config)
        )
        todo.append((uid, "understanding" if direct else "transcription"))

    for kind in KINDS:
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
            items = [(uid, _shown_text(uid, rows, asr), nlu.get(uid)) for uid in batch]
            made = push_understanding(
                client, state, pid, ktags, items, on_server=on_server[kind], overlap=overlap
            )
            summary.understanding += len(made)
        summary.task_ids.extend(made)
    audit.record_exposures(state)  # every task in pushed.jsonl, found ones included
    return summary


def _selected_rows(ids: list[str], manifest: str | Path) -> dict[str, ManifestRow]:
    """The manifest's rows by id; ``StudioError`` when one of ``ids`` is missing or has
    neither audio nor text."""
    rows = {row.id: row for row in read_manifest(manifest)}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise StudioError(
            f"{len(missing)} selected id(s) are not in manifest {manifest}: {missing[:5]}"
        )
    empty = [i for i in ids if not rows[i].utterance.audio and not _row_text(rows[i])]
    if empty:
        raise StudioError(
            f"selected utterances with neither audio nor text in {manifest}: {empty[:5]}"
        )
    return rows


def _row_text(row: ManifestRow) -> str:
    return row.label.text if row.label and row.label.text else ""


def _shown_text(uid: str, rows: dict[str, ManifestRow], asr: dict[str, ASRHypothesis]) -> str:
    """What an understanding task shows: a text row's own text (a typed request, nothing was
    heard), else the ASR's transcript (the ``push.asr_confident`` shortcut)."""
    row = rows[uid]
    return _row_text(row) if not row.utterance.audio else asr[uid].text


def _already_pushed(
    client: StudioClient,
    state: State,
    uid: str,
    tags: dict[str, tuple[int, Tags]],
    pushed: set[tuple[str, str]],
    on_server: dict[str, dict[str, int]],
    overlap: Overlap,
) -> bool:
    """Whether ``uid`` has a task of any kind, recorded or on the server.

    A task on the server whose record was lost (a kill between import and record) is
    recorded now, with no prediction, and given its annotators (``overlap``).
    """
    ref = state.opaque_id(uid)
    if not any((uid, k) in pushed or ref in on_server[k] for k in tags):
        return False
    for kind in KINDS:
        if kind in tags and ref in on_server[kind] and (uid, kind) not in pushed:
            pid = tags[kind][0]
            overlap.apply(client, state, [(uid, on_server[kind][ref])])
            record(state, kind, pid, [(uid, ref)], [on_server[kind][ref]], [None])
    return True


def _confident(asr: ASRHypothesis | None, nlu: NLUPrediction | None, config: StudioConfig) -> bool:
    """The opt-in shortcut (``push.asr_confident``, off by default): the ASR is at least that
    sure and an NLU prediction exists, so the utterance may skip transcription."""
    shortcut = config.push.asr_confident
    return (
        shortcut is not None and asr is not None and nlu is not None and asr.confidence >= shortcut
    )


def _push_transcription(
    client: StudioClient,
    state: State,
    project_id: int,
    tags: Tags,
    ids: list[str],
    rows: dict[str, ManifestRow],
    asr: dict[str, ASRHypothesis],
    config: StudioConfig,
    progress: Progress | None,
) -> list[int]:
    """Upload the audio of ``ids`` and create their transcription tasks; returns the task ids."""
    tasks, refs = [], []
    for n, uid in enumerate(ids, start=1):
        ref = state.opaque_id(uid)
        audio = rows[uid].utterance.audio
        assert audio is not None  # text-only rows go to the understanding project
        wav = opaque_wav(audio, config.privacy.mcadams_alpha)
        url = upload_audio(client, project_id, ref, wav)
        tasks.append(
            convert.transcription_task(
                ref, url, tags, asr.get(uid), config.push.uncertain_word_confidence
            )
        )
        refs.append((uid, ref))
        if progress:
            progress(n, len(ids))
    task_ids = import_tasks(client, project_id, tasks)
    # before the record: a push killed in between finds the tasks and sets them again
    Overlap.of(config).apply(client, state, zip(ids, task_ids, strict=True))
    record(state, "transcription", project_id, refs, task_ids, [asr.get(u) for u, _ in refs])
    set_model_version(client, project_id, latest_version([asr.get(u) for u, _ in refs]))
    return task_ids
