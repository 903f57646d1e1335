"""The NLU: one joint transformer encoder with an intent head and a BIO entity-tagging head.

Modules: ``schema`` (label sets from data or a schema file), ``data`` (manifest -> examples,
ASR-hypothesis projection), ``tokenize`` (word-piece tokenizer, word <-> token alignment,
BIO tags), ``model`` (the joint model, save/load), ``train`` (the training loop),
``calibration`` (temperatures and the utterance confidence), ``predict`` (the library entry
point the loop calls), ``metrics`` and ``evaluate`` (``evaluate_nlu``).
"""
