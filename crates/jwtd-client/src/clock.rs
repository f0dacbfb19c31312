//! The client's source of wall time, used only to decide when an access token is close enough
//! to its `exp` to refresh it ahead of time. Tests inject a clock instead of sleeping.

use std::time::SystemTime;

/// Source of the current time.
///
/// Any `Fn() -> SystemTime` closure is a clock, so a test can share a fake server's time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The real clock (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the client's one sanctioned reader of wall time
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime + Send + Sync + 'static> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// Milliseconds since the Unix epoch; times before it count as 0.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
