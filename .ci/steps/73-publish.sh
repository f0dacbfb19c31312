#!/usr/bin/env bash
# Publishable: `cargo publish --dry-run --workspace` packages jwtd-proto, jwtd-verify, jwtd and jwtd-client (not
# bench/ceiling, publish = false) as crates.io would get them, in dependency order: the manifests are
# complete (license, description, repository, readme), every file a crate needs is inside it, and
# jwtd and jwtd-client resolve jwtd-proto by version from the other packages of the same run (cargo
# overlays them as a local registry; `cargo publish -p jwtd` alone fails until jwtd-proto is on
# crates.io). Then lists what each .crate holds beside its sources and tests.
# Verification builds each packaged crate on its own, as crates.io's users would (a file that the
# code includes from outside its crate fails there), in a target folder of its own, from nothing
# (about 2.2 GB, removed after): 3 min 11 s on two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Cargo extracts that local registry under $CARGO_HOME/registry/src/-<hash of its path>/ and never
# extracts or rebuilds a registry crate's version again once it has, so a copy or build left by an
# earlier run on this machine would be verified instead of today's sources: the run gets a target
# folder of its own, and the extracted copies of jwtd's crates (in folders named with a leading '-',
# unlike crates.io's) are removed, before and after.
publish_target=target/publish
clean() { rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/jwtd{,-proto,-verify,-client}-[0-9]* "$publish_target"; }
clean
out=$(CARGO_TARGET_DIR=$publish_target cargo publish --dry-run --workspace --locked 2>&1) || { echo "$out"; clean; exit 1; }
clean
grep -E '^ *(Packag|Verif|Finished|Upload)' <<<"$out"
# What each crate holds beside src/ and tests/: `cargo package` writes the same .crate files to
# target/package/ (the dry run above keeps them in a temporary registry of its own).
cargo package --workspace --exclude jwtd-bench-ceiling --locked --no-verify -q
for name in jwtd-proto jwtd-verify jwtd jwtd-client; do
  crate=$(ls target/package/"$name"-[0-9]*.crate)
  echo "$(basename "$crate"): $(tar -tzf "$crate" | wc -l) files; beside src/ and tests/:" \
    "$(tar -tzf "$crate" | sed 's|^[^/]*/||' | grep -v '^src/\|^tests/\|^$' | tr '\n' ' ')"
done
