//! The only reader of wall-clock time for decisions. Everything else takes `now` as an argument
//! or a `Clock`, so tests advance a [`FakeClock`] instead of sleeping. The one other reader is
//! the request log's timestamp (`telemetry/access.rs`), which, like the log formatter's own timer,
//! reads the system clock on purpose: a log line tells when it was written.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::Notify;

/// A point in time as milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(i64);

impl Instant {
    pub const fn from_millis(ms: i64) -> Self {
        Instant(ms)
    }
    pub const fn from_secs(secs: i64) -> Self {
        Instant(secs.saturating_mul(1000))
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// Whole seconds, rounded down (what `iat`/`exp` carry).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn plus(self, d: Duration) -> Self {
        Instant(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }
    pub fn minus(self, d: Duration) -> Self {
        Instant(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }
}

/// A wait handed out by [`Clock::sleep_until`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
    /// Resolves once [`Clock::now`] has reached `deadline` (at once if it has already).
    fn sleep_until(&self, deadline: Instant) -> Sleep<'_>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reader of wall time
    fn now(&self) -> Instant {
        let since = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Instant(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Box::pin(async move {
            // Wall time may be stepped while we sleep: check it again on waking.
            loop {
                let left = deadline.millis().saturating_sub(self.now().millis());
                if left <= 0 {
                    return;
                }
                let left = u64::try_from(left).unwrap_or(u64::MAX);
                tokio::time::sleep(Duration::from_millis(left)).await;
            }
        })
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
///
/// What a [`Clock::sleep_until`] on it does depends on its mode: by default the clock jumps to
/// the deadline (time passes for whoever waits, as it would, without the test sleeping); after
/// [`FakeClock::hold_sleepers`] a sleeper waits until a test moves the clock past its deadline
/// ([`FakeClock::advance`], [`FakeClock::set`]), and [`FakeClock::sleepers`] says how many wait.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Fake>);

#[derive(Debug)]
struct Fake {
    millis: AtomicI64,
    hold: AtomicBool,
    sleepers: AtomicUsize,
    moved: Notify,
}

impl FakeClock {
    /// Starts at the current wall time, so tokens it dates look ordinary to outside verifiers.
    pub fn new() -> Self {
        Self::at(SystemClock.now())
    }
    pub fn at(start: Instant) -> Self {
        FakeClock(Arc::new(Fake {
            millis: AtomicI64::new(start.millis()),
            hold: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            moved: Notify::new(),
        }))
    }
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.0.millis.fetch_add(ms, Ordering::SeqCst);
        self.0.moved.notify_waiters();
    }
    pub fn set(&self, t: Instant) {
        self.0.millis.store(t.millis(), Ordering::SeqCst);
        self.0.moved.notify_waiters();
    }
    /// From now on a sleeper waits for the test to move the clock instead of moving it itself.
    pub fn hold_sleepers(&self) {
        self.0.hold.store(true, Ordering::SeqCst);
    }
    /// How many [`Clock::sleep_until`] calls are waiting (only while sleepers are held).
    pub fn sleepers(&self) -> usize {
        self.0.sleepers.load(Ordering::SeqCst)
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        Instant(self.0.millis.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Box::pin(async move {
            if !self.0.hold.load(Ordering::SeqCst) {
                self.0.millis.fetch_max(deadline.millis(), Ordering::SeqCst);
                self.0.moved.notify_waiters();
                return;
            }
            let _counted = Sleeper::new(&self.0);
            loop {
                let moved = self.0.moved.notified();
                tokio::pin!(moved);
                // Registered before the check, so a move between the two is not missed.
                moved.as_mut().enable();
                if self.now() >= deadline {
                    break;
                }
                moved.await;
            }
        })
    }
}

/// Counts a sleeper for as long as it waits, even when its future is dropped midway.
struct Sleeper<'a>(&'a Fake);

impl<'a> Sleeper<'a> {
    fn new(fake: &'a Fake) -> Self {
        fake.sleepers.fetch_add(1, Ordering::SeqCst);
        Sleeper(fake)
    }
}

impl Drop for Sleeper<'_> {
    fn drop(&mut self) {
        self.0.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Shared handle to whichever clock the application runs on.
pub type SharedClock = Arc<dyn Clock>;
