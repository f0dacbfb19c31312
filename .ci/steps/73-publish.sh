#!/usr/bin/env bash
# Publishable: `cargo publish --dry-run --workspace` packages jwtd-proto, jwtd and jwtd-client (not
# bench/ceiling, publish = false) as crates.io would get them, in dependency order: the manifests are
# complete (license, description, repository, readme), every file a crate needs is inside it, and
# jwtd and jwtd-client resolve jwtd-proto by version from the other packages of the same run (cargo
# overlays them as a local registry; `cargo publish -p jwtd` alone fails until jwtd-proto is on
# crates.io). Then lists what each .crate holds beyond src/.
# With --no-verify: verifying builds each packaged crate once more without the workspace's profile
# settings (argon2, rsa, ... unoptimised), a second build of nearly the whole graph; the workspace
# build and tests earlier in CI compile the same sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(cargo publish --dry-run --workspace --locked --no-verify 2>&1) || { echo "$out"; exit 1; }
grep -E '^ *(Packag|Upload)' <<<"$out"
for crate in target/package/jwtd-0*.crate target/package/jwtd-proto-*.crate target/package/jwtd-client-*.crate; do
  echo "$(basename "$crate"): $(tar -tzf "$crate" | wc -l) files; beside src/ and tests/: $(tar -tzf "$crate" |
    grep -v '/src/\|/tests/' | sed 's|^[^/]*/||' | grep -v '^$' | tr '\n' ' ')"
done
