"""Fine-tuning a Hugging Face CTC checkpoint with another vocabulary: a new head, then training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.asr.model import default_vocab, load_recogniser

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _tiny_wav2vec2(folder):
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
    )

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, "A": 3, "B": 4, "C": 5}
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"))
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        mask_time_prob=0.0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(folder)
    tok.save_pretrained(folder)


def test_hf_checkpoint_with_other_vocabulary_gets_a_new_head_and_fine_tunes(
    tmp_path, fsdd_manifests
):
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    hf = tmp_path / "w2v2"
    _tiny_wav2vec2(hf)
    rec = load_recogniser(hf, for_training=True)
    assert rec.vocab == default_vocab()
    assert rec.model.lm_head.out_features == len(default_vocab())
    assert "replacing the CTC head" in rec.notes[0]

    cfg = load_asr_config(
        None,
        (
            "train.max_minutes=0",
            "train.max_steps=25",
            "train.lr=0.002",
            "train.eval_every_minutes=100",
            "train.max_frames=400000",
        ),
    )
    messages: list[str] = []
    losses: list[float] = []
    result = train_asr(
        cfg,
        fsdd_manifests["train"],
        fsdd_manifests["dev"],
        tmp_path / "ft",
        init=str(hf),
        on_progress=lambda d: losses.append(d["loss"]),
        log=messages.append,
    )
    assert any("replacing the CTC head" in m and "6 vs 30 tokens" in m for m in messages)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    again = load_recogniser(result.checkpoint)
    assert type(again.model).__name__ == "Wav2Vec2ForCTC"
    assert again.vocab == default_vocab()
    from training.checkpoint import read_meta

    assert read_meta(result.checkpoint).parent == str(hf)


def test_a_warm_start_with_frozen_layers_learns_only_above_them(
    tmp_path, fsdd_manifests, tiny_checkpoint
):
    """``train.freeze``: the named submodules come out bit for bit as the base had them (batch
    norm statistics included), the layers above them learn; a name the model lacks is a config
    error that names it before any training."""
    import torch

    from earmark.core.errors import ConfigError
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    from .conftest import TINY

    base, _, _ = tiny_checkpoint
    frozen = ("encoder.subsampling", "encoder.layers.0")
    cfg = load_asr_config(
        None,
        (
            *TINY,
            "decoding.method=greedy",
            "train.max_steps=6",
            f"train.freeze=[{','.join(frozen)}]",
        ),
    )
    log: list[str] = []
    out = train_asr(
        cfg, fsdd_manifests["train"], fsdd_manifests["dev"], tmp_path / "ft", init=base,
        log=log.append,
    ).checkpoint  # fmt: skip
    before = load_recogniser(base).model.state_dict()
    after = load_recogniser(out).model.state_dict()
    assert any(line.startswith("frozen: encoder.subsampling, encoder.layers.0") for line in log)
    for name, value in after.items():
        same = torch.equal(value, before[name])
        if name.startswith(tuple(f"{m}." for m in frozen)):
            assert same, f"{name} changed although frozen"
    learned = [
        n for n in after if n.startswith("encoder.layers.1.") and after[n].is_floating_point()
    ]
    assert learned and not all(torch.equal(after[n], before[n]) for n in learned)
    assert any(n.startswith("encoder.layers.0.") and "running_mean" in n for n in after)

    bad = load_asr_config(None, (*TINY, "train.max_steps=1", "train.freeze=[encoder.layer.0]"))
    with pytest.raises(
        ConfigError, match=r"train\.freeze: .*'encoder\.layer\.0'.*encoder\.layers\.0"
    ):
        train_asr(bad, fsdd_manifests["train"], fsdd_manifests["dev"], tmp_path / "bad", init=base)
