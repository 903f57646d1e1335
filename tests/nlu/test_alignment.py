"""Gold spans survive the word/BIO round trip on the built-in grammar and on real SLURP text."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.nlu.data import Example, load_examples
from training.nlu.schema import LabelSchema
from training.nlu.tokenize import decode_words, word_tags, words_to_entity


def _round_trip(examples: list[Example]) -> list[str]:
    schema = LabelSchema.from_examples(examples)
    bad = []
    for ex in examples:
        tags = [schema.tags[i] for i in word_tags(ex, schema)]
        decoded = [words_to_entity(ex.text, t, a, b) for t, a, b in decode_words(tags)]
        if decoded != sorted(ex.entities, key=lambda e: e.start):
            bad.append(ex.id)
    return bad


def test_grammar_spans_round_trip(nlu_data) -> None:
    examples = load_examples(nlu_data["train"])
    assert sum(len(e.entities) for e in examples) > 300
    assert _round_trip(examples) == []


@pytest.mark.shared
def test_slurp_spans_round_trip(shared_data: Path, tmp_path: Path) -> None:
    from earmark.corpus.importers import import_slurp

    report = import_slurp(shared_data / "slurp" / "devel.jsonl", tmp_path / "slurp")
    examples = load_examples(report.manifest)
    assert len(examples) == 2033
    assert len({e.intent for e in examples}) == 71
    assert _round_trip(examples) == []
