#!/usr/bin/env bash
# The API fuzzed from its own OpenAPI document: Schemathesis (from PyPI, in its own virtualenv)
# against a live jwtd (release binary, throwaway SQLite database), reading /api/schema/, with all
# its checks (server errors, status codes, content types, response headers and bodies against the
# document, negative data rejected, positive data accepted, methods, auth), in every phase its
# version has: examples, coverage, fuzzing, and stateful runs along the document's links (sign-up →
# sign-in → refresh/verify/blacklist, and the new user's token to its protected routes). Passes on
# 0 failures (and none of the warnings that mean less was tested, see the config) with at least
# MAX_EXAMPLES generated cases for every operation that takes any input, and the Bearer token
# accepted on every protected route.
# Settings it needs beyond the flags below, each with its reason: .ci/schemathesis.toml.
# Environment from .ci/run: JWTD_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${JWTD_BIN:?}"
ST_VERSION=4.32.5
ST_VENV=${ST_VENV:-/tmp/jwtd-st-venv}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-200}
STARTED=$SECONDS
step() { printf -- '--- schemathesis: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }

if [ "$("$ST_VENV/bin/st" --version 2>/dev/null || true)" != "st, version $ST_VERSION" ]; then
  step "installing schemathesis $ST_VERSION into $ST_VENV"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
"$ST_VENV/bin/st" --version

TMP=$(mktemp -d /tmp/jwtd-ci-st.XXXXXX)
JWTD_PID=
cleanup() {
  local rc=$?
  if [ -n "$JWTD_PID" ]; then
    kill "$JWTD_PID" 2>/dev/null || true
    wait "$JWTD_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -f "$TMP/jwtd.log" ]; then
    echo "--- last lines of the jwtd log"
    tail -n 30 "$TMP/jwtd.log"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
step "starting jwtd on $BASE"
# The password-reset and activation routes are served only with a way to send their links: a
# webhook to a port nothing listens on (deliveries fail and are retried in the background, which
# no answer waits for).
HOOK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A service token, so that introspection and the revocation feed are served, documented and fuzzed.
export JWTD_ST_SERVICE_TOKEN=schemathesis-service-token-0123456789abcdef
JWTD_SERVICE_TOKENS=$JWTD_ST_SERVICE_TOKEN \
JWTD_DATABASE_URL="sqlite://$TMP/jwtd.db" JWTD_ADDR="127.0.0.1:$PORT" JWTD_LOGIN_RATE=off JWTD_SIGNUP_RATE=off \
  JWTD_SIGNING_KEY=schemathesis-signing-key-0123456789abcdef RUST_LOG=warn \
  JWTD_WEBHOOK_URL="http://127.0.0.1:$HOOK_PORT/hooks" JWTD_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
  JWTD_FRONTEND_URL=https://app.example \
  "$JWTD_BIN" serve >"$TMP/jwtd.log" 2>&1 &
JWTD_PID=$!

# Waits for jwtd, then signs up the user whose access token the protected routes get.
export JWTD_ST_USERNAME=schemathesis JWTD_ST_PASSWORD=schemathesis-password-0123
python3 - "$BASE" <<'EOF'
import json, os, sys, time, urllib.error, urllib.request
base = sys.argv[1]
for _ in range(300):
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("jwtd did not answer /healthz within 30 s")
body = json.dumps({"username": os.environ["JWTD_ST_USERNAME"], "password": os.environ["JWTD_ST_PASSWORD"]})
request = urllib.request.Request(base + "/api/auth/signup/", body.encode(), {"Content-Type": "application/json"})
assert urllib.request.urlopen(request, timeout=10).status == 201
EOF

# /metrics is in the document (SPEC §1); a build without the route yet leaves it out of the run.
EXCLUDE=()
if ! python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$BASE/metrics" 2>/dev/null; then
  echo "GET /metrics is not served by this build: left out of the run"
  EXCLUDE=(--exclude-path /metrics)
fi

step "st run $BASE/api/schema/ --checks all --max-examples $MAX_EXAMPLES"
# Run from the temporary folder: Schemathesis keeps a cache and an example database in ./.schemathesis.
CONFIG=$PWD/.ci/schemathesis.toml
(cd "$TMP" && "$ST_VENV/bin/st" --no-color --config-file "$CONFIG" run "$BASE/api/schema/" \
  --checks all --max-examples "$MAX_EXAMPLES" --report ndjson --report-dir "$TMP/report" "${EXCLUDE[@]}")

step "generated cases per operation (at least $MAX_EXAMPLES each)"
# An operation without any input (no body, parameter or credential) has one request to send, so
# Hypothesis stops after it: for those the cases sent are every case there is.
python3 - "$MAX_EXAMPLES" "$BASE/api/schema/" "$TMP"/report/*.ndjson <<'EOF'
import collections, json, re, sys, urllib.request
minimum, schema_url, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
document = json.load(urllib.request.urlopen(schema_url, timeout=10))
# A request's path as the document names it: `/api/auth/sessions/0a1b…/` is `/api/auth/sessions/{id}/`.
templates = [(re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(route)) + "$"), route)
             for route in document["paths"]]
def template(concrete):
    return next((route for pattern, route in templates if pattern.match(concrete)), concrete)
inputless = {
    f"{method.upper()} {route}"
    for route, item in document["paths"].items()
    for method, operation in item.items()
    if not operation.get("requestBody") and not operation.get("parameters") and not operation.get("security")
}
# An operation whose one input is a path parameter (DELETE /api/auth/sessions/{id}/, a pattern of 16
# hex digits) gets about 14 cases in every run whatever --max-examples is (measured at 20 and at
# 200): Schemathesis skips most of what it draws for a path. For those the floor is 10.
path_only = {
    f"{method.upper()} {route}"
    for route, item in document["paths"].items()
    for method, operation in item.items()
    if not operation.get("requestBody") and operation.get("parameters")
    and all(p.get("in") == "path" for p in operation["parameters"])
}
protected = {
    f"{method.upper()} {route}"
    for route, item in document["paths"].items()
    for method, operation in item.items()
    if operation.get("security")
}
cases = collections.Counter()
authenticated = collections.Counter()
operations = set()
for line in open(path, encoding="utf-8"):
    finished = json.loads(line).get("ScenarioFinished")
    if not finished:
        continue
    recorder = finished["recorder"]
    if finished["phase"] != "stateful":
        operations.add(recorder["label"])
    for case in recorder.get("cases", {}).values():
        cases[f'{case["value"]["method"]} {template(case["value"]["path"])}'] += 1
    for interaction in recorder.get("interactions", {}).values():
        status = (interaction.get("response") or {}).get("status_code", 0)
        if status and status != 401:
            request = interaction["request"]
            concrete = "/" + request["uri"].split("/", 3)[3].split("?", 1)[0]
            authenticated[f'{request["method"]} {template(concrete)}'] += 1
few = []
for operation in sorted(operations):
    note = "  (no inputs: a single distinct request)" if operation in inputless else ""
    print(f"{cases[operation]:6d}  {operation}{note}")
    floor = min(minimum, 10) if operation in path_only else minimum
    if cases[operation] < floor and operation not in inputless:
        few.append(operation)
# The Bearer token got through to each protected route: some answer other than 401 (the token is
# checked before the body is read, so even a 400 for a wrong old password counts).
unauthenticated = sorted(operation for operation in protected & operations if not authenticated[operation])
if few or unauthenticated:
    sys.exit(f"fewer than {minimum} cases: {few}; only 401 on the protected routes {unauthenticated}")
EOF
step "done"
