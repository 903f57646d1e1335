"""Training examples: manifest rows -> normalised (text, intent, entities), with their line.

Every text the NLU sees goes through ``earmark.core.text.normalize`` (entity spans move with it).
``project_onto_hypothesis`` turns a labelled example plus an ASR hypothesis of the same audio
into an example on the hypothesis text, keeping the entities whose words the ASR got right.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from earmark.core.errors import ManifestError
from earmark.core.fileio import iter_id_records
from earmark.core.manifest import ManifestRow, iter_rows
from earmark.core.records import Entity
from earmark.core.text import normalize, normalize_labelled


@dataclass(frozen=True)
class Example:
    """One labelled utterance on normalised text; ``line`` is its manifest line (0 if none)."""

    id: str
    text: str
    intent: str
    entities: tuple[Entity, ...] = ()
    line: int = 0


def example_from_row(row: ManifestRow, line: int = 0) -> Example | None:
    """The normalised example of a labelled row; None when the row has no intent."""
    label = row.label
    if label is None or label.intent is None:
        return None
    text, entities = normalize_labelled(label.text or "", label.entities)
    return Example(row.id, text, label.intent, entities, line)


def load_examples(path: str | Path) -> list[Example]:
    """Labelled examples of a manifest (rows without an intent are skipped).

    Raises ``ManifestError`` naming the line of every malformed row.
    """
    path = Path(path)
    examples: list[Example] = []
    problems = []
    line_numbers = _nonblank_line_numbers(path)
    for (row, row_problems), line in zip(iter_rows(path), line_numbers, strict=True):
        problems.extend(row_problems)
        if row is None or row_problems:
            continue
        ex = example_from_row(row, line)
        if ex is not None:
            examples.append(ex)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        raise ManifestError(f"{path}: {len(problems)} problem(s):\n  {shown}", problems)
    return examples


def _nonblank_line_numbers(path: Path) -> list[int]:
    # iter_rows yields one item per non-blank line; this recovers each item's line number.
    with open(path, encoding="utf-8") as f:
        return [i for i, line in enumerate(f, start=1) if line.strip()]


def read_asr_predictions(path: str | Path) -> dict[str, str]:
    """``{id: text}`` from an ASR predictions file (JSONL ``{"id", "text", ...}`` lines)."""
    out: dict[str, str] = {}
    for line_no, obj in iter_id_records(path, what="ASR predictions", error=ManifestError):
        if not isinstance(obj.get("text"), str):
            raise ManifestError(f"{path}:{line_no} (id {obj['id']}): 'text' must be a string")
        out[obj["id"]] = obj["text"]
    return out


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each space-separated word of a normalised text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for word in text.split(" "):
        if word:
            spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    return spans


def entity_words(text: str, entity: Entity) -> tuple[int, int]:
    """``(first, last + 1)`` word indices covered by ``entity`` (words it overlaps)."""
    idx = [i for i, (s, e) in enumerate(word_spans(text)) if s < entity.end and e > entity.start]
    if not idx:
        return (0, 0)
    return idx[0], idx[-1] + 1


def project_onto_hypothesis(example: Example, hypothesis: str) -> Example:
    """The example on an ASR hypothesis: same intent; entities kept where all their words match.

    Words are aligned with difflib on the normalised word sequences; an entity survives when
    every one of its reference words lies in one matching block (so its value is unchanged).
    """
    hyp_text = normalize(hypothesis)
    ref_words = example.text.split()
    hyp_words = hyp_text.split()
    hyp_spans = word_spans(hyp_text)
    ref_to_hyp: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(a=ref_words, b=hyp_words, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            ref_to_hyp[block.a + k] = block.b + k
    entities: list[Entity] = []
    for ent in example.entities:
        first, stop = entity_words(example.text, ent)
        mapped = [ref_to_hyp.get(i) for i in range(first, stop)]
        if stop > first and all(m is not None for m in mapped):
            hyp_idx = [m for m in mapped if m is not None]
            if hyp_idx == list(range(hyp_idx[0], hyp_idx[0] + len(hyp_idx))):
                entities.append(
                    Entity(ent.type, hyp_spans[hyp_idx[0]][0], hyp_spans[hyp_idx[-1]][1])
                )
    return Example(example.id, hyp_text, example.intent, tuple(entities), example.line)


def with_hypotheses(examples: Iterable[Example], hypotheses: dict[str, str]) -> list[Example]:
    """Projected copies of the examples that have a hypothesis different from their text."""
    out = []
    for ex in examples:
        hyp = hypotheses.get(ex.id)
        if hyp is not None and normalize(hyp) != ex.text:
            out.append(project_onto_hypothesis(ex, hyp))
    return out
