"""A real Label Studio server for the test session, and small corpora of real speech.

The server runs from the shared Label Studio venv (installed on first use, ~1 minute; reused
afterwards), on a free port, with its data in a temporary folder; it is stopped at the end.
Each test gets its own workspace (sharing the server's secrets) and its own project titles,
so tests do not see each other's tasks.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labelling.client import StudioClient, connect
from labelling.server import ensure_annotator, start, stop
from labelling.settings import Paths, StudioConfig, load_studio_config

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Studio:
    workspace: Path
    config: StudioConfig
    url: str

    def client(self) -> StudioClient:
        return connect(self.workspace, self.config.client)


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    workspace = tmp_path_factory.mktemp("ls-server")
    config = load_studio_config(overrides=[f"server.port={_free_port()}"])
    info = start(workspace, config)
    try:
        with connect(workspace, config.client) as admin:  # the simulated annotator's account
            ensure_annotator(workspace, config, admin)
        yield Studio(workspace, config, info.url)
    finally:
        stop(workspace)


@pytest.fixture
def studio(studio_server: Studio, tmp_path: Path) -> Studio:
    """A fresh workspace on the session's server, with projects of its own."""
    src, dst = Paths.of(studio_server.workspace), Paths.of(tmp_path / "ws")
    dst.root.mkdir(parents=True)
    shutil.copytree(src.secrets, dst.secrets)
    shutil.copy(src.server_json, dst.server_json)
    tag = uuid.uuid4().hex[:6]
    config = load_studio_config(
        overrides=[
            f"server.port={studio_server.config.server.port}",
            f"projects.transcription_title=transcription {tag}",
            f"projects.understanding_title=understanding {tag}",
        ]
    )
    return Studio(tmp_path / "ws", config, studio_server.url)


@dataclass(frozen=True)
class Corpus:
    pool: Path  # manifest with audio and (private) speaker, no labels
    answers: Path  # the same utterances with the true text, intent and entities
    asr: Path
    nlu: Path
    selection: Path
    ids: list[str]


def make_corpus(shared_data: Path, out: Path, n: int) -> Corpus:
    """``n`` real FSDD recordings with assistant-style answers built from the spoken digit.

    ASR predictions get one word wrong (marked unsure); NLU predictions are made on that
    wrong text. Confidence grows with the index, so u000 is the least confident.
    """
    out.mkdir(parents=True, exist_ok=True)
    files = sorted((shared_data / "fsdd" / "recordings").glob("*.wav"))[::97][:n]
    pool, answers, asr, nlu, selection = [], [], [], [], []
    for i, f in enumerate(files):
        digit, speaker, _ = f.stem.split("_")
        word = DIGITS[int(digit)]
        uid = f"u{i:03d}"
        if i % 2 == 0:
            text, intent = f"set an alarm for {word} am", "alarm_set"
            s = text.index(word)
            ents = [{"type": "time", "start": s, "end": len(text)}]
        else:
            text, intent = f"play track {word} please", "play_music"
            s = text.index(word)
            ents = [{"type": "track", "start": s, "end": s + len(word)}]
        wrong = "nine" if word != "nine" else "five"
        hyp = text.replace(word, wrong)
        pool.append({"id": uid, "audio": str(f), "speaker": speaker})
        answers.append({**pool[-1], "text": text, "intent": intent, "entities": ents})
        words = [
            {
                "word": w,
                "confidence": 0.3 if w == wrong else 0.95,
                "start": 0.05 * j,
                "end": 0.05 * j + 0.04,
            }
            for j, w in enumerate(hyp.split())
        ]
        asr.append(
            {
                "id": uid,
                "text": hyp,
                "confidence": round(0.2 + 0.01 * i, 3),
                "model_version": "asr-test-1",
                "words": words,
            }
        )
        nlu_ents = [
            {
                "type": e["type"],
                "start": e["start"],
                "end": e["start"] + len(wrong),
                "value": wrong,
                "confidence": 0.5,
            }
            for e in ents
            if e["type"] == "track"
        ]
        nlu.append(
            {
                "id": uid,
                "text": hyp,
                "intent": intent,
                "intent_confidence": 0.6,
                "alternatives": [],
                "entities": nlu_ents,
                "confidence": 0.5,
                "model_version": "nlu-test-1",
            }
        )
        selection.append({"id": uid, "score": 1.0 - 0.01 * i})
    paths = {}
    for name, rows in [
        ("pool", pool),
        ("answers", answers),
        ("asr", asr),
        ("nlu", nlu),
        ("selection", selection),
    ]:
        paths[name] = out / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Corpus(
        paths["pool"],
        paths["answers"],
        paths["asr"],
        paths["nlu"],
        paths["selection"],
        [r["id"] for r in pool],
    )


@pytest.fixture
def corpus_factory(shared_data: Path, tmp_path: Path):
    def make(n: int) -> Corpus:
        return make_corpus(shared_data, tmp_path / f"corpus{n}", n)

    return make
