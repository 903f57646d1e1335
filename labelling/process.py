"""The local Label Studio server process: started in the workspace, found again, stopped.

``start`` installs Label Studio on first use (``labelling.install``), starts it on 127.0.0.1
with its data folder in ``<workspace>/studio/data`` (SQLite), creates the admin account,
waits for ``/health`` and makes sure a valid API token is stored (``labelling.accounts``).
The running server is recorded in ``<workspace>/studio/server.json``.

Everything under ``<workspace>/studio`` is the user's only: folders 0700, files 0600. The
server runs with umask 077 and private uploads, since its database stores tokens and its
upload folder the audio; a workspace made by an older earmark is tightened on start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from earmark.core import fileio
from earmark.core.errors import StudioError
from earmark.core.say import Say, quiet
from labelling.accounts import admin_password, django_secret_key, ensure_token
from labelling.install import ensure_installed
from labelling.settings import Paths, StudioConfig


@dataclass(frozen=True)
class ServerInfo:
    """A server this workspace started: its address, process and data folder."""

    url: str
    pid: int | None
    data_dir: str
    started_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": self.pid,
            "data_dir": self.data_dir,
            "started_at": self.started_at,
        }


def read_info(paths: Paths) -> ServerInfo | None:
    """The server recorded in ``server.json``, or None when none was started (running or not)."""
    if not paths.server_json.is_file():
        return None
    raw = json.loads(paths.server_json.read_text())
    return ServerInfo(
        raw["url"], raw.get("pid"), raw.get("data_dir", ""), raw.get("started_at", "")
    )


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not a server
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def healthy(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url/health`` answers 200 within ``timeout`` seconds."""
    try:
        resp = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def _log_tail(path: Path, n: int = 15) -> str:
    if not path.is_file():
        return "(no log)"
    lines = path.read_text(errors="replace").strip().splitlines()
    return "\n".join(lines[-n:])


# Django chmods every uploaded file to FILE_UPLOAD_PERMISSIONS (0644 by default) whatever the
# umask, and Label Studio has no setting for it: the server is started through its own entry
# point with Django's defaults for uploads made private (Label Studio sets neither).
LAUNCHER = """\
import sys
import django.conf.global_settings as defaults
defaults.FILE_UPLOAD_PERMISSIONS = 0o600
defaults.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
from label_studio.server import main
sys.argv[0] = sys.argv.pop(1)
sys.exit(main())
"""


def _server_env(config: StudioConfig, paths: Paths) -> dict[str, str]:
    """Our environment without ``LABEL_STUDIO_*``, plus the server's settings and secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(paths.data_dir.resolve()),
            "LABEL_STUDIO_USERNAME": config.server.admin_email,
            "LABEL_STUDIO_PASSWORD": admin_password(paths),
            # new accounts only through the organisation's invite link
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "SECRET_KEY": django_secret_key(paths),
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _command(exe: Path, host: str, port: int, paths: Paths) -> list[str]:
    """The server's command line (no secret on it): the launcher with Label Studio's args."""
    return [
        str(exe.with_name("python")),
        "-c",
        LAUNCHER,
        str(exe),
        "start",
        "--no-browser",
        "--internal-host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(paths.data_dir.resolve()),
        "--log-level",
        "WARNING",
    ]


def _launch(cmd: list[str], env: dict[str, str], paths: Paths) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, logging to ``server.log`` (0600), under umask 077."""
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(log_fd, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=paths.root,
            start_new_session=True,
            umask=0o077,  # its database (tokens) and uploads (audio): the user's only
        )


def _already_running(paths: Paths) -> ServerInfo | None:
    """The workspace's recorded server when its process is alive and answers."""
    info = read_info(paths)
    if info and alive(info.pid) and healthy(info.url):
        return info
    return None


def start(
    workspace: str | Path, config: StudioConfig, *, port: int | None = None, say: Say = quiet
) -> ServerInfo:
    """Start (or find running) the workspace's server, then make sure a valid token is stored.

    Idempotent: a server already running for this workspace is reused. Raises ``StudioError``
    with the log's tail when the server does not come up; nothing is left running then.
    """
    paths = Paths.of(workspace)
    info = _already_running(paths)
    if info:
        say(f"Label Studio already running at {info.url} (pid {info.pid})")
        ensure_token(paths, info.url, config, say)
        return info
    host, port = config.server.host, port or config.server.port
    url = f"http://{host}:{port}"
    if _port_taken(host, port):
        raise StudioError(
            f"port {port} on {host} is already in use by another program: choose another with "
            f"`earmark studio start --port N`, or point EARMARK_LS_URL at that server if it is "
            "a Label Studio"
        )
    exe = ensure_installed(config, say)
    fileio.private_dir(paths.data_dir)
    fileio.private_tree(paths.root)
    env = _server_env(config, paths)
    say(f"starting Label Studio at {url} (data in {paths.data_dir})")
    proc = _launch(_command(exe, host, port, paths), env, paths)
    info = ServerInfo(url, proc.pid, str(paths.data_dir), datetime.now(UTC).isoformat())
    _bring_up(proc, info, config, paths, say)
    say(f"Label Studio is up at {url} (pid {proc.pid}); admin {config.server.admin_email}")
    return info


def _bring_up(
    proc: subprocess.Popen[bytes], info: ServerInfo, config: StudioConfig, paths: Paths, say: Say
) -> None:
    """Wait for the new server, record it and store a token; on any failure end it, unrecorded."""
    try:
        _wait_healthy(proc, info.url, config.server.start_timeout_s, paths)
        fileio.write_json(paths.server_json, info.to_dict())
        ensure_token(paths, info.url, config, say)
    except BaseException:
        _terminate(proc.pid)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            proc.wait(timeout=5)
        paths.server_json.unlink(missing_ok=True)
        raise


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout_s: float, paths: Paths) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StudioError(
                f"Label Studio exited (code {proc.returncode}) before answering at {url}; "
                f"last lines of {paths.log}:\n{_log_tail(paths.log)}"
            )
        if healthy(url, timeout=2.0):
            return
        time.sleep(1.0)
    raise StudioError(
        f"Label Studio did not answer {url}/health within {timeout_s:g} s; see {paths.log}:\n"
        f"{_log_tail(paths.log)}"
    )


def _terminate(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def stop(workspace: str | Path, say: Say = quiet) -> bool:
    """Stop the workspace's server; returns False when none was running."""
    paths = Paths.of(workspace)
    info = read_info(paths)
    if info is None or info.pid is None or not alive(info.pid):
        paths.server_json.unlink(missing_ok=True)
        say("Label Studio is not running for this workspace")
        return False
    _terminate(info.pid)
    paths.server_json.unlink(missing_ok=True)
    say(f"stopped Label Studio at {info.url} (pid {info.pid})")
    return True
