"""The one normaliser used by training and every metric."""

from __future__ import annotations

import random

import pytest

from earmark.core.records import Entity
from earmark.core.text import normalize, normalize_labelled, number_to_words, ordinal_to_words
from earmark.core.wer import aligned_pairs, score_utterance


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Play Taylor Swift!", "play taylor swift"),
        ("Wake me at 7:30am, please.", "wake me at seven thirty a m please"),
        ("set an alarm for 7:05 p.m.", "set an alarm for seven oh five p m"),
        ("alarm at 6:00", "alarm at six"),
        ("on the 3rd of May", "on the third of may"),
        ("the 21st and the 40th", "the twenty first and the fortieth"),
        ("raise it by 20%", "raise it by twenty percent"),
        ("it costs 1,200", "it costs one thousand two hundred"),
        ("about 2.5 degrees", "about two point five degrees"),
        ("Don't 'quote' me", "don't quote me"),
        ("what’s   the\tweather", "what's the weather"),
        ("rock & roll", "rock and roll"),
        ("  ", ""),
        ("7:30am", "seven thirty a m"),
        ("7:30 am", "seven thirty a m"),
        ("7:30 AM", "seven thirty a m"),
        ("7:05am", "seven oh five a m"),
        ("7:05 am", "seven oh five a m"),
        ("7 pm", "seven p m"),
        ("I am here at 7", "i am here at seven"),
        ("1,000.5", "one thousand point five"),
        ("1,000,000", "one million"),
        ("the 1,000th time", "the one thousandth time"),
        ("Beyoncé", "beyonce"),
        ("Mötley Crüe", "motley crue"),
        ("Straße", "strasse"),
        ("Ærø", "aero"),
        ("-5 degrees", "minus five degrees"),
        ("it is -2.5 out", "it is minus two point five out"),
        ("pages 5-6", "pages five six"),
        ("well - 5 of them", "well five of them"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    text = "Wake me at 7:30am on the 3rd, it's 20% colder!"
    assert normalize(normalize(text)) == normalize(text)


# Random strings over what transcripts are made of: letters, digits, punctuation, spaces,
# accented letters, and the pieces that the number and time rules look for.
_PIECES = (
    list("abcdefghijklmnopqrstuvwxyzABCXYZ")
    + list("0123456789") * 3
    + list(" ") * 8
    + list("!?;\"()'%&+$#/")
    + list("éèêëáàâäåíîïóôöõúûüñçÿœæøßðþłÉÑÖÜÅÆØ")
    + [":", ",", ".", "-"] * 3
    + ["am", "pm", " am", " pm", "a.m.", "p.m.", " AM", "PM"]
)
# Inserted only beside a space and never right after a digit ("7. am" is not "7 am").
_PUNCTUATION = [*'!?;,.:"()-', "...", "--", "…"]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 30)))


def _variants(text: str, rng: random.Random) -> list[str]:
    """Ways of writing ``text`` that say the same: case, extra spaces, extra punctuation."""
    mixed = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    spaced = "  " + text.replace(" ", " " * rng.randint(1, 3)).replace(" ", " \t", 1) + " \n"
    punctuated = []
    for i, c in enumerate(text):
        punctuated.append(c)
        if c == " " and not text[:i].rstrip()[-1:].isdigit() and rng.random() < 0.5:
            punctuated.append(rng.choice(_PUNCTUATION) + " ")
    framed = f"{rng.choice(_PUNCTUATION)} {''.join(punctuated)} {rng.choice(_PUNCTUATION)}"
    return [text.upper(), text.lower(), text.swapcase(), mixed, spaced, framed]


def test_normalize_is_idempotent_and_the_wer_ignores_case_spaces_and_punctuation() -> None:
    rng = random.Random(20240611)
    for _ in range(3000):
        text = _random_text(rng)
        norm = normalize(text)
        assert normalize(norm) == norm, text
        assert set(norm) <= set("abcdefghijklmnopqrstuvwxyz' "), text
        variants = _variants(text, rng)
        for variant in variants:
            assert normalize(variant) == norm, (text, variant)
        # The metric itself on one of them (its character edit distance is the slow part).
        variant = rng.choice(variants)
        assert score_utterance(text, variant).word_errors == 0, (text, variant)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (105, "one hundred five"),
        (2024, "two thousand twenty four"),
        (1_000_000, "one million"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_ordinals() -> None:
    assert [ordinal_to_words(n) for n in (1, 2, 3, 5, 12, 20, 22)] == [
        "first",
        "second",
        "third",
        "fifth",
        "twelfth",
        "twentieth",
        "twenty second",
    ]


def test_normalize_labelled_moves_spans_with_the_text() -> None:
    text = "Wake me at 7:30 on Friday!"
    ents = (Entity("time", 11, 15), Entity("date", 19, 25))
    new_text, new_ents = normalize_labelled(text, ents)
    assert new_text == "wake me at seven thirty on friday"
    assert [new_text[e.start : e.end] for e in new_ents] == ["seven thirty", "friday"]
    assert [e.type for e in new_ents] == ["time", "date"]


def test_aligned_pairs_pair_matches_and_substitutions_not_insertions_or_deletions():
    assert aligned_pairs(["a", "b", "c", "d"], ["a", "x", "c"]) == [(0, 0), (1, 1), (2, 2)]
    assert aligned_pairs(["a", "b"], ["a", "q", "b"]) == [(0, 0), (1, 2)]
    assert aligned_pairs([], ["a"]) == [] and aligned_pairs(["a"], []) == []
