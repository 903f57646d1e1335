"""Fault injection for the kill-anywhere tests: end the process at one of its writes.

Every write earmark makes that a crash could cut in two goes through ``point(what)`` first:
atomic file writes, appends to the append-only logs, checkpoint saves and swaps, and every
Label Studio request that changes something. A point is named by the loop's step
(``context``, e.g. "round 2 push"), what it writes, and how many times this process wrote that
in that step ("#2"), so that a resumed process names the same logical write the same way.

- ``EARMARK_WRITE_TRACE=FILE`` appends one line per point reached (pid, count, name), and
  marks the one that killed with ``KILL``.
- ``EARMARK_KILL_AT_WRITE=N`` ends the process right before the N-th point it reaches.
- ``EARMARK_KILL_AT_NEW_WRITE=N`` (with a trace) ends it before the N-th point whose name is
  not in the trace yet: each kill lands on a write that no earlier kill reached or passed,
  so a chain of killed and resumed processes walks through the whole run.

The end is ``os._exit`` (no clean-up, no flush: like SIGKILL). Nothing is set in normal use,
and ``point`` then costs three dictionary look-ups.
"""

from __future__ import annotations

import os
from collections import Counter

KILL_ENV = "EARMARK_KILL_AT_WRITE"
KILL_NEW_ENV = "EARMARK_KILL_AT_NEW_WRITE"
TRACE_ENV = "EARMARK_WRITE_TRACE"
KILLED_EXIT = 86  # the exit status of a process ended by ``point``

_count = 0
_new = 0
_context = "start"
_seen_here: Counter[str] = Counter()
_seen_before: set[str] | None = None


def context(step: str) -> None:
    """Name the step whose writes follow (the loop calls it as each phase starts)."""
    global _context
    _context = step


def point(what: str) -> None:
    """A write is about to happen (``what`` names it: a file, or an HTTP method and path)."""
    global _count, _new, _seen_before
    trace = os.environ.get(TRACE_ENV)
    kill_at, kill_new = os.environ.get(KILL_ENV), os.environ.get(KILL_NEW_ENV)
    if not (trace or kill_at or kill_new):
        return
    _count += 1
    key = f"{_context}: {what}"
    _seen_here[key] += 1
    name = f"{key} #{_seen_here[key]}"
    kill = bool(kill_at) and _count == int(kill_at or 0)
    if kill_new and trace:
        if _seen_before is None:
            _seen_before = _names_in(trace)
        if name not in _seen_before:
            _new += 1
            kill = kill or _new == int(kill_new)
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\t{_count}\t{'KILL ' if kill else ''}{name}\n")
    if kill:
        os._exit(KILLED_EXIT)


def _names_in(trace: str) -> set[str]:
    try:
        with open(trace, encoding="utf-8") as f:
            return {line.rstrip("\n").split("\t", 2)[-1].removeprefix("KILL ") for line in f}
    except FileNotFoundError:
        return set()
