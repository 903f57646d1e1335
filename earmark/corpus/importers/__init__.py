"""Importers: bring existing audio and labels into one earmark manifest, idempotently.

Each ``import_x(src, out_dir, ...)`` writes ``out_dir/manifest.jsonl`` and
``out_dir/quarantine.jsonl`` and returns an ``ImportReport``. Source audio is referenced by
absolute path, never copied (it is resampled to 16 kHz when loaded); ``duration`` and
``sample_rate`` are recorded from the file. Every audio file is inspected
(``earmark.core.audio.inspect_audio``); a broken one is quarantined with its reason and never
stops the import. Re-running into an existing ``out_dir`` keeps every row already there,
skips ids already present, and never duplicates an id ("nothing already imported is lost").

Formats, one module each; every one turns its source into candidates and ends with
``merge.run_import``, which writes the files described in ``report``:

- ``folder``: every audio file under a folder (recursive), unlabelled; ids from the path.
- ``manifest``: an earmark JSONL manifest, or a CSV with a header (``audio`` required;
  ``id``, ``text``, ``intent``, ``speaker`` optional, other columns kept as extra fields).
- ``slurp``: SLURP JSONL (text, intent, entities from token spans); audio when the
  recordings folder is given.
- ``fsdd``: the Free Spoken Digit Dataset (``{digit}_{speaker}_{n}.wav``).
"""

from __future__ import annotations

from collections.abc import Callable

from earmark.corpus.importers.folder import AUDIO_SUFFIXES, import_folder
from earmark.corpus.importers.fsdd import DIGIT_NAMES, FSDD_NAME, import_fsdd
from earmark.corpus.importers.manifest import CSV_COLUMNS, import_manifest
from earmark.corpus.importers.merge import Candidate, SourceItem, run_import
from earmark.corpus.importers.report import (
    MANIFEST_NAME,
    QUARANTINE_NAME,
    ImportReport,
    QuarantineItem,
)
from earmark.corpus.importers.slurp import import_slurp, slurp_spans

FORMATS = ("folder", "manifest", "slurp", "fsdd")

IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "folder": import_folder,
    "manifest": import_manifest,
    "slurp": import_slurp,
    "fsdd": import_fsdd,
}

__all__ = [
    "AUDIO_SUFFIXES",
    "CSV_COLUMNS",
    "DIGIT_NAMES",
    "FORMATS",
    "FSDD_NAME",
    "IMPORTERS",
    "MANIFEST_NAME",
    "QUARANTINE_NAME",
    "Candidate",
    "ImportReport",
    "QuarantineItem",
    "SourceItem",
    "import_folder",
    "import_fsdd",
    "import_manifest",
    "import_slurp",
    "run_import",
    "slurp_spans",
]
