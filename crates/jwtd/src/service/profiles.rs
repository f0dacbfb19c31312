//! The profiles `GET /api/me/` answers with, kept in memory so that the protected route most
//! clients call on every screen costs no database read (issue: per-core efficiency; the read was a
//! quarter of the request's CPU).
//!
//! A cached profile is never the basis of a security decision: whether a token is accepted is the
//! `Verifier`'s (signature, times, the per-user "valid after" map that deactivation, deletion,
//! password changes and logout-all move forward, and revoked sessions), decided before the profile
//! is looked at. What the cache holds is what `/api/me/` shows (and its `is_active`, checked again
//! there). It stays in step:
//! - with this instance's own writes at once: the use cases that change a profile (sign-in's
//!   `last_login`, sign-up, activation, every revocation) call [`Profiles::forget`];
//! - with every instance's revocations within a poll: `app`'s revocation poll forgets the user
//!   of every row it reads;
//! - with other changes made elsewhere (another instance's sign-in writing `last_login`, the CLI
//!   activating a user or importing a profile) within [`Profiles::FRESH_FOR`]: an entry read
//!   longer ago than that is read again.
//!
//! A read racing a change never leaves the old profile behind: every forget counts a change,
//! and a profile read while a change was counted is not kept.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use jwtd_proto::UserId;

use crate::clock::Instant;
use crate::store::Profile;

/// Recently read profiles by the id tokens carry.
#[derive(Debug, Default)]
pub struct Profiles {
    entries: DashMap<UserId, Entry>,
    /// Forgets so far: a read that saw another count at its start than at its end is not kept.
    changes: AtomicU64,
    /// When a full cache last dropped its stale entries (milliseconds): it sweeps at most once
    /// per [`Profiles::FRESH_FOR`], so a cache full of fresh entries costs a miss no scan.
    swept_at: AtomicI64,
}

#[derive(Debug, Clone)]
struct Entry {
    profile: Arc<Profile>,
    read_at: Instant,
}

/// Where a read of a profile started: [`Profiles::keep`] takes it back.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart(u64);

impl Profiles {
    /// How long a profile is answered from memory before it is read again.
    pub const FRESH_FOR: Duration = Duration::from_secs(1);
    /// Most profiles kept; when full, the ones older than [`Profiles::FRESH_FOR`] go first (at most
    /// one sweep per that time), and a new one is not kept while the cache stays full.
    pub const CAPACITY: usize = 10_000;

    /// The profile of `user` read at most [`Profiles::FRESH_FOR`] before `now`.
    pub fn get(&self, user: UserId, now: Instant) -> Option<Arc<Profile>> {
        let entry = self.entries.get(&user)?;
        fresh(&entry, now).then(|| entry.profile.clone())
    }

    /// To be called before reading a profile from the store.
    pub fn start_read(&self) -> ReadStart {
        ReadStart(self.changes.load(Ordering::Acquire))
    }

    /// Keeps `profile`, read from the store since `start` at `now`, unless a change was counted
    /// meanwhile (it may predate the change).
    pub fn keep(&self, user: UserId, profile: Arc<Profile>, start: ReadStart, now: Instant) {
        if self.entries.len() >= Self::CAPACITY {
            let last = self.swept_at.load(Ordering::Relaxed);
            let due = now.millis().saturating_sub(last) >= Self::FRESH_FOR.as_millis() as i64;
            if !due || self.swept_at.compare_exchange(last, now.millis(), Ordering::AcqRel, Ordering::Relaxed).is_err()
            {
                return;
            }
            self.entries.retain(|_, entry| fresh(entry, now));
            if self.entries.len() >= Self::CAPACITY {
                return;
            }
        }
        self.entries.insert(user, Entry { profile, read_at: now });
        // A forget between `start` and here may have run before the insert: undo it.
        if self.changes.load(Ordering::Acquire) != start.0 {
            self.entries.remove(&user);
        }
    }

    /// Drops what is known of `user`'s profile: it changed, or may have.
    pub fn forget(&self, user: UserId) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(&user);
    }
}

fn fresh(entry: &Entry, now: Instant) -> bool {
    now.millis().saturating_sub(entry.read_at.millis()) < Profiles::FRESH_FOR.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(username: &str) -> Arc<Profile> {
        Arc::new(Profile {
            username: username.into(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: Instant::from_millis(0),
            last_login: None,
        })
    }

    const ADA: UserId = UserId::Int(1);

    #[test]
    fn a_profile_is_answered_until_it_is_a_second_old() {
        let profiles = Profiles::default();
        let t0 = Instant::from_millis(10_000);
        profiles.keep(ADA, profile("ada"), profiles.start_read(), t0);
        assert_eq!(profiles.get(ADA, Instant::from_millis(10_999)).unwrap().username, "ada");
        assert!(profiles.get(ADA, Instant::from_millis(11_000)).is_none());
        assert!(profiles.get(UserId::Int(2), t0).is_none());
    }

    #[test]
    fn a_forgotten_profile_is_read_again() {
        let profiles = Profiles::default();
        let t0 = Instant::from_millis(10_000);
        profiles.keep(ADA, profile("ada"), profiles.start_read(), t0);
        profiles.forget(ADA);
        assert!(profiles.get(ADA, t0).is_none());
    }

    #[test]
    fn a_read_that_a_change_overtook_is_not_kept() {
        let profiles = Profiles::default();
        let t0 = Instant::from_millis(10_000);
        let start = profiles.start_read();
        // The change commits and is forgotten while the read is under way (it read the old row).
        profiles.forget(ADA);
        profiles.keep(ADA, profile("old"), start, t0);
        assert!(profiles.get(ADA, t0).is_none());
        // A read started after it is kept.
        profiles.keep(ADA, profile("new"), profiles.start_read(), t0);
        assert_eq!(profiles.get(ADA, t0).unwrap().username, "new");
    }

    #[test]
    fn a_full_cache_drops_its_stale_entries_first_and_keeps_no_more_than_its_capacity() {
        let profiles = Profiles::default();
        let t0 = Instant::from_millis(10_000);
        for id in 0..Profiles::CAPACITY as i64 {
            profiles.keep(UserId::Int(id), profile("u"), profiles.start_read(), t0);
        }
        // Every entry fresh: a new one is not kept.
        let extra = UserId::Int(-1);
        profiles.keep(extra, profile("x"), profiles.start_read(), t0);
        assert!(profiles.get(extra, t0).is_none());
        assert_eq!(profiles.entries.len(), Profiles::CAPACITY);
        // A second on, all are stale: they go, the new one stays.
        let later = Instant::from_millis(11_000);
        profiles.keep(extra, profile("x"), profiles.start_read(), later);
        assert!(profiles.get(extra, later).is_some());
        assert_eq!(profiles.entries.len(), 1);
    }
}
