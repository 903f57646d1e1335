"""Accounts on the server and their API tokens, with the workspace's secrets behind them.

Secrets (admin and annotator passwords, Django's secret key) are generated once and kept in
0600 files in ``<workspace>/studio/secrets``; they reach Label Studio through its environment
or a login form, never a command line or a log. The API token is a personal access token
(the SDK exchanges it for short-lived access tokens), or a legacy token when Label Studio
will not show the personal one again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import httpx

from earmark.core.errors import StudioError
from earmark.core.say import Say, quiet
from labelling.client import Connection, StudioClient, read_secret, write_secret
from labelling.settings import Paths, StudioConfig


# -- secrets -----------------------------------------------------------------------------------
def _secret(paths: Paths, name: str, make: Callable[[], str]) -> str:
    """The secret file ``name``'s value, made (by ``make``) and stored 0600 on first use."""
    path = paths.secrets / name
    value = read_secret(path)
    if not value:
        value = make()
        write_secret(path, value)
    return value


def admin_password(paths: Paths) -> str:
    """The admin account's password (random, made on first use)."""
    return _secret(paths, "admin_password", lambda: secrets.token_urlsafe(18))


def _suffix(number: int) -> str:
    """Secret-file suffix of simulated annotator ``number`` (1: none, as before there were more)."""
    return "" if number == 1 else f"_{number}"


def annotator_password(paths: Paths, number: int = 1) -> str:
    """Simulated annotator ``number``'s password (random, made on first use)."""
    return _secret(paths, f"annotator_password{_suffix(number)}", lambda: secrets.token_urlsafe(18))


def annotator_email(config: StudioConfig, number: int = 1) -> str:
    """Simulated annotator ``number``'s account: ``server.annotator_email``, then
    ``annotator+2@...``, ``annotator+3@...`` (plus-addressing of the same mailbox)."""
    if number == 1:
        return config.server.annotator_email
    local, _, domain = config.server.annotator_email.partition("@")
    return f"{local}+{number}@{domain}"


def django_secret_key(paths: Paths) -> str:
    """The server's Django ``SECRET_KEY`` (random, made on first use)."""
    return _secret(paths, "django_secret_key", lambda: secrets.token_urlsafe(50))


# -- logging in --------------------------------------------------------------------------------
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


# -- tokens ------------------------------------------------------------------------------------
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


def token_works(url: str, token: str, config: StudioConfig) -> bool:
    """Whether the server at ``url`` accepts ``token`` (False on any ``StudioError``)."""
    client = StudioClient(Connection(url, token, "token file"), config.client)
    try:
        client.whoami()
    except StudioError:
        return False
    finally:
        client.close()
    return True


def ensure_token(paths: Paths, url: str, config: StudioConfig, say: Say = quiet) -> None:
    """Make sure ``paths.token`` holds a token the server accepts (mode 0600)."""
    token = read_secret(paths.token)
    if token and token_works(url, token, config):
        return
    http = session(url, config.server.admin_email, admin_password(paths))
    try:
        write_secret(paths.token, create_token(http, url))
    finally:
        http.close()
    say(f"API token stored in {paths.token} (mode 0600)")


# -- the simulated annotator -------------------------------------------------------------------
def ensure_annotator(
    workspace: str | Path, config: StudioConfig, admin: StudioClient, number: int = 1
) -> Connection:
    """Simulated annotator ``number``'s account (not the admin) with its own token, created on
    first use.

    It signs up through the organisation's invite link (read with the admin's token) when it
    cannot log in; raises ``StudioError`` when the account exists with another password.
    """
    paths = Paths.of(workspace)
    token_path = paths.secrets / f"annotator_token{_suffix(number)}"
    token = read_secret(token_path)
    if token and token_works(admin.url, token, config):
        return Connection(admin.url, token, str(token_path))
    http = _annotator_session(paths, config, admin, number)
    try:
        token = create_token(http, admin.url)
    finally:
        http.close()
    write_secret(token_path, token)
    return Connection(admin.url, token, str(token_path))


def _annotator_session(
    paths: Paths, config: StudioConfig, admin: StudioClient, number: int
) -> httpx.Client:
    """Log in as the annotator, signing up through the invite link when that fails."""
    email, password = annotator_email(config, number), annotator_password(paths, number)
    try:
        return session(admin.url, email, password)
    except StudioError:
        invite = admin.get("/api/invite", what="reading the invite link")
        try:
            return session(admin.url, email, password, signup_token=invite["token"])
        except StudioError:
            raise StudioError(
                f"the annotator account {email} cannot log in to {admin.url} and cannot be "
                f"created (it exists, with a password not in {paths.secrets}): set "
                "server.annotator_email to a new address (--set server.annotator_email=...)"
            ) from None
