#!/usr/bin/env bash
# Browser test: Debian's headless Chromium loads a page from a second loopback origin that
# signs in, calls /api/me/ with fetch(), waits past a 2-second access lifetime, refreshes and calls
# again, in JSON mode and in cookie mode; the same page from an origin not in CORS_ALLOWED_ORIGINS
# must fail. Needs SHARED, JWTD_BIN (release binary) and PYENV (set by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
chromium --version

PYTHON="${PYENV:-/tmp/simplejwt-venv}/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
: "${JWTD_BIN:?JWTD_BIN must name the release binary}"
: "${SHARED:?SHARED must name the shared folder}"
export JWTD_BIN SHARED
timeout 300 "$PYTHON" .ci/browser/browser_test.py
