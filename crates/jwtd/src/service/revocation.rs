//! Completing a revocation of every token of a user (password change, logout-all, deactivation,
//! deletion): SPEC §4 "Revocation is exact in time". The store revokes the whole second of its
//! `now` ([`valid_after_revocation`]); this makes that hold for every issuance that read the
//! user before the commit, and waits out the revoked second so that the next sign-in is at once.

use tracing::warn;

use crate::clock::{Clock, Instant};
use crate::store::{valid_after_revocation, Store, StoreError};

/// How many times [`settle`] revokes again before it gives up waiting for a commit within a second.
const MAX_ROUNDS: usize = 5;

/// After a revocation of `user_id` at `at` committed: if the clock has moved into a later second
/// since `at` was read, an issuance that read the user before the commit may have dated its token
/// in that later second, so that second is revoked too (again until the clock holds still across
/// a commit). Returns the user's `valid_after`. Does not wait: see [`wait_out`].
pub async fn settle(store: &dyn Store, clock: &dyn Clock, user_id: i64, at: Instant) -> Result<i64, StoreError> {
    let mut valid_after = valid_after_revocation(at);
    for _ in 0..MAX_ROUNDS {
        let now = clock.now();
        if now.secs() < valid_after {
            return Ok(valid_after);
        }
        store.revoke_all(user_id, now).await?;
        valid_after = valid_after_revocation(now);
    }
    // Every commit took a second or more: the database is struggling; do not hold the caller.
    warn!(user_id, valid_after, "revocation commits keep crossing seconds; the last second may not be covered");
    Ok(valid_after)
}

/// Waits until `valid_after`'s second has started: a revoking call answers only then, so the
/// user's sign-in right after it dates its tokens at or after `valid_after` without waiting.
pub async fn wait_out(clock: &dyn Clock, valid_after: i64) {
    clock.sleep_until(Instant::from_secs(valid_after)).await;
}
