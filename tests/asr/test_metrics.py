from earmark.core.wer import align_words, corpus_rates, edit_distance, score_utterance


def test_edit_distance_counts_substitutions_deletions_insertions():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert edit_distance([], ["a"]) == 1
    assert edit_distance(["a"], []) == 1


def test_align_marks_only_matched_hypothesis_words_correct():
    errors, correct = align_words(["turn", "on", "the", "light"], ["turn", "the", "light"])
    assert (errors, correct) == (1, [True, True, True])
    errors, correct = align_words(["play", "some", "jazz"], ["play", "sum", "jazz", "now"])
    assert (errors, correct) == (2, [True, False, True, False])


def test_scores_use_the_shared_normaliser():
    s = score_utterance("Set an alarm for 7 AM!", "set an alarm for seven a m")
    assert s.word_errors == 0 and not s.sentence_error
    rates = corpus_rates([s, score_utterance("play jazz", "play")])
    assert rates["wer"] == 1 / 9
    assert rates["ser"] == 0.5
