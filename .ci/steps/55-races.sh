#!/usr/bin/env bash
# Revocation and throttling races against the release binary (issue: security hardening): sign-ins
# racing a password change, same-second logout-all, concurrent wrong passwords.
set -euo pipefail
cd "$(dirname "$0")/../.."
"$PYENV/bin/python" .ci/tests/races.py
