"""Create or update (idempotently) the transcription and understanding projects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earmark.core.errors import StudioError
from labelling import configs
from labelling.client import StudioClient
from labelling.configs import KINDS, Kind, Schema, Tags
from labelling.settings import StudioConfig
from labelling.state import State

UNCERTAINTY_SAMPLING = (
    "Uncertainty sampling"  # Label Studio serves the lowest prediction score first
)


@dataclass(frozen=True)
class ProjectRef:
    kind: Kind
    id: int
    title: str
    action: str  # created | updated | unchanged


def _settings(kind: Kind, schema: Schema, config: StudioConfig) -> dict[str, Any]:
    titles = {
        "transcription": config.projects.transcription_title,
        "understanding": config.projects.understanding_title,
    }
    return {
        "title": titles[kind],
        "label_config": configs.render(kind, schema),
        "expert_instruction": configs.instructions(kind),
        "show_instruction": True,
        "show_skip_button": True,
        "enable_empty_annotation": False,
        "maximum_annotations": config.projects.overlap,
        # earmark draws which tasks get several annotators (labelling.overlap); at 100%
        # Label Studio never redraws its own cohort over tasks already annotated
        "overlap_cohort_percentage": 100,
        "sampling": UNCERTAINTY_SAMPLING,
    }


def setup_projects(
    client: StudioClient, workspace: str | Path, schema: Schema, config: StudioConfig
) -> list[ProjectRef]:
    """Make both projects exist with the label config for ``schema``; running it again changes nothing."""
    state = State.of(workspace)
    known = state.projects()
    existing = {
        p["title"]: p
        for p in client.paginate("/api/projects/", what="listing projects", key="results")
    }
    out: list[ProjectRef] = []
    saved: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        want = _settings(kind, schema, config)
        proj = existing.get(want["title"])
        if proj is None and kind in known:
            proj = next((p for p in existing.values() if p["id"] == known[kind]["id"]), None)
        if proj is None:
            proj = client.post("/api/projects/", want, what=f"creating the {kind} project")
            action = "created"
        else:
            changed = {k: v for k, v in want.items() if proj.get(k) != v}
            if changed:
                proj = client.patch(
                    f"/api/projects/{proj['id']}/", changed, what=f"updating the {kind} project"
                )
                action = "updated"
            else:
                action = "unchanged"
        digest = hashlib.sha256(want["label_config"].encode()).hexdigest()[:16]
        saved[kind] = {"id": proj["id"], "title": want["title"], "config_sha": digest}
        out.append(ProjectRef(kind, int(proj["id"]), want["title"], action))
    state.save_projects(saved)
    return out


def project_tags(client: StudioClient, workspace: str | Path) -> dict[str, tuple[int, Tags]]:
    """kind -> (project id, tags read from the project's label config on the server)."""
    projects = State.of(workspace).projects()
    if not projects:
        raise StudioError(
            f"no annotation projects recorded in workspace {workspace}: run `earmark studio setup`"
        )
    out: dict[str, tuple[int, Tags]] = {}
    for kind, ref in projects.items():
        proj = client.get(f"/api/projects/{ref['id']}/", what=f"reading the {kind} project")
        out[kind] = (int(ref["id"]), configs.parse(proj["label_config"]))
    return out
