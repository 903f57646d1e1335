"""Which tasks several annotators get: ``projects.overlap`` annotators for a share of the
utterances (``projects.overlap_share``), one for the rest.

Label Studio gives a task as many annotators as its ``overlap`` (the project's
``maximum_annotations`` when the task is made). earmark keeps the project's cohort setting at
100% (Label Studio would otherwise redraw the cohort at every import, over tasks already
annotated) and sets each new task's ``overlap`` itself: utterances are drawn by a keyed hash of
their id, so an utterance's transcription and understanding tasks are alike, a retried push
draws the same, and nobody can steer a clip into or out of the overlap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from labelling.client import StudioClient
from labelling.settings import StudioConfig
from labelling.state import State


@dataclass(frozen=True)
class Overlap:
    """``annotators`` per task for ``share`` of the utterances, one for the others."""

    annotators: int = 1
    share: float = 1.0

    @classmethod
    def of(cls, config: StudioConfig) -> Overlap:
        return cls(config.projects.overlap, config.projects.overlap_share)

    def wanted(self, state: State, utterance_id: str) -> int:
        """How many annotators ``utterance_id``'s tasks get."""
        if self.annotators == 1 or state.draw(f"overlap:{utterance_id}") < self.share:
            return self.annotators
        return 1

    def apply(self, client: StudioClient, state: State, made: Iterable[tuple[str, int]]) -> int:
        """Give the new tasks ``(utterance id, task id)`` outside the share one annotator (they
        were made with the project's ``overlap``); returns how many were changed. Called
        before the tasks are recorded: a push or pull killed in between finds them on the
        server and sets them again (harmless).

        A kill between a task's import and this call leaves it open to ``annotators`` people
        (still within ``privacy.max_listeners``) until the retry."""
        n = 0
        if self.annotators == 1:
            return n
        for uid, task_id in made:
            if self.wanted(state, uid) == 1:
                client.patch(
                    f"/api/tasks/{task_id}/",
                    {"overlap": 1},
                    what=f"giving task {task_id} one annotator (projects.overlap_share)",
                )
                n += 1
        return n
