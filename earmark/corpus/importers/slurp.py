"""``slurp``: SLURP JSONL, one seed-labelled utterance (text, intent, entities) per line.

Entities come from SLURP's token spans, placed on the sentence by ``slurp_spans``; audio is
attached when SLURP's recordings folder is given.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from earmark.core.audio import AudioConfig
from earmark.core.errors import CorpusError
from earmark.core.records import Entity
from earmark.core.say import Progress
from earmark.core.text import normalize_labelled
from earmark.corpus.importers.merge import Candidate, run_import, source_item
from earmark.corpus.importers.report import ImportReport, QuarantineItem


def _compact(text: str) -> str:
    return "".join(text.split()).lower()


def slurp_spans(
    sentence: str, tokens: Sequence[str], spans: Sequence[Sequence[int]]
) -> tuple[list[tuple[int, int] | None], bool]:
    """Map SLURP token spans onto character offsets ``[start, end)`` of ``sentence``.

    Tokens and sentence are compared without whitespace and case ("Friday"/"friday",
    "grassmarket"/"grass market"). When their letters differ (the tokens sometimes carry a
    misspelling: "obaba" for "obama"), a character alignment (difflib) places the span and
    it is widened to whole words of the sentence. Returns ``(offsets, exact)``: ``None`` for
    a span that cannot be placed; ``exact`` is False when the alignment was needed.
    """
    positions = [i for i, ch in enumerate(sentence) if not ch.isspace()]
    letters = "".join(sentence[i] for i in positions).lower()
    bounds: list[tuple[int, int]] = []
    cursor = 0
    for tok in tokens:
        bounds.append((cursor, cursor + len(_compact(tok))))
        cursor += len(_compact(tok))
    joined = "".join(_compact(t) for t in tokens)
    exact = joined == letters
    to_sentence: dict[int, int] = {}
    if exact:
        to_sentence = dict(enumerate(positions))
    else:
        matcher = difflib.SequenceMatcher(None, letters, joined, autojunk=False)
        for a, b, size in matcher.get_matching_blocks():
            for k in range(size):
                to_sentence[b + k] = positions[a + k]
    out: list[tuple[int, int] | None] = []
    for span in spans:
        if not span or min(span) < 0 or max(span) >= len(tokens):
            out.append(None)
            continue
        lo, hi = bounds[min(span)][0], bounds[max(span)][1]
        mapped = [to_sentence[k] for k in range(lo, hi) if k in to_sentence]
        if not mapped:
            out.append(None)
            continue
        start, end = min(mapped), max(mapped) + 1
        while start > 0 and not sentence[start - 1].isspace():
            start -= 1
        while end < len(sentence) and not sentence[end].isspace():
            end += 1
        out.append((start, end))
    return out, exact


def _slurp_item(obj: Any, where: str, recordings: Path | None, warnings: list[str]) -> Candidate:
    """One SLURP line -> a seed-labelled candidate (or a quarantine item naming the problem)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("sentence"), str):
        return QuarantineItem(
            where, None, "invalid_row", "not a SLURP object with a 'sentence'", where
        )
    sid = obj.get("slurp_id")
    uid = f"slurp-{sid}" if sid is not None else f"slurp-{where.rsplit(':', 1)[-1]}"
    sentence, intent = obj["sentence"], obj.get("intent")
    if not isinstance(intent, str) or not intent:
        return QuarantineItem(uid, None, "invalid_row", f"missing 'intent' (slurp_id {sid})", where)
    tokens = [str(t.get("surface", "")) for t in obj.get("tokens", []) if isinstance(t, dict)]
    raw_entities = [e for e in obj.get("entities", []) if isinstance(e, dict)]
    offsets, exact = slurp_spans(sentence, tokens, [e.get("span") or [] for e in raw_entities])
    entities: list[Entity] = []
    for ent, off in zip(raw_entities, offsets, strict=True):
        surfaces = " ".join(tokens[i] for i in ent.get("span") or [] if 0 <= i < len(tokens))
        if off is None:
            warnings.append(
                f"{where} (slurp_id {sid}): entity {ent.get('type')} {surfaces!r} (tokens "
                f"{ent.get('span')}) cannot be placed in the sentence; dropped"
            )
            continue
        entities.append(Entity(str(ent.get("type")), *off))
        if not exact and _compact(sentence[off[0] : off[1]]) != _compact(surfaces):
            warnings.append(
                f"{where} (slurp_id {sid}): tokens {surfaces!r} differ from the sentence; entity "
                f"{ent.get('type')} placed on {sentence[off[0] : off[1]]!r}"
            )
    spans = sorted(entities, key=lambda e: e.start)
    if any(b.start < a.end for a, b in itertools.pairwise(spans)):
        return QuarantineItem(
            uid, None, "invalid_row", f"overlapping entity spans (slurp_id {sid})", where
        )
    text, norm_entities = normalize_labelled(sentence, tuple(spans))
    if not text:
        return QuarantineItem(uid, None, "invalid_row", f"empty sentence (slurp_id {sid})", where)
    audio: Path | None = None
    if recordings is not None:
        names = [r.get("file") for r in obj.get("recordings", []) if isinstance(r, dict)]
        found = [recordings / n for n in names if isinstance(n, str) and (recordings / n).is_file()]
        if not found:
            listed = ", ".join(str(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")
            return QuarantineItem(
                uid,
                None,
                "not_found",
                f"none of the {len(names)} recording(s) listed ({listed or 'none'}) is in "
                f"{recordings}; check --recordings",
                where,
            )
        audio = found[0]
    extra = {"slurp_id": sid, "sentence": sentence}
    return source_item(
        uid, audio, where=where, text=text, intent=intent, entities=norm_entities, extra=extra
    )


def import_slurp(
    src: str | Path,
    out_dir: str | Path,
    *,
    recordings: str | Path | None = None,
    config: AudioConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """SLURP JSONL (e.g. ``devel.jsonl``): one seed-labelled utterance per line.

    id ``slurp-{slurp_id}``; ``text`` is the normalised sentence (``normalize_labelled``), the
    original kept as ``sentence``; ``intent`` as given; entities from token spans
    (``slurp_spans``). Lines whose spans cannot be placed exactly are named in
    ``report.warnings``. With ``recordings`` (SLURP's audio folder), the line's audio is the
    first file of its ``recordings`` list that exists there (one utterance per request, so the
    pool holds each request once); without it, rows have no audio (a text-only NLU corpus).
    """
    path = Path(src)
    if not path.is_file():
        raise CorpusError(f"{path}: SLURP file not found (e.g. slurp/devel.jsonl)")
    rec_dir = None if recordings is None else Path(recordings)
    if rec_dir is not None and not rec_dir.is_dir():
        raise CorpusError(f"{rec_dir}: recordings folder not found")
    warnings: list[str] = []
    candidates: list[Candidate] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                candidates.append(
                    QuarantineItem(
                        f"{path.name}:{line_no}",
                        None,
                        "invalid_row",
                        f"not valid JSON: {exc.msg}",
                        where,
                    )
                )
                continue
            candidates.append(_slurp_item(obj, where, rec_dir, warnings))
    return run_import(
        "slurp", path, out_dir, candidates, config=config, progress=progress, warnings=warnings
    )
