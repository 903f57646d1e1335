#!/usr/bin/env bash
# The test command (README, .ci/run): set-up, lint, format check, type check, then every test
# (unit tests, real training, a real Label Studio server). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
echo "[test] ruff check";   ruff check .
echo "[test] ruff format";  ruff format --check .
echo "[test] mypy";         mypy
echo "[test] import layers"; lint-imports --no-cache
echo "[test] pytest";       pytest "$@"
