"""A loop round's training on two processes (``asr.nproc`` / ``nlu.nproc``): torchrun under
``earmark train``, its output in the round's log, a failure reported with its last lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earmark.loop.launch import TrainingError, train_command, train_on_ranks

pytestmark = [pytest.mark.slow]


def test_a_round_trains_the_asr_on_two_ranks(tiny_corpus: Path, tmp_path: Path) -> None:
    said: list[str] = []
    out = tmp_path / "asr"
    cmd = train_command(
        "asr", 2, tiny_corpus / "seed.jsonl", tiny_corpus / "dev.jsonl", out,
        config=None, overrides=["train.max_steps=2", "train.eval_max_utterances=5"],
        minutes=0, init=None, lm_text=[str(tiny_corpus / "seed.jsonl")],
    )  # fmt: skip
    checkpoint = train_on_ranks(cmd, out, said.append)
    meta = json.loads((checkpoint / "earmark.json").read_text())
    assert meta["metrics"]["ranks"] == 2 and meta["metrics"]["steps"] == 2
    assert any("best dev WER" in line for line in said)  # rank 0's log reached the round's


def test_a_failed_multi_process_round_names_its_cause(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "asr"
    cmd = train_command(
        "asr", 2, tmp_path / "missing.jsonl", tiny_corpus / "dev.jsonl", out,
        config=None, overrides=["train.max_steps=2"], minutes=0, init=None,
    )  # fmt: skip
    with pytest.raises(TrainingError, match=r"2 processes.*First error: error: .*missing\.jsonl"):
        train_on_ranks(cmd, out, lambda line: None)
