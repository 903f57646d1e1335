"""Fast NLU unit tests: BIO decoding, span alignment, projection, metrics, calibration maps."""

from __future__ import annotations

import math

import pytest
import torch

from earmark.core.errors import ManifestError
from earmark.core.records import Entity
from training.nlu.calibration import fit_temperature, fit_utterance_map, utterance_confidence
from training.nlu.data import Example, load_examples, project_onto_hypothesis
from training.nlu.metrics import char_distance, exact_counts, slu_counts, word_distance
from training.nlu.schema import LabelSchema
from training.nlu.tokenize import decode_words, word_tags


def test_decode_words_handles_invalid_bio() -> None:
    tags = ["I-artist", "I-artist", "O", "B-song", "I-artist", "I-artist", "B-song", "B-song"]
    assert decode_words(tags) == [
        ("artist", 0, 2),
        ("song", 3, 4),
        ("artist", 4, 6),
        ("song", 6, 7),
        ("song", 7, 8),
    ]
    assert decode_words([]) == []
    assert decode_words(["O", "O"]) == []


def test_word_tags_follow_entity_words() -> None:
    ex = Example("u", "play taylor swift now", "play_music", (Entity("artist_name", 5, 17),))
    schema = LabelSchema(("play_music",), ("artist_name",))
    tags = [schema.tags[i] for i in word_tags(ex, schema)]
    assert tags == ["O", "B-artist_name", "I-artist_name", "O"]


def test_projection_keeps_only_entities_whose_words_match() -> None:
    ex = Example(
        "u",
        "play taylor swift in the kitchen",
        "play_music",
        (Entity("artist_name", 5, 17), Entity("house_place", 25, 32)),
    )
    hyp = project_onto_hypothesis(ex, "Play Taylor Swift in the chicken")
    assert hyp.text == "play taylor swift in the chicken"
    assert hyp.intent == "play_music"
    assert [(e.type, hyp.text[e.start : e.end]) for e in hyp.entities] == [
        ("artist_name", "taylor swift")
    ]
    shifted = project_onto_hypothesis(ex, "uh please play taylor swift in the kitchen")
    assert [(e.type, shifted.text[e.start : e.end]) for e in shifted.entities] == [
        ("artist_name", "taylor swift"),
        ("house_place", "kitchen"),
    ]


def test_unknown_labels_in_training_data_are_reported_with_their_line(tmp_path) -> None:
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(
        '{"id": "a", "text": "play jazz", "intent": "play_music", '
        '"entities": [{"type": "genre", "start": 5, "end": 9}]}\n'
        "\n"
        '{"id": "b", "text": "wake me up", "intent": "alarm_set"}\n'
        '{"id": "c", "text": "play rock", "intent": "play_music", '
        '"entities": [{"type": "music_genre", "start": 5, "end": 9}]}\n'
    )
    schema = LabelSchema(("play_music",), ("genre",))
    examples = load_examples(manifest)
    assert [e.line for e in examples] == [1, 3, 4]
    with pytest.raises(ManifestError) as info:
        schema.check(examples, path=str(manifest))
    message = str(info.value)
    assert f"{manifest}:3 (id b) field 'intent': unknown intent 'alarm_set'" in message
    assert f"{manifest}:4 (id c)" in message and "'music_genre'" in message
    assert f"{manifest}:1 " not in message


def test_span_f1_and_slu_f1_counts() -> None:
    assert exact_counts([("a", 0, 4), ("b", 5, 9)], [("a", 0, 4), ("b", 5, 8)]) == (1, 1, 1)
    gold = [("date", "next monday"), ("time", "seven am")]
    assert slu_counts(gold, gold) == (4.0, 0.0, 0.0)
    # one word of two wrong: word distance 1/2; char distance 1 edit / 11 chars
    tp, fp, fn = slu_counts([("date", "next monday")], [("date", "next sunday")])
    assert tp == 2.0
    assert fp == pytest.approx(0.5 + char_distance("next monday", "next sunday"))
    assert fn == fp
    assert slu_counts([("date", "monday")], [("time", "monday")]) == (0.0, 2.0, 2.0)
    assert word_distance("a b", "a b c") == 0.5
    assert char_distance("", "") == 0.0


