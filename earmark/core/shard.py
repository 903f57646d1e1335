"""Splitting a manifest over processes, and merging their outputs back into one file.

A pool too large for one process is cut into blocks of ``chunk`` consecutive rows; block ``k``
belongs to shard ``k % count``. Each shard is one process (a ``torchrun`` rank, or one job of a
scheduler's array run with ``--shard i/N``) and writes its predictions, in manifest order, to
``OUT.shard-i-of-N``. The transcriber reads and batches the rows a block at a time, so a shard
batches every block exactly as a single process would: the merged file has the same bytes as a
one-process run (with as many threads per process: matrix products may sum in another order
on another thread count).

``merge_parts`` interleaves the parts block by block, checking each line's id against the
manifest, so a part from another manifest, another block size or another shard count is
refused, naming the part and line; it streams (memory does not grow with the pool) and
replaces ``OUT`` atomically.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from earmark.core.errors import EarmarkError
from earmark.core.fileio import atomic_write

T = TypeVar("T")

_SPEC = re.compile(r"(\d+)/(\d+)")


class ShardError(EarmarkError):
    """A bad ``--shard`` value, or parts that cannot be merged."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``"i/N"`` (0 <= i < N) as a shard; ``ShardError`` saying what is wrong otherwise."""
        m = _SPEC.fullmatch(spec.strip())
        if not m:
            raise ShardError(f"--shard {spec!r}: expected i/N, e.g. 0/4 for the first of 4")
        index, count = int(m[1]), int(m[2])
        if count < 1 or not 0 <= index < count:
            raise ShardError(f"--shard {spec!r}: i must be in 0..N-1 and N at least 1")
        return cls(index, count)

    @classmethod
    def from_env(cls) -> Shard | None:
        """The shard of a ``torchrun`` rank (``RANK``/``WORLD_SIZE``); None outside one or
        with a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        return cls(int(os.environ.get("RANK", "0") or 0), world) if world > 1 else None

    def take(self, rows: Iterable[T], chunk: int) -> Iterator[T]:
        """The rows of this shard's blocks (block ``k`` of ``chunk`` rows is shard ``k % count``'s)."""
        for n, row in enumerate(rows):
            if (n // chunk) % self.count == self.index:
                yield row

    def part(self, out: str | Path) -> Path:
        """Where this shard writes ``out``'s part: ``OUT.shard-i-of-N``."""
        out = Path(out)
        return out.with_name(f"{out.name}.shard-{self.index}-of-{self.count}")


def merge_parts(
    ids: Iterable[str], out: str | Path, count: int, chunk: int, absent: Container[str] = ()
) -> int:
    """Merge the ``count`` parts of ``out`` (``Shard(i, count).part(out)``) into ``out`` in the
    order of ``ids`` (the manifest's); returns the lines written. The parts are left in place.
    ``absent``: ids that hold their place in the blocks but have no line (rows a shard skipped,
    e.g. unreadable audio)."""
    parts = [Shard(i, count).part(out) for i in range(count)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ShardError(f"cannot merge {out}: missing part(s) {', '.join(missing)}")
    files: list[IO[str]] = [p.open(encoding="utf-8") for p in parts]
    try:
        with atomic_write(out) as dst:
            written = 0
            for n, uid in enumerate(ids):
                if uid in absent:
                    continue
                k = (n // chunk) % count
                line = files[k].readline()
                if not line:
                    raise ShardError(
                        f"cannot merge {out}: {parts[k]} ends before manifest row {n + 1} "
                        f"({uid}); was it written for this manifest with --chunk-size {chunk} "
                        "and finished?"
                    )
                got = json.loads(line).get("id")
                if got != uid:
                    raise ShardError(
                        f"cannot merge {out}: {parts[k]} has {got!r} where manifest row {n + 1} "
                        f"is {uid!r} (another manifest, chunk size or shard count?)"
                    )
                dst.write(line if line.endswith("\n") else line + "\n")
                written += 1
            extra = [str(p) for p, f in zip(parts, files, strict=True) if f.readline()]
            if extra:
                raise ShardError(
                    f"cannot merge {out}: {', '.join(extra)} hold(s) more lines than the manifest"
                )
    finally:
        for f in files:
            f.close()
    return written
