#!/usr/bin/env bash
# TLS to PostgreSQL (DATABASE_TLS, DATABASE_CA_CERT, the URL's sslmode): starts a throwaway server
# with ssl=on whose pg_hba.conf admits TLS connections only (hostssl), with a certificate for
# "localhost" signed by a CA made here (openssl), and checks against the jwtd binary that
#   1. verify-full with the right CA connects (the store migrates, `serve` answers /readyz),
#   2. a wrong CA, and a host name the certificate does not name, are refused with a message
#      naming the TLS settings, and never retried for the start-up wait,
#   3. sslmode=require (encrypted, unverified) connects, and a plain connection is refused by the server,
#   4. import-django's --from honours sslmode, sslrootcert and DATABASE_CA_CERT the same way,
#   5. a missing CA file, and a TLS setting with an SQLite DATABASE_URL, stop jwtd at start
#      with exit code 2 and the setting's name.
# Environment from .ci/run: JWTD_BIN (defaults to the debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
JWTD_BIN=${JWTD_BIN:-$PWD/target/debug/jwtd}
STARTED=$SECONDS
step() { printf -- '--- postgres-tls: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }
fail() { echo "FAILED: $*"; exit 1; }

# shellcheck source=.ci/lib/postgres.sh
source .ci/lib/postgres.sh
pg_setup jwtd-ci-pgtls openssl curl
SERVE_PID=
cleanup() {
  local rc=$?
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  pg_cleanup "$rc"
}
trap cleanup EXIT

step "a CA, a server certificate for localhost, and a second (wrong) CA"
C=$PGTMP/certs
mkdir -p "$C"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
  -keyout "$C/$1.key" -out "$C/$1.pem" 2>/dev/null; }
ca jwtd-ci-ca
ca jwtd-ci-wrong-ca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$C/server.key" -out "$C/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$C/ext.cnf"
openssl x509 -req -in "$C/server.csr" -CA "$C/jwtd-ci-ca.pem" -CAkey "$C/jwtd-ci-ca.key" -CAcreateserial \
  -days 2 -extfile "$C/ext.cnf" -out "$C/server.pem" 2>/dev/null
CA=$C/jwtd-ci-ca.pem
WRONG_CA=$C/jwtd-ci-wrong-ca.pem

