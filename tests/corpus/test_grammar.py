"""The smart-speaker grammar: SLURP-style names, exact spans, normalised text, determinism."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import pytest

from earmark.core.errors import CorpusError
from earmark.core.text import normalize
from earmark.corpus import grammar

SLURP_NAME = re.compile(r"^[a-z]+(_[a-z]+)+$")


def test_at_least_15_intents_in_slurp_scenario_action_style():
    assert len(grammar.INTENTS) >= 15
    for intent in grammar.INTENTS:
        assert SLURP_NAME.match(intent), intent
    for expected in ("play_music", "weather_query", "alarm_set", "calendar_set"):
        assert expected in grammar.INTENTS
    assert "iot_hue_lightson" in grammar.INTENTS


def test_at_least_12_entity_types_with_slurp_names_and_hundreds_of_values():
    assert len(grammar.ENTITY_TYPES) >= 12
    for expected in ("artist_name", "song_name", "place_name", "date", "time", "person"):
        assert expected in grammar.ENTITY_TYPES
    assert "house_place" in grammar.ENTITY_TYPES
    assert sum(len(values) for values in grammar.SLOT_VALUES.values()) >= 500
    for key, values in grammar.SLOT_VALUES.items():
        assert len(set(values)) == len(values), f"duplicate values in {key}"


def test_every_slot_value_is_already_normalised():
    for key, values in grammar.SLOT_VALUES.items():
        for value in values:
            assert normalize(value) == value, (key, value)


def test_every_template_parses_and_names_known_slots():
    slot = re.compile(r"\{([a-z_:]+)\}")
    for intent, templates in grammar.INTENT_TEMPLATES.items():
        assert len(templates) >= 4, f"{intent} needs varied phrasings"
        for template in templates:
            grammar.fill(template, random.Random(0))
            for key in slot.findall(template):
                assert key in grammar.SLOT_VALUES, (intent, template, key)


def test_generated_text_is_normalised_and_spans_are_exact():
    labelled = grammar.generate(3000, seed=7)
    intents, types = set(), set()
    for uid, label in labelled:
        assert label.utterance_id == uid
        text = label.text
        assert text is not None and text
        assert normalize(text) == text, text
        previous_end = -1
        for ent in label.entities:
            assert ent.start > previous_end, f"overlapping or unsorted spans in {text!r}"
            previous_end = ent.end
            value = text[ent.start : ent.end]
            keys = [k for k in grammar.SLOT_VALUES if k.split(":")[0] == ent.type]
            assert any(value in grammar.SLOT_VALUES[k] for k in keys), (ent.type, value)
            # spans sit on word boundaries
            assert ent.start == 0 or text[ent.start - 1] == " "
            assert ent.end == len(text) or text[ent.end] == " "
            types.add(ent.type)
        intents.add(label.intent)
    assert intents == set(grammar.INTENTS)
    assert len(types) >= 12


def test_generation_is_deterministic_for_a_seed_and_differs_across_seeds():
    assert grammar.generate(200, seed=3) == grammar.generate(200, seed=3)
    first = [label.text for _, label in grammar.generate(200, seed=3)]
    other = [label.text for _, label in grammar.generate(200, seed=4)]
    assert first != other


def test_phrasings_vary_and_words_are_shared_across_intents():
    labelled = grammar.generate(4000, seed=1)
    texts = defaultdict(set)
    intents_with_word = defaultdict(set)
    for _, label in labelled:
        assert label.text is not None and label.intent is not None
        texts[label.intent].add(label.text)
        for word in label.text.split():
            intents_with_word[word].add(label.intent)
    for intent, seen in texts.items():
        assert len(seen) >= 5, f"{intent}: only {len(seen)} distinct texts"
    # The NLU task is not a keyword lookup: common verbs serve several intents.
    for word in ("play", "turn", "set", "what's"):
        assert len(intents_with_word[word]) >= 3, word


def test_the_label_set_is_honest_one_text_one_intent():
    rng = random.Random(0)
    intents_of = defaultdict(set)
    for _ in range(30000):
        text, intent, _ = grammar.sample(rng)
        intents_of[text].add(intent)
    ambiguous = {t: i for t, i in intents_of.items() if len(i) > 1}
    assert not ambiguous


@pytest.mark.parametrize("template", ["(a|b", "a]", "a|b", "{Bad}", "{no_such_slot}"])
def test_malformed_templates_raise_corpus_error(template):
    with pytest.raises(CorpusError):
        grammar.fill(template, random.Random(0))


def test_fill_rejoins_optional_parts_with_single_spaces():
    for seed in range(50):
        text, entities = grammar.fill(
            "[please ]turn on [the ]{house_place} [now] lights", random.Random(seed)
        )
        assert "  " not in text and text == text.strip()
        assert entities[0].type == "house_place"
        assert text[entities[0].start : entities[0].end] in grammar.SLOT_VALUES["house_place"]


def test_the_data_files_load_in_file_order_with_generated_dates_and_times():
    assert list(grammar.load_intent_templates()) == list(grammar.INTENT_TEMPLATES)
    slots = grammar.load_slot_values()
    assert slots == grammar.SLOT_VALUES
    for key, generate in grammar.GENERATED_SLOTS.items():
        assert slots[key] == generate()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"date": None, "time": None, "joke_type": ["dad", 3]}, "joke_type must be a non-empty"),
        ({"date": None, "time": None, "joke_type": []}, "joke_type must be a non-empty"),
        ({"date": None, "time": None, "joke_type": None}, "joke_type must be a non-empty"),
        ({"date": None, "person": ["ann"]}, r"no entry for the generated slot\(s\) time"),
    ],
)
def test_bad_slot_data_is_an_error_naming_the_file_and_key(monkeypatch, raw, message):
    monkeypatch.setattr(grammar, "_read_data", lambda name: raw)
    with pytest.raises(CorpusError, match=rf"^slot_values\.yaml: .*{message}"):
        grammar.load_slot_values()
