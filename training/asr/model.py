"""The recogniser: a Hugging Face CTC model plus the feature extractor and tokenizer it reads.

By default a small FastConformer (``ParakeetForCTC``) on 80-bin log-mel features with a
character vocabulary and the subsampling factor of ``configs/asr.yaml`` (characters need many
output frames: the config says which factor and why). Any Hugging Face CTC checkpoint
(``Wav2Vec2ForCTC``, ``HubertForCTC``, ``ParakeetForCTC``...) can be loaded instead, by hub
id or local path; when its vocabulary is not ours its CTC head is replaced.

Shapes: features are ``(batch, frames, n_mels)`` for log-mel models and ``(batch, samples)``
for raw-waveform models; logits are ``(batch, out_frames, vocab)``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from earmark.core import faults
from earmark.core.errors import CheckpointError
from earmark.core.fileio import write_json
from training.asr.tokens import BLANK, UNK, WORD_SEP
from training.asr.units import LETTERS, load_units, save_units, spell_word, train_units, unit_vocab

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


# The characters earmark.core.text.normalize can produce: a-z, apostrophe and space ("|").
CHARS = (WORD_SEP, *LETTERS)
TEMPERATURE_FILE = "confidence.json"


def default_vocab() -> dict[str, int]:
    """Blank first (id 0, also the pad id), then unknown, the word separator and letters."""
    return {tok: i for i, tok in enumerate((BLANK, UNK, *CHARS))}


@dataclass(frozen=True)
class ModelConfig:
    """Size of the from-scratch FastConformer (ignored when warm-starting from a checkpoint)."""

    hidden_size: int = 144
    num_layers: int = 4
    num_heads: int = 4
    ff_mult: int = 4
    conv_kernel_size: int = 15
    subsampling_factor: int = 2
    subsampling_channels: int = 96
    num_mel_bins: int = 80
    dropout: float = 0.0
    layerdrop: float = 0.0
    # What the CTC head spells (training.asr.units): "chars", or subword units learned from
    # the training transcripts ("bpe" or "unigram"), at most unit_vocab_size of them (every
    # letter among them).
    units: Literal["chars", "bpe", "unigram"] = "chars"
    unit_vocab_size: int = 256
    # White noise this many dB below each utterance's loudest frame before the features
    # (training.asr.features.add_noise_floor): pauses alike whatever the recording chain.
    # Saved with the feature extractor, so inference does the same; None = off.
    noise_floor_db: float | None = None
    # Silence added before and after every recording (seconds; saved likewise): recordings
    # cut at the speech's first sample (FSDD's) otherwise start mid-burst. None = off.
    edge_pad_seconds: float | None = None


@dataclass
class Recogniser:
    """A CTC model with its feature extractor, tokenizer vocabulary and confidence temperature.

    ``notes`` holds messages about how it was loaded (e.g. that its CTC head was replaced).
    """

    model: Any  # a transformers PreTrainedModel with a CTC head
    feature_extractor: Any
    tokenizer: Any
    vocab: dict[str, int]
    temperature: float = 1.0
    notes: list[str] = field(default_factory=list)
    # Beam search with the checkpoint's lexicon + n-gram LM (``training.asr.lm``), or None
    # for greedy decoding; ``lm_dir`` is the folder its files were read from.
    beam: Any = None
    lm_dir: Path | None = None
    # The subword unit model (training.asr.units), or None when the model spells characters.
    units: Any = None

    @property
    def blank_id(self) -> int:
        return int(self.model.config.pad_token_id)

    @property
    def id_to_token(self) -> dict[int, str]:
        return {i: t for t, i in self.vocab.items()}

    @property
    def input_name(self) -> str:
        """``input_features`` (log-mel models) or ``input_values`` (raw waveform models)."""
        return str(self.model.main_input_name)

    def encode(self, text: str) -> list[int]:
        """Normalised text -> label ids (unknown characters map to ``<unk>``)."""
        unk = self.vocab.get(UNK, self.blank_id)
        word_sep = self.vocab.get(WORD_SEP)
        if self.units is not None:
            out: list[int] = []
            for i, word in enumerate(text.split()):
                if i and word_sep is not None:
                    out.append(word_sep)
                out += [self.vocab.get(u, unk) for u in spell_word(self.units, word)]
            return out
        out = []
        for ch in text:
            if ch == " " and word_sep is not None:
                out.append(word_sep)
            else:
                out.append(self.vocab.get(ch, self.vocab.get(ch.upper(), unk)))
        return out

    def spell(self, word: str) -> list[str] | None:
        """The tokens that spell ``word`` (characters or units), or None if it cannot be."""
        tokens = spell_word(self.units, word)
        return tokens if tokens and all(t in self.vocab for t in tokens) else None

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per utterance for ``input_lengths`` feature frames (or samples)."""
        model = self.model
        if hasattr(model, "_get_subsampling_output_length"):
            return model._get_subsampling_output_length(input_lengths).long()
        if hasattr(model, "_get_feat_extract_output_lengths"):
            return model._get_feat_extract_output_lengths(input_lengths).long()
        raise CheckpointError(f"{type(model).__name__}: cannot compute CTC output lengths")

    def save(self, directory: str | Path) -> None:
        """``save_pretrained`` of model, feature extractor and tokenizer, plus the temperature."""
        faults.point(f"save {directory}")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.feature_extractor.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_json(directory / TEMPERATURE_FILE, {"temperature": self.temperature})
        if self.units is not None:
            save_units(self.units, directory)
        if self.lm_dir is not None and self.lm_dir.resolve() != directory.resolve():
            from training.asr.lm import LM_FILES, OPTIONAL_LM_FILES

            for name in LM_FILES:
                shutil.copyfile(self.lm_dir / name, directory / name)
            for name in OPTIONAL_LM_FILES:
                if (self.lm_dir / name).is_file():
                    shutil.copyfile(self.lm_dir / name, directory / name)
                else:
                    (directory / name).unlink(missing_ok=True)