def test_temperature_fit_softens_overconfident_logits() -> None:
    torch.manual_seed(0)
    targets = torch.randint(0, 4, (400,))
    logits = torch.randn(400, 4) * 0.5
    right = torch.rand(400) < 0.6  # 60% right but the logits claim near certainty
    logits[torch.arange(400), torch.where(right, targets, (targets + 1) % 4)] += 8.0
    t = fit_temperature(logits, targets)
    assert t > 2.0
    scale, shift = fit_utterance_map(
        [0.99] * 50 + [0.5] * 50, [True] * 30 + [False] * 20 + [True] * 10 + [False] * 40
    )
    assert utterance_confidence(0.99, scale, shift) == pytest.approx(0.6, abs=0.02)
    assert utterance_confidence(0.5, scale, shift) == pytest.approx(0.2, abs=0.02)
    assert not math.isnan(utterance_confidence(0.0, scale, shift))


def test_viterbi_never_starts_an_entity_with_i_and_ignores_temperature() -> None:
    from training.nlu.tokenize import allowed_transitions, viterbi

    tags = ("O", "B-time", "I-time", "B-date", "I-date")
    start, step = allowed_transitions(tags)
    torch.manual_seed(0)
    for _ in range(50):
        logits = torch.randn(7, len(tags)) * 3
        path = [tags[j] for j in viterbi(torch.log_softmax(logits, -1), start, step)]
        cooler = viterbi(torch.log_softmax(logits / 3.0, -1), start, step)
        assert [tags[j] for j in cooler] == path
        for prev, cur in zip(["O", *path], path, strict=False):
            if cur.startswith("I-"):
                assert prev in ("B-" + cur[2:], cur)
    # a valid argmax path is kept as is; "quarter to ten" stays one entity
    probs = torch.tensor([[0.1, 0.8, 0.1, 0, 0], [0.5, 0.0, 0.45, 0.05, 0], [0.1, 0.4, 0.5, 0, 0]])
    path = viterbi(torch.log(probs + 1e-9), start, step)
    assert [tags[j] for j in path] == ["B-time", "I-time", "I-time"]
    assert viterbi(torch.zeros(0, len(tags)), start, step) == []


def test_viterbi_finds_the_best_allowed_path_of_all() -> None:
    import itertools

    from training.nlu.tokenize import allowed_transitions, viterbi

    tags = ("O", "B-time", "I-time", "B-date", "I-date")
    start, step = allowed_transitions(tags)
    torch.manual_seed(1)
    for _ in range(30):
        lp = torch.log_softmax(torch.randn(4, len(tags)) * 2, -1)
        allowed = [
            p
            for p in itertools.product(range(len(tags)), repeat=4)
            if start[p[0]] and all(step[a, b] for a, b in itertools.pairwise(p))
        ]
        best = max(allowed, key=lambda p: sum(float(lp[w, j]) for w, j in enumerate(p)))
        assert viterbi(lp, start, step) == list(best)


def test_calibration_on_a_handful_of_dev_requests_stays_moderate() -> None:
    """A team with 200 labels has about 20 dev requests: no fit may push every confidence to 0
    or 1 from them (the unregularised fits went to their bounds: T 0.05, scale 0.05)."""
    logits = torch.zeros(8, 4)
    logits[:, 0] = 3.0  # all eight right, with a modest margin
    assert fit_temperature(logits, torch.zeros(8, dtype=torch.long)) >= 0.3
    scale, shift = fit_utterance_map([0.9] * 6 + [0.2] * 6, [True] * 6 + [False] * 6)
    assert (scale, shift) == (1.0, 0.0)
