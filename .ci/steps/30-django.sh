#!/usr/bin/env bash
# Migration from Django (issue 10): the reference SimpleJWT server's database imported into jwtd,
# then sign-in, refresh, blacklist and cross-acceptance of tokens checked against both servers.
# Env from .ci/run: SHARED, PYENV (the reference virtualenv), JWTD_BIN (release jwtd).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Django's argon2 and bcrypt hashers need these; the reference itself does not.
"$PYENV/bin/pip" install -q argon2-cffi bcrypt
"$PYENV/bin/python" .ci/django_migration.py
