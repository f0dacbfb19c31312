#!/usr/bin/env bash
# PostgreSQL, the second storage backend: starts a throwaway server (initdb + pg_ctl in a temporary
# folder, on a free loopback port, trust authentication), then runs on it
#   1. the store contract suite (the same tests the SQLite backend passes), and the reader of
#      `jwtd import-django --from postgres://…`,
#   2. the shared conformance suite against the release binary,
#   3. the two-instance rotation race, 10 runs with the grace period off and 10 with it on, and a
#      session revoked on one instance refused by the other within a second,
#   4. the revocation feed: a jwtd-verify service refusing, within 2 s, a logout-all made on the
#      other of two instances,
#   5. the outage test (PostgreSQL stopped under load, then started again),
# and stops the server on exit, whatever happened.
# Environment from .ci/run: SHARED, PYENV, JWTD_BIN, CONFORMANCE_FILTER.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SHARED:?}" "${PYENV:?}" "${JWTD_BIN:?}"
CONFORMANCE_FILTER=${CONFORMANCE_FILTER-}
STARTED=$SECONDS
step() { printf -- '--- postgres: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }

# shellcheck source=.ci/lib/postgres.sh
source .ci/lib/postgres.sh
pg_setup jwtd-ci-pg psql
PG_OPTS="-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off"
pg_start() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -o "$PG_OPTS" -w -t 60 start >/dev/null; }
trap 'pg_cleanup $?' EXIT

step "starting a throwaway server on 127.0.0.1:$PGPORT"
pg_initdb
pg_start
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
psql "$URL" -XAtqc 'SELECT version()'

step "store contract suite on PostgreSQL (and SQLite)"
JWTD_TEST_DATABASE_URL=$URL cargo test -q -p jwtd --locked --lib store::contract

step "issuance and revocation races on PostgreSQL: two instances on one database, FakeClock"
JWTD_TEST_DATABASE_URL=$URL cargo test -q -p jwtd --locked --lib service::races

step "import-django's reader on a Django-shaped PostgreSQL database"
JWTD_TEST_DATABASE_URL=$URL cargo test -q -p jwtd --locked --lib store::django

step "shared conformance suite against jwtd on PostgreSQL"
# Same selection as the SQLite run in .ci/run.
# shellcheck source=.ci/lib/conformance.sh
source .ci/lib/conformance.sh
JWTD_TEST_POSTGRES=$URL TARGET=jwtd conformance -m "$CONFORMANCE_FILTER"

step "two-instance rotation race, 10 runs in a row"
JWTD_TEST_POSTGRES=$URL "$PYENV/bin/python" .ci/postgres_checks.py race --runs 10

step "two instances: a session revoked on one is refused by the other within a second"
JWTD_TEST_POSTGRES=$URL "$PYENV/bin/python" .ci/postgres_checks.py session

step "revocation feed: a jwtd-verify service and two instances, logout-all refused within 2 s"
cargo build -q --release --locked -p jwtd-verify --example service
JWTD_VERIFY_SERVICE_BIN=$PWD/target/release/examples/service JWTD_TEST_POSTGRES=$URL \
  "$PYENV/bin/python" .ci/postgres_checks.py feed

step "outage: PostgreSQL stopped under load, then started again"
printf -v STOP_CMD '%q ' "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop
printf -v START_CMD '%q ' "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -o "$PG_OPTS" -w -t 60 start
JWTD_TEST_POSTGRES=$URL "$PYENV/bin/python" .ci/postgres_checks.py outage --stop-cmd "$STOP_CMD" --start-cmd "$START_CMD"

step "done"
