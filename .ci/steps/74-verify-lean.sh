#!/usr/bin/env bash
# jwtd-verify stays lean: a service that only verifies tokens must not build a database driver,
# password hashing, a CLI parser or an allocator. Its normal dependency tree (what its users
# compile) holds none of rusqlite, tokio-postgres, argon2, clap, jemalloc.
set -euo pipefail
cd "$(dirname "$0")/../.."
tree=$(cargo tree -p jwtd-verify -e normal --prefix none --locked)
forbidden=$(sed 's/ .*//' <<<"$tree" | grep -E '^(rusqlite|libsqlite3-sys|tokio-postgres|postgres-.*|deadpool-postgres|argon2|clap|clap_builder|tikv-jemalloc.*|jemalloc.*)$' | sort -u || true)
if [ -n "$forbidden" ]; then
  echo "jwtd-verify depends on: $forbidden"
  cargo tree -p jwtd-verify -e normal --locked -i "$(head -n 1 <<<"$forbidden")"
  exit 1
fi
# Built alone, as its users build it: features that the workspace's other crates turn on for a
# shared dependency (axum's, tokio's) must not hide one jwtd-verify forgot to ask for.
cargo check -q -p jwtd-verify --lib --locked
echo "jwtd-verify: $(sed 's/ .*//' <<<"$tree" | sort -u | wc -l) crates in its normal tree, none of rusqlite, tokio-postgres, argon2, clap, jemalloc"
