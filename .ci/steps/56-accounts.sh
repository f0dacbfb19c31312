#!/usr/bin/env bash
# Accounts a person can recover, black-box against the release binary: password reset and
# activation through a real SMTP server (aiosmtpd) and a real webhook receiver checking every
# Standard Webhooks signature (the standardwebhooks package); see .ci/tests/accounts.py.
# Environment from .ci/run: SHARED, PYENV, JWTD_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SHARED:?}" "${PYENV:?}" "${JWTD_BIN:?}"
"$PYENV/bin/pip" install -q aiosmtpd standardwebhooks
"$PYENV/bin/python" .ci/tests/accounts.py
