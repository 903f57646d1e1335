"""``folder``: every audio file under a folder (recursive) as an unlabelled pool."""

from __future__ import annotations

from pathlib import Path

from earmark.core.audio import AudioConfig
from earmark.core.errors import CorpusError
from earmark.core.say import Progress
from earmark.corpus.importers.merge import Candidate, path_id, run_import, source_item
from earmark.corpus.importers.report import ImportReport

#: File endings the folder importer picks up (what libsndfile reads).
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64"}
)


def import_folder(
    src: str | Path,
    out_dir: str | Path,
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Every audio file under ``src`` (recursive, hidden files skipped) as an unlabelled pool.

    Ids come from the path relative to ``src`` (``path_id``), so re-importing finds them.
    """
    root = Path(src)
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder (--format folder wants a folder of audio files)")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and not p.is_dir()
    )
    if not files:
        raise CorpusError(
            f"{root}: no audio files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})"
        )
    candidates: list[Candidate] = [
        source_item(path_id(p.relative_to(root).as_posix()), p, where=str(p)) for p in files
    ]
    return run_import("folder", root, out_dir, candidates, config=config, progress=progress)
