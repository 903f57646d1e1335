"""Retries that never duplicate: a local HTTP server that commits a request and then fails.

A real Label Studio cannot be made to time out on cue, so these tests run a small server on
127.0.0.1 that speaks the few endpoints involved (task listing, task import, annotations).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from earmark.core.errors import StudioError
from labelling.client import Connection, StudioClient
from labelling.configs import Schema, parse, render
from labelling.settings import ClientConfig
from labelling.simulate import annotate_task
from labelling.state import State
from labelling.tasks import push_understanding

TAGS = parse(render("understanding", Schema(("alarm_set", "play_music"), ("time", "track"))))
PROJECT = 7


@dataclass
class Flaky:
    """A server's memory: the tasks it committed and every request it received."""

    fail_imports: int = 0  # this many imports are committed, then answered with `failure`
    failure: str = "timeout"  # "timeout" (answer after the client gave up) or "500"
    tasks: list[dict[str, Any]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(flaky: Flaky) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up already

        def do_GET(self) -> None:
            url = urlparse(self.path)
            flaky.requests[f"GET {url.path}"] += 1
            if url.path == "/api/tasks/":
                project = int(parse_qs(url.query)["project"][0])
                with flaky.lock:
                    tasks = [t for t in flaky.tasks if t["project"] == project]
                self._send(200, {"tasks": tasks})
            else:
                self._send(503, {"detail": "overloaded"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            flaky.requests[f"POST {url.path}"] += 1
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
            if url.path == f"/api/projects/{PROJECT}/import":
                with flaky.lock:  # commit first...
                    ids = []
                    for task in body:
                        ids.append(len(flaky.tasks) + 1)
                        flaky.tasks.append({"id": ids[-1], "project": PROJECT, **task})
                    fail = flaky.fail_imports > 0
                    flaky.fail_imports -= 1
                if fail and flaky.failure == "timeout":
                    time.sleep(1.5)  # ...then answer after the client's timeout
                elif fail:
                    self._send(500, {"detail": "database is locked"})
                    return
                self._send(201, {"task_count": len(ids), "task_ids": ids})
            else:  # e.g. an annotation: committed, then the answer is lost
                self._send(502, {"detail": "bad gateway"})

    return Handler


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, StudioClient]]:
    memory = Flaky()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(memory))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = StudioClient(
        Connection(url, "legacy-token", "test"),
        ClientConfig(timeout_s=0.5, retries=3, backoff_s=0.01),
    )
    try:
        yield memory, client
    finally:
        client.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("failure", ["timeout", "500"])
def test_an_import_committed_before_a_failure_creates_each_task_once(flaky, tmp_path, failure):
    memory, client = flaky
    memory.fail_imports, memory.failure = 1, failure
    state = State.of(tmp_path)
    items = [("u1", "set an alarm for seven am", None), ("u2", "play track two please", None)]
    made = push_understanding(client, state, PROJECT, TAGS, items)
    refs = Counter(t["data"]["ref"] for t in memory.tasks)
    assert sorted(refs.values()) == [1, 1]  # one task per utterance on the server
    assert memory.requests[f"POST /api/projects/{PROJECT}/import"] == 1  # all were there
    pushed = {r["utterance_id"]: r["task_id"] for r in state.pushed_rows()}
    on_server = {t["data"]["ref"]: t["id"] for t in memory.tasks}
    assert pushed == {uid: on_server[state.opaque_id(uid)] for uid, _, _ in items}
    assert sorted(made) == sorted(on_server.values())


def test_a_partly_committed_import_sends_only_the_missing_tasks(flaky, tmp_path):
    memory, client = flaky
    memory.fail_imports = 1
    state = State.of(tmp_path)
    first = ("u1", "set an alarm for seven am", None)
    memory.tasks.append(  # u1 made it in an earlier, lost attempt
        {"id": 40, "project": PROJECT, "data": {"ref": state.opaque_id("u1"), "text": first[1]}}
    )
    push_understanding(client, state, PROJECT, TAGS, [first, ("u2", "play track two", None)])
    refs = Counter(t["data"]["ref"] for t in memory.tasks)
    assert sorted(refs.values()) == [1, 1]
    assert {r["utterance_id"]: r["task_id"] for r in state.pushed_rows()}["u1"] == 40


def test_a_plain_post_is_not_retried(flaky):
    memory, client = flaky
    with pytest.raises(StudioError) as exc:
        annotate_task(client, 5, [])  # the server may have saved it: a retry could duplicate
    assert memory.requests["POST /api/tasks/5/annotations/"] == 1
    assert "HTTP 502" in str(exc.value) and "not retried" in str(exc.value)


def test_a_get_is_retried(flaky):
    memory, client = flaky
    with pytest.raises(StudioError, match="HTTP 503"):
        client.whoami()
    assert memory.requests["GET /api/current-user/whoami"] == 4  # 1 + client.retries
