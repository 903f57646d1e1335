"""Corpora: the built-in synthetic smart-speaker corpus and importers of real data.

``importers``: ``import_folder`` / ``import_manifest`` / ``import_slurp`` / ``import_fsdd``
write an idempotent manifest plus a quarantine of broken items; ``check``: ``check_manifest``
reports every problem of a manifest and its audio at once.

``synth``: ``build_corpus``, the built-in corpus, from its parts ``config``, ``voices``,
``engines``, ``planning``, ``rendering`` and ``noise``; ``grammar`` (data in ``data/``, syntax
in ``template``) writes its sentences; ``phrases``: your own phrases in the built-in voices.
"""
