//! Revocations from jwtd's feed (`GET /api/token/revocations/?after=N`, behind a service token):
//! a [`RevocationFeed`] reads the log from where it left off and applies each row to a
//! [`Verifier`] (the user's "valid after" time, or a revoked session), so that a service refuses
//! tokens revoked at jwtd (logout-all, password change, deactivation, deletion, a revoked
//! session) within one poll interval. [`RevocationFeed::spawn`] polls in the background (every
//! second by default: refused within 2 s of a logout-all); [`RevocationFeed::poll`] polls once,
//! for a test or a scheduler of the service's own.
//!
//! Like the keys, the feed decides what is accepted, so it is read under `fetch.rs`'s rules:
//! https only (http to a loopback address), no redirects, bodies read up to [`MAX_FEED_BYTES`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jwtd_proto::RevocationFeed as Page;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::fetch::{FetchError, Source};
use crate::Verifier;

/// The largest page read: 1,000 rows of a few hundred bytes each, with room to spare.
pub const MAX_FEED_BYTES: usize = 1024 * 1024;
/// The default poll interval of [`RevocationFeed::spawn`].
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// How long a revoked session is remembered by default ([`RevocationFeed::remember_sessions`]):
/// a day, longer than any access token of SimpleJWT's or jwtd's defaults lives.
pub const DEFAULT_SESSION_MEMORY: Duration = Duration::from_secs(86_400);
/// At most this many pages are read by one [`RevocationFeed::poll`] (a million rows).
const MAX_PAGES: usize = 1000;

/// Why the feed could not be read.
pub type FeedError = FetchError;

/// A reader of jwtd's revocation feed feeding one [`Verifier`]. Cloning shares the cursor.
#[derive(Debug, Clone)]
pub struct RevocationFeed {
    inner: Arc<Inner>,
}

/// `Debug` shows where the feed is read and how far, never the service token.
struct Inner {
    source: Source,
    service_token: String,
    verifier: Verifier,
    /// The id of the last row applied.
    cursor: AtomicI64,
    /// Revoked sessions older than this many seconds are forgotten after each poll.
    session_memory: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("source", &self.source).field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

impl RevocationFeed {
    /// Reads `url` (`https://auth.example/api/token/revocations/`) with `service_token` (one of
    /// jwtd's SERVICE_TOKENS) into `verifier`'s revocation map.
    pub fn new(
        url: impl Into<String>,
        service_token: impl Into<String>,
        verifier: Verifier,
    ) -> Result<Self, FeedError> {
        let user_agent = concat!("jwtd-verify/", env!("CARGO_PKG_VERSION"));
        let source = Source::new(url.into(), Duration::from_secs(10), user_agent, MAX_FEED_BYTES)?;
        let inner = Inner {
            source,
            service_token: service_token.into(),
            verifier,
            cursor: AtomicI64::new(0),
            session_memory: AtomicU64::new(DEFAULT_SESSION_MEMORY.as_secs()),
        };
        Ok(RevocationFeed { inner: Arc::new(inner) })
    }

    /// Remembers a revoked session for `memory` after its revocation (default a day), then
    /// forgets it, so that the set stays as small as the sessions revoked in that window: pass
    /// the longest lifetime of the tokens the service accepts (ACCESS_TOKEN_LIFETIME, or
    /// SLIDING_TOKEN_LIFETIME when sliding tokens are accepted) plus the leeway. Call before
    /// [`RevocationFeed::spawn`] or any time (every clone shares it).
    pub fn remember_sessions(&self, memory: Duration) -> &Self {
        self.inner.session_memory.store(memory.as_secs(), Ordering::Release);
        self
    }

    /// The id of the last row applied (0: none yet).
    pub fn cursor(&self) -> i64 {
        self.inner.cursor.load(Ordering::Acquire)
    }

    /// Reads every row after the cursor, page by page, and applies them; returns how many.
    pub async fn poll(&self) -> Result<usize, FeedError> {
        let mut applied = 0;
        for _ in 0..MAX_PAGES {
            let after = self.cursor();
            let page = self.page(after).await?;
            let full = page.revocations.len() >= 1000;
            for row in &page.revocations {
                match &row.session {
                    Some(session) => self.inner.verifier.revoke_session(session, row.valid_after),
                    None => self.inner.verifier.revoke_before(row.user_id, row.valid_after),
                }
            }
            applied += page.revocations.len();
            self.inner.cursor.store(page.next.max(after), Ordering::Release);
            if !full || page.next <= after {
                break;
            }
        }
        let memory = Duration::from_secs(self.inner.session_memory.load(Ordering::Acquire));
        self.inner.verifier.forget_sessions_older_than(memory);
        Ok(applied)
    }

    async fn page(&self, after: i64) -> Result<Page, FeedError> {
        let source = &self.inner.source;
        let (_, body) = source.get(|get| get.query(&[("after", after)]).bearer_auth(&self.inner.service_token)).await?;
        serde_json::from_slice(&body).map_err(|_| source.unexpected("revocation feed"))
    }

    /// Polls every `interval` in a background task (failures are logged and retried at the next
    /// tick; the rows already applied stay). Abort the handle to stop it.
    pub fn spawn(&self, interval: Duration) -> JoinHandle<()> {
        let feed = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = feed.poll().await {
                    warn!(error = %e, "could not read the revocation feed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_service_token() {
        let verifier = Verifier::hmac(b"a signing key of thirty-two bytes or more").unwrap();
        let feed = RevocationFeed::new("https://auth.example/api/token/revocations/", "s3cret-service-token", verifier)
            .unwrap();
        let shown = format!("{feed:?}");
        assert!(shown.contains("auth.example"), "{shown}");
        assert!(!shown.contains("s3cret-service-token"), "{shown}");
    }
}
