"""``fsdd``: the Free Spoken Digit Dataset (``{digit}_{speaker}_{n}.wav``)."""

from __future__ import annotations

import re
from pathlib import Path

from earmark.core.audio import AudioConfig
from earmark.core.errors import CorpusError
from earmark.core.say import Progress
from earmark.corpus.importers.merge import Candidate, run_import, source_item
from earmark.corpus.importers.report import ImportReport, QuarantineItem

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")


def import_fsdd(
    src: str | Path,
    out_dir: str | Path,
    *,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """The Free Spoken Digit Dataset: ``src`` is its ``recordings`` folder (or the folder above).

    ``{digit}_{speaker}_{n}.wav`` -> id ``fsdd-{digit}-{speaker}-{n}``, text the digit's name
    ("zero".."nine"), speaker the name (private), no intent. A ``.wav`` named otherwise is
    quarantined (``bad_name``). The audio is 8 kHz and is resampled when loaded.
    """
    root = Path(src)
    if (root / "recordings").is_dir():
        root = root / "recordings"
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder (--format fsdd wants FSDD's recordings folder)")
    parsed: list[tuple[tuple[int, str, int], Candidate]] = []
    for p in root.glob("*.wav"):
        m = FSDD_NAME.match(p.name)
        if m is None:
            detail = "the name is not {digit}_{speaker}_{n}.wav, so the digit spoken is unknown; rename it"
            parsed.append(
                ((10, p.name, 0), QuarantineItem(p.stem, str(p), "bad_name", detail, str(p)))
            )
            continue
        digit, speaker, n = int(m.group(1)), m.group(2), int(m.group(3))
        uid = f"fsdd-{digit}-{speaker}-{n}"
        item = source_item(uid, p, where=str(p), speaker=speaker, text=DIGIT_NAMES[digit])
        parsed.append(((digit, speaker, n), item))
    if not parsed:
        raise CorpusError(f"{root}: no .wav files found (expected {{digit}}_{{speaker}}_{{n}}.wav)")
    candidates = [c for _, c in sorted(parsed, key=lambda kv: kv[0])]
    return run_import("fsdd", root, out_dir, candidates, config=config, progress=progress)
