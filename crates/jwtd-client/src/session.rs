//! The session's state: signed out, active with its tokens, or expired; a generation number
//! that changes with every new access token, a count of failed refreshes; and the rule for
//! refreshing ahead of expiry.
//!
//! Every change happens while the client holds its refresh lock, so a waiter that finds the
//! generation moved on knows someone else already refreshed, and one that finds a new failure
//! knows the refresh it waited for failed. This module does no I/O.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::dangerous;
use crate::error::Error;
use crate::store::Tokens;

/// When an access token expires and when to refresh it, in milliseconds of the client's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    expires_at_ms: i64,
    refresh_at_ms: i64,
}

impl Deadline {
    /// Reads `exp` and `iat` from the access token, unverified.
    ///
    /// `received_at_ms` is the client's time when the server issued the token. The server's
    /// `iat` is its own time then, so the difference is the offset between the two clocks, and
    /// the token expires at `exp + offset` on the client's clock: a client whose clock runs
    /// ahead would otherwise refresh before every request. Tokens loaded from a store were
    /// issued at an unknown time and assume no offset.
    ///
    /// The margin is at most half the token's lifetime, so short-lived tokens are still used.
    pub(crate) fn of(access: &str, received_at_ms: Option<i64>, margin: Duration) -> Option<Deadline> {
        let times = dangerous::insecure_times(access)?;
        let exp = times.exp?;
        let offset_secs = match (received_at_ms, times.iat) {
            (Some(now_ms), Some(iat)) => now_ms.div_euclid(1000) - iat,
            _ => 0,
        };
        let expires_at_ms = exp.saturating_add(offset_secs).saturating_mul(1000);
        let mut margin_ms = i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
        if let Some(iat) = times.iat {
            margin_ms = margin_ms.min(exp.saturating_sub(iat).saturating_mul(1000) / 2).max(0);
        }
        Some(Deadline { expires_at_ms, refresh_at_ms: expires_at_ms.saturating_sub(margin_ms) })
    }
}

/// What a caller saw of the session before it waited for the refresh lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    generation: u64,
    failures: u64,
}

/// What a request needs: the header to send and the state it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) authorization: HeaderValue,
    pub(crate) seen: Seen,
    /// Within the margin of expiry: refresh before sending.
    pub(crate) refresh_due: bool,
    /// Past expiry by the client's clock: sending it is pointless.
    pub(crate) expired: bool,
}

/// What the refresh lock holder should do.
#[derive(Debug)]
pub(crate) enum Refresh {
    /// Another task refreshed since the caller looked: use the new token.
    AlreadyDone,
    /// Refresh with this refresh token (`None`: the cookie carries it).
    With(Option<String>),
}

/// How a session ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum End {
    SignedOut,
    Expired,
}

#[derive(Debug)]
enum Phase {
    SignedOut,
    Expired,
    Active { tokens: Tokens, authorization: HeaderValue, deadline: Option<Deadline> },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    generation: u64,
    failures: u64,
    last_failure: Option<Arc<Error>>,
}

#[derive(Debug)]
pub(crate) struct Session {
    state: Mutex<State>,
}

