"""The small exception hierarchy every earmark module raises from.

Messages name the item (utterance id, file, line, config key) and, where there is one, what
to do about it. Input validation raises; it never asserts.
"""

from __future__ import annotations


class EarmarkError(Exception):
    """Base class: the CLI prints these as one clear message and exits non-zero."""


class ConfigError(EarmarkError):
    """A config file or override is malformed: unknown key, wrong type, bad value."""


class ManifestError(EarmarkError):
    """A manifest has problems; ``problems`` lists every one found, not just the first."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class PredictionError(EarmarkError):
    """A prediction (ASR hypothesis or NLU prediction) or a predictions file is malformed; the
    message names the key, and for a file its path and line."""


class AudioError(EarmarkError):
    """An audio file cannot be used; ``reason`` is a short machine-readable code."""

    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {reason}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


class CorpusError(EarmarkError):
    """A corpus cannot be built or imported (missing engine, empty source folder...)."""


class CheckpointError(EarmarkError):
    """A checkpoint folder is missing, incomplete or of the wrong kind."""


class StudioError(EarmarkError):
    """Label Studio is unreachable, refuses the token, or answers something unexpected."""


class SelectionError(EarmarkError):
    """A selection strategy cannot choose (e.g. the pool is empty)."""


class EmptyPoolError(SelectionError):
    """No selectable utterance is left in the pool."""
