"""The NLU: one joint transformer encoder with an intent head and a BIO entity-tagging head.

Modules: ``schema`` (label sets from data or a schema file), ``data`` (manifest -> examples,
ASR-hypothesis projection), ``tokenize`` (word-piece tokenizer, word <-> token alignment,
BIO tags), ``model`` (the joint model, save/load), ``config`` (its settings), ``train`` (the
training loop), ``state`` (what a run saves: ``last/`` and ``earmark.json``), ``tuning`` (what
is measured on dev: the best epoch's score, the calibration), ``calibration`` (temperatures and the utterance confidence), ``predict`` (the library entry
point the loop calls), ``metrics`` and ``evaluate`` (``evaluate_nlu``).
"""
