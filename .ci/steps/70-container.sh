#!/usr/bin/env bash
# The container image (Containerfile) built and run with Podman:
#   1. installs podman, runc and debootstrap from Debian if missing;
#   2. makes the base image docker.io/library/debian:bookworm-slim locally unless it is there already
#      (no registry is reachable from CI): debootstrap --variant=minbase, docs, man pages, locales
#      and apt's caches removed, then `podman import`;
#   3. builds the image from the repository root with the release binary (.dockerignore sends
#      nothing else), never pulling;
#   4. runs it with a named volume on /data and the port published on 127.0.0.1 only, and checks:
#      the process runs as the image's non-root user, the HEALTHCHECK passes, sign-up → refresh →
#      /api/me/ work from the host, the user and the signing key survive a restart (the database is
#      on the volume), `podman exec NAME jwtd user create` works on the same database, and
#      `podman stop` drains: sign-ins sent before SIGTERM whose bodies end after
#      jwtd stopped accepting all answer 200, jwtd logs "shutting down" and "stopped", and the
#      container exits 0 (not 137: no SIGKILL).
# Podman runs with runc and cgroupfs (crun and systemd cgroups do not work on the CI machine) and
# without default ulimits, from a containers.conf of its own (CONTAINERS_CONF).
# Environment from .ci/run: JWTD_BIN (release binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${JWTD_BIN:?}"
STARTED=$SECONDS
step() { printf -- '--- container: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }

BASE=docker.io/library/debian:bookworm-slim
IMAGE=localhost/jwtd:ci
NAME=jwtd-ci-$$
VOLUME=jwtd-ci-data-$$

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

TMP=$(mktemp -d /tmp/jwtd-ci-container.XXXXXX)
cat >"$TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
events_logger = "file"
EOF
export CONTAINERS_CONF=$TMP/containers.conf
# Without systemd, podman logs an error for the HEALTHCHECK's timer at every start and stop (the
# container runs all the same; the step runs the check itself with `podman healthcheck run`).
pm() { podman --runtime runc --cgroup-manager cgroupfs "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
pm --version

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && pm container exists "$NAME" 2>/dev/null; then
    echo "--- last lines of the container's log"
    pm logs --tail 30 "$NAME" 2>&1 || true
  fi
  pm rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  pm volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  pm rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

if pm image exists "$BASE"; then
  step "base image $BASE is there already"
else
  step "base image: debootstrap --variant=minbase bookworm"
  debootstrap --variant=minbase bookworm "$TMP/rootfs" http://deb.debian.org/debian >"$TMP/debootstrap.log" 2>&1 ||
    { tail -n 30 "$TMP/debootstrap.log"; exit 1; }
  (cd "$TMP/rootfs" &&
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* var/log/* \
      usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* etc/hostname &&
    : >etc/resolv.conf)
  tar --numeric-owner -C "$TMP/rootfs" -c . |
    pm import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$TMP/rootfs"
fi

step "podman build (base image $(pm image inspect --format "{{.Size}}" "$BASE" | numfmt --to=iec)B)"
CONTEXT=$ROOT
if [ "$(readlink -f "$JWTD_BIN")" != "$(readlink -f "$ROOT/target/release/jwtd" 2>/dev/null || true)" ]; then
  # Another binary than the repository's own release build: a context holding that one instead.
  CONTEXT=$TMP/context
  mkdir -p "$CONTEXT/target/release"
  cp "$JWTD_BIN" "$CONTEXT/target/release/jwtd"
fi
pm build --pull=never --format docker -q -f "$ROOT/Containerfile" -t "$IMAGE" "$CONTEXT" >/dev/null
echo "image: $(pm image inspect --format "{{.Size}}" "$IMAGE" | numfmt --to=iec)B"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
run() {
  pm run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" -v "$VOLUME:/data" --stop-timeout 15 "$IMAGE" >/dev/null
}
wait_healthy() {
  local deadline=$((SECONDS + 30))
  until pm healthcheck run "$NAME" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "the image's HEALTHCHECK did not pass within 30 s"; return 1; }
    sleep 0.1
  done
}

step "podman run -p 127.0.0.1:$PORT:8000 -v $VOLUME:/data"
run
wait_healthy

step "non-root: the user of the jwtd process"
pid=$(pm inspect --format '{{.State.Pid}}' "$NAME")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
user=$(pm exec "$NAME" id -un)
echo "jwtd ($(tr '\0' ' ' <"/proc/$pid/cmdline")) runs with uids $uids (real, effective, saved, fs); the image's user is $user"
[ "$uids" = "10001 10001 10001 10001" ] && [ "$user" = jwtd ] || { echo "expected uid 10001 (jwtd) throughout"; exit 1; }

step "sign-up → refresh → /api/me/ from the host, then a restart keeps user and key"
python3 .ci/tests/container_checks.py api "$BASE_URL" >"$TMP/tokens.json"
pm stop "$NAME" >/dev/null
pm rm "$NAME" >/dev/null
run
wait_healthy
python3 .ci/tests/container_checks.py after-restart "$BASE_URL" "$TMP/tokens.json"

step "the command line in the container: podman exec … jwtd user create"
echo cli-password-0123456789 | pm exec -i "$NAME" jwtd user create cli-user --password-stdin
python3 .ci/tests/container_checks.py sign-in "$BASE_URL" cli-user cli-password-0123456789

step "podman stop while sign-ins are in flight"
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
python3 .ci/tests/container_checks.py drain "$BASE_URL" "${PODMAN[@]}" logs "$NAME" -- "${PODMAN[@]}" stop "$NAME" 2>&1 |
  grep -v 'unable to get systemd connection'
code=$(pm inspect --format '{{.State.ExitCode}}' "$NAME")
pm logs "$NAME" >"$TMP/log" 2>&1
grep -q ' shutting down$' "$TMP/log" && grep -q ' stopped$' "$TMP/log" ||
  { echo "no 'shutting down' and 'stopped' lines in the log:"; tail -n 20 "$TMP/log"; exit 1; }
echo "exit code $code; the log's last lines:"
tail -n 3 "$TMP/log"
[ "$code" = 0 ] || { echo "expected exit code 0 after SIGTERM, got $code"; exit 1; }

step "done"
