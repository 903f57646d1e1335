"""Models earmark trains every round: the CTC speech recogniser (``training.asr``) and the
intent + entity model (``training.nlu``), their confidence, metrics and checkpoints.

Shared by both: ``model`` (the contract the loop drives), ``result`` (what a trainer returns),
``budget`` (the time budget and step cap), ``schedule`` (the learning-rate schedules),
``checkpoint`` (metadata, the ``last/`` folder and the resume rule), ``stats``."""
