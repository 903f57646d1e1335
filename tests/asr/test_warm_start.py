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
