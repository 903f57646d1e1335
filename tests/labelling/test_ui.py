"""Headless Chromium opens a pushed task in the labelling UI: player, pre-filled transcript, flags.

Uses Debian's ``chromium`` driven by Playwright (pip ``playwright``; its own browser download is
not used). The session cookie comes from logging in like a browser would.
"""

from __future__ import annotations

import shutil

import pytest

from labelling.accounts import admin_password, session
from labelling.configs import schema_from_manifests
from labelling.projects import setup_projects
from labelling.push import push
from labelling.settings import Paths
from labelling.state import State

pytestmark = [pytest.mark.labelstudio, pytest.mark.shared, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_labelling_ui_shows_player_transcript_and_flags(studio, corpus_factory, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    corpus = corpus_factory(2)
    with studio.client() as client:
        setup_projects(
            client, studio.workspace, schema_from_manifests([corpus.answers]), studio.config
        )
        push(
            client,
            studio.workspace,
            corpus.selection,
            corpus.pool,
            studio.config,
            asr_predictions=corpus.asr,
        )
    state = State.of(studio.workspace)
    pid = state.projects()["transcription"]["id"]
    row = next(r for r in state.pushed_rows() if r["utterance_id"] == "u000")
    hyp = next(line for line in corpus.asr.read_text().splitlines() if '"u000"' in line)
    import json

    transcript = json.loads(hyp)["text"]

    http = session(
        studio.url, studio.config.server.admin_email, admin_password(Paths.of(studio.workspace))
    )
    cookies = [
        {"name": name, "value": http.cookies[name], "url": studio.url}
        for name in ("sessionid", "csrftoken")
    ]
    http.close()
    shot = tmp_path / "task.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            ctx.add_cookies(cookies)
            page = ctx.new_page()
            page.goto(
                f"{studio.url}/projects/{pid}/data?task={row['task_id']}",
                wait_until="domcontentloaded",
            )
            page.get_by_text(transcript, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("Not speech").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)  # let the waveform draw before the picture
            page.screenshot(path=str(shot), full_page=True)
            assert page.locator("audio").count() >= 1  # the audio player
            assert page.get_by_text(
                transcript, exact=True
            ).first.is_visible()  # pre-filled transcript
            for flag in (
                "Distressing content",
                "Contains private information",
                "Unintelligible",
                "Not speech",
            ):
                assert page.get_by_text(flag).first.is_visible(), flag
            assert page.get_by_text("Model unsure").first.is_visible()  # uncertain word regions
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
