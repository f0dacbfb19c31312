#!/usr/bin/env bash
# Forward-auth through a real nginx from Debian: README's auth_request snippet in front of a small
# upstream, against the release binary (.ci/tests/nginx_forward_auth.py). Needs JWTD_BIN and PYENV.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nginx >/dev/null; then
  echo "installing Debian's nginx-light"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
fi
nginx -v

PYTHON="${PYENV:-/tmp/simplejwt-venv}/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
: "${JWTD_BIN:?JWTD_BIN must name the release binary}"
timeout 120 "$PYTHON" .ci/tests/nginx_forward_auth.py
