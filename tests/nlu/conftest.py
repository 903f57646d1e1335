"""NLU test fixtures: small labelled manifests from the built-in grammar and a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from earmark.core.manifest import ManifestRow, write_manifest
from earmark.core.records import Utterance
from earmark.corpus.grammar import generate

TINY = (
    "model.encoder=null",  # the pretrained default is tested in test_encoder.py
    "model.hidden_size=32",
    "model.layers=1",
    "model.heads=2",
    "model.intermediate_size=64",
    "model.vocab_size=600",
    "optim.batch_size=16",
    "optim.lr=0.003",
    "optim.warmup_frac=0.05",
    "optim.min_steps=0",  # max_epochs alone sets the schedule in these tests
    "augment.noisy_copies=0",  # gold text only: the tests count examples and steps
    "threads=2",
)


def write_grammar_manifest(path: Path, n: int, seed: int) -> Path:
    rows = [
        ManifestRow(Utterance(uid), label) for uid, label in generate(n, seed, prefix=f"s{seed}-")
    ]
    write_manifest(path, rows)
    return path


@pytest.fixture(scope="session")
def tiny() -> tuple[str, ...]:
    """Config overrides for a tiny, quick model."""
    return TINY


@pytest.fixture(scope="session")
def grammar_manifest():
    """``make(path, n, seed)``: a labelled manifest of ``n`` grammar sentences."""
    return write_grammar_manifest


@pytest.fixture(scope="session")
def nlu_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("nlu_data")
    return {
        "train": write_grammar_manifest(d / "train.jsonl", 400, seed=1),
        "dev": write_grammar_manifest(d / "dev.jsonl", 80, seed=2),
    }


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, nlu_data: dict[str, Path]) -> Path:
    """A small NLU trained for a few epochs (shared by the tests that only read it)."""
    from training.nlu.config import load_nlu_config
    from training.nlu.train import train_nlu

    out = tmp_path_factory.mktemp("nlu_ckpt") / "ckpt"
    config = load_nlu_config(None, (*TINY, "optim.max_epochs=4"))
    train_nlu(config, nlu_data["train"], nlu_data["dev"], out, log=lambda _: None)
    return out
