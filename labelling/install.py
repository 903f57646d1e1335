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


def label_studio_bin(config: StudioConfig) -> Path:
    """Where the ``label-studio`` executable of the server's venv is (installed or not)."""
    return venv_dir(config) / "bin" / "label-studio"


def ensure_installed(config: StudioConfig, say: Say = quiet) -> Path:
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
