"""The one text normaliser used by training and by every metric.

``normalize("Wake me at 7:30am, on the 3rd!")`` -> ``"wake me at seven thirty a m on the third"``:
lower case, digits/times/ordinals spelled out, punctuation stripped (apostrophes inside words
kept: "don't"), single spaces. ``normalize_labelled`` does the same to a labelled text and
moves its entity spans with it.

Conventions: "am"/"pm" after a number is spelled "a m"/"p m" however it is written ("7:30am",
"7:30 AM", "7:30 a.m."); minutes under ten keep their "oh" ("7:05" -> "seven oh five"); a
comma between thousands is dropped ("1,000.5" -> "one thousand point five"); a "-" or "−"
directly before a number that does not follow a word is a sign ("-5" -> "minus five", but
"5-6" -> "five six"). Accented letters are folded to ASCII ("Beyoncé" -> "beyonce", "ß" ->
"ss"): the recogniser spells with a-z only (``training/asr/model.py``), and a folded word
is still the word, where dropping the letter made a different one ("beyonc"). Letters of
other scripts (no Latin base letter) are still dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from earmark.core.records import Entity

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = (
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
    (100, "hundred"),
)
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """Cardinal number in words: 21 -> "twenty one", 1905 -> "one thousand nine hundred five"."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            words = f"{number_to_words(head)} {name}"
            return words if rest == 0 else f"{words} {number_to_words(rest)}"
    raise AssertionError("unreachable")  # pragma: no cover


def ordinal_to_words(n: int) -> str:
    """21 -> "twenty first", 12 -> "twelfth", 40 -> "fortieth"."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        spoken = number_to_words(hour)
    elif minute < 10:
        spoken = f"{number_to_words(hour)} oh {number_to_words(minute)}"
    else:
        spoken = f"{number_to_words(hour)} {number_to_words(minute)}"
    return f" {spoken} "


def _decimal(match: re.Match[str]) -> str:
    whole, frac = match.group(1), match.group(2)
    return f" {number_to_words(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)} "


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # Thousands separators first, so "1,000.5" is one number to the decimal rule.
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), lambda m: ""),
    (re.compile(r"(?<!\w)[-\u2212](?=\d)"), lambda m: " minus "),
    # am/pm before the time rule: their lookbehind needs the digit, "7:30 am" as "7:30am".
    (re.compile(r"(?<=\d)\s*([ap])\.?\s?m\b\.?"), lambda m: f" {m.group(1)} m "),
    (re.compile(r"\b([ap])\.m\.?"), lambda m: f" {m.group(1)} m "),
    (re.compile(r"\b(\d{1,2}):(\d{2})\b"), _time),
    (re.compile(r"\b(\d+)\.(\d+)\b"), _decimal),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: f" {ordinal_to_words(int(m.group(1)))} "),
    (re.compile(r"\d+"), lambda m: f" {number_to_words(int(m.group(0)))} "),
    (re.compile(r"%"), lambda m: " percent "),
    (re.compile(r"&"), lambda m: " and "),
    (re.compile(r"\+"), lambda m: " plus "),
    # Apostrophes survive only between letters ("don't"); everything else that is not a letter
    # or a space goes.
    (re.compile(r"(?<![a-z])'|'(?![a-z])"), lambda m: " "),
    (re.compile(r"[^a-z' ]+"), lambda m: " "),
)

# Latin letters that Unicode does not decompose into a base letter and a mark.
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ð": "d",
        "þ": "th",
        "ł": "l",
        "đ": "d",
        "ħ": "h",
        "ı": "i",
        "ŧ": "t",
    }
)


def fold_to_ascii(text: str) -> str:
    """Lower case with accents folded away: "Beyoncé" -> "beyonce", "Straße" -> "strasse".

    NFKD splits "é" into "e" plus a combining accent (and compatibility forms such as "ﬁ" or
    full-width digits into plain ones); the combining marks are dropped and the few Latin
    letters without a decomposition are spelled out. Other characters pass through.
    """
    decomposed = unicodedata.normalize("NFKD", text).lower()
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.translate(_FOLD)


def normalize(text: str) -> str:
    """Lower case, accents folded, numbers/times/ordinals in words, punctuation stripped,
    single spaces. ``normalize(normalize(x)) == normalize(x)``."""
    out = fold_to_ascii(text.replace("’", "'").replace("‘", "'"))
    for pattern, repl in _RULES:
        out = pattern.sub(repl, out)
    return " ".join(out.split())


def normalize_labelled(text: str, entities: tuple[Entity, ...]) -> tuple[str, tuple[Entity, ...]]:
    """Normalise a labelled text and move its entity spans onto the normalised text.

    Each entity value and each stretch between entities is normalised on its own and the
    pieces are rejoined with single spaces, so spans stay exact. Entities whose value
    normalises to nothing are dropped.
    """
    pieces: list[tuple[str | None, str]] = []
    cursor = 0
    for ent in sorted(entities, key=lambda e: e.start):
        pieces.append((None, text[cursor : ent.start]))
        pieces.append((ent.type, text[ent.start : ent.end]))
        cursor = ent.end
    pieces.append((None, text[cursor:]))
    words: list[str] = []
    new_entities: list[Entity] = []
    length = 0
    for etype, piece in pieces:
        norm = normalize(piece)
        if not norm:
            continue
        start = length + (1 if words else 0)
        words.append(norm)
        length = start + len(norm)
        if etype is not None:
            new_entities.append(Entity(etype, start, length))
    return " ".join(words), tuple(new_entities)
