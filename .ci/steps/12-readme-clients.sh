#!/usr/bin/env bash
# README.md's client snippets run against the jwtd binary (.ci/tests/readme_clients.py): Python
# `requests` and `fetch` under Node, each through sign-in, an expired access token, one refresh
# and the retried call. Installs Debian's nodejs if there is no node.
# Environment from .ci/run: PYENV, JWTD_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PYENV:?}" "${JWTD_BIN:?}"
if ! command -v node >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
fi
"$PYENV/bin/python" .ci/tests/readme_clients.py "$JWTD_BIN"
