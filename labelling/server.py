"""The local Label Studio server: installed into its own venv, started in the workspace, stopped.

``start`` installs ``label-studio`` (1.23.x) on first use into its own virtual environment
(its pins are not ours), starts it on 127.0.0.1 with its data folder in
``<workspace>/studio/data`` (SQLite), creates the admin account, waits for ``/health`` and
obtains a personal access token, which it stores in a 0600 file. Secrets (admin and
annotator passwords, Django's secret key) are generated once and kept in 0600 files; they are
passed to the server through its environment, never on the command line or in logs.

Everything under ``<workspace>/studio`` is the user's only: folders 0700, files 0600. The
server runs with umask 077, since its database stores tokens and its upload folder the audio;
a workspace made by an older earmark is tightened on start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from earmark import fileio
from earmark.errors import StudioError
from labelling.client import (
    Connection,
    StudioClient,
    read_secret,
    resolve_connection,
    write_secret,
)
from labelling.settings import Paths, StudioConfig, venv_dir

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- the server's own virtual environment ----------------------------------------------------
def label_studio_bin(config: StudioConfig) -> Path:
    return venv_dir(config) / "bin" / "label-studio"


def ensure_installed(config: StudioConfig, say: Say = _quiet) -> Path:
    """Install Label Studio into its own venv unless it is there; returns the executable.

    A fresh install takes about a minute (measured 45 s with a warm pip cache). A half-done
    install (no executable at the end) is reported, never used.
    """
    exe = label_studio_bin(config)
    if exe.is_file():
        return exe
    venv = venv_dir(config)
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (a demo and a test run, two loops) must not pip into one venv at once:
    # the second waits for the first and then finds Label Studio installed.
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.is_file():
            return exe
        _install(config, venv, say)
    if not exe.is_file():
        raise StudioError(f"installing Label Studio into {venv} left no {exe}")
    return exe


def _install(config: StudioConfig, venv: Path, say: Say) -> None:
    say(f"installing label-studio {config.server.version} into {venv} (first use, ~1 minute)")
    base_python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base_python, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", "--upgrade", "pip"],
        [str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={config.server.version}"],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise StudioError(f"installing Label Studio into {venv} failed ({cmd[-1]}): {tail}")


# -- secrets -----------------------------------------------------------------------------------
def _secret(paths: Paths, name: str, make: Callable[[], str]) -> str:
    path = paths.secrets / name
    value = read_secret(path)
    if not value:
        value = make()
        write_secret(path, value)
    return value


def admin_password(paths: Paths) -> str:
    return _secret(paths, "admin_password", lambda: secrets.token_urlsafe(18))


def annotator_password(paths: Paths) -> str:
    return _secret(paths, "annotator_password", lambda: secrets.token_urlsafe(18))


# -- process control ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerInfo:
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
    if not paths.server_json.is_file():
        return None
    raw = json.loads(paths.server_json.read_text())
    return ServerInfo(
        raw["url"], raw.get("pid"), raw.get("data_dir", ""), raw.get("started_at", "")
    )


def _alive(pid: int | None) -> bool:
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(paths.data_dir.resolve()),
            "LABEL_STUDIO_USERNAME": config.server.admin_email,
            "LABEL_STUDIO_PASSWORD": admin_password(paths),
            # new accounts only through the organisation's invite link
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "SECRET_KEY": _secret(paths, "django_secret_key", lambda: secrets.token_urlsafe(50)),
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start(
    workspace: str | Path, config: StudioConfig, *, port: int | None = None, say: Say = _quiet
) -> ServerInfo:
    """Start (or find running) the workspace's server, then make sure a valid token is stored.

    Idempotent: a server already running for this workspace is reused. Raises ``StudioError``
    with the log's tail when the server does not come up; nothing is left running then.
    """
    paths = Paths.of(workspace)
    info = read_info(paths)
    if info and _alive(info.pid) and healthy(info.url):
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
    cmd = [
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
    say(f"starting Label Studio at {url} (data in {paths.data_dir})")
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(log_fd, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=paths.root,
            start_new_session=True,
            umask=0o077,  # its database (tokens) and uploads (audio): the user's only
        )
    info = ServerInfo(url, proc.pid, str(paths.data_dir), datetime.now(UTC).isoformat())
    try:
        _wait_healthy(proc, url, config.server.start_timeout_s, paths)
        fileio.write_json(paths.server_json, info.to_dict())
        ensure_token(paths, url, config, say)
    except BaseException:
        _terminate(proc.pid)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            proc.wait(timeout=5)
        paths.server_json.unlink(missing_ok=True)
        raise
    say(f"Label Studio is up at {url} (pid {proc.pid}); admin {config.server.admin_email}")
    return info


def _wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float, paths: Paths) -> None:
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
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def stop(workspace: str | Path, say: Say = _quiet) -> bool:
    """Stop the workspace's server; returns False when none was running."""
    paths = Paths.of(workspace)
    info = read_info(paths)
    if info is None or not _alive(info.pid):
        paths.server_json.unlink(missing_ok=True)
        say("Label Studio is not running for this workspace")
        return False
    assert info.pid is not None
    _terminate(info.pid)
    paths.server_json.unlink(missing_ok=True)
    say(f"stopped Label Studio at {info.url} (pid {info.pid})")
    return True


