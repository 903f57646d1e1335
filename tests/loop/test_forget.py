"""``earmark forget`` against a real Label Studio server after a real round: a speaker's ids,
text and audio leave every file of the run and everything the API returns; checkpoints trained
with them are marked and the last round retrained; a second run removes nothing."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from loop_support import loop_config, run_cli, task_refs
from studio_fixtures import Studio, _free_port

from earmark.core.manifest import read_manifest
from earmark.loop.forget import is_marked
from earmark.loop.state import RunFolder
from earmark.loop.trainset import previous_checkpoint
from labelling.accounts import ensure_annotator
from labelling.audit import verify
from labelling.client import connect
from labelling.forget import server_data_dir
from labelling.process import start, stop
from labelling.settings import load_studio_config
from labelling.state import State, read_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]


def _fingerprint(path: Path) -> str | None:
    try:
        data, sr = sf.read(path, dtype="int16", always_2d=False)
    except (sf.LibsndfileError, RuntimeError):
        return None
    return hashlib.sha256(data.tobytes() + str(sr).encode()).hexdigest()


def _files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def _forget(run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "earmark.cli.main", "forget", "--run", str(run), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _server_view(studio: Studio) -> str:
    """Everything the API returns about the run's projects: tasks with their annotations and
    predictions, and the uploaded files, as one JSON text."""
    state = State.of(studio.workspace)
    seen = []
    with studio.client() as client:
        for project in state.projects().values():
            pid = project["id"]
            params = {"project": pid, "fields": "all"}
            for task in client.paginate("/api/tasks/", what="tasks", params=params):
                full = client.get(f"/api/tasks/{task['id']}", what="a task")
                anns = client.get(f"/api/tasks/{task['id']}/annotations/", what="annotations")
                seen.append({"task": full, "annotations": anns})
            uploads = client.get(
                f"/api/projects/{pid}/file-uploads", what="uploads", params={"all": "true"}
            )
            seen.append({"uploads": uploads})
    return json.dumps(seen)


@pytest.fixture
def own_studio(tmp_path: Path) -> Iterator[Studio]:
    """A server of the run's own, its data in RUN/studio/data as `earmark loop` has it (the
    session's server holds other tests' tasks for the same corpus ids)."""
    run = tmp_path / "run"
    config = load_studio_config(overrides=[f"server.port={_free_port()}"])
    info = start(run, config)
    try:
        with connect(run, config.client) as admin:
            ensure_annotator(run, config, admin)
        yield Studio(run, config, info.url)
    finally:
        stop(run)


def test_forget_a_speaker_everywhere(tiny_corpus: Path, own_studio: Studio) -> None:
    studio = own_studio
    run = studio.workspace  # the run folder is the Label Studio workspace
    corpus = run / "corpus"  # the corpus inside the run, as the demo has it
    shutil.copytree(tiny_corpus, corpus)
    out = run_cli(loop_config(corpus, studio, rounds=1), run)
    assert out.returncode == 0, out.stderr[-3000:]

    # the speaker of the first utterance people transcribed, and all of theirs in the corpus
    rows = [
        r
        for name in ("seed", "pool", "dev", "test")
        for r in read_manifest(corpus / f"{name}.jsonl")
    ]
    speaker_of = {r.id: r.utterance.speaker for r in rows}
    speaker = speaker_of[task_refs(studio)[0]]
    theirs = [r for r in rows if r.utterance.speaker == speaker]
    uids = {r.id for r in theirs}
    prints = {_fingerprint(Path(r.utterance.audio)) for r in theirs if r.utterance.audio}
    others = {r.label.text for r in rows if r.id not in uids and r.label and r.label.text}
    answers = {r.id: r.label for r in read_manifest(corpus / "pool_answers.jsonl")}
    texts = {
        label.text
        for uid in uids
        if (label := answers.get(uid) or next(r.label for r in rows if r.id == uid))
        and label.text
        and label.text not in others
    }  # what only this speaker said
    state = State.of(run)
    refs = {state.opaque_id(u) for u in uids}
    pushed_refs = {r["ref"] for r in state.pushed_rows() if r["utterance_id"] in uids}
    assert pushed_refs and texts
    assert any(r in _server_view(studio) for r in pushed_refs)  # on the server before

    done = _forget(run, "--speaker", speaker, "--retrain")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"forgot {len(uids)} utterance(s)" in done.stdout

    (receipt_path,) = (run / "forget").glob("receipt-*.json")
    receipt = json.loads(receipt_path.read_text())
    assert receipt["studio"]["tasks"] >= len(pushed_refs)
    # upload records go through the API; their files went already when the pull imported the
    # confirmed transcripts (privacy.delete_audio_after_import), or go now
    assert receipt["studio"]["uploads"] >= len(pushed_refs) and receipt["studio"]["vacuumed"]
    assert receipt["still_held_by"] == [] and receipt["removed_audio"] == len(theirs)
    marked = [Path(p) for p in receipt["marked_checkpoints"]]
    assert marked and receipt["retrained"]
    assert not (run / "forget" / "pending.json").exists()

    # no file of the run or of the server's data folder holds their ids or their audio
    assert server_data_dir(state) == run / "studio" / "data"
    ids = re.compile(
        rb"(?<![\w-])(" + b"|".join(re.escape(u.encode()) for u in uids) + rb")(?![\w-])"
    )
    for path in _files(run):
        blob = path.read_bytes()
        assert not ids.search(blob), f"{path} still holds an id"
        if path != state.audit:  # the record of who heard them, and that they were forgotten
            assert not any(r.encode() in blob for r in refs), f"{path} still holds a task ref"
        assert _fingerprint(path) not in prints or path.suffix != ".wav", f"{path} is their audio"
        # their text: only in checkpoints trained with them (marked), never in data or the server
        if not any(m in path.parents for m in marked):
            assert not any(t.encode() in blob for t in texts), f"{path} still holds their text"
    view = _server_view(studio)
    assert not any(r in view for r in refs) and not any(t in view for t in texts)

    # the audit trail: intact, a forgotten event per ref, no ids
    assert verify(state.audit).ok
    forgotten = {e["task"] for e in read_jsonl(state.audit) if e["event"] == "forgotten"}
    assert forgotten == refs
    # the last round was retrained without them (its marker gone); a round left marked is
    # never a warm start: the next round starts from the retrained one
    r = RunFolder(run)
    last = r.rounds()[-1]
    assert last.trained and last.number == 2 and not is_marked(last.dir)
    assert previous_checkpoint(r, 3, "asr") == last.checkpoint_dir("asr")
    (last.dir / "forgotten.json").write_text("{}")  # as if it had not been retrained
    assert previous_checkpoint(r, 3, "asr") in (None, r.round(1).checkpoint_dir("asr"))
    assert is_marked(r.round(1).dir) == (previous_checkpoint(r, 3, "asr") is None)
    (last.dir / "forgotten.json").unlink()
    for kind in ("asr", "nlu"):
        assert not any(row["id"] in uids for row in read_jsonl(last.train_manifest(kind)))

    for again in (_forget(run, "--speaker", speaker), _forget(run, "-u", sorted(uids)[0])):
        assert again.returncode == 0, again.stderr[-3000:]
        assert "nothing to forget" in again.stdout
    assert len(list((run / "forget").glob("receipt-*.json"))) == 1
