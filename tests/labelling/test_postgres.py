"""A team's Label Studio on PostgreSQL: a real PostgreSQL server of the test's own (Debian's
``postgresql`` package, its own data folder, loopback only, a password of its own) under a
real Label Studio: the 20-task round trip, the privacy check and a pull killed at its writes
and resumed, with the rows checked in PostgreSQL itself."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from studio_checks import no_identity, push_corpus, round_trip, setup
from studio_fixtures import Studio, _free_port, workspace_on

from earmark.core.manifest import read_manifest
from labelling.accounts import ensure_annotator
from labelling.client import connect
from labelling.process import start, stop
from labelling.settings import Paths, load_studio_config
from labelling.simulate import simulate
from labelling.state import State

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
EARMARK = str(Path(sys.executable).with_name("earmark"))


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the package's user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A PostgreSQL server on 127.0.0.1 with a ``labelstudio`` database; yields Label Studio's
    settings for it (``DJANGO_DB`` and ``POSTGRE_*``, the password among them)."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="earmark-pg-"))  # 0700; the server's user owns it
    password = secrets.token_urlsafe(16)
    (root / "pw").write_text(password)
    (root / "sock").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for p in root.iterdir():
            shutil.chown(p, "postgres")
    pg, port = _as_postgres(), _free_port()
    subprocess.run([*pg, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "earmark",
                    "--auth=scram-sha-256", f"--pwfile={root / 'pw'}", "-E", "UTF8"],
                   check=True, capture_output=True)  # fmt: skip
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root / 'sock'}"
    )
    subprocess.run([*pg, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-l",
                    str(root / "log"), "-w", "-o", opts, "start"], check=True, capture_output=True)  # fmt: skip
    env = {"DJANGO_DB": "default", "POSTGRE_NAME": "labelstudio", "POSTGRE_USER": "earmark",
           "POSTGRE_PASSWORD": password, "POSTGRE_HOST": "127.0.0.1", "POSTGRE_PORT": str(port)}  # fmt: skip
    try:
        _sql(env, "CREATE DATABASE labelstudio", db="postgres")
        yield env
    finally:
        subprocess.run([*pg, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast",
                        "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _sql(env: dict[str, str], query: str, db: str = "labelstudio") -> str:
    """``query``'s result from PostgreSQL itself (psql over TCP with the password)."""
    assert PG_BIN is not None
    out = subprocess.run(
        [str(PG_BIN / "psql"), "-h", env["POSTGRE_HOST"], "-p", env["POSTGRE_PORT"], "-U",
         env["POSTGRE_USER"], "-d", db, "-tAc", query],
        env={**os.environ, "PGPASSWORD": env["POSTGRE_PASSWORD"]},
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture(scope="module")
def pg_server(postgres, tmp_path_factory) -> Iterator[Studio]:
    """A Label Studio on that PostgreSQL (its settings in the server's environment only)."""
    workspace = tmp_path_factory.mktemp("ls-pg")
    config = load_studio_config(overrides=[f"server.port={_free_port()}"])
    with pytest.MonkeyPatch.context() as mp:
        for key, value in postgres.items():
            mp.setenv(key, value)
        info = start(workspace, config)
    try:
        with connect(workspace, config.client) as admin:
            ensure_annotator(workspace, config, admin)
        yield Studio(workspace, config, info.url)
    finally:
        stop(workspace)


def _project_tasks(postgres, studio: Studio) -> dict[str, int]:
    """Task rows per project kind, counted in PostgreSQL."""
    projects = State.of(studio.workspace).projects()
    return {
        kind: int(_sql(postgres, f"SELECT count(*) FROM task WHERE project_id = {ref['id']}"))
        for kind, ref in projects.items()
    }


def test_the_server_keeps_its_data_in_postgresql(postgres, pg_server) -> None:
    assert not list(Paths.of(pg_server.workspace).data_dir.rglob("*.sqlite3"))
    assert int(_sql(postgres, "SELECT count(*) FROM htx_user")) == 2  # the admin, the annotator


def test_round_trip_on_postgresql(postgres, pg_server, corpus_factory, tmp_path) -> None:
    studio = workspace_on(pg_server, tmp_path)
    round_trip(studio, corpus_factory(20), tmp_path)
    assert _project_tasks(postgres, studio) == {"transcription": 20, "understanding": 20}


def test_tasks_on_postgresql_reveal_no_identity(postgres, pg_server, corpus_factory, tmp_path):
    studio = workspace_on(pg_server, tmp_path)
    corpus = corpus_factory(8)
    no_identity(studio, corpus)
    dumped = _sql(postgres, "SELECT data::text FROM task")  # the database itself
    for row in read_manifest(corpus.pool):
        assert row.utterance.speaker not in dumped and f'"{row.id}"' not in dumped
        assert os.path.basename(row.utterance.audio or "") not in dumped


def test_a_pull_killed_at_each_write_resumes_without_loss_or_repeat(
    postgres, pg_server, corpus_factory, tmp_path
) -> None:
    studio = workspace_on(pg_server, tmp_path)
    corpus = corpus_factory(6)
    setup(studio, corpus)
    with studio.client() as client:
        push_corpus(client, studio, corpus)
        simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
    overrides = [a for o in (f"server.port={studio.config.server.port}",
                             f"projects.transcription_title={studio.config.projects.transcription_title}",
                             f"projects.understanding_title={studio.config.projects.understanding_title}")
                 for a in ("--set", o)]  # fmt: skip
    cmd = [EARMARK, "pull", "-w", str(studio.workspace), *overrides]
    kills = 0
    for _ in range(60):  # each try dies at the next write no try reached before
        trace = tmp_path / "trace.txt"
        env = {**os.environ, "EARMARK_WRITE_TRACE": str(trace), "EARMARK_KILL_AT_NEW_WRITE": "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            break
        assert done.returncode == 86, done.stderr  # faults.KILLED_EXIT: killed, not failed
        kills += 1
    assert kills >= 3  # the pull really was cut at several of its writes
    with studio.client() as client:  # the understanding tasks the pull created, answered
        simulate(client, studio.workspace, studio.config, corpus.answers, seed=1)
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300).returncode == 0
    labels = {r.id: r.label for r in read_manifest(State.of(studio.workspace).labels)}
    answers = {r.id: r.label for r in read_manifest(corpus.answers)}
    assert set(labels) == set(answers)
    for uid, want in answers.items():
        got = labels[uid]
        assert (got.text, got.intent, got.entities) == (want.text, want.intent, want.entities)
    # each follow-up task created once, whatever write the kills fell on
    assert _project_tasks(postgres, studio) == {"transcription": 6, "understanding": 6}
    imported = [
        json.loads(line) for line in State.of(studio.workspace).labels.read_text().splitlines()
    ]
    assert len(imported) == len({(r["id"], r.get("intent")) for r in imported})
