"""Small corpora of real speech for the Label Studio tests.

The real server and per-test workspaces (fixtures ``studio_server`` and ``studio``) live in
tests/studio_fixtures.py, shared with the loop tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


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
