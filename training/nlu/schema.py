"""Label sets: intents and entity types, taken from the training data or from a schema file.

Nothing here is hard-coded: a ``LabelSchema`` is built from the examples (or read from a
YAML file ``{intents: [...], entity_types: [...]}``) and saved inside every checkpoint, so
the model can only ever predict labels it was built with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from earmark.core.errors import ConfigError, ManifestError
from earmark.core.manifest import Problem

if TYPE_CHECKING:
    from training.nlu.data import Example

OUTSIDE = "O"


@dataclass(frozen=True)
class LabelSchema:
    """Ordered intents and entity types; index order is the model's output order."""

    intents: tuple[str, ...]
    entity_types: tuple[str, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        """BIO tags: ``O`` first, then ``B-type``/``I-type`` per entity type in order."""
        out = [OUTSIDE]
        for etype in self.entity_types:
            out += [f"B-{etype}", f"I-{etype}"]
        return tuple(out)

    def tag_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}

    def intent_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.intents)}

    def to_dict(self) -> dict[str, Any]:
        return {"intents": list(self.intents), "entity_types": list(self.entity_types)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "<schema>") -> LabelSchema:
        intents = data.get("intents")
        types = data.get("entity_types", [])
        if not isinstance(intents, list) or not all(isinstance(x, str) and x for x in intents):
            raise ConfigError(f"{where}: 'intents' must be a list of non-empty strings")
        if not isinstance(types, list) or not all(isinstance(x, str) and x for x in types):
            raise ConfigError(f"{where}: 'entity_types' must be a list of non-empty strings")
        if len(set(intents)) != len(intents) or len(set(types)) != len(types):
            raise ConfigError(f"{where}: intents and entity types must not repeat")
        return cls(tuple(intents), tuple(types))

    @classmethod
    def from_file(cls, path: str | Path) -> LabelSchema:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"schema file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_examples(cls, *example_sets: Iterable[Example]) -> LabelSchema:
        """Sorted labels seen in the examples (sorted so two runs on the same data agree)."""
        intents: set[str] = set()
        types: set[str] = set()
        for examples in example_sets:
            for ex in examples:
                intents.add(ex.intent)
                types.update(e.type for e in ex.entities)
        return cls(tuple(sorted(intents)), tuple(sorted(types)))

    def extended(self, other: LabelSchema) -> tuple[LabelSchema, list[str], list[str]]:
        """This schema plus the labels of ``other`` appended at the end (old indices stay).

        Returns ``(schema, new_intents, new_entity_types)``.
        """
        new_intents = [i for i in other.intents if i not in self.intents]
        new_types = [t for t in other.entity_types if t not in self.entity_types]
        grown = LabelSchema(self.intents + tuple(new_intents), self.entity_types + tuple(new_types))
        return grown, new_intents, new_types

    def check(self, examples: Sequence[Example], *, path: str) -> None:
        """Raise ``ManifestError`` naming the line of every label the schema does not know."""
        intents, types = set(self.intents), set(self.entity_types)
        problems: list[Problem] = []
        for ex in examples:
            if ex.intent not in intents:
                problems.append(
                    Problem(path, ex.line, ex.id, "intent", f"unknown intent {ex.intent!r}")
                )
            for i, ent in enumerate(ex.entities):
                if ent.type not in types:
                    problems.append(
                        Problem(
                            path,
                            ex.line,
                            ex.id,
                            f"entities[{i}].type",
                            f"unknown type {ent.type!r}",
                        )
                    )
        if problems:
            shown = "\n  ".join(str(p) for p in problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise ManifestError(
                f"{path}: {len(problems)} label(s) not in the schema "
                f"(known intents: {', '.join(self.intents)}; "
                f"known entity types: {', '.join(self.entity_types) or 'none'}):"
                f"\n  {shown}{more}",
                problems,
            )
