"""The one normaliser used by training and every metric."""

from __future__ import annotations

import pytest

from earmark.records import Entity
from earmark.text import normalize, normalize_labelled, number_to_words, ordinal_to_words


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
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    text = "Wake me at 7:30am on the 3rd, it's 20% colder!"
    assert normalize(normalize(text)) == normalize(text)


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
