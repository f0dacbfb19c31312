//! Public keys fetched from a JWKS URL, so that another service verifies jwtd's access tokens
//! with no secret at all (SPEC §7). The set is cached; it is fetched again when its
//! `Cache-Control: max-age` has passed, or when a token names a `kid` it does not hold (which is
//! how a verifier learns of a key rotation), but never more often than once per `min_refresh`,
//! so tokens with made-up `kid`s cannot turn into a flood of fetches. One fetch is in flight at
//! a time however many requests wait for it.
//!
//! Keys decide whose tokens are accepted, so they are fetched under `fetch.rs`'s rules: https
//! only (http to a loopback address), no redirects, the body read up to [`MAX_JWKS_BYTES`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::header;
use tracing::{debug, warn};

use crate::clock::Instant;
use crate::fetch::{FetchError, Source};
use crate::tokens::{Algorithm, KeySet};

/// The largest JWKS document read: a set of a few dozen RSA keys is a few tens of KiB.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How a [`RemoteKeys`] fetches and caches.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Accept only this algorithm (recommended). `None`: each key's published `alg`.
    pub algorithm: Option<Algorithm>,
    /// The shortest time between two fetches. Default 10 s.
    pub min_refresh: Duration,
    /// How long a fetched set is used when the answer has no `Cache-Control: max-age`. Default 5 min.
    pub default_max_age: Duration,
    /// The longest a fetched set is used, whatever `max-age` says. Default 1 day.
    pub max_age_cap: Duration,
    /// Timeout of one fetch. Default 5 s.
    pub timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            algorithm: None,
            min_refresh: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            max_age_cap: Duration::from_secs(86400),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why the key set could not be fetched.
pub type RemoteKeysError = FetchError;

/// The public keys of a JWKS URL, cached. Cloning shares the cache.
#[derive(Debug, Clone)]
pub struct RemoteKeys {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: Source,
    options: RemoteOptions,
    cache: RwLock<Cache>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone, Default)]
struct Cache {
    keys: Arc<KeySet>,
    /// Whether a fetch ever succeeded.
    loaded: bool,
    /// When the last fetch was tried (successful or not), for `min_refresh`.
    tried_at: Option<Instant>,
    /// When the keys must be fetched again.
    stale_at: Option<Instant>,
    /// Counts fetch attempts, so a request that waited for another's fetch does not fetch again.
    attempts: u64,
}

impl RemoteKeys {
    /// Keys of `url` (e.g. `https://auth.example/.well-known/jwks.json`), fetched on first use.
    pub fn new(url: impl Into<String>, options: RemoteOptions) -> Result<Self, RemoteKeysError> {
        let user_agent = concat!("jwtd/", env!("CARGO_PKG_VERSION"));
        let source = Source::new(url.into(), options.timeout, user_agent, MAX_JWKS_BYTES)?;
        Ok(RemoteKeys {
            inner: Arc::new(Inner {
                source,
                options,
                cache: RwLock::new(Cache::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    pub fn url(&self) -> &str {
        self.inner.source.url()
    }

    fn cache(&self) -> Cache {
        match self.inner.cache.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, update: impl FnOnce(&mut Cache)) {
        let mut guard = match self.inner.cache.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        update(&mut guard);
    }

    /// The keys fetched last (empty before the first successful fetch).
    pub fn keys(&self) -> Arc<KeySet> {
        self.cache().keys
    }

    /// Whether a fetch ever succeeded.
    pub fn is_loaded(&self) -> bool {
        self.cache().loaded
    }

    /// Whether the keys should be fetched again at `now` (never fetched, or past `max-age`).
    pub fn is_stale(&self, now: Instant) -> bool {
        let cache = self.cache();
        !cache.loaded || cache.stale_at.is_none_or(|at| now >= at)
    }

    /// Fetches the key set unless one was tried less than `min_refresh` ago, or another caller
    /// fetched while this one waited. Returns whether a fetch was made.
    pub async fn refresh(&self, now: Instant) -> Result<bool, RemoteKeysError> {
        let seen = self.cache().attempts;
        let _one_at_a_time = self.inner.fetching.lock().await;
        let cache = self.cache();
        if cache.attempts != seen {
            return Ok(false);
        }
        if let Some(tried) = cache.tried_at {
            if now < tried.plus(self.inner.options.min_refresh) {
                debug!(url = %self.url(), "JWKS fetched moments ago; not fetching again");
                return Ok(false);
            }
        }
        self.store(|c| {
            c.attempts += 1;
            c.tried_at = Some(now);
        });
        let (keys, max_age) = self.fetch().await?;
        let stale_at = now.plus(max_age);
        self.store(|c| {
            c.keys = Arc::new(keys);
            c.loaded = true;
            c.stale_at = Some(stale_at);
        });
        Ok(true)
    }

    async fn fetch(&self) -> Result<(KeySet, Duration), RemoteKeysError> {
        let (headers, body) = self.inner.source.get(|get| get.header(header::ACCEPT, "application/json")).await?;
        let max_age = headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(self.inner.options.default_max_age)
            .clamp(self.inner.options.min_refresh, self.inner.options.max_age_cap);
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| self.inner.source.unexpected("JSON document"))?;
        let (keys, skipped) = KeySet::from_jwks(&document, self.inner.options.algorithm);
        for reason in skipped {
            warn!(url = %self.url(), %reason, "JWKS member skipped");
        }
        Ok((keys, max_age))
    }
}

/// The `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value.trim().trim_matches('"').parse().ok().map(Duration::from_secs)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_over_https_or_from_loopback_only() {
        let refused = RemoteKeys::new("http://auth.example/jwks.json", RemoteOptions::default());
        assert!(matches!(refused, Err(RemoteKeysError::Insecure { .. })));
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
