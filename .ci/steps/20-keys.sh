#!/usr/bin/env bash
# Asymmetric keys (issue 4): the shared conformance suite with every server signing RS256, ES256 and
# EdDSA (keys written by `jwtd keys generate`), then interop: the SimpleJWT reference server holding
# only jwtd's RS256 public key accepts jwtd's access tokens.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SHARED:?run from .ci/run}" "${PYENV:?run from .ci/run}" "${JWTD_BIN:?run from .ci/run}"
# shellcheck source=.ci/lib/conformance.sh
source .ci/lib/conformance.sh
KEYS=$(mktemp -d)
trap 'rm -rf "$KEYS"' EXIT

# The main run's filter, with the `keys` marker selected whatever it says.
FILTER=${CONFORMANCE_FILTER-}
FILTER=${FILTER//not keys and /}
# Node ids are relative to the suite's rootdir, $SHARED (see .ci/lib/conformance.sh).
# These are HMAC tests, each run in the main (HS256) conformance run; with a PEM file as every
# server's SIGNING_KEY they cannot work: the default header is asserted to be {"alg":"HS256","typ":"JWT"} and the default
# JWKS empty; tokens "of another key" or "of another alg" are forged with pyjwt as HS* tokens keyed
# with a literal secret or with the PEM, which pyjwt refuses to sign (the bad-refresh-token tests
# build every case at once, so all their cases fail); the HS384/HS512 cases of the algorithm tests
# would take the PEM path as their secret; and the interop test of identical headers fails on the
# kid that jwtd adds to asymmetric tokens and SimpleJWT does not write. Of the `dropin` tests (run
# once the main filter selects them), the key-fallback test starts servers with literal HMAC secrets
# (SIGNING_KEY_FALLBACKS is HMAC-only: with ALGORITHM=RS256 jwtd refuses to start, exit 2), and the
# `sub` test decodes tokens with pyjwt as HS256 keyed with SIGNING_KEY. Asymmetric counterparts of
# these checks are the `keys` tests of test_tokens.py and crates/jwtd/tests/api/keys.rs.
DESELECT=()
for id in \
  test_tokens.py::test_header_default \
  test_endpoints.py::test_jwks_empty_for_hmac \
  test_tokens.py::test_alg_in_token_must_match \
  test_protected.py::test_me_with_other_key \
  test_errors.py::test_refresh_rejects_bad_token \
  test_errors.py::test_verify_rejects_bad_token \
  test_errors.py::test_blacklist_rejects_bad_token \
  "test_tokens.py::test_algorithm_issue_and_accept[HS" \
  "test_tokens.py::test_algorithm_refuses_other_alg[HS" \
  "test_tokens.py::test_jwks_publishes_public_key[HS" \
  test_interop.py::test_same_token_shape \
  test_dropin.py::test_signing_key_fallbacks_keep_sessions_across_a_secret_rotation \
  test_dropin.py::test_sub_user_id_claim_is_a_string_pyjwt_accepts; do
  DESELECT+=(--deselect "conformance/$id")
done

# Every run goes ahead; the step fails at the end if any failed.
failed=()
for alg in RS256 ES256 EdDSA; do
  "$JWTD_BIN" keys generate --algorithm "$alg" --out "$KEYS/$alg" >/dev/null
  echo "--- conformance with ALGORITHM=$alg"
  HARNESS_SETTINGS="{\"ALGORITHM\": \"$alg\", \"SIGNING_KEY\": \"$KEYS/$alg/private.pem\"}" TARGET=jwtd \
    conformance -m "$FILTER" "${DESELECT[@]}" || failed+=("conformance $alg")
done

echo "--- interop: the SimpleJWT reference verifies jwtd's RS256 tokens with the public key"
"$PYENV/bin/python" .ci/tests/keys_interop.py || failed+=("interop")

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
