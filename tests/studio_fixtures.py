"""A real Label Studio server for the whole test session (registered by tests/conftest.py).

The server runs from the shared Label Studio venv (installed on first use, ~1 minute; reused
afterwards), on a free port, with its data in a temporary folder; it is stopped at the end.
Each test gets its own workspace (sharing the server's secrets) and its own project titles,
so tests do not see each other's tasks.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labelling.accounts import ensure_annotator
from labelling.client import StudioClient, connect
from labelling.process import start, stop
from labelling.settings import Paths, StudioConfig, load_studio_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Studio:
    workspace: Path
    config: StudioConfig
    url: str

    def client(self) -> StudioClient:
        return connect(self.workspace, self.config.client)


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    workspace = tmp_path_factory.mktemp("ls-server")
    config = load_studio_config(overrides=[f"server.port={_free_port()}"])
    info = start(workspace, config)
    try:
        with connect(workspace, config.client) as admin:  # simulated annotators' accounts
            for number in (1, 2, 3):  # every test workspace gets their secrets
                ensure_annotator(workspace, config, admin, number)
        yield Studio(workspace, config, info.url)
    finally:
        stop(workspace)


@pytest.fixture
def studio(studio_server: Studio, tmp_path: Path) -> Studio:
    """A fresh workspace on the session's server, with projects of its own."""
    return workspace_on(studio_server, tmp_path)


def workspace_on(studio_server: Studio, tmp_path: Path) -> Studio:
    """A fresh workspace ``tmp_path/ws`` on the session's server, with projects of its own
    (for a test that needs more than one, each in its own folder)."""
    src, dst = Paths.of(studio_server.workspace), Paths.of(tmp_path / "ws")
    dst.root.mkdir(parents=True)
    shutil.copytree(src.secrets, dst.secrets)
    shutil.copy(src.server_json, dst.server_json)
    tag = uuid.uuid4().hex[:6]
    config = load_studio_config(
        overrides=[
            f"server.port={studio_server.config.server.port}",
            f"projects.transcription_title=transcription {tag}",
            f"projects.understanding_title=understanding {tag}",
        ]
    )
    return Studio(tmp_path / "ws", config, studio_server.url)
