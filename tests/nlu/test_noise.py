"""Noisy training text: recogniser-like errors, deterministic for a seed, entities kept honest."""

from __future__ import annotations

from earmark.core.wer import edit_distance
from training.nlu.data import load_examples
from training.nlu.noise import noisy_copies


def test_noisy_copies_are_deterministic_for_a_seed_and_order(nlu_data) -> None:
    examples = load_examples(nlu_data["train"])[:200]
    a = noisy_copies(examples, copies=2, word_error_rate=0.2, seed=3)
    b = noisy_copies(examples, copies=2, word_error_rate=0.2, seed=3)
    assert a == b
    # one example's copies do not depend on the others or their order (the vocabulary of
    # confusable words aside, which the same set of examples gives in any order)
    c = noisy_copies(list(reversed(examples)), copies=2, word_error_rate=0.2, seed=3)
    assert sorted(a, key=lambda e: e.id) == sorted(c, key=lambda e: e.id)
    d = noisy_copies(examples, copies=2, word_error_rate=0.2, seed=4)
    assert [e.text for e in a] != [e.text for e in d]


def test_the_error_rate_is_about_the_configured_one(nlu_data) -> None:
    examples = load_examples(nlu_data["train"])
    by_id = {e.id: e for e in examples}
    for rate in (0.1, 0.3):
        noisy = noisy_copies(examples, copies=1, word_error_rate=rate, seed=0)
        errors = words = 0
        for n in noisy:
            ref = by_id[n.id.rsplit("~", 1)[0]].text.split()
            errors += edit_distance(ref, n.text.split())
            words += len(ref)
        words += sum(len(e.text.split()) for e in examples if f"{e.id}~noisy0" not in {
            n.id for n in noisy
        })  # fmt: skip
        measured = errors / words
        assert 0.6 * rate <= measured <= 1.4 * rate, (rate, measured)


def test_noisy_copies_keep_the_intent_and_only_entities_that_survived(nlu_data) -> None:
    examples = load_examples(nlu_data["train"])[:300]
    by_id = {e.id: e for e in examples}
    noisy = noisy_copies(examples, copies=1, word_error_rate=0.3, seed=1)
    assert noisy and len({n.id for n in noisy}) == len(noisy)
    dropped = 0
    for n in noisy:
        original = by_id[n.id.rsplit("~", 1)[0]]
        assert n.intent == original.intent
        assert n.text != original.text and n.text.strip()
        values = {(x.type, original.text[x.start : x.end]) for x in original.entities}
        for x in n.entities:
            assert (x.type, n.text[x.start : x.end]) in values
        dropped += len(original.entities) - len(n.entities)
    assert dropped > 0  # some entity words were misrecognised, and those entities went


def test_no_copies_means_no_noise(nlu_data) -> None:
    examples = load_examples(nlu_data["train"])[:20]
    assert noisy_copies(examples, copies=0, word_error_rate=0.2, seed=0) == []
    assert noisy_copies(examples, copies=3, word_error_rate=0.0, seed=0) == []
