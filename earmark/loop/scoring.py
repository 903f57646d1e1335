"""A round's scoring: the ASR and NLU predictions selection reads (``predict_rows``), the ASR on
several processes when ``selection.score_processes`` asks (``asr_on_processes``).

The pool sample is written to the round's folder and cut into blocks (``earmark.core.shard``):
each of ``N`` worker processes (spawned, ``threads // N`` torch threads each) transcribes its
blocks into its part, and the parts are merged in pool order. Every block is batched as one
process batches it, so the merged predictions are those of one process with as many threads
(``tests/loop/test_scoring.py``). Rows whose audio cannot be read are reported by the workers and
go to the round's quarantine as in one process; the merge keeps their places empty.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from earmark.core.errors import AudioError
from earmark.core.manifest import ManifestRow, iter_manifest, write_manifest
from earmark.core.predictions import (
    ASRHypothesis,
    NLUPrediction,
    read_predictions,
    write_predictions,
)
from earmark.core.say import Say
from earmark.core.shard import Shard, merge_parts
from earmark.loop.trainset import Halves
from training.model import BadAudio, UtteranceText, recipe

CHUNK = 128  # rows per block: the chunk one process reads and batches (transcribe_with)


def _score_shard(
    checkpoint: str, manifest: str, out: str, index: int, count: int, threads: int
) -> list[tuple[str, str, str, str]]:
    """Worker: shard ``index`` of ``count`` into its part; the (id, path, reason, detail) of
    each row whose audio could not be read."""
    torch.set_num_threads(threads)
    bad: list[tuple[str, str, str, str]] = []
    shard = Shard(index, count)
    asr = recipe("asr").load(Path(checkpoint))
    rows = shard.take(iter_manifest(manifest), CHUNK)
    hyps = asr.predict(
        rows, on_bad_audio=lambda row, e: bad.append((row.id, e.path, e.reason, e.detail))
    )
    write_predictions(shard.part(out), hyps)
    return bad


def asr_on_processes(
    checkpoint: Path,
    rows: list[ManifestRow],
    processes: int,
    folder: Path,
    on_bad_audio: BadAudio | None = None,
) -> dict[str, ASRHypothesis]:
    """ASR predictions for ``rows`` from ``processes`` workers (files in ``folder``, removed
    after). Unreadable audio goes to ``on_bad_audio``, or raises its ``AudioError`` without it."""
    manifest, out = folder / "scoring_pool.jsonl", folder / "scoring_asr.jsonl"
    write_manifest(manifest, rows)
    threads = max(1, torch.get_num_threads() // processes)
    context = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        jobs = [
            pool.submit(
                _score_shard, str(checkpoint), str(manifest), str(out), i, processes, threads
            )
            for i in range(processes)
        ]
        bad = [b for job in jobs for b in job.result()]
    by_id = {r.id: r for r in rows}
    for uid, *why in bad:
        if on_bad_audio is None:
            raise AudioError(*why)
        on_bad_audio(by_id[uid], AudioError(*why))
    merge_parts([r.id for r in rows], out, processes, CHUNK, absent={b[0] for b in bad})
    preds = read_predictions(out, ASRHypothesis)
    for path in (manifest, out, *(Shard(i, processes).part(out) for i in range(processes))):
        path.unlink(missing_ok=True)
    return preds


def predict_rows(
    ckpts: dict[str, str],
    rows: list[ManifestRow],
    halves: Halves,
    on_bad_audio: BadAudio | None = None,
    say: Say | None = None,
    processes: tuple[int, Path] | None = None,
) -> tuple[dict[str, ASRHypothesis], dict[str, NLUPrediction]]:
    """ASR and/or NLU predictions for ``rows``; the NLU reads what the ASR heard (the rows' own
    text on an NLU-only corpus). Rows whose audio cannot be read go to ``on_bad_audio`` (when
    given) and get no prediction from either model. ``say`` hears the ASR's progress (the
    slow half: a few utterances a second on 2 cores). ``processes``: (N > 1, a folder for its
    files) scores the ASR half on N worker processes (``asr_on_processes``)."""
    asr_preds: dict[str, ASRHypothesis] = {}
    if halves.asr and rows:
        bad: set[str] = set()

        def skip(row: ManifestRow, exc: AudioError) -> None:
            bad.add(row.id)
            if on_bad_audio is not None:
                on_bad_audio(row, exc)

        callback = skip if on_bad_audio is not None else None
        if processes and processes[0] > 1:
            if say is not None:
                say(f"scoring: ASR on {len(rows)} utterances in {processes[0]} processes")
            asr_preds = asr_on_processes(Path(ckpts["asr"]), rows, *processes, callback)
        else:
            asr = recipe("asr").load(Path(ckpts["asr"]))
            step = max(len(rows) // 10, 50)
            for n, p in enumerate(asr.predict(rows, on_bad_audio=callback), start=1):
                asr_preds[p.id] = p
                if say is not None and n % step == 0:
                    say(f"scoring: ASR on {n} of {len(rows)} utterances")
        rows = [r for r in rows if r.id not in bad]
    nlu_preds: dict[str, NLUPrediction] = {}
    if halves.nlu and rows:
        nlu = recipe("nlu").load(Path(ckpts["nlu"]))
        nlu_preds = {p.id: p for p in nlu.predict([heard(r, asr_preds) for r in rows])}
    return asr_preds, nlu_preds


def heard(row: ManifestRow, asr: dict[str, ASRHypothesis]) -> UtteranceText:
    """``(id, text)`` the NLU reads for ``row``: the ASR's hypothesis when there is one, else
    the row's own text ("" when it has none)."""
    if row.id in asr:
        return row.id, asr[row.id].text
    return row.id, (row.label.text if row.label and row.label.text else "")
