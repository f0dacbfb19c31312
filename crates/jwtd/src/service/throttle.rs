//! Rate limits that reserve before they check: LOGIN_RATE (failed sign-ins and failed
//! old-password checks, per username and, separately, per client address) and SIGNUP_RATE
//! (sign-ups per client address), each a sliding window of timestamps per key.
//!
//! **Reserve, then check.** [`Throttle::reserve`] counts the attempt under the same lock that
//! reads the window, before the password is checked, so N concurrent attempts against a rate of
//! `count` check at most `count` passwords (DRF's throttles, and jwtd's before, were
//! check-then-record: every attempt in flight passed the check before the first failure was
//! recorded). The [`Reservation`] it returns is kept as a failure by [`Reservation::failed`] and
//! released by [`Reservation::succeeded`]; dropped without a verdict (the hash pool answered
//! busy, the store was down, the client went away) it is released too, because whoever sent it
//! learnt nothing about the password.
//!
//! **Keys.** A key is a 16-byte SHA-256 digest of what it counts, salted per process: a
//! username of any length (up to MAX_BODY_BYTES) costs 16 bytes, and nobody outside the process
//! can aim two names at one counter. IPv6 addresses count per /64 (one host usually owns a whole
//! /64, so counting single addresses would give it 2^64 budgets); IPv4-mapped IPv6 addresses
//! count as their IPv4 address.
//!
//! **Bounded memory without resetting anyone's counter.** The map holds at most `max_keys`
//! keys and `max_stamps` timestamps in all. Evicting a live counter to make room would let an
//! attacker reset a victim's limit by flooding fresh usernames, so a full map never evicts a
//! live counter: it first drops counters whose window has passed (a few per reservation, oldest
//! created first, so the cost stays constant), and when every counter is still live it refuses
//! attempts for keys it does not hold (fail closed: 429 until a window passes). Keys it holds
//! keep their exact count. Only failures occupy the map (a success removes its reservation, an
//! empty counter is removed), so filling it takes `max_keys` failed password checks within one
//! window, which the hash pool's throughput bounds.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::clock::Instant;
use crate::config::Rate;

/// Most keys one throttle holds.
const MAX_KEYS: usize = 100_000;
/// Most timestamps one throttle holds, over all its keys (8 bytes each).
const MAX_STAMPS: usize = 1_000_000;
/// Stale counters dropped at most per reservation while the map is full.
const SWEEP_PER_RESERVE: usize = 8;

/// Refused for `wait_secs` more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub wait_secs: u64,
}

/// What an attempt is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A username as sent (or the username of a signed-in user).
    Username(&'a str),
    /// A client address (IPv6 grouped by /64).
    Addr(IpAddr),
}

/// A fixed-size, per-process salted digest of a [`Subject`].
type Key = [u8; 16];

/// One rate limit: a sliding window per key.
#[derive(Debug)]
pub struct Throttle {
    rate: Option<Rate>,
    salt: [u8; 16],
    max_keys: usize,
    max_stamps: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    windows: HashMap<Key, VecDeque<Instant>>,
    /// Keys in the order their counters were created, for the sweep of stale counters.
    created: VecDeque<Key>,
    stamps: usize,
}

impl State {
    /// Drops the timestamps of `key` that left the window; the counter too when empty.
    fn prune(&mut self, key: &Key, rate: Rate, now: Instant) {
        let window_start = now.minus(rate.per);
        let Some(stamps) = self.windows.get_mut(key) else { return };
        while stamps.front().is_some_and(|t| *t <= window_start) {
            stamps.pop_front();
            self.stamps -= 1;
        }
        if stamps.is_empty() {
            self.windows.remove(key);
        }
    }

    /// Drops up to [`SWEEP_PER_RESERVE`] stale counters, oldest created first. A live counter met
    /// on the way goes to the back of the line, so the next sweep looks at others.
    fn sweep(&mut self, rate: Rate, now: Instant) {
        for _ in 0..SWEEP_PER_RESERVE {
            let Some(key) = self.created.pop_front() else { return };
            self.prune(&key, rate, now);
            if self.windows.contains_key(&key) {
                self.created.push_back(key);
            }
        }
    }

    /// Keeps `created` about as long as the map: a key removed when its counter emptied (a
    /// success, a window passed) stays in the line until a sweep or this compaction meets it,
    /// and comes back when the key is counted again.
    fn compact(&mut self) {
        if self.created.len() <= 2 * self.windows.len() + 64 {
            return;
        }
        let mut seen = std::collections::HashSet::with_capacity(self.windows.len());
        let windows = &self.windows;
        self.created.retain(|k| windows.contains_key(k) && seen.insert(*k));
    }

