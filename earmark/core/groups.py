"""Figures per group of utterances: the rows of a manifest grouped by one of their fields.

``earmark evaluate --by FIELD`` and the loop's ``eval_by`` (e.g. the built-in deployment
scenario's ``domain``: source-like and shifted test rows) both score a checkpoint once and
summarise each group's subset of the scores (``.ids`` and ``.subset(positions)``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from earmark.core.errors import ManifestError
from earmark.core.manifest import ManifestRow, row_to_dict

MISSING = "(none)"  # the group of rows without the field


class Scored(Protocol):
    """Per-utterance scores of one checkpoint (``ASRScores``, ``NLUScores``)."""

    @property
    def ids(self) -> tuple[str, ...]: ...

    def subset(self, positions: Sequence[int]) -> Any: ...


S = TypeVar("S", bound=Scored)


def check_fields(fields_of: dict[str, dict[str, Any]], by: Sequence[str], what: str) -> None:
    """Raise ``ManifestError`` naming each ``by`` field that no row has (``fields_of``: each
    row's manifest object by id), and the fields there are; ``what`` names the setting."""
    available = sorted({key for fields in fields_of.values() for key in fields})
    unknown = [f for f in by if f not in available]
    if unknown:
        raise ManifestError(
            f"{what}: no row of the manifest has the field(s) {', '.join(map(repr, unknown))}; "
            f"fields available: {', '.join(available)}"
        )


def group_positions(
    ids: Sequence[str], fields_of: dict[str, dict[str, Any]], field: str
) -> dict[str, list[int]]:
    """``{value: positions in ids}`` of the rows by their ``field`` (``MISSING`` without it),
    sorted by value; values that are not strings are shown as JSON."""
    groups: dict[str, list[int]] = {}
    for i, uid in enumerate(ids):
        value = fields_of[uid].get(field)
        if value is None:
            key = MISSING
        elif isinstance(value, str):
            key = value
        else:
            key = json.dumps(value, sort_keys=True)
        groups.setdefault(key, []).append(i)
    return dict(sorted(groups.items()))


def figures_by(
    scored: S,
    rows: Sequence[ManifestRow],
    by: Sequence[str],
    figures: Callable[[S], dict[str, float | None]],
) -> dict[str, float | None]:
    """``figures(scored)``, then the same for each value of each ``by`` field of ``rows``,
    keyed ``name@field=value`` (e.g. ``wer@domain=shifted``)."""
    out = figures(scored)
    if not by:
        return out
    fields_of = {row.id: row_to_dict(row) for row in rows}
    check_fields(fields_of, by, "eval_by")
    for field in by:
        for value, positions in group_positions(scored.ids, fields_of, field).items():
            part = figures(scored.subset(positions))
            out.update({f"{name}@{field}={value}": v for name, v in part.items()})
    return out
