"""The callbacks through which long work reports to a person, defined once for every layer."""

from __future__ import annotations

from collections.abc import Callable

Say = Callable[[str], None]  # one line for the person running it ("round 2: scoring 1000 ...")
Progress = Callable[[int, int], None]  # (done, total) of a counted job: a bar, a "12/50"


def quiet(_: str) -> None:
    """A ``Say`` that says nothing."""