impl Session {
    pub(crate) fn new() -> Self {
        Session { state: Mutex::new(State { phase: Phase::SignedOut, generation: 0, failures: 0, last_failure: None }) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_active(&self) -> bool {
        matches!(self.state().phase, Phase::Active { .. })
    }

    /// The access token to send now.
    pub(crate) fn current(&self, now_ms: i64) -> Result<Current, Error> {
        let state = self.state();
        match &state.phase {
            Phase::SignedOut => Err(Error::NotSignedIn),
            Phase::Expired => Err(Error::SessionExpired),
            Phase::Active { authorization, deadline, .. } => Ok(Current {
                authorization: authorization.clone(),
                seen: Seen { generation: state.generation, failures: state.failures },
                refresh_due: deadline.is_some_and(|d| now_ms >= d.refresh_at_ms),
                expired: deadline.is_some_and(|d| now_ms >= d.expires_at_ms),
            }),
        }
    }

    /// Whether the caller, which saw `seen`, still has to refresh. A refresh that failed while
    /// it waited fails it too: waiters share the outcome of the one refresh they waited for.
    pub(crate) fn refresh_for(&self, seen: Seen) -> Result<Refresh, Error> {
        let state = self.state();
        match (&state.phase, &state.last_failure) {
            (Phase::SignedOut, _) => Err(Error::NotSignedIn),
            (Phase::Expired, _) => Err(Error::SessionExpired),
            (Phase::Active { .. }, _) if state.generation != seen.generation => Ok(Refresh::AlreadyDone),
            (Phase::Active { .. }, Some(failure)) if state.failures != seen.failures => {
                Err(Error::RefreshFailed(failure.clone()))
            }
            (Phase::Active { tokens, .. }, _) => Ok(Refresh::With(tokens.refresh.clone())),
        }
    }

    /// A refresh failed without the server refusing the token; the session stays.
    pub(crate) fn record_failure(&self, error: Arc<Error>) {
        let mut state = self.state();
        state.failures += 1;
        state.last_failure = Some(error);
    }

    /// The refresh token of the session, if it is active.
    pub(crate) fn refresh_token(&self) -> Option<Option<String>> {
        match &self.state().phase {
            Phase::Active { tokens, .. } => Some(tokens.refresh.clone()),
            _ => None,
        }
    }

    /// Starts a new generation with these tokens.
    pub(crate) fn install(&self, tokens: Tokens, received_at_ms: Option<i64>, margin: Duration) -> Result<(), Error> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", tokens.access)).map_err(|_| Error::MalformedToken)?;
        authorization.set_sensitive(true);
        let deadline = Deadline::of(&tokens.access, received_at_ms, margin);
        let mut state = self.state();
        state.phase = Phase::Active { tokens, authorization, deadline };
        state.generation += 1;
        state.last_failure = None;
        Ok(())
    }

    pub(crate) fn end(&self, how: End) {
        let mut state = self.state();
        state.phase = match how {
            End::SignedOut => Phase::SignedOut,
            End::Expired => Phase::Expired,
        };
        state.generation += 1;
        state.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn access(iat: i64, exp: i64) -> String {
        let payload = format!(r#"{{"token_type":"access","iat":{iat},"exp":{exp},"user_id":1}}"#);
        format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    fn session_with(access: String, received_at_ms: Option<i64>, margin: Duration) -> Session {
        let session = Session::new();
        session.install(Tokens { access, refresh: Some("r".into()) }, received_at_ms, margin).unwrap();
        session
    }

    #[test]
    fn refresh_is_due_within_the_margin_of_exp() {
        let session = session_with(access(1000, 1900), Some(1_000_000), MIN);
        let at = |secs: i64| session.current(secs * 1000).unwrap();
        assert!(!at(1839).refresh_due);
        assert!(at(1840).refresh_due);
        assert!(!at(1899).expired);
        assert!(at(1900).expired, "exp == now is expired, as in SimpleJWT");
    }

    #[test]
    fn margin_is_at_most_half_the_lifetime() {
        let session = session_with(access(1000, 1002), Some(1_000_000), MIN);
        assert!(!session.current(1_000_999).unwrap().refresh_due);
        assert!(session.current(1_001_000).unwrap().refresh_due);
    }

    #[test]
    fn clock_offset_at_receipt_moves_the_deadline() {
        // The client's clock is 500 s ahead of the server's.
        let session = session_with(access(1000, 1900), Some(1_500_000), MIN);
        assert!(!session.current(2_339_000).unwrap().refresh_due);
        assert!(session.current(2_340_000).unwrap().refresh_due);
        // A token from a store has no receipt time: exp as written.
        let session = session_with(access(1000, 1900), None, MIN);
        assert!(session.current(1_840_000).unwrap().refresh_due);
    }

    #[test]
    fn unreadable_tokens_are_never_refreshed_ahead() {
        let session = session_with("opaque".into(), Some(0), MIN);
        let current = session.current(i64::MAX).unwrap();
        assert!(!current.refresh_due && !current.expired);
    }

    #[test]
    fn waiters_share_the_failure_of_the_refresh_they_waited_for() {
        let session = session_with(access(1000, 1900), None, MIN);
        let seen = session.current(0).unwrap().seen;
        session.record_failure(Arc::new(Error::NotSignedIn));
        assert!(matches!(session.refresh_for(seen), Err(Error::RefreshFailed(_))));
        let later = session.current(0).unwrap().seen;
        assert!(matches!(session.refresh_for(later), Ok(Refresh::With(Some(_)))), "a later caller tries again");
    }

    #[test]
    fn a_waiter_of_an_older_generation_finds_the_refresh_done() {
        let session = session_with(access(1000, 1900), None, MIN);
        let seen = session.current(0).unwrap().seen;
        assert!(matches!(session.refresh_for(seen), Ok(Refresh::With(Some(_)))));
        session.install(Tokens { access: access(1001, 1901), refresh: None }, None, MIN).unwrap();
        assert!(matches!(session.refresh_for(seen), Ok(Refresh::AlreadyDone)));
        session.end(End::Expired);
        assert!(matches!(session.refresh_for(seen), Err(Error::SessionExpired)));
        assert!(matches!(session.current(0), Err(Error::SessionExpired)));
    }
}
