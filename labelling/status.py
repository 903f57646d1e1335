"""Where the workspace's Label Studio runs and how far its projects are, as a typed record.

The server is the one this workspace started (``server.json``) or, when it started none, the
one ``$EARMARK_LS_URL`` names. Its projects are counted only when it answers, and only the
workspace's own (``state/projects.json``): a shared server holds other people's projects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelling.client import StudioClient, resolve_connection
from labelling.configs import KINDS, Kind
from labelling.process import alive, healthy, read_info
from labelling.settings import ENV_URL, Paths, StudioConfig
from labelling.state import State


@dataclass(frozen=True)
class ProjectStatus:
    """One project on the server: ``open`` of its ``tasks`` still want an annotation."""

    id: int
    title: str
    kind: Kind | None  # None: a project this workspace has not recorded
    tasks: int
    open: int

    @property
    def done(self) -> int:
        return self.tasks - self.open


@dataclass(frozen=True)
class StudioStatus:
    """The workspace's server: ``url`` None when there is none; ``projects`` empty unless
    ``running`` (it answered ``/health``)."""

    workspace: str
    url: str | None
    pid: int | None  # the local server's process, when it is alive
    data_dir: str | None
    running: bool
    projects: tuple[ProjectStatus, ...] = ()

    @property
    def tasks(self) -> int:
        """All tasks of the listed projects."""
        return sum(p.tasks for p in self.projects)

    @property
    def open(self) -> int:
        """The listed projects' tasks that still want an annotation."""
        return sum(p.open for p in self.projects)


def status(workspace: str | Path, config: StudioConfig) -> StudioStatus:
    """Where the server runs and, when reachable, the workspace's projects (all of the server's
    when it has recorded none) with their task counts.

    Raises ``StudioError`` when the server answers ``/health`` but refuses the API (no or a
    bad token, a failing request).
    """
    info = read_info(Paths.of(workspace))
    url = info.url if info else os.environ.get(ENV_URL)
    base = StudioStatus(
        workspace=str(Path(workspace)),
        url=url,
        pid=info.pid if info and alive(info.pid) else None,
        data_dir=info.data_dir if info else None,
        running=False,
    )
    if not url or not healthy(url):
        return base
    projects = _projects(workspace, url, config)
    return StudioStatus(
        base.workspace, base.url, base.pid, base.data_dir, running=True, projects=projects
    )


def _projects(workspace: str | Path, url: str, config: StudioConfig) -> tuple[ProjectStatus, ...]:
    """The workspace's projects on the server at ``url`` (the server's all when it has none)."""
    recorded = State.of(workspace).projects()
    kinds: dict[int, Kind] = {int(recorded[k]["id"]): k for k in KINDS if k in recorded}
    with StudioClient(resolve_connection(workspace, url), config.client) as client:
        listed = client.paginate("/api/projects/", what="listing projects", key="results")
        return tuple(
            _project(proj, kinds.get(int(proj["id"])))
            for proj in listed
            if not kinds or int(proj["id"]) in kinds
        )


def _project(proj: dict[str, Any], kind: Kind | None) -> ProjectStatus:
    total = int(proj.get("task_number") or 0)
    done = int(proj.get("finished_task_number") or 0)
    return ProjectStatus(int(proj["id"]), str(proj["title"]), kind, total, total - done)
