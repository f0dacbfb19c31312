//! LOGIN_RATE: failed sign-ins allowed per username and, separately, per client address, in a
//! sliding window. Memory stays bounded: each map holds at most `MAX_KEYS` keys, and stale
//! keys are dropped first when it is full.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::clock::Instant;
use crate::config::Rate;

const MAX_KEYS: usize = 100_000;

/// Sign-in refused for `wait_secs` more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub wait_secs: u64,
}

#[derive(Debug)]
pub struct LoginThrottle {
    rate: Option<Rate>,
    users: Mutex<Window>,
    addrs: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window(HashMap<String, VecDeque<Instant>>);

impl Window {
    fn wait(&mut self, key: &str, rate: Rate, now: Instant) -> Option<u64> {
        let failures = self.0.get_mut(key)?;
        let window_start = now.minus(rate.per);
        while failures.front().is_some_and(|t| *t <= window_start) {
            failures.pop_front();
        }
        if failures.len() < rate.count as usize {
            if failures.is_empty() {
                self.0.remove(key);
            }
            return None;
        }
        let oldest = failures.front()?;
        let free_at = oldest.plus(rate.per);
        let wait_ms = (free_at.millis() - now.millis()).max(1);
        Some((wait_ms as u64).div_ceil(1000))
    }

    fn record(&mut self, key: &str, rate: Rate, now: Instant) {
        if !self.0.contains_key(key) && self.0.len() >= MAX_KEYS {
            let window_start = now.minus(rate.per);
            self.0.retain(|_, f| f.back().is_some_and(|t| *t > window_start));
            if self.0.len() >= MAX_KEYS {
                if let Some(victim) = self.0.keys().next().cloned() {
                    self.0.remove(&victim);
                }
            }
        }
        let failures = self.0.entry(key.to_string()).or_default();
        failures.push_back(now);
        while failures.len() > rate.count as usize {
            failures.pop_front();
        }
    }
}

impl LoginThrottle {
    pub fn new(rate: Option<Rate>) -> Self {
        LoginThrottle { rate, users: Mutex::default(), addrs: Mutex::default() }
    }

    /// Fails when either the username or the address has used up its failures.
    pub fn check(&self, username: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let Some(rate) = self.rate else { return Ok(()) };
        let mut wait = self.users.lock().ok().and_then(|mut w| w.wait(username, rate, now));
        if let Some(addr) = addr {
            let by_addr = self.addrs.lock().ok().and_then(|mut w| w.wait(&addr.to_string(), rate, now));
            wait = wait.max(by_addr);
        }
        match wait {
            Some(wait_secs) => Err(Throttled { wait_secs }),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str, addr: Option<IpAddr>, now: Instant) {
        let Some(rate) = self.rate else { return };
        if let Ok(mut w) = self.users.lock() {
            w.record(username, rate, now);
        }
        if let (Some(addr), Ok(mut w)) = (addr, self.addrs.lock()) {
            w.record(&addr.to_string(), rate, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn third_failure_throttles_until_the_window_passes() {
        let t = LoginThrottle::new(Some(Rate { count: 3, per: Duration::from_secs(60) }));
        let start = Instant::from_secs(1000);
        for i in 0..3 {
            assert!(t.check("ada", None, start.plus(Duration::from_secs(i))).is_ok());
            t.record_failure("ada", None, start.plus(Duration::from_secs(i)));
        }
        let now = start.plus(Duration::from_secs(10));
        assert_eq!(t.check("ada", None, now), Err(Throttled { wait_secs: 50 }));
        assert!(t.check("bob", None, now).is_ok());
        assert!(t.check("ada", None, start.plus(Duration::from_secs(61))).is_ok());
    }

    #[test]
    fn address_is_limited_separately() {
        let t = LoginThrottle::new(Some(Rate { count: 2, per: Duration::from_secs(60) }));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::from_secs(1000);
        t.record_failure("a", Some(ip), now);
        t.record_failure("b", Some(ip), now);
        assert!(t.check("c", Some(ip), now).is_err());
        assert!(t.check("c", None, now).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::new(Some(Rate { count: 5, per: Duration::from_secs(60) }));
        let now = Instant::from_secs(1000);
        for i in 0..(MAX_KEYS + 10) {
            t.record_failure(&format!("user{i}"), None, now);
        }
        assert!(t.users.lock().unwrap().0.len() <= MAX_KEYS);
    }
}
