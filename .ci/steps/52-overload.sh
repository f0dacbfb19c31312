#!/usr/bin/env bash
# Overload: 5,000 keep-alive connections on two cores (issue: reliability). Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
"$PYENV/bin/python" .ci/tests/overload.py
