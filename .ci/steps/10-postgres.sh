#!/usr/bin/env bash
# PostgreSQL, the second storage backend: starts a throwaway server (initdb + pg_ctl in a temporary
# folder, on a free loopback port, trust authentication), then runs on it
#   1. the store contract suite (the same tests the SQLite backend passes), and the reader of
#      `jwtd import-django --from postgres://…`,
#   2. the shared conformance suite against the release binary,
#   3. the two-instance rotation race, 10 runs with the grace period off and 10 with it on,
#   4. the outage test (PostgreSQL stopped under load, then started again),
# and stops the server on exit, whatever happened.
# Environment from .ci/run: SHARED, PYENV, JWTD_BIN, CONFORMANCE_FILTER.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SHARED:?}" "${PYENV:?}" "${JWTD_BIN:?}"
CONFORMANCE_FILTER=${CONFORMANCE_FILTER-}
STARTED=$SECONDS
step() { printf -- '--- postgres: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }

# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/VERSION/bin.
pg_bin_dir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
PGBIN=$(pg_bin_dir || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || ! command -v psql >/dev/null; then
  step "installing Debian's postgresql package"
  # Keep the package from starting a server of its own: this script starts the one it uses.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  PGBIN=$(pg_bin_dir)
fi
echo "PostgreSQL binaries: $PGBIN ($("$PGBIN/postgres" --version))"

# initdb refuses to run as root: run the server as the postgres user then.
AS=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  AS=(runuser -u postgres --)
fi

PGTMP=$(mktemp -d /tmp/jwtd-ci-pg.XXXXXX)
chmod 755 "$PGTMP"
[ ${#AS[@]} -gt 0 ] && chown postgres "$PGTMP"
PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PGDATA="$PGTMP/data"
PG_OPTS="-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
pg_start() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -o "$PG_OPTS" -w -t 60 start >/dev/null; }
cleanup() {
  local rc=$?
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ "$rc" != 0 ] && [ -f "$PGTMP/server.log" ]; then
    echo "--- last lines of the PostgreSQL log"
    tail -n 30 "$PGTMP/server.log"
  fi
  rm -rf "$PGTMP"
  exit "$rc"
}
trap cleanup EXIT

step "starting a throwaway server on 127.0.0.1:$PGPORT"
"${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
pg_start
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
psql "$URL" -XAtqc 'SELECT version()'

step "store contract suite on PostgreSQL (and SQLite)"
JWTD_TEST_DATABASE_URL=$URL cargo test -q -p jwtd --locked --lib store::contract

step "import-django's reader on a Django-shaped PostgreSQL database"
JWTD_TEST_DATABASE_URL=$URL cargo test -q -p jwtd --locked --lib store::django

step "shared conformance suite against jwtd on PostgreSQL"
# Same selection as the SQLite run in .ci/run.
# shellcheck source=.ci/lib/conformance.sh
source .ci/lib/conformance.sh
JWTD_TEST_POSTGRES=$URL TARGET=jwtd conformance -m "$CONFORMANCE_FILTER"

step "two-instance rotation race, 10 runs in a row"
JWTD_TEST_POSTGRES=$URL "$PYENV/bin/python" .ci/postgres_checks.py race --runs 10

step "outage: PostgreSQL stopped under load, then started again"
printf -v STOP_CMD '%q ' "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop
printf -v START_CMD '%q ' "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -o "$PG_OPTS" -w -t 60 start
JWTD_TEST_POSTGRES=$URL "$PYENV/bin/python" .ci/postgres_checks.py outage --stop-cmd "$STOP_CMD" --start-cmd "$START_CMD"

step "done"
