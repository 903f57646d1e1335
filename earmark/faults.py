"""Fault injection for the kill-anywhere tests: end the process at its N-th write.

Every write earmark makes that a crash could cut in two goes through ``point(what)`` first:
atomic file writes, appends to the append-only logs, secrets, and every Label Studio request
that changes something. With ``EARMARK_KILL_AT_WRITE=N`` the N-th point reached by this
process ends it at once (``os._exit``, no clean-up, like SIGKILL) *before* that write, so a
test can stop a loop between any two of its writes and check that resuming loses and repeats
nothing. ``EARMARK_WRITE_TRACE=FILE`` appends one line per point reached (pid, count, what)
and marks the one that killed, so the test can say where each kill landed.

Neither variable is set in normal use, and ``point`` then costs two dictionary look-ups.
"""

from __future__ import annotations

import os

KILL_ENV = "EARMARK_KILL_AT_WRITE"
TRACE_ENV = "EARMARK_WRITE_TRACE"
KILLED_EXIT = 86  # the exit status of a process ended by ``point``

_count = 0


def point(what: str) -> None:
    """A write is about to happen (``what`` names it: a file, or an HTTP method and path)."""
    global _count
    kill_at, trace = os.environ.get(KILL_ENV), os.environ.get(TRACE_ENV)
    if not kill_at and not trace:
        return
    _count += 1
    kill = bool(kill_at) and _count == int(kill_at or 0)
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\t{_count}\t{'KILL ' if kill else ''}{what}\n")
    if kill:
        os._exit(KILLED_EXIT)
