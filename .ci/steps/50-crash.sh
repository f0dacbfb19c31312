#!/usr/bin/env bash
# Crash consistency on SQLite: 20 SIGKILLs under a rotate/logout load (issue: reliability).
set -euo pipefail
cd "$(dirname "$0")/../.."
"$PYENV/bin/python" .ci/tests/crash.py