step "a throwaway server on 127.0.0.1:$PGPORT, ssl=on, hostssl only"
[ ${#AS[@]} -gt 0 ] && chown -R postgres "$PGTMP"
pg_initdb
cp "$C/server.pem" "$C/server.key" "$PGDATA/"
chmod 600 "$PGDATA/server.key"
[ ${#AS[@]} -gt 0 ] && chown postgres "$PGDATA/server.pem" "$PGDATA/server.key"
cat >"$PGDATA/pg_hba.conf" <<HBA
local     all all              trust
hostssl   all all 127.0.0.1/32 trust
hostnossl all all 0.0.0.0/0    reject
HBA
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -w -t 60 \
  -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key -c fsync=off" \
  start >/dev/null

BASE="postgres://postgres@localhost:$PGPORT/postgres"
IP_BASE="postgres://postgres@127.0.0.1:$PGPORT/postgres"
# Runs jwtd with only the given JWTD_* settings; its exit code in $RC, its stderr in $ERR.
run() {
  set +e
  ERR=$(env -i PATH="$PATH" HOME="$PGTMP" "$@" 2>&1 >/dev/null)
  RC=$?
  set -e
}
expect_ok() { [ "$RC" = 0 ] || fail "$1: exit $RC: $ERR"; echo "ok: $1"; }
expect_refused() { # name, exit code, text the message must hold
  [ "$RC" = "$2" ] || fail "$1: exit $RC, expected $2: $ERR"
  grep -qF -- "$3" <<<"$ERR" || fail "$1: message lacks \"$3\": $ERR"
  echo "ok: $1 -> $(tail -n 1 <<<"$ERR")"
}

step "verify-full with the right CA"
run JWTD_DATABASE_URL="$BASE?sslmode=verify-full" JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" token flush-expired
expect_ok "sslmode=verify-full + DATABASE_CA_CERT"
run JWTD_DATABASE_URL="$BASE" JWTD_DATABASE_TLS=verify-full JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" token flush-expired
expect_ok "DATABASE_TLS=verify-full + DATABASE_CA_CERT"
run JWTD_DATABASE_URL="$BASE" JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" token flush-expired
expect_ok "DATABASE_CA_CERT alone means verify-full"

step "serve over verify-full: /readyz"
PORT=$(free_port)
env -i PATH="$PATH" HOME="$PGTMP" JWTD_ADDR="127.0.0.1:$PORT" JWTD_DATABASE_URL="$BASE?sslmode=verify-full" \
  JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" serve >"$PGTMP/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$PGTMP/serve.log"; fail "serve: /readyz"; }
echo "ok: serve answers /readyz over a verify-full connection"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=

step "refusals"
T0=$SECONDS
run JWTD_DATABASE_URL="$BASE?sslmode=verify-full" JWTD_DATABASE_CA_CERT="$WRONG_CA" "$JWTD_BIN" token flush-expired
expect_refused "wrong CA" 1 "TLS to PostgreSQL failed (verify-full, DATABASE_CA_CERT $WRONG_CA)"
grep -qi "UnknownIssuer" <<<"$ERR" || fail "wrong CA: rustls's reason missing: $ERR"
run JWTD_DATABASE_URL="$IP_BASE?sslmode=verify-full" JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" token flush-expired
expect_refused "host name not in the certificate (127.0.0.1)" 1 "TLS to PostgreSQL failed (verify-full"
grep -q "certificate not valid for name" <<<"$ERR" || fail "wrong host: rustls's reason missing: $ERR"
run JWTD_DATABASE_URL="$BASE?sslmode=verify-full" "$JWTD_BIN" token flush-expired
expect_refused "verify-full against the public roots" 1 "TLS to PostgreSQL failed (verify-full, public roots)"
[ $((SECONDS - T0)) -lt 20 ] || fail "refusals were retried ($((SECONDS - T0))s)"
run JWTD_DATABASE_URL="$BASE?sslmode=disable" "$JWTD_BIN" token flush-expired
expect_refused "plain TCP, refused by pg_hba.conf's hostnossl reject" 1 "no encryption"

step "require: encrypted, unverified"
run JWTD_DATABASE_URL="$BASE?sslmode=require" "$JWTD_BIN" token flush-expired
expect_ok "sslmode=require"
run JWTD_DATABASE_URL="$IP_BASE" JWTD_DATABASE_TLS=require "$JWTD_BIN" token flush-expired
expect_ok "DATABASE_TLS=require"

step "import-django --from over TLS"
SQLITE="sqlite://$PGTMP/jwtd.db"
run JWTD_DATABASE_URL="$SQLITE" "$JWTD_BIN" import-django --from "$BASE?sslmode=verify-full&sslrootcert=$WRONG_CA"
expect_refused "import-django --from …&sslrootcert=WRONG_CA into SQLite" 1 "TLS to PostgreSQL failed (verify-full, DATABASE_CA_CERT $WRONG_CA)"
run JWTD_DATABASE_URL="$SQLITE" "$JWTD_BIN" import-django --from "$BASE?sslrootcert=$CA" --users-only
grep -q "auth_user" <<<"$ERR" || fail "import-django --from …?sslrootcert=CA: expected the missing auth_user table: $ERR"
echo "ok: import-django --from …?sslrootcert=CA connects (verify-full), then finds no auth_user table"
run JWTD_DATABASE_URL="$BASE?sslmode=verify-full" JWTD_DATABASE_CA_CERT="$WRONG_CA" "$JWTD_BIN" import-django \
  --from "$BASE?sslmode=verify-full" --users-only
expect_refused "import-django --from, wrong CA" 1 "TLS to PostgreSQL failed (verify-full, DATABASE_CA_CERT $WRONG_CA)"
run JWTD_DATABASE_URL="$BASE?sslmode=verify-full" JWTD_DATABASE_CA_CERT="$CA" "$JWTD_BIN" import-django \
  --from "$BASE?sslmode=verify-full" --users-only
# Connected: what stops it now is that this database has no Django tables.
grep -q "TLS to PostgreSQL failed" <<<"$ERR" && fail "import-django --from, right CA: $ERR"
grep -q "auth_user" <<<"$ERR" || fail "import-django --from, right CA: expected the missing auth_user table: $ERR"
echo "ok: import-django --from connects with verify-full (then finds no auth_user table, as expected)"

step "bad settings stop jwtd at start, exit 2"
run JWTD_DATABASE_URL="$BASE" JWTD_DATABASE_CA_CERT="$PGTMP/missing.pem" "$JWTD_BIN" token flush-expired
expect_refused "missing CA file" 2 "JWTD_DATABASE_CA_CERT: cannot read $PGTMP/missing.pem"
run JWTD_DATABASE_URL="$SQLITE" JWTD_DATABASE_TLS=verify-full "$JWTD_BIN" token flush-expired
expect_refused "DATABASE_TLS with SQLite" 2 "JWTD_DATABASE_TLS: only for PostgreSQL"
run JWTD_DATABASE_URL="$BASE?sslmode=verify-ca" "$JWTD_BIN" token flush-expired
expect_refused "sslmode=verify-ca" 2 "JWTD_DATABASE_URL: sslmode: verify-ca is not supported"

step "done"
