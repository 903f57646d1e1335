"""What the loop tests share: the tiny corpus's loop config, running the CLI, the pushed refs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from studio_fixtures import Studio

from earmark.core.config import save_config

BATCH = 4


def loop_config(
    corpus: Path,
    studio: Studio,
    rounds: int,
    selection: dict[str, Any] | None = None,
    annotator: dict[str, Any] | None = None,
    data: dict[str, str] | None = None,
    stopping: dict[str, Any] | None = None,
    asr_overrides: list[str] | None = None,
) -> Path:
    """A loop config for the tiny corpus on ``studio``'s workspace; ``data`` replaces
    manifests, ``stopping`` adds to the stopping rule (default: ``rounds``, no patience)."""
    studio_yaml = studio.workspace.parent / "studio.yaml"
    save_config(studio.config, studio_yaml)
    cfg = {
        "data": {
            "seed": str(corpus / "seed.jsonl"),
            "pool": str(corpus / "pool.jsonl"),
            "dev": str(corpus / "dev.jsonl"),
            "test": str(corpus / "test.jsonl"),
            "answers": str(corpus / "pool_answers.jsonl"),
            "schema": str(corpus / "corpus.json"),
            **(data or {}),
        },
        "batch": BATCH,
        "selection": selection or {},
        "annotator": annotator or {},
        # tiny step budgets: the test checks the loop's bookkeeping, not model quality
        "asr": {
            "overrides": [
                "train.max_steps=3",
                "train.eval_max_utterances=10",
                *(asr_overrides or []),
            ],
            "first_round_minutes": 0,
            "minutes": 0,
        },
        # the small from-scratch NLU: the pretrained default is tested in tests/nlu/test_encoder.py
        "nlu": {
            "overrides": [
                "optim.max_epochs=2",
                "optim.min_steps=0",
                "model.encoder=null",
            ],
            "first_round_minutes": 0,
            "minutes": 0,
        },
        "stopping": {"rounds": rounds, "patience": 0, **(stopping or {})},
        "studio_config": str(studio_yaml),
        "eval_resamples": 20,
    }
    path = studio.workspace.parent / "loop.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(
    config: Path, run: Path, crash_after: str | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_CRASH_AFTER"}
    env.update(env_extra or {})
    if crash_after:
        env["EARMARK_CRASH_AFTER"] = crash_after
    return subprocess.run(
        [sys.executable, "-m", "earmark.cli.main", "loop", "--config", str(config), "--run", str(run)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip


def task_refs(studio: Studio) -> list[str]:
    from labelling.state import State

    return [
        row["utterance_id"]
        for row in State.of(studio.workspace).pushed_rows()
        if row["kind"] == "transcription"
    ]
