"""Split one labelled manifest into the loop's files, as when a team simulates its loop on data
it has labelled already: a labelled seed set, dev and test sets, an unlabelled pool and the
pool's answers (read only by the simulated annotator).

A seeded shuffle decides the split. The pool keeps what an unlabelled utterance has: its audio
and, for a text row (a typed request, no audio), its text; the labels go to
``pool_answers.jsonl``. ``schema.json`` lists the intents and entity types of seed, dev and
pool answers (what the annotators may need to choose from), never the test set's own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from earmark.core.errors import CorpusError
from earmark.core.fileio import write_json
from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Label

SPLITS = ("seed", "dev", "test")


@dataclass(frozen=True)
class SplitFiles:
    seed: Path
    pool: Path
    dev: Path
    test: Path
    answers: Path
    schema: Path

    def loop_data(self) -> dict[str, str]:
        """The loop config's ``data`` section for these files."""
        return {
            k: str(getattr(self, k)) for k in ("seed", "pool", "dev", "test", "answers", "schema")
        }


def _unlabelled(row: ManifestRow) -> ManifestRow:
    """What the pool holds of a labelled row: audio, or a text row's text."""
    if row.utterance.audio or row.label is None or not row.label.text:
        return ManifestRow(row.utterance, None)
    return ManifestRow(row.utterance, Label(row.id, row.label.text))


def split_manifest(
    manifest: str | Path, out: str | Path, *, seed_size: int, dev_size: int, test_size: int,
    seed: int = 0,
) -> SplitFiles:  # fmt: skip
    """Write ``seed/pool/dev/test/pool_answers.jsonl`` and ``schema.json`` into ``out``."""
    rows = [r for r in read_manifest(manifest) if r.label is not None]
    sizes = {"seed": seed_size, "dev": dev_size, "test": test_size}
    if any(n < 0 for n in sizes.values()):
        raise CorpusError(f"split sizes must be >= 0, got {sizes}")
    if sum(sizes.values()) >= len(rows):
        raise CorpusError(
            f"{manifest}: {len(rows)} labelled rows cannot give seed {seed_size} + dev "
            f"{dev_size} + test {test_size} and leave a pool"
        )
    order = list(rows)
    random.Random(seed).shuffle(order)
    parts: dict[str, list[ManifestRow]] = {}
    start = 0
    for name in SPLITS:
        parts[name] = order[start : start + sizes[name]]
        start += sizes[name]
    answers = order[start:]
    folder = Path(out)
    files = SplitFiles(
        seed=folder / "seed.jsonl", pool=folder / "pool.jsonl", dev=folder / "dev.jsonl",
        test=folder / "test.jsonl", answers=folder / "pool_answers.jsonl",
        schema=folder / "schema.json",
    )  # fmt: skip
    for name in SPLITS:
        write_manifest(getattr(files, name), parts[name])
    write_manifest(files.pool, [_unlabelled(r) for r in answers])
    write_manifest(files.answers, answers)
    known = parts["seed"] + parts["dev"] + answers  # never the test set's labels
    write_json(
        files.schema,
        {
            "intents": sorted({r.label.intent for r in known if r.label and r.label.intent}),
            "entity_types": sorted({e.type for r in known if r.label for e in r.label.entities}),
        },
    )
    return files
