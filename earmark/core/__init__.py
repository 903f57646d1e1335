"""The torch-free core every layer builds on: records, predictions and manifests, audio files, text
normalisation and WER, config, atomic files, errors, statistics. It imports no torch,
transformers or datasets (import-linter keeps it so), so that labelling and the CLI stay light.
"""
