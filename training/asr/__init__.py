"""The ASR: a small CTC recogniser, its training loop, transcription with word confidence and
evaluation. Import submodules directly (``training.asr.transcribe``); they load torch."""