    /// Seconds until `key` has a free slot, `None` when it has one now.
    fn wait(&self, key: &Key, rate: Rate, now: Instant) -> Option<u64> {
        let stamps = self.windows.get(key)?;
        if stamps.len() < rate.count as usize {
            return None;
        }
        let free_at = stamps.front()?.plus(rate.per);
        let wait_ms = (free_at.millis() - now.millis()).max(1);
        Some((wait_ms as u64).div_ceil(1000))
    }
}

impl Throttle {
    /// `rate`: `None` never throttles.
    pub fn new(rate: Option<Rate>) -> Self {
        Throttle::with_bounds(rate, MAX_KEYS, MAX_STAMPS)
    }

    fn with_bounds(rate: Option<Rate>, max_keys: usize, max_stamps: usize) -> Self {
        Throttle { rate, salt: rand::random(), max_keys, max_stamps, state: Mutex::default() }
    }

    fn key(&self, subject: Subject<'_>) -> Key {
        let mut hash = Sha256::new();
        hash.update(self.salt);
        match subject {
            Subject::Username(name) => {
                hash.update(b"u");
                hash.update(name.as_bytes());
            }
            Subject::Addr(addr) => {
                hash.update(b"a");
                match bucket(addr) {
                    IpAddr::V4(v4) => hash.update(v4.octets()),
                    IpAddr::V6(v6) => hash.update(v6.octets()),
                }
            }
        }
        let digest = hash.finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// Counts an attempt against every subject at once, or refuses it when any of them has no
    /// slot left (then nothing is counted). The wait is the longest of the refusing subjects'.
    pub fn reserve(self: &Arc<Self>, subjects: &[Subject<'_>], now: Instant) -> Result<Reservation, Throttled> {
        let Some(rate) = self.rate else {
            return Ok(Reservation { throttle: None, keys: Vec::new(), at: now });
        };
        let keys: Vec<Key> = subjects.iter().map(|s| self.key(*s)).collect();
        // A poisoned lock only means another attempt panicked mid-update; the counts are still
        // counts, so keep limiting rather than fail open.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for key in &keys {
            state.prune(key, rate, now);
            wait = wait.max(state.wait(key, rate, now));
        }
        if let Some(wait_secs) = wait {
            return Err(Throttled { wait_secs });
        }
        let new_keys = keys.iter().filter(|k| !state.windows.contains_key(*k)).count();
        if state.windows.len() + new_keys > self.max_keys || state.stamps + keys.len() > self.max_stamps {
            state.sweep(rate, now);
            if state.windows.len() + new_keys > self.max_keys || state.stamps + keys.len() > self.max_stamps {
                // Full of live counters: refuse until the oldest window can have passed.
                return Err(Throttled { wait_secs: rate.per.as_secs().max(1) });
            }
        }
        for key in &keys {
            let stamps = state.windows.entry(*key).or_default();
            if stamps.is_empty() {
                state.created.push_back(*key);
            }
            // `entry` again: the borrow of `stamps` ended with `created`'s push.
            state.windows.entry(*key).or_default().push_back(now);
            state.stamps += 1;
        }
        state.compact();
        Ok(Reservation { throttle: Some(self.clone()), keys, at: now })
    }

    /// Takes back one timestamp `at` of each key.
    fn release(&self, keys: &[Key], at: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            let Some(stamps) = state.windows.get_mut(key) else { continue };
            if let Some(i) = stamps.iter().rposition(|t| *t == at) {
                stamps.remove(i);
                state.stamps -= 1;
            }
            if state.windows.get(key).is_some_and(VecDeque::is_empty) {
                state.windows.remove(key);
            }
        }
    }

    #[cfg(test)]
    fn counted(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.windows.len(), state.stamps)
    }
}

/// The address an attempt is counted under: IPv6 by its /64, IPv4-mapped IPv6 as IPv4.
pub fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// An attempt counted by [`Throttle::reserve`]: a failure unless released.
#[derive(Debug)]
#[must_use = "an attempt is released when dropped; call failed() to count it"]
pub struct Reservation {
    throttle: Option<Arc<Throttle>>,
    keys: Vec<Key>,
    at: Instant,
}

impl Reservation {
    /// The attempt failed: it keeps counting until it leaves the window.
    pub fn failed(mut self) {
        self.throttle = None;
    }

