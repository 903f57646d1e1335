#!/usr/bin/env bash
# Install Label Studio 1.23.x into its own virtual environment (what `earmark studio start`
# does on first use), plus what the UI test needs: Debian's chromium and pip playwright.
#   scripts/studio_install.sh            # Label Studio only
#   scripts/studio_install.sh --ui-test  # also chromium (apt) and playwright (into the active venv)
set -euo pipefail
VENV="${EARMARK_LS_VENV:-$HOME/.cache/earmark/labelstudio-venv}"
# the same requirements as labelling/install.py (PINS: sentry-sdk 3 breaks label-studio 1.23)
if [ ! -x "$VENV/bin/label-studio" ] || ! "$VENV/bin/pip" show sentry-sdk 2>/dev/null | grep -q '^Version: 2\.'; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "label-studio==1.23.*" "sentry-sdk>=2,<3"
fi
"$VENV/bin/pip" show label-studio | sed -n 2p
if [ "${1:-}" = "--ui-test" ]; then
  command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
  python -m pip install -q playwright
fi