# -- accounts and tokens -----------------------------------------------------------------------
def session(
    url: str, email: str, password: str, *, signup_token: str | None = None
) -> httpx.Client:
    """A browser-like session (cookies) logged in as ``email``; signs up first with an invite token.

    Returns the ``httpx.Client`` holding the ``sessionid`` cookie (the UI test reuses it).
    """
    http = httpx.Client(base_url=url, timeout=30.0, follow_redirects=False)
    page = "/user/signup/" if signup_token else "/user/login/"
    params = {"token": signup_token} if signup_token else None
    try:
        http.get(page, params=params)
        csrf = http.cookies.get("csrftoken") or ""
        resp = http.post(
            page,
            params=params,
            data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{url}{page}"},
        )
    except httpx.HTTPError as exc:
        http.close()
        raise StudioError(
            f"Label Studio is not reachable at {url} while logging in: {exc}"
        ) from None
    if resp.status_code != 302 or "sessionid" not in http.cookies:
        http.close()
        what = "sign up" if signup_token else "log in"
        raise StudioError(
            f"could not {what} to Label Studio at {url} as {email} (HTTP {resp.status_code}): "
            "the password in the workspace's secrets does not match the server's account"
        )
    return http


def _csrf_headers(http: httpx.Client, url: str) -> dict[str, str]:
    return {"X-CSRFToken": http.cookies.get("csrftoken") or "", "Referer": f"{url}/"}


def create_token(http: httpx.Client, url: str) -> str:
    """A personal access token for the session's user; falls back to a legacy token.

    Label Studio keeps one personal access token per user and shows it only once: when one
    exists already (its file was lost), legacy tokens are enabled through the API and the
    user's legacy token is used instead.
    """
    resp = http.post("/api/token/", headers=_csrf_headers(http, url))
    if resp.status_code == 201:
        return str(resp.json()["token"])
    resp = http.post(
        "/api/jwt/settings",
        json={"api_tokens_enabled": True, "legacy_api_tokens_enabled": True},
        headers=_csrf_headers(http, url),
    )
    if resp.status_code not in (200, 201):
        raise StudioError(
            f"Label Studio at {url} gave no API token (HTTP {resp.status_code}): {resp.text[:200]}"
        )
    resp = http.get("/api/current-user/token")
    if resp.status_code != 200:
        raise StudioError(f"Label Studio at {url} gave no legacy token (HTTP {resp.status_code})")
    return str(resp.json()["token"])


def _token_works(url: str, token: str, config: StudioConfig) -> bool:
    client = StudioClient(Connection(url, token, "token file"), config.client)
    try:
        client.whoami()
    except StudioError:
        return False
    finally:
        client.close()
    return True


def ensure_token(paths: Paths, url: str, config: StudioConfig, say: Say = _quiet) -> None:
    """Make sure ``paths.token`` holds a token the server accepts (mode 0600)."""
    token = read_secret(paths.token)
    if token and _token_works(url, token, config):
        return
    http = session(url, config.server.admin_email, admin_password(paths))
    try:
        write_secret(paths.token, create_token(http, url))
    finally:
        http.close()
    say(f"API token stored in {paths.token} (mode 0600)")


def ensure_annotator(
    workspace: str | Path, config: StudioConfig, admin: StudioClient
) -> Connection:
    """A second account (the simulated annotator) with its own token, created on first use."""
    paths = Paths.of(workspace)
    token_path = paths.secrets / "annotator_token"
    token = read_secret(token_path)
    if token and _token_works(admin.url, token, config):
        return Connection(admin.url, token, str(token_path))
    email, password = config.server.annotator_email, annotator_password(paths)
    try:
        http = session(admin.url, email, password)
    except StudioError:
        invite = admin.get("/api/invite", what="reading the invite link")
        try:
            http = session(admin.url, email, password, signup_token=invite["token"])
        except StudioError:
            raise StudioError(
                f"the annotator account {email} cannot log in to {admin.url} and cannot be "
                f"created (it exists, with a password not in {paths.secrets}): set "
                "server.annotator_email to a new address (--set server.annotator_email=...)"
            ) from None
    try:
        token = create_token(http, admin.url)
    finally:
        http.close()
    write_secret(token_path, token)
    return Connection(admin.url, token, str(token_path))


# -- status ------------------------------------------------------------------------------------
def status(workspace: str | Path, config: StudioConfig) -> dict[str, Any]:
    """Where the server runs and, when reachable, the workspace's projects (all of the server's
    when it has recorded none) with their open task counts."""
    paths = Paths.of(workspace)
    info = read_info(paths)
    out: dict[str, Any] = {
        "workspace": str(Path(workspace)),
        "url": info.url if info else os.environ.get("EARMARK_LS_URL"),
        "pid": info.pid if info and _alive(info.pid) else None,
        "data_dir": info.data_dir if info else None,
        "running": False,
        "projects": [],
    }
    if not out["url"]:
        return out
    out["running"] = healthy(out["url"])
    if not out["running"]:
        return out
    from labelling.state import State

    # the workspace's own projects when it has recorded any: a shared server holds others'
    ours = {int(ref["id"]) for ref in State.of(workspace).projects().values()}
    with StudioClient(resolve_connection(workspace, out["url"]), config.client) as client:
        for proj in client.paginate("/api/projects/", what="listing projects", key="results"):
            if ours and int(proj["id"]) not in ours:
                continue
            total = int(proj.get("task_number") or 0)
            done = int(proj.get("finished_task_number") or 0)
            out["projects"].append(
                {"id": proj["id"], "title": proj["title"], "tasks": total, "open": total - done}
            )
    return out
