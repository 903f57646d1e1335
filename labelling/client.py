"""A small Label Studio API client: SDK 2.x authentication, retries with backoff, clear errors.

The SDK (``label_studio_sdk``) handles the token: a personal access token (a JWT refresh
token) is exchanged for short-lived access tokens and refreshed when they expire; a legacy
token is sent as is. Requests go through one ``httpx.Client`` so that every call shares the
same retry policy and the same error messages: a server that is down, a refused token or a
timeout becomes one ``StudioError`` naming the URL and what to do.

Only idempotent calls are retried after they may have reached the server (GET, and PUT,
PATCH, DELETE: every PATCH earmark sends sets absolute values). A POST that times out or gets
a 5xx may have been committed (a task import, an annotation), so it is not repeated blindly:
it raises ``OutcomeUnknown`` and the caller checks the server first (``push`` looks its tasks
up by their ref and imports only the missing ones). A POST is retried only when it provably
never left: the connection could not be made, or the token refresh before it failed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from earmark.core import faults, fileio
from earmark.core.errors import StudioError
from labelling.settings import ENV_TOKEN, ENV_URL, ClientConfig, Paths

RETRY_STATUS = frozenset({429, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# the request never reached the server: safe to send again whatever it does
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class OutcomeUnknown(StudioError):
    """A call that is not idempotent failed after it may have reached the server (timeout,
    dropped connection, 5xx), so it was not retried: it may or may not have been applied."""


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to authenticate (the token is never printed)."""

    url: str
    token: str
    token_source: str

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"Connection(url={self.url!r}, token=<from {self.token_source}>)"


