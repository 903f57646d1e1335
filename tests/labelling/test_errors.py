"""What the user sees when Label Studio is down, refuses the token, or does not answer."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from earmark.core.errors import StudioError
from labelling.client import Connection, StudioClient
from labelling.settings import ClientConfig, Paths

EARMARK = str(Path(sys.executable).parent / "earmark")


def _earmark(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EARMARK_LS_")}
    full_env.update(env or {})
    return subprocess.run(
        [EARMARK, *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_server_down_is_one_clear_message_and_no_state(tmp_path):
    port = _closed_port()
    paths = Paths.of(tmp_path)
    paths.secrets.mkdir(parents=True)
    paths.token.write_text("some-legacy-token")
    paths.server_json.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": None}))
    before = _snapshot(tmp_path)
    proc = _earmark("pull", "-w", str(tmp_path), "--set", "client.backoff_s=0.05")
    assert proc.returncode == 1
    msg = " ".join(proc.stderr.split())
    assert f"Label Studio is not reachable at http://127.0.0.1:{port}" in msg
    assert "earmark studio start" in msg
    assert "Traceback" not in proc.stderr
    assert _snapshot(tmp_path) == before  # nothing written


def test_no_server_known_names_what_to_do(tmp_path):
    proc = _earmark("pull", "-w", str(tmp_path))
    assert proc.returncode == 1
    msg = " ".join(proc.stderr.split())
    assert "no Label Studio server known" in msg and "EARMARK_LS_URL" in msg


@pytest.mark.labelstudio
def test_wrong_token_is_refused_with_the_url(studio, tmp_path):
    proc = _earmark(
        "pull",
        "-w",
        str(tmp_path),
        env={"EARMARK_LS_URL": studio.url, "EARMARK_LS_TOKEN": "0123456789abcdef"},
    )
    assert proc.returncode == 1
    msg = " ".join(proc.stderr.split())
    assert f"Label Studio at {studio.url} refused the API token (HTTP 401)" in msg
    assert "EARMARK_LS_TOKEN" in msg
    assert "0123456789abcdef" not in proc.stderr + proc.stdout  # the token is never shown
    assert not (tmp_path / "studio").exists()


@pytest.mark.labelstudio
def test_status_names_the_server_and_its_projects(studio):
    proc = _earmark("studio", "status", "-w", str(studio.workspace))
    assert proc.returncode == 0, proc.stderr
    assert f"running at {studio.url}" in proc.stdout


def test_timeout_is_retried_then_reported(tmp_path):
    """A server that accepts connections but never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = StudioClient(
            Connection(url, "legacy-token", "test"),
            ClientConfig(timeout_s=0.5, retries=1, backoff_s=0.05),
        )
        with pytest.raises(StudioError) as exc:
            client.whoami()
        client.close()
    msg = str(exc.value)
    assert f"Label Studio at {url} did not answer within 0.5 s" in msg
    assert "2 attempts" in msg


@pytest.mark.labelstudio
@pytest.mark.shared
def test_cli_round_with_flags_lists_them_for_review(studio, corpus_factory):
    """setup, push, annotate (every task flagged), pull and review through the console script."""
    corpus = corpus_factory(3)
    ws = str(studio.workspace)
    titles = [
        "--set", f"projects.transcription_title={studio.config.projects.transcription_title}",
        "--set", f"projects.understanding_title={studio.config.projects.understanding_title}",
    ]  # fmt: skip
    steps = [
        ["studio", "setup", "-w", ws, "-m", str(corpus.answers), *titles],
        ["push", "-w", ws, "--selection", str(corpus.selection), "-m", str(corpus.pool), *titles],
        ["annotate", "-w", ws, "--simulate", str(corpus.answers), "--flag-rate", "1", *titles],
        ["pull", "-w", ws, *titles],
        ["review", "-w", ws],
    ]
    outs = []
    for args in steps:
        proc = _earmark(*args, env={"COLUMNS": "250"})  # a wide table on a pipe
        assert proc.returncode == 0, (args, proc.stderr)
        outs.append(" ".join(proc.stdout.split()))
    assert "pushed 3 tasks (3 transcription, 0 understanding)" in outs[1]
    assert "annotated 3 task(s)" in outs[2] and "3 flagged" in outs[2]
    assert "3 flagged" in outs[3] and "0 understanding task(s) created" in outs[3]
    assert '{"flagged": 3}' in outs[4] and "simulated annotator" in outs[4]
    assert all(re.search(rf"u00{i}\W+flagged", outs[4]) for i in range(3))


def test_a_second_install_waits_for_the_first_and_reuses_it(tmp_path):
    """Two processes starting Label Studio at once (a demo and a test run) share one venv:
    the second waits on the install lock and then finds the executable, installing nothing."""
    import fcntl
    import threading

    from labelling.install import STAMP, ensure_installed, requirements
    from labelling.settings import load_studio_config

    venv = tmp_path / "ls-venv"
    config = load_studio_config(None, [f"server.venv={venv}"])
    result: list[Path] = []
    with open(tmp_path / ".ls-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # "the first installer" is busy
        waiter = threading.Thread(target=lambda: result.append(ensure_installed(config)))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive() and not result  # waiting, not installing
        exe = venv / "bin" / "label-studio"
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")  # the first installer finishes
        (venv / STAMP).write_text("\n".join(requirements(config)))
    waiter.join(timeout=10)
    assert result == [exe]
    assert sorted(p.name for p in venv.iterdir()) == [STAMP, "bin"]  # no second venv was built
