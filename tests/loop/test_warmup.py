"""The warm-up check: does a strategy's ranking follow the models' errors on dev; and the
pool sample a round scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import write_lines

from earmark.core.errors import ConfigError
from earmark.core.manifest import ManifestRow
from earmark.core.predictions import ASRHypothesis, IntentAlternative, NLUPrediction
from earmark.core.records import Label, Utterance
from earmark.loop.config import LoopConfig, SelectionConfig
from earmark.loop.pool import sample_pool
from earmark.loop.warmup import rank_check, utterance_errors
from earmark.selection.scores import scores_from_predictions
from earmark.selection.strategies import AsrLeastConfidence, Combined, NluMargin


def dev_row(uid: str, text: str = "play some jazz", intent: str = "play_music") -> ManifestRow:
    return ManifestRow(
        Utterance(uid, audio=f"/audio/{uid}.wav"), Label(uid, text=text, intent=intent)
    )


def asr_pred(uid: str, text: str, conf: float) -> ASRHypothesis:
    return ASRHypothesis(uid, text, conf)


def nlu_pred(uid: str, intent: str, conf: float, p2: float = 0.0) -> NLUPrediction:
    alts = (IntentAlternative(intent, conf), IntentAlternative("other", p2))
    return NLUPrediction(id=uid, text="x", intent=intent, intent_confidence=conf,
                         confidence=conf, alternatives=alts)  # fmt: skip


# hypotheses with 0, 1, 2 and 3 wrong words of "play some jazz"
HYPS = ["play some jazz", "play some jam", "pray some jam", "pray sum jam"]


def asr_case(confs: list[float]) -> tuple[list[ManifestRow], dict[str, ASRHypothesis]]:
    rows = [dev_row(f"d{i}") for i in range(len(HYPS))]
    preds = {r.id: asr_pred(r.id, h, c) for r, h, c in zip(rows, HYPS, confs, strict=True)}
    return rows, preds


def test_errors_are_utterance_wer_capped_and_intent_mixed_by_weight() -> None:
    rows, asr = asr_case([0.9, 0.8, 0.7, 0.6])
    rows.append(dev_row("long", text="jazz"))
    asr["long"] = asr_pred("long", "a b c d", 0.1)  # 4 errors on a 1-word reference
    errors = utterance_errors(rows, asr, {}, asr_weight=1.0)
    assert errors == {"d0": 0.0, "d1": pytest.approx(1 / 3), "d2": pytest.approx(2 / 3),
                      "d3": 1.0, "long": 1.0}  # fmt: skip

    nlu = {
        r.id: nlu_pred(r.id, "play_music" if i % 2 else "wrong", 0.5) for i, r in enumerate(rows)
    }
    mixed = utterance_errors(rows, asr, nlu, asr_weight=0.5)
    assert mixed["d0"] == 0.5  # right words, wrong intent
    assert mixed["d1"] == pytest.approx(0.5 / 3)
    # an NLU-only corpus: the ASR weight is 0 and only the intent counts
    assert utterance_errors(rows, {}, nlu, asr_weight=0.0)["d1"] == 0.0


def test_a_confidence_that_follows_the_errors_is_informative() -> None:
    rows, asr = asr_case([0.9, 0.8, 0.7, 0.6])
    scores = [scores_from_predictions(asr[r.id], None, r.id) for r in rows]
    check = rank_check(AsrLeastConfidence(), scores, utterance_errors(rows, asr, {}, 1.0), 0.3)
    assert check.spearman == 1.0 and check.informative and check.utterances == 4
    assert "Spearman 1.00 >= 0.3" in check.describe()


def test_a_confidence_that_ranks_errors_backwards_or_not_at_all_is_not() -> None:
    rows, asr = asr_case([0.6, 0.7, 0.8, 0.9])  # most sure where most wrong
    scores = [scores_from_predictions(asr[r.id], None, r.id) for r in rows]
    errors = utterance_errors(rows, asr, {}, 1.0)
    backwards = rank_check(AsrLeastConfidence(), scores, errors, 0.3)
    assert backwards.spearman == -1.0 and not backwards.informative

    rows, asr = asr_case([0.5, 0.5, 0.5, 0.5])  # one confidence for all: no ranking
    scores = [scores_from_predictions(asr[r.id], None, r.id) for r in rows]
    flat = rank_check(AsrLeastConfidence(), scores, utterance_errors(rows, asr, {}, 1.0), 0.3)
    assert flat.spearman is None and not flat.informative
    assert "Spearman undefined < 0.3" in flat.describe()
    assert flat.to_dict()["informative"] is False


def test_the_check_uses_the_strategy_s_own_priority() -> None:
    rows = [dev_row(f"d{i}") for i in range(4)]
    # NLU margins that rank the intent errors; ASR confidences that rank nothing
    nlu = {
        "d0": nlu_pred("d0", "play_music", 0.9, 0.05),
        "d1": nlu_pred("d1", "play_music", 0.8, 0.1),
        "d2": nlu_pred("d2", "wrong", 0.5, 0.4),
        "d3": nlu_pred("d3", "wrong", 0.4, 0.39),
    }
    asr = {r.id: asr_pred(r.id, "play some jazz", 0.5) for r in rows}
    scores = [scores_from_predictions(asr[r.id], nlu[r.id], r.id) for r in rows]
    errors = utterance_errors(rows, asr, nlu, asr_weight=0.5)
    assert rank_check(NluMargin(), scores, errors, 0.5).informative
    assert not rank_check(AsrLeastConfidence(), scores, errors, 0.5).informative
    assert rank_check(Combined(asr_weight=0.5), scores, errors, 0.5).informative


def test_pool_sample_is_seeded_by_run_and_round_and_off_by_default() -> None:
    pool = [dev_row(f"p{i:03d}") for i in range(100)]
    assert sample_pool(LoopConfig(), pool, 1) == pool
    cfg = LoopConfig(selection=SelectionConfig(pool_sample=30))
    first = sample_pool(cfg, pool, 1)
    assert len(first) == 30 and len({r.id for r in first}) == 30
    assert [r.id for r in first] == sorted(r.id for r in first)  # pool order kept
    assert sample_pool(cfg, pool, 1) == first  # a resumed round draws the same
    assert sample_pool(cfg, pool, 2) != first
    assert sample_pool(LoopConfig(seed=1, selection=cfg.selection), pool, 1) != first
    assert sample_pool(cfg, pool[:20], 1) == pool[:20]  # smaller than the sample: all of it


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("pool_sample", -1, "selection.pool_sample': must be >= 0"),
        ("min_rank_correlation", 1.5, "selection.min_rank_correlation': must be in [0, 1]"),
    ],
)
def test_selection_settings_are_validated(key: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SelectionConfig(**{key: value})


def test_status_says_what_the_last_round_selected_and_why(tmp_path: Path) -> None:
    from earmark.loop.state import RunFolder
    from earmark.loop.status import last_selection

    run = RunFolder(tmp_path)
    assert last_selection(run) is None
    for r, strategy in ((1, "random"), (2, "diverse(combined)")):
        rd = tmp_path / "rounds" / f"r{r:03d}"
        rd.mkdir(parents=True)
        rows = [{"id": f"p{i}", "score": 0.5, "strategy": strategy} for i in range(3)]
        write_lines(rd / "selection.jsonl", rows)
    (tmp_path / "rounds" / "r001" / "rank_check.json").write_text(
        json.dumps({"strategy": "diverse(combined)", "utterances": 300, "spearman": 0.04,
                    "threshold": 0.3, "informative": False})
    )  # fmt: skip
    assert last_selection(run) == "last selection: r002, 3 with diverse(combined)"
    (tmp_path / "rounds" / "r002" / "rank_check.json").write_text(
        json.dumps({"strategy": "diverse(combined)", "utterances": 300, "spearman": 0.41,
                    "threshold": 0.3, "informative": True})
    )  # fmt: skip
    assert "Spearman 0.41, threshold 0.3: followed" in str(last_selection(run))


def test_errors_are_measured_on_normalised_text_like_the_reported_wer() -> None:
    # the same words as the reference once normalised: no error, as the reported WER says
    rows = [dev_row("d0", text="Play Jazz, at 7.")]
    errors = utterance_errors(rows, {"d0": asr_pred("d0", "play jazz at seven", 0.9)}, {}, 1.0)
    assert errors == {"d0": 0.0}