def read_secret(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable only by the user (mode 0600, in a 0700 folder),
    atomically and fsynced: the file is created 0600 (never briefly wider) under a fresh name."""
    fileio.private_dir(path.parent)
    with fileio.atomic_write(path) as f:
        f.write(value)


def resolve_connection(workspace: str | Path, url: str | None = None) -> Connection:
    """The URL and token: ``$EARMARK_LS_URL``/``$EARMARK_LS_TOKEN`` first, then the workspace files."""
    paths = Paths.of(workspace)
    url = url or os.environ.get(ENV_URL)
    if not url and paths.server_json.is_file():
        url = json.loads(paths.server_json.read_text()).get("url")
    if not url:
        raise StudioError(
            f"no Label Studio server known for workspace {paths.root.parent}: run "
            f"`earmark studio start`, or set {ENV_URL} and {ENV_TOKEN} to use an existing server"
        )
    token = os.environ.get(ENV_TOKEN)
    source = ENV_TOKEN
    if not token:
        token = read_secret(paths.token)
        source = str(paths.token)
    if not token:
        raise StudioError(
            f"no API token for Label Studio at {url}: set {ENV_TOKEN} (Account & Settings -> "
            f"Personal Access Token) or run `earmark studio start` to create {paths.token}"
        )
    return Connection(url.rstrip("/"), token, source)


class StudioClient:
    """JSON over HTTP to one Label Studio server, authenticated through the SDK."""

    def __init__(self, connection: Connection, config: ClientConfig | None = None) -> None:
        self.connection = connection
        self.url = connection.url
        self.config = config or ClientConfig()
        self._http = httpx.Client(base_url=self.url, timeout=self.config.timeout_s)
        self._sdk: Any = None

    # -- authentication -------------------------------------------------------------------
    def _auth_header(self) -> str:
        if self._sdk is None:
            from label_studio_sdk.client import LabelStudio

            self._sdk = LabelStudio(
                base_url=self.url, api_key=self.connection.token, httpx_client=self._http
            )
        return self._sdk._client_wrapper.get_headers()["Authorization"]

    def _token_refused(self, status: int, what: str) -> StudioError:
        return StudioError(
            f"Label Studio at {self.url} refused the API token (HTTP {status}) while {what}: "
            f"set {ENV_TOKEN} to a valid access token (Account & Settings) or run "
            f"`earmark studio start` to create one (token read from {self.connection.token_source})"
        )

    def _unreachable(self, exc: Exception, what: str, attempts: int) -> StudioError:
        if isinstance(exc, httpx.TimeoutException):
            return StudioError(
                f"Label Studio at {self.url} did not answer within {self.config.timeout_s:g} s "
                f"while {what} ({attempts} attempts): check it with `earmark studio status`, "
                "then retry"
            )
        reason = type(exc).__name__ if not str(exc) else str(exc)
        return StudioError(
            f"Label Studio is not reachable at {self.url} while {what} ({reason}; "
            f"{attempts} attempts): start it with `earmark studio start`, or point "
            f"{ENV_URL} at a running server"
        )

    # -- requests -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        ok_status: tuple[int, ...] = (),
        idempotent: bool | None = None,
    ) -> Any:
        """One API call with retries on transient failures; returns decoded JSON (or None).

        ``idempotent`` (default: by method, see ``IDEMPOTENT``) says whether the call may be
        repeated after it reached the server; otherwise such a failure raises
        ``OutcomeUnknown`` after one attempt. Raises ``StudioError`` naming the URL for a
        refused token, a server that is down or too slow, and any other error answer (with
        Label Studio's own message).
        """
        from label_studio_sdk.core.api_error import ApiError

        repeatable = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        attempts = max(1, self.config.retries + 1)
        last_exc: Exception | None = None
        if method.upper() != "GET":
            faults.point(f"{method.upper()} {path}")  # a write on the server: a kill point
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:  # nothing of this call has been sent yet: any failure here may be retried
                headers = {"Authorization": self._auth_header()}
            except ApiError as exc:  # raised by the SDK when it refreshes a token
                if exc.status_code in (401, 403):
                    raise self._token_refused(exc.status_code, what) from None
                last_exc = exc
                continue
            except (httpx.TransportError, ValueError) as exc:
                last_exc = exc
                continue
            try:
                resp = self._http.request(
                    method, path, json=json_body, params=params, files=files, headers=headers
                )
            except httpx.TransportError as exc:
                if not repeatable and not isinstance(exc, NOT_SENT):
                    raise self._outcome_unknown(exc, what) from None
                last_exc = exc
                continue
            if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                failed = f"HTTP {resp.status_code}"
                if not repeatable:
                    raise self._outcome_unknown(failed, what)
                last_exc = StudioError(f"Label Studio at {self.url} failed while {what}: {failed}")
                continue
            if resp.status_code in (401, 403) and resp.status_code not in ok_status:
                raise self._token_refused(resp.status_code, what)
            if resp.status_code >= 400 and resp.status_code not in ok_status:
                detail = resp.text[:500]
                raise StudioError(
                    f"Label Studio at {self.url} refused {method} {path} while {what}: "
                    f"HTTP {resp.status_code}: {detail}"
                )
            if not resp.content:
                return None
            try:
                return resp.json()
            except json.JSONDecodeError:
                return resp.text
        if isinstance(last_exc, StudioError):
            raise last_exc
        assert last_exc is not None
        if isinstance(last_exc, ApiError):
            raise StudioError(
                f"Label Studio at {self.url} failed to refresh the access token while {what}: "
                f"HTTP {last_exc.status_code}"
            )
        raise self._unreachable(last_exc, what, attempts) from None

    def _outcome_unknown(self, failure: Exception | str, what: str) -> OutcomeUnknown:
        if isinstance(failure, httpx.TimeoutException):
            failure = f"no answer within {self.config.timeout_s:g} s"
        elif isinstance(failure, Exception):
            failure = str(failure) or type(failure).__name__
        return OutcomeUnknown(
            f"Label Studio at {self.url} failed while {what} ({failure}); not retried, since "
            "the server may have applied it: check it with `earmark studio status`, then run "
            "the command again (what is on the server already is not sent twice)"
        )

    def get(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, what=what, params=params)

    def post(self, path: str, body: Any = None, *, what: str, **kw: Any) -> Any:
        """A POST: not retried once it may have reached the server (see ``request``)."""
        return self.request("POST", path, what=what, json_body=body, **kw)

    def patch(self, path: str, body: Any, *, what: str) -> Any:
        return self.request("PATCH", path, what=what, json_body=body)

    def paginate(
        self, path: str, *, what: str, params: dict[str, Any] | None = None, key: str = "tasks"
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (``page``/``page_size``), whatever the answer's shape."""
        page = 1
        while True:
            query = {**(params or {}), "page": page, "page_size": 100}
            resp = self.request("GET", path, what=what, params=query, ok_status=(404,))
            items: list[Any]
            if isinstance(resp, list):
                items = resp
            elif isinstance(resp, dict):
                items = list(resp.get(key) or resp.get("results") or [])
                if resp.get("detail") and not items:
                    return  # 404 past the last page
            else:
                return
            yield from items
            if len(items) < 100:
                return
            page += 1

    def whoami(self) -> dict[str, Any]:
        """The authenticated user: the cheapest call that proves URL and token both work."""
        return self.get("/api/current-user/whoami", what="checking the API token")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    workspace: str | Path, config: ClientConfig | None = None, url: str | None = None
) -> StudioClient:
    """A client for the workspace's server (or ``$EARMARK_LS_URL``), its token checked."""
    client = StudioClient(resolve_connection(workspace, url), config)
    client.whoami()
    return client
