#!/usr/bin/env bash
# Publishable: `cargo publish --dry-run --workspace` packages jwtd-proto, jwtd-verify, jwtd and jwtd-client (not
# bench/ceiling, publish = false) as crates.io would get them, in dependency order: the manifests are
# complete (license, description, repository, readme), every file a crate needs is inside it, and
# jwtd and jwtd-client resolve jwtd-proto by version from the other packages of the same run (cargo
# overlays them as a local registry; `cargo publish -p jwtd` alone fails until jwtd-proto is on
# crates.io). Then lists what each .crate holds beside its sources and tests.
# Verification builds each packaged crate on its own, as crates.io's users would (a file that the
# code includes from outside its crate fails there): without the workspace's profile
# settings, so most of the graph is compiled once more, in debug (2.2 GB). On two cores that other
# builds were using too: 3 min 14 s after the workspace's own builds, 4 min 14 s from nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(cargo publish --dry-run --workspace --locked 2>&1) || { echo "$out"; exit 1; }
grep -E '^ *(Packag|Verif|Finished|Upload)' <<<"$out"
# What each crate holds beside src/ and tests/: `cargo package` writes the same .crate files to
# target/package/ (the dry run above keeps them in a temporary registry of its own).
cargo package --workspace --exclude jwtd-bench-ceiling --locked --no-verify -q
for name in jwtd-proto jwtd-verify jwtd jwtd-client; do
  crate=$(ls target/package/"$name"-[0-9]*.crate)
  echo "$(basename "$crate"): $(tar -tzf "$crate" | wc -l) files; beside src/ and tests/:" \
    "$(tar -tzf "$crate" | sed 's|^[^/]*/||' | grep -v '^src/\|^tests/\|^$' | tr '\n' ' ')"
done
