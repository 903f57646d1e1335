"""Subword units: learned from the transcripts, saved with the checkpoint, reloaded identically,
and read by the lexicon and the decoders as characters are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from earmark.core.errors import CheckpointError
from training.asr.lm import DecodingConfig, make_decoder, write_lm
from training.asr.model import ModelConfig, build_recogniser, load_recogniser
from training.asr.tokens import BLANK, UNK, WORD_SEP
from training.asr.transcribe import decode_utterance
from training.asr.units import LETTERS, UNITS_FILE, spell_word, train_units, unit_vocab

from .conftest import TINY

TEXTS = [
    "play some music",
    "play the next song",
    "set an alarm for seven",
    "cancel my alarm",
    "what is the weather like today",
    "turn the lights off in the kitchen",
    "remind me to call my mother",
    "play music by the beatles",
] * 5


def test_units_spell_every_word_and_shorten_the_targets():
    units = train_units(TEXTS, vocab_size=60)
    vocab = unit_vocab(units)
    assert [vocab[BLANK], vocab[UNK], vocab[WORD_SEP]] == [0, 1, 2]
    assert set(LETTERS) <= set(vocab) and len(vocab) <= 60 + 3
    assert sorted(vocab.values()) == list(range(len(vocab)))
    for word in ("music", "alarm", "zanzibar", "o'brien"):  # seen and never seen
        assert "".join(spell_word(units, word)) == word
    n_units = sum(len(spell_word(units, w)) for t in TEXTS for w in t.split())
    n_chars = sum(len(w) for t in TEXTS for w in t.split())
    assert n_units < 0.8 * n_chars
    again = train_units(TEXTS, vocab_size=60)
    assert unit_vocab(again) == vocab  # deterministic for the same text
    with pytest.raises(CheckpointError, match="at least"):
        train_units(TEXTS, vocab_size=10)


def test_a_unit_model_encodes_and_its_lexicon_spells_with_units(tmp_path: Path):
    rec = build_recogniser(ModelConfig(units="bpe", unit_vocab_size=50), TEXTS)
    assert rec.units is not None and len(rec.vocab) <= 53
    ids = rec.encode("play zanzibar")
    tokens = [rec.id_to_token[i] for i in ids]
    assert "".join(t if t != WORD_SEP else " " for t in tokens) == "play zanzibar"
    assert len(ids) < len("play zanzibar")
    info = write_lm(tmp_path, TEXTS, rec.vocab, WORD_SEP, DecodingConfig(), spell=rec.spell)
    lexicon = {
        line.split()[0]: line.split()[1:-1]
        for line in (tmp_path / "lexicon.txt").read_text().splitlines()
    }
    assert info["lexicon_words"] == len(lexicon)
    assert lexicon["music"] == spell_word(rec.units, "music") and len(lexicon["music"]) < 5

    # Log-probabilities whose argmax spells "play music" in units; the beam search reads them.
    path = []
    for t in [*tokens[:1], WORD_SEP, *spell_word(rec.units, "music")]:
        path += [rec.vocab[t], rec.vocab[BLANK]]
    rng = np.random.default_rng(0)
    lp = rng.normal(size=(len(path), len(rec.vocab)))
    lp[np.arange(len(path)), path] += 6.0
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    rec.model = type("M", (), {"config": type("C", (), {"pad_token_id": 0})()})()
    settings = {"method": "beam", "lm_weight": 1.0, "word_score": 0.0, "beam_size": 16}
    rec.beam = make_decoder(rec, tmp_path, settings)
    assert [w.word for w in decode_utterance(rec, lp)[0]] == ["play", "music"]


@pytest.mark.slow
@pytest.mark.shared
def test_units_are_saved_with_the_checkpoint_and_reload_identically(fsdd_manifests, tmp_path):
    from training.asr.config import load_asr_config
    from training.asr.train import train_asr

    cfg = load_asr_config(
        None,
        (*TINY, "train.max_steps=3", "model.units=bpe", "model.unit_vocab_size=40",
         "model.subsampling_factor=4", "decoding.beam_size=16", "decoding.nbest=4"),
    )  # fmt: skip
    out = tmp_path / "ckpt"
    train_asr(cfg, fsdd_manifests["train"], fsdd_manifests["dev"], out, log=lambda _: None)
    assert (out / UNITS_FILE).is_file()
    rec = load_recogniser(out)
    fresh = load_recogniser(out, for_training=True)  # a warm start keeps the units and head
    assert rec.units is not None and rec.vocab == fresh.vocab
    assert not fresh.notes  # no "replacing the CTC head"
    for text in ("seven", "nine one zero", "zanzibar"):
        assert rec.encode(text) == fresh.encode(text)
    lexicon = (out / "lexicon.txt").read_text().splitlines()
    assert all(line.endswith(f" {WORD_SEP}") for line in lexicon)

    # units.json that does not match the vocabulary is refused, not silently misread.
    vocab_file = out / "vocab.json"
    vocab = json.loads(vocab_file.read_text())
    vocab["a"], vocab["b"] = vocab["b"], vocab["a"]
    vocab_file.write_text(json.dumps(vocab))
    with pytest.raises(CheckpointError, match=r"units\.json and its vocabulary disagree"):
        load_recogniser(out)
