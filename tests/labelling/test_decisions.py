"""How differing answers on one task are settled (``projects.resolution``)."""

from __future__ import annotations

import pytest

from labelling import configs, convert
from labelling.decisions import DISAGREE, Rule, decide

TAGS = configs.parse(configs.render("transcription", configs.Schema(("x",), ("y",))))


def _answer(kind: str, text: str, intent: str | None = None) -> dict:
    return convert.Answer(kind, False, text=text, intent=intent).to_dict()


@pytest.mark.parametrize(
    ("texts", "rule", "expected"),
    [
        (["a b", "a b"], "majority", "a b"),
        (["a b", "a c"], "majority", None),  # a tie
        (["a b", "a c", "a b"], "majority", "a b"),
        (["a c", "a b", "a b"], "majority", "a b"),
        (["a b", "a c", "a d"], "majority", None),  # no answer has more than half
        (["a b", "a c", "a b"], "unanimous", None),
    ],
)
def test_resolution_rule(texts: list[str], rule: Rule, expected: str | None) -> None:
    entries = [
        {
            "annotation_id": i,
            "updated_at": f"2026-01-01T00:00:0{i}",
            "kind": "transcription",
            "task_id": 1,
            "utterance_id": "u1",
            "annotator": f"ann-{i}",
            "answer": _answer("transcription", t),
        }
        for i, t in enumerate(texts)
    ]
    d = decide("transcription", entries, TAGS, None, rule)
    assert (d.label.text if d.label else None) == expected
    assert d.reason == (None if expected else DISAGREE)
