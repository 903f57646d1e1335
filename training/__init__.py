"""Models earmark trains every round: the CTC speech recogniser (``training.asr``) and the
intent + entity model (``training.nlu``), their confidence, metrics and checkpoints."""
