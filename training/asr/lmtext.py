"""Text the recogniser's language models learn from besides its transcripts.

``decoding.lm_text`` (``earmark train asr --lm-text FILE``, the loop's ``asr.lm_text``) names
UTF-8 files of sentences or words, one a line: the NLU's training text, a list of contact or
product names, domain text. Each line is normalised as transcripts are (``earmark.core.text``),
so "Play Beyoncé at 7pm" becomes "play beyonce at seven p m". Lines of a ``.jsonl`` file are
JSON objects whose ``text`` or ``sentence`` field is taken (a manifest, SLURP's files).

``decoding.english_words``: the most frequent words of general English, from the ``wordfreq``
package (Speer et al., frequencies merged from subtitles, Wikipedia, books, web text and
more; data up to 2021, the package's last). They join the lexicon so that a common word that
no text mentioned is still decodable; a maintained frequency table is better than a word list
kept by hand here, and the frequencies weigh the words against each other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from earmark.core.errors import ConfigError
from earmark.core.text import normalize


def read_lm_text(paths: Sequence[str | Path]) -> list[str]:
    """The normalised, non-empty lines of every file in ``paths``, in order."""
    out: list[str] = []
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"decoding.lm_text: {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"decoding.lm_text: cannot read {path} as UTF-8 text: {exc}") from exc
        for n, line in enumerate(text.splitlines(), 1):
            if path.suffix == ".jsonl" and line.strip():
                line = _jsonl_text(path, n, line)
            if sentence := normalize(line):
                out.append(sentence)
    return out


def _jsonl_text(path: Path, n: int, line: str) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"decoding.lm_text: {path}:{n}: not JSON ({exc.msg})") from None
    text = obj.get("text", obj.get("sentence")) if isinstance(obj, dict) else None
    if not isinstance(text, str):
        raise ConfigError(f"decoding.lm_text: {path}:{n}: no 'text' or 'sentence' string")
    return text


def english_words(n: int) -> dict[str, float]:
    """The ``n`` most frequent English words (normalised) with their frequencies."""
    if n <= 0:
        return {}
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError:
        raise ConfigError(
            "decoding.english_words needs the wordfreq package: pip install 'earmark[words]' "
            "(or set decoding.english_words=0)"
        ) from None
    out: dict[str, float] = {}
    for word in top_n_list("en", n):
        for w in normalize(word).split():  # "it's" stays; "7" -> "seven"
            out[w] = out.get(w, 0.0) + word_frequency(word, "en")
    return out


def check_sources(lm_text: Sequence[str | Path], n_english_words: int) -> None:
    """Fail now, not after training, when an LM text file or the word list is unavailable."""
    read_lm_text(lm_text)
    if n_english_words > 0:
        english_words(1)
