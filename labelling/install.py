"""Label Studio's own virtual environment: installed on first use, never into ours.

``label-studio`` (1.23.x) pins its own dependencies, so it lives in a venv of its own
(``settings.venv_dir``: config, ``$EARMARK_LS_VENV``, else ``~/.cache/earmark``), shared by
every workspace and by the tests, so that only the first use pays for the install.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from earmark.core.errors import StudioError
from earmark.core.say import Say, quiet
from labelling.settings import StudioConfig, venv_dir

# What label-studio itself leaves open and breaks it: 1.23 calls sentry_sdk.init with
# send_default_pii, which sentry-sdk 3.0 (2026-12) no longer accepts, and pip picks 3.x for a
# fresh venv ("TypeError: Unknown option 'send_default_pii'" at start).
PINS = ("sentry-sdk>=2,<3",)
STAMP = ".earmark-requirements"  # in the venv: what was installed, so a changed pin repairs it


def label_studio_bin(config: StudioConfig) -> Path:
    """Where the ``label-studio`` executable of the server's venv is (installed or not)."""
    return venv_dir(config) / "bin" / "label-studio"


def ensure_installed(config: StudioConfig, say: Say = quiet) -> Path:
    """Install Label Studio into its own venv unless it is there with today's requirements
    (``requirements``: the version and ``PINS``); returns the executable.

    A fresh install takes about a minute (measured 45 s with a warm pip cache); a venv installed
    with other requirements (an older earmark's, without a pin added since) is brought up to
    them in place. A half-done install (no executable or stamp at the end) is reported, never used.
    """
    exe, venv = label_studio_bin(config), venv_dir(config)
    want = "\n".join(requirements(config))
    if exe.is_file() and _stamp(venv) == want:
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (a demo and a test run, two loops) must not pip into one venv at once:
    # the second waits for the first and then finds Label Studio installed.
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.is_file() and _stamp(venv) == want:
            return exe
        _install(config, venv, say)
        if exe.is_file():
            (venv / STAMP).write_text(want)
    if not exe.is_file():
        raise StudioError(f"installing Label Studio into {venv} left no {exe}")
    return exe


def requirements(config: StudioConfig) -> list[str]:
    """The pip requirements of the server's venv: label-studio at the configured version, and
    ``PINS`` for what it depends on without an upper bound that broke it."""
    return [f"label-studio=={config.server.version}", *PINS]


def _stamp(venv: Path) -> str | None:
    try:
        return (venv / STAMP).read_text()
    except OSError:
        return None


def _install(config: StudioConfig, venv: Path, say: Say) -> None:
    reqs = requirements(config)
    say(f"installing {' '.join(reqs)} into {venv} (first use, ~1 minute)")
    base_python = getattr(sys, "_base_executable", sys.executable)
    pip = str(venv / "bin" / "pip")
    steps = [] if (venv / "bin" / "python").exists() else [[base_python, "-m", "venv", str(venv)]]
    steps += [[pip, "install", "-q", "--upgrade", "pip"], [pip, "install", "-q", *reqs]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise StudioError(f"installing Label Studio into {venv} failed ({cmd[-1]}): {tail}")
