#!/usr/bin/env bash
# Migration from Django (issue 10): the reference SimpleJWT server's database imported into jwtd,
# then sign-in, refresh, blacklist and cross-acceptance of tokens checked against both servers.
# Then the drop-in import: the reference's custom user model (UUID keys, e-mail sign-in, staff
# flags, groups) imported with --user-table, its tokens refreshed at jwtd with USER_ID_TYPE=uuid.
# Env from .ci/run: SHARED, PYENV (the reference virtualenv), JWTD_BIN (release jwtd).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Django's argon2 and bcrypt hashers need these; the reference itself does not.
"$PYENV/bin/pip" install -q argon2-cffi bcrypt
"$PYENV/bin/python" .ci/django_migration.py
"$PYENV/bin/python" .ci/django_custom_import.py
