"""``labelling.status.status``: a frozen, typed record of where the server runs and its projects."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from labelling.configs import schema_from_manifests
from labelling.projects import setup_projects
from labelling.push import push
from labelling.settings import Paths, load_studio_config
from labelling.status import ProjectStatus, StudioStatus, status


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_workspace_without_a_server_has_no_url_and_no_projects(tmp_path, monkeypatch):
    monkeypatch.delenv("EARMARK_LS_URL", raising=False)
    info = status(tmp_path, load_studio_config(None))
    assert info == StudioStatus(str(tmp_path), None, None, None, running=False)
    assert (info.projects, info.tasks, info.open) == ((), 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.running = True  # type: ignore[misc]


def test_a_recorded_server_that_is_gone_is_not_running(tmp_path, monkeypatch):
    monkeypatch.setenv("EARMARK_LS_URL", "http://127.0.0.1:9")  # the recorded one wins
    paths = Paths.of(tmp_path)
    paths.root.mkdir(parents=True)
    paths.server_json.write_text(
        json.dumps({"url": "http://127.0.0.1:1", "pid": _dead_pid(), "data_dir": "d"})
    )
    info = status(tmp_path, load_studio_config(None))
    assert (info.url, info.pid, info.data_dir, info.running) == (
        "http://127.0.0.1:1",
        None,
        "d",
        False,
    )


def test_an_existing_server_is_named_by_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EARMARK_LS_URL", "http://127.0.0.1:1")
    info = status(tmp_path, load_studio_config(None))
    assert (info.url, info.pid, info.data_dir, info.running) == (
        "http://127.0.0.1:1",
        None,
        None,
        False,
    )


def test_totals_add_up_the_projects():
    projects = (
        ProjectStatus(1, "t", "transcription", tasks=5, open=2),
        ProjectStatus(2, "u", "understanding", tasks=3, open=3),
    )
    info = StudioStatus("ws", "http://x", None, None, running=True, projects=projects)
    assert (info.tasks, info.open, projects[0].done) == (8, 5, 3)


@pytest.mark.labelstudio
@pytest.mark.shared
@pytest.mark.slow
def test_projects_carry_their_kind_and_open_tasks(studio, studio_server, corpus_factory, tmp_path):
    corpus = corpus_factory(3)
    with studio.client() as client:
        setup_projects(
            client, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )
        push(client, studio.workspace, corpus.selection, corpus.pool, studio.config)
    info = status(studio.workspace, studio.config)
    assert info.running and info.url == studio.url and info.pid is not None
    by_kind = {p.kind: p for p in info.projects}
    assert set(by_kind) == {"transcription", "understanding"}  # this workspace's only
    trans, und = by_kind["transcription"], by_kind["understanding"]
    assert (trans.title, trans.tasks, trans.open) == (
        studio.config.projects.transcription_title,
        3,
        3,
    )
    assert (und.title, und.tasks, und.open) == (studio.config.projects.understanding_title, 0, 0)
    assert (info.tasks, info.open) == (3, 3)