def make_tokenizer(vocab: dict[str, int]) -> Any:
    from transformers import Wav2Vec2CTCTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab))
        return Wav2Vec2CTCTokenizer(
            str(path),
            unk_token=UNK,
            pad_token=BLANK,
            word_delimiter_token=WORD_SEP,
            bos_token=None,
            eos_token=None,
        )


def build_recogniser(config: ModelConfig, texts: Sequence[str] = ()) -> Recogniser:
    """A fresh, randomly initialised FastConformer CTC model spelling characters, or the
    subword units learned from ``texts`` (the training transcripts) when ``config.units``
    says so."""
    from transformers import (
        ParakeetCTCConfig,
        ParakeetEncoderConfig,
        ParakeetFeatureExtractor,
        ParakeetForCTC,
    )

    units = (
        train_units(texts, config.unit_vocab_size, config.units)
        if config.units != "chars"
        else None
    )
    vocab = unit_vocab(units) if units is not None else default_vocab()
    encoder = ParakeetEncoderConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.hidden_size * config.ff_mult,
        conv_kernel_size=config.conv_kernel_size,
        subsampling_factor=config.subsampling_factor,
        subsampling_conv_channels=config.subsampling_channels,
        num_mel_bins=config.num_mel_bins,
        dropout=config.dropout,
        activation_dropout=config.dropout,
        attention_dropout=config.dropout,
        layerdrop=config.layerdrop,
    )
    model_config = ParakeetCTCConfig(
        vocab_size=len(vocab), pad_token_id=vocab[BLANK], encoder_config=encoder.to_dict()
    )
    model = ParakeetForCTC(model_config)
    fe = ParakeetFeatureExtractor(feature_size=config.num_mel_bins)
    # Saved in preprocessor_config.json; read by training.asr.features.
    setattr(fe, "band_limit_features", True)  # noqa: B010 (not a declared attribute)
    if config.noise_floor_db is not None:
        setattr(fe, "noise_floor_db", float(config.noise_floor_db))  # noqa: B010
    if config.edge_pad_seconds:
        setattr(fe, "edge_pad_seconds", float(config.edge_pad_seconds))  # noqa: B010
    return Recogniser(model, fe, make_tokenizer(vocab), vocab, units=units)


def _replace_head(model: Any, vocab: dict[str, int]) -> None:
    """Swap the CTC output layer for a fresh one sized for ``vocab`` (blank = ``<pad>``)."""
    import torch.nn as nn

    for name in ("lm_head", "ctc_head"):
        old = getattr(model, name, None)
        if old is None:
            continue
        if isinstance(old, nn.Conv1d):
            new: nn.Module = type(old)(old.in_channels, len(vocab), kernel_size=1)
        elif isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, len(vocab))
        else:
            break
        setattr(model, name, new)
        model.config.vocab_size = len(vocab)
        model.config.pad_token_id = vocab[BLANK]
        return
    raise CheckpointError(
        f"{type(model).__name__}: no CTC head (lm_head/ctc_head) found to replace for a new vocabulary"
    )


def load_recogniser(source: str | Path, *, for_training: bool = False) -> Recogniser:
    """Load an earmark ASR checkpoint or any Hugging Face CTC checkpoint (hub id or local path).

    For training, a checkpoint whose vocabulary differs from earmark's character vocabulary
    gets a new, randomly initialised CTC head (logged, with both vocabulary sizes); the
    encoder's weights are kept. For inference the checkpoint's own vocabulary is used.
    """
    from transformers import AutoFeatureExtractor, AutoModelForCTC, AutoTokenizer

    src = str(source)
    if Path(src).exists() and not Path(src, "config.json").is_file():
        raise CheckpointError(f"{src}: not a Hugging Face checkpoint folder (no config.json)")
    try:
        model = AutoModelForCTC.from_pretrained(src)
        feature_extractor = AutoFeatureExtractor.from_pretrained(src)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{src}: cannot load as a CTC checkpoint: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
        vocab = dict(tokenizer.get_vocab())
    except (OSError, ValueError, TypeError):
        tokenizer, vocab = None, {}
    temperature = 1.0
    notes: list[str] = []
    temp_path = Path(src, TEMPERATURE_FILE)
    if temp_path.is_file():
        temperature = float(json.loads(temp_path.read_text()).get("temperature", 1.0))
    units = load_units(src) if Path(src).is_dir() else None
    ours = unit_vocab(units) if units is not None else default_vocab()
    same = model.config.vocab_size == len(ours) and all(vocab.get(t) == i for t, i in ours.items())
    if units is not None and not same:
        raise CheckpointError(f"{src}: its units.json and its vocabulary disagree")
    if for_training and not same:
        msg = (
            f"{src}: vocabulary differs from earmark's character vocabulary "
            f"({model.config.vocab_size} vs {len(ours)} tokens): replacing the CTC head with a new one "
            "(the encoder keeps its pretrained weights)"
        )
        log.warning(msg)
        _replace_head(model, ours)
        tokenizer, vocab, temperature = make_tokenizer(ours), ours, 1.0
        notes.append(msg)
    if tokenizer is None:
        raise CheckpointError(f"{src}: has no tokenizer/vocabulary to decode with")
    rec = Recogniser(model, feature_extractor, tokenizer, vocab, temperature, notes, units=units)
    if not for_training:
        from training.asr.lm import attach_decoder

        attach_decoder(rec, src)
    return rec
