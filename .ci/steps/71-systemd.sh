#!/usr/bin/env bash
# The systemd unit (dist/jwtd.service), checked without booting systemd:
#   1. `systemd-analyze verify` in a throwaway root holding the unit at /etc/systemd/system, the
#      release binary at its ExecStart path /usr/local/bin/jwtd (verify refuses a missing binary)
#      and a copy of the host's own units (the targets the unit is ordered after); any message,
#      warnings about unknown keys included, fails the step;
#   2. `systemd-analyze security --offline`: the sandbox's exposure score must stay under 2.0
#      (0 is fully locked down, 10 unprotected; the unit scores 1.1);
#   3. the system calls jwtd makes while serving sign-up, refresh and /api/me/ as a non-root user,
#      recorded with strace, must all be in the unit's SystemCallFilter (@system-service minus
#      @privileged and @resources); the set of calls seen is printed.
# Environment from .ci/run: JWTD_BIN (release binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${JWTD_BIN:?}"
UNIT=dist/jwtd.service

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v strace >/dev/null || missing+=(strace)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
systemd-analyze --version | head -n 1

TMP=$(mktemp -d /tmp/jwtd-ci-systemd.XXXXXX)
chmod 755 "$TMP"
JWTD_PID=
cleanup() {
  local rc=$?
  if [ -n "$JWTD_PID" ]; then
    pkill -TERM -P "$JWTD_PID" 2>/dev/null || true
    wait "$JWTD_PID" 2>/dev/null || true
    [ "$rc" != 0 ] && tail -n 20 "$TMP/log"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

echo "--- systemd-analyze verify $UNIT"
FAKE=$TMP/root
mkdir -p "$FAKE/usr/local/bin" "$FAKE/etc/systemd/system" "$FAKE/usr/lib/systemd"
cp "$JWTD_BIN" "$FAKE/usr/local/bin/jwtd"
cp "$UNIT" "$FAKE/etc/systemd/system/jwtd.service"
cp -a /usr/lib/systemd/system "$FAKE/usr/lib/systemd/"
out=$(systemd-analyze verify --root="$FAKE" jwtd.service 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "systemd-analyze verify has something to say about $UNIT"; exit 1; }
echo "no errors, no warnings"

echo "--- systemd-analyze security --offline"
systemd-analyze security --offline=yes --root="$FAKE" --threshold=20 jwtd.service | tail -n 1

echo "--- system calls of jwtd serve as a non-root user, against SystemCallFilter"
expand() {
  systemd-analyze syscall-filter "$1" | sed 1d | sed -e 's/#.*//' -e 's/ //g' | grep -v '^$' |
    while read -r name; do case $name in @*) expand "$name" ;; *) echo "$name" ;; esac; done
}
mapfile -t sets < <(sed -n 's/^SystemCallFilter=//p' "$UNIT")
[ "${sets[*]}" = "@system-service ~@privileged @resources" ] ||
  { echo "the unit's SystemCallFilter changed (${sets[*]}): change this check with it"; exit 1; }
expand @system-service | sort -u >"$TMP/allowed"
{ expand @privileged; expand @resources; } | sort -u >"$TMP/denied"
mkdir "$TMP/state" && chown 65534:65534 "$TMP/state"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# strace starts setpriv, which drops to nobody and then runs jwtd: only calls after that execve count.
(cd "$TMP/state" && umask 0077 && JWTD_DATABASE_URL="sqlite://$TMP/state/jwtd.db" JWTD_ADDR="127.0.0.1:$PORT" \
  exec strace -f -qq -o "$TMP/trace" setpriv --reuid=65534 --regid=65534 --clear-groups "$JWTD_BIN" serve) \
  >"$TMP/log" 2>&1 &
JWTD_PID=$!
python3 - "http://127.0.0.1:$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("jwtd did not answer /healthz within 30 s")
PY
python3 .ci/tests/container_checks.py api "http://127.0.0.1:$PORT" >/dev/null
# $JWTD_PID is strace; its child is jwtd (setpriv exec'd it). strace exits with jwtd's status.
kill -TERM "$(pgrep -P "$JWTD_PID")"
wait "$JWTD_PID"
JWTD_PID=
# Every line from jwtd's execve on (setpriv's own setresuid and capset come before it).
awk -v bin="$JWTD_BIN" 'index($0, "execve(\"" bin "\"") { seen = 1 } seen' "$TMP/trace" |
  sed -E 's/^[0-9]+ +//; s/\(.*//' | grep -E '^[a-z_0-9]+$' | sort -u >"$TMP/used"
echo "$(wc -l <"$TMP/used") distinct calls: $(tr '\n' ' ' <"$TMP/used")"
outside=$(comm -23 "$TMP/used" "$TMP/allowed")
denied=$(comm -12 "$TMP/used" "$TMP/denied")
[ -z "$outside$denied" ] || { echo "outside @system-service: $outside; in @privileged/@resources: $denied"; exit 1; }
echo "all within the filter"
