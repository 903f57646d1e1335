"""The loop's ``asr.lm_text``: a typed list of files that reaches each round's ASR training."""

from __future__ import annotations

from pathlib import Path

import pytest

from earmark.core.errors import ConfigError
from earmark.core.manifest import write_manifest
from earmark.loop.config import load_loop_config
from training.asr.recipe import ASRRecipe


def test_the_loop_refuses_lm_text_for_the_nlu(tmp_path: Path):
    base = [f"data.{k}=x.jsonl" for k in ("seed", "pool", "dev")]
    cfg = load_loop_config(None, [*base, "asr.lm_text=[names.txt]"])
    assert cfg.asr.lm_text == ("names.txt",)
    with pytest.raises(ConfigError, match=r"nlu\.lm_text"):
        load_loop_config(None, [*base, "nlu.lm_text=[names.txt]"])


@pytest.mark.slow
@pytest.mark.shared
def test_a_round_trains_the_asr_with_the_loops_lm_text(shared_data: Path, tmp_path: Path):
    from asr.conftest import TINY, fsdd_rows

    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    write_manifest(train, fsdd_rows(shared_data, ("george",), 10))
    write_manifest(dev, fsdd_rows(shared_data, ("jackson",), 10))
    names = tmp_path / "names.txt"
    names.write_text("call zanzibar\n")
    out = ASRRecipe().train(
        train, dev, tmp_path / "ckpt", config=None,
        overrides=(*TINY, "train.max_steps=3", "decoding.beam_size=16", "decoding.nbest=4"),
        minutes=0.0, init=None, log=lambda _: None, lm_text=(str(names),),
    )  # fmt: skip
    lexicon = {line.split()[0] for line in (out / "lexicon.txt").read_text().splitlines()}
    assert {"zanzibar", "call"} <= lexicon