    /// The attempt succeeded: it does not count.
    pub fn succeeded(self) {
        drop(self);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(throttle) = self.throttle.take() {
            throttle.release(&self.keys, self.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn throttle(count: u32) -> Arc<Throttle> {
        Arc::new(Throttle::new(Some(Rate { count, per: Duration::from_secs(60) })))
    }

    fn fail(t: &Arc<Throttle>, subjects: &[Subject<'_>], now: Instant) -> Result<(), Throttled> {
        t.reserve(subjects, now).map(Reservation::failed)
    }

    #[test]
    fn third_failure_throttles_until_the_window_passes() {
        let t = throttle(3);
        let start = Instant::from_secs(1000);
        for i in 0..3 {
            fail(&t, &[Subject::Username("ada")], start.plus(Duration::from_secs(i))).unwrap();
        }
        let now = start.plus(Duration::from_secs(10));
        assert_eq!(t.reserve(&[Subject::Username("ada")], now).err(), Some(Throttled { wait_secs: 50 }));
        assert!(t.reserve(&[Subject::Username("bob")], now).is_ok());
        assert!(t.reserve(&[Subject::Username("ada")], start.plus(Duration::from_secs(61))).is_ok());
    }

    #[test]
    fn reservations_in_flight_count_until_released() {
        let t = throttle(10);
        let now = Instant::from_secs(1000);
        let in_flight: Vec<_> = (0..10).map(|_| t.reserve(&[Subject::Username("ada")], now).unwrap()).collect();
        // The eleventh concurrent attempt is refused before any of the ten has been checked.
        assert!(t.reserve(&[Subject::Username("ada")], now).is_err());
        for r in in_flight {
            r.succeeded();
        }
        assert_eq!(t.counted(), (0, 0));
        assert!(t.reserve(&[Subject::Username("ada")], now).is_ok());
    }

    #[test]
    fn a_refused_attempt_counts_against_no_subject() {
        let t = throttle(1);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::from_secs(1000);
        fail(&t, &[Subject::Username("ada")], now).unwrap();
        assert!(t.reserve(&[Subject::Username("ada"), Subject::Addr(ip)], now).is_err());
        assert!(t.reserve(&[Subject::Addr(ip)], now).is_ok());
    }

    #[test]
    fn address_is_limited_separately_and_ipv6_per_64() {
        let t = throttle(2);
        let now = Instant::from_secs(1000);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        fail(&t, &[Subject::Username("a"), Subject::Addr(a)], now).unwrap();
        fail(&t, &[Subject::Username("b"), Subject::Addr(b)], now).unwrap();
        assert!(t.reserve(&[Subject::Username("c"), Subject::Addr(a)], now).is_err());
        assert!(t.reserve(&[Subject::Username("c"), Subject::Addr(other)], now).is_ok());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(bucket(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn a_full_map_refuses_new_keys_and_keeps_every_live_count() {
        let t = Arc::new(Throttle::with_bounds(Some(Rate { count: 3, per: Duration::from_secs(60) }), 100, 10_000));
        let now = Instant::from_secs(1000);
        fail(&t, &[Subject::Username("victim")], now).unwrap();
        fail(&t, &[Subject::Username("victim")], now).unwrap();
        for i in 0..500 {
            let _ = fail(&t, &[Subject::Username(&format!("flood{i}"))], now);
        }
        assert_eq!(t.counted().0, 100);
        // The victim's counter survived the flood: one attempt left, then throttled.
        fail(&t, &[Subject::Username("victim")], now).unwrap();
        assert!(t.reserve(&[Subject::Username("victim")], now).is_err());
        // Once the window passed, stale counters make room again.
        let later = now.plus(Duration::from_secs(61));
        assert!(t.reserve(&[Subject::Username("newcomer")], later).is_ok());
    }

    #[test]
    fn long_usernames_cost_a_fixed_size_key() {
        let t = throttle(1);
        let now = Instant::from_secs(1000);
        let long = "x".repeat(65536);
        fail(&t, &[Subject::Username(&long)], now).unwrap();
        assert!(t.reserve(&[Subject::Username(&long)], now).is_err());
        assert_eq!(t.counted(), (1, 1));
    }

    #[test]
    fn off_never_throttles() {
        let t = Arc::new(Throttle::new(None));
        let now = Instant::from_secs(1000);
        for _ in 0..100 {
            fail(&t, &[Subject::Username("ada")], now).unwrap();
        }
    }
}
