"""The word n-gram LM, the lexicon and beam-search decoding with confidence along its path."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from earmark.core.errors import CheckpointError, ConfigError
from training.asr.confidence import greedy_words, nbest_words
from training.asr.lm import (
    BeamResult,
    DecodingConfig,
    make_decoder,
    write_decoding,
    write_lm,
)
from training.asr.lmtext import read_lm_text
from training.asr.model import Recogniser, default_vocab
from training.asr.ngram import BOS, kneser_ney_arpa
from training.asr.tokens import WORD_SEP
from training.asr.transcribe import decode_utterance

SENTENCES = [
    "cancel my alarm",
    "cancel the meeting",
    "set an alarm for seven",
    "play some music",
    "play jazz",
    "what is the weather",
    "cancel my meeting",
]


def _read_arpa(text: str) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    probs: dict[tuple[str, ...], float] = {}
    bows: dict[tuple[str, ...], float] = {}
    section = 0
    for line in text.splitlines():
        if m := re.match(r"\\(\d)-grams:", line):
            section = int(m.group(1))
        elif section and line and not line.startswith("\\"):
            parts = line.split("\t")
            gram = tuple(parts[1].split())
            probs[gram] = 10 ** float(parts[0])
            if len(parts) > 2:
                bows[gram] = 10 ** float(parts[2])
    return probs, bows


def test_kneser_ney_lm_is_a_distribution_after_every_history():
    probs, bows = _read_arpa(kneser_ney_arpa(SENTENCES, order=3))
    vocab = [g[0] for g in probs if len(g) == 1 and g[0] != BOS]

    def p(gram: tuple[str, ...]) -> float:
        if gram in probs:
            return probs[gram]
        if len(gram) == 1:
            return probs[("<unk>",)]
        return bows.get(gram[:-1], 1.0) * p(gram[1:])

    for history in [(), (BOS,), ("cancel",), (BOS, "cancel"), ("cancel", "my"), ("jazz",)]:
        assert sum(p((*history, w)) for w in vocab) == pytest.approx(1.0, abs=1e-5)
    # Seen continuations outrank unseen ones.
    assert p(("cancel", "my", "alarm")) > p(("cancel", "my", "weather"))


def test_kneser_ney_needs_words_and_a_bigram_order():
    with pytest.raises(ValueError, match="order"):
        kneser_ney_arpa(SENTENCES, order=1)
    with pytest.raises(ValueError, match="no words"):
        kneser_ney_arpa(["", "  "])


def test_decoding_config_names_bad_keys():
    with pytest.raises(ConfigError, match=r"decoding\.lm_order"):
        DecodingConfig(lm_order=1)
    with pytest.raises(
        ConfigError, match=r"decoding\.lm_order and decoding\.char_lm_order must be in \[2, 6\]"
    ):
        DecodingConfig(char_lm_order=8)
    with pytest.raises(ConfigError, match=r"decoding\.beam_size"):
        DecodingConfig(beam_size=0)


def _spell(
    text: str, vocab: dict[str, int], sharpness: float, rng: np.random.Generator
) -> np.ndarray:
    """Log-probabilities whose argmax path spells ``text`` (a blank after every character)."""
    path = []
    for ch in text:
        path += [vocab[WORD_SEP] if ch == " " else vocab[ch], vocab["<pad>"]]
    logits = rng.normal(size=(len(path), len(vocab)))
    logits[np.arange(len(path)), path] += sharpness
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_beam_search_with_the_lm_fixes_a_misspelling(tmp_path: Path):
    vocab = default_vocab()
    info = write_lm(tmp_path, SENTENCES, vocab, WORD_SEP, DecodingConfig())
    assert info["lexicon_words"] == len({w for s in SENTENCES for w in s.split()})
    settings = {"method": "beam", "lm_weight": 1.0, "word_score": 0.0, "beam_size": 16}
    write_decoding(tmp_path, settings)
    rec = Recogniser(None, None, None, vocab)
    rec.model = type("M", (), {"config": type("C", (), {"pad_token_id": 0})()})()

    lp = _spell("cancle my alarm", vocab, sharpness=6.0, rng=np.random.default_rng(0))
    greedy = [w.word for w in greedy_words(lp, rec.id_to_token, 0, WORD_SEP)]
    assert greedy == ["cancle", "my", "alarm"]

    rec.beam = make_decoder(rec, tmp_path, settings)
    words, utterance = decode_utterance(rec, lp)
    assert [w.word for w in words] == ["cancel", "my", "alarm"]
    assert all(0.0 <= w.confidence <= 1.0 for w in words)
    # The utterance is right only if every word is: never surer than its least sure word.
    assert 0.0 <= utterance <= min(w.confidence for w in words) + 1e-9
    frames = [(w.start_frame, w.end_frame) for w in words]
    assert frames == sorted(frames) and all(0 <= a < b <= lp.shape[0] for a, b in frames)


def test_nbest_word_confidence_is_the_posterior_of_the_hypotheses_that_agree():
    vocab = {0: "<pad>", 1: "|", 2: "a", 3: "b"}
    result = BeamResult(
        tokens=(2, 1, 3),
        timesteps=(0, 2, 4),
        words=("a", "b"),
        alternatives=(("a", "b"), ("a", "a"), ("b", "b")),
        scores=(0.0, -math.log(2.0), -math.log(4.0)),  # posteriors 4/7, 2/7, 1/7 at T = 1
    )
    words, utterance = nbest_words(result, vocab, "|", temperature=1.0)
    assert [w.word for w in words] == ["a", "b"]
    assert words[0].confidence == pytest.approx(6 / 7)  # "a" first in the 1st and 2nd
    assert words[1].confidence == pytest.approx(5 / 7)  # "b" second in the 1st and 3rd
    assert utterance == pytest.approx(4 / 7)
    assert [(w.start_frame, w.end_frame) for w in words] == [(0, 1), (4, 5)]
    # A higher temperature flattens the posteriors: less sure of the best hypothesis.
    assert nbest_words(result, vocab, "|", temperature=4.0)[1] < utterance


def test_tuning_extends_the_lm_weight_grid_past_its_winning_edge(tmp_path: Path, monkeypatch):
    import torch

    from training.asr import tuning
    from training.asr.features import Example

    # A stand-in decoder whose dev WER depends on the LM weight only, best at 1.0: below the
    # grid [2, 3], as in the demo's rounds. Greedy decoding of the all-blank frames is empty.
    reference = "one two three four"

    class Decoder:
        def __init__(self, lm_weight: float) -> None:
            self.lm_weight = lm_weight

        def decode(self, log_probs: np.ndarray) -> BeamResult:
            words = reference.split()
            wrong = min(len(words), round(2 * abs(self.lm_weight - 1.0)))
            words = ["x"] * wrong + words[wrong:]
            return BeamResult((), (), tuple(words), (tuple(words),), (0.0,))

    made: list[tuple[float, float]] = []

    def fake_make_decoder(rec, directory, settings):
        made.append((settings["lm_weight"], settings["word_score"]))
        return Decoder(settings["lm_weight"])

    monkeypatch.setattr(tuning, "make_decoder", fake_make_decoder)
    vocab = default_vocab()
    rec = Recogniser(None, None, None, vocab)
    rec.model = type("M", (), {"config": type("C", (), {"pad_token_id": 0})()})()
    blank = np.full((6, len(vocab)), -30.0)
    blank[:, vocab["<pad>"]] = 0.0
    dev = [Example(f"d{i}", torch.zeros(6, 1), (), reference, 1.0) for i in range(3)]
    config = DecodingConfig(lm_weights=(2.0, 3.0), word_scores=(1.0, 2.0), beam_size=16)
    lines: list[str] = []
    settings = tuning.tune_decoding(
        rec, tmp_path, SENTENCES, dev, [blank] * 3, config, lines.append
    )
    assert settings["method"] == "beam"
    assert settings["lm_weight"] == 1.0 and settings["dev_wer"] == 0.0
    assert {"1/1", "0/1"} <= set(settings["grid_dev_wer"])
    assert any("LM weight" in line and "extended" in line for line in lines), lines
    # The grid (4 decodes), then one LM weight at a time, then the other word score at 1.0.
    assert len(made) == 7 and len(set(made)) == 7


def test_english_words_take_their_share_and_the_lm_stays_a_distribution():
    extra = {"zebra": 3.0, "yacht": 1.0, "cancel": 1.0}  # "cancel" is also in the text
    probs, _ = _read_arpa(kneser_ney_arpa(SENTENCES, order=3, extra_unigrams=extra, extra_mass=0.2))
    unigrams = {g[0]: p for g, p in probs.items() if len(g) == 1 and g[0] != BOS}
    assert sum(unigrams.values()) == pytest.approx(1.0, abs=1e-5)
    assert unigrams["zebra"] == pytest.approx(0.2 * 3 / 5, rel=1e-4)
    assert unigrams["zebra"] == pytest.approx(3 * unigrams["yacht"], rel=1e-4)
    plain = _read_arpa(kneser_ney_arpa(SENTENCES, order=3))[0]
    assert unigrams["cancel"] == pytest.approx(0.8 * plain[("cancel",)] + 0.2 / 5, rel=1e-4)


def _recogniser(vocab: dict[str, int]) -> Recogniser:
    rec = Recogniser(None, None, None, vocab)
    rec.model = type("M", (), {"config": type("C", (), {"pad_token_id": 0})()})()
    return rec


def _words(rec: Recogniser, directory: Path, settings: dict, lp: np.ndarray) -> list[str]:
    rec.beam = make_decoder(rec, directory, settings)
    return [w.word for w in decode_utterance(rec, lp)[0]]


def test_a_word_only_in_the_lm_text_is_decodable(tmp_path: Path):
    vocab = default_vocab()
    text = tmp_path / "names.txt"
    text.write_text("Call Zanzibar Radio\n\n  \nzanzibar\n", encoding="utf-8")
    assert read_lm_text([text]) == ["call zanzibar radio", "zanzibar"]
    lp = _spell("play zanzibar", vocab, sharpness=6.0, rng=np.random.default_rng(1))
    settings = {"method": "beam", "lm_weight": 1.0, "word_score": 0.0, "beam_size": 32}
    rec = _recogniser(vocab)

    without, with_text = tmp_path / "without", tmp_path / "with"
    write_lm(without, SENTENCES, vocab, WORD_SEP, DecodingConfig())
    assert "zanzibar" not in _words(rec, without, settings, lp)
    write_lm(with_text, [*SENTENCES, *read_lm_text([text])], vocab, WORD_SEP, DecodingConfig())
    assert _words(rec, with_text, settings, lp) == ["play", "zanzibar"]


def test_the_open_search_spells_a_word_in_no_list(tmp_path: Path):
    vocab = default_vocab()
    config = DecodingConfig(open_vocabulary=True, char_lm_order=6)
    info = write_lm(tmp_path, SENTENCES, vocab, WORD_SEP, config)
    assert info["char_order"] == 6 and (tmp_path / "char_lm.arpa").is_file()
    rec = _recogniser(vocab)
    lp = _spell("cancel blorvent", vocab, sharpness=6.0, rng=np.random.default_rng(2))
    lexicon = {"method": "beam", "lm_weight": 1.0, "word_score": 0.0, "beam_size": 32}
    assert "blorvent" not in _words(rec, tmp_path, lexicon, lp)
    open_ = {**lexicon, "method": "open", "lm_weight": 0.5}
    rec.beam = make_decoder(rec, tmp_path, open_)
    words, utterance = decode_utterance(rec, lp)
    assert [w.word for w in words] == ["cancel", "blorvent"]
    assert 0.0 <= utterance <= min(w.confidence for w in words) + 1e-9
    frames = [(w.start_frame, w.end_frame) for w in words]
    assert frames == sorted(frames) and all(0 <= a < b <= lp.shape[0] for a, b in frames)
    # Without open_vocabulary no character LM is kept, and the open search says what is missing.
    write_lm(tmp_path, SENTENCES, vocab, WORD_SEP, DecodingConfig())
    assert not (tmp_path / "char_lm.arpa").exists()
    with pytest.raises(CheckpointError, match=r"char_lm\.arpa"):
        make_decoder(rec, tmp_path, open_)


def test_lm_text_errors_name_the_file_and_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.txt does not exist"):
        read_lm_text([tmp_path / "missing.txt"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence": "play jazz"}\n{"intent": "x"}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: no 'text' or 'sentence'"):
        read_lm_text([bad])
    binary = tmp_path / "audio.wav"
    binary.write_bytes(b"RIFF\xff\xfe\x00\x80")
    with pytest.raises(ConfigError, match=r"audio\.wav as UTF-8"):
        read_lm_text([binary])
    good = tmp_path / "slurp.jsonl"
    good.write_text('{"sentence": "Wake me at 7am"}\n\n{"text": "play jazz"}\n')
    assert read_lm_text([good]) == ["wake me at seven a m", "play jazz"]


def test_english_words_without_wordfreq_say_how_to_get_it(monkeypatch):
    import sys

    from training.asr.lmtext import check_sources, english_words

    monkeypatch.setitem(sys.modules, "wordfreq", None)  # as on a machine without the extra
    with pytest.raises(ConfigError, match=r"pip install 'earmark\[words\]'"):
        english_words(100)
    with pytest.raises(ConfigError, match="wordfreq"):
        check_sources((), 100)  # what train_asr runs before it trains
    assert english_words(0) == {}
    check_sources((), 0)


def test_a_search_that_ties_greedy_on_dev_is_kept_and_a_worse_one_is_not():
    from training.asr.tuning import kept_decoding

    beam = {"method": "beam", "dev_wer": 0.015, "lm_weight": 2.0, "grid_dev_wer": {}}
    opened = {"method": "open", "dev_wer": 0.02, "lm_weight": 1.0, "grid_dev_wer": {}}
    searches = {"beam": beam, "open": opened}
    assert kept_decoding(0.015, searches)["method"] == "beam"  # a tie: the lexicon search
    assert "grid_dev_wer" not in kept_decoding(0.015, searches)
    assert kept_decoding(0.03, searches)["method"] == "beam"
    assert kept_decoding(0.01, searches) == {"method": "greedy", "dev_wer": 0.01}
    assert (
        kept_decoding(0.05, {"beam": {**beam, "dev_wer": 0.06}, "open": opened})["method"] == "open"
    )
