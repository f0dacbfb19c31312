#!/usr/bin/env bash
# Storage faults on SQLite: the disk under the database fills up while serving.
set -euo pipefail
cd "$(dirname "$0")/../.."
"$PYENV/bin/python" .ci/tests/storage_faults.py
