"""Shared fixtures: the real data beside the clone and small record factories."""

from __future__ import annotations

from pathlib import Path

import pytest

# The session's real Label Studio server (fixtures `studio_server`, `studio`), for every test folder.
pytest_plugins = ["studio_fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real FSDD recordings and SLURP text); skips when absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (CI places ../shared beside the clone)")
    return SHARED_DATA
