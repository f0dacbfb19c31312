//! Password hashing off the async runtime, on a bounded pool: at most one hash per core runs at
//! a time, the rest wait without holding a thread, so a flood of sign-ins never starves the
//! request workers that serve refresh and verify.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::password::Hasher;

#[derive(Debug, Clone)]
pub struct PasswordPool {
    hasher: Hasher,
    permits: Arc<Semaphore>,
    /// Checked against when the user does not exist, so that costs the same as a wrong password.
    dummy: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

impl PasswordPool {
    pub fn new(hasher: Hasher) -> Result<Self, HashError> {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let dummy = hasher.hash("jwtd-dummy-password").map_err(|_| HashError)?;
        Ok(PasswordPool { hasher, permits: Arc::new(Semaphore::new(workers)), dummy: dummy.into() })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Hasher) -> T + Send + 'static) -> Result<T, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError)?;
        let hasher = self.hasher.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&hasher))).in_current_span().await.map_err(|_| HashError)
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |h| h.hash(&password)).await?.map_err(|_| HashError)
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no user, in
    /// the same time. Returns (matches, needs_rehash).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<(bool, bool), HashError> {
        let dummy = self.dummy.clone();
        self.run(move |h| match stored {
            Some(stored) => {
                let ok = h.verify(&password, &stored);
                (ok, ok && h.needs_rehash(&stored))
            }
            None => {
                let _ = h.verify(&password, &dummy);
                (false, false)
            }
        })
        .await
    }
}
