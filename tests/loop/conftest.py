"""Loop test fixtures: one tiny built-in corpus for the session (real synthesis)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from earmark.core.config import load_config
    from earmark.corpus.synth import SynthConfig, build_corpus

    out = tmp_path_factory.mktemp("corpus")
    sizes = ["sizes.seed=24", "sizes.pool=24", "sizes.dev=10", "sizes.test=10", "n_voices=8"]
    build_corpus(out, load_config(SynthConfig, None, sizes), seed=3)
    return out
