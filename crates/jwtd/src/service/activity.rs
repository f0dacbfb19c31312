//! When sessions were last used, kept off the refresh path's writes: a refresh notes its
//! session's time here (a lock held for one map insert), and `app`'s task writes the batch with
//! [`Store::touch_sessions`](crate::store::Store::touch_sessions) every
//! [`SessionActivity::FLUSH_EVERY`] (and once at shutdown). So a listed `last_used_at` is at most
//! that late, plus one flush's write; a refresh with rotation also writes its successor's row,
//! whose time the listing reads too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Sessions refreshed since the last flush, with the latest time of each.
#[derive(Debug, Default)]
pub struct SessionActivity {
    used: Mutex<HashMap<String, i64>>,
}

impl SessionActivity {
    /// How often the batch is written.
    pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
    /// At most this many sessions wait for a flush; a refresh of another one beyond it is not
    /// noted (its time is advisory: the next refresh after the flush notes it).
    pub const MAX_PENDING: usize = 100_000;

    /// Notes that `session` was used at `secs`.
    pub fn touch(&self, session: &str, secs: i64) {
        let mut used = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = used.get_mut(session) {
            *at = (*at).max(secs);
        } else if used.len() < Self::MAX_PENDING {
            used.insert(session.to_string(), secs);
        }
    }

    /// The sessions noted since the last call, emptying the batch.
    pub fn take(&self) -> Vec<(String, i64)> {
        let mut used = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *used).into_iter().collect()
    }

    /// Puts back a batch that could not be written (the database away), keeping later times.
    pub fn restore(&self, batch: Vec<(String, i64)>) {
        for (session, secs) in batch {
            self.touch(&session, secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_keeps_the_latest_time_of_each_session_and_empties_when_taken() {
        let activity = SessionActivity::default();
        activity.touch("a", 10);
        activity.touch("a", 5);
        activity.touch("b", 7);
        let mut batch = activity.take();
        batch.sort();
        assert_eq!(batch, [("a".to_string(), 10), ("b".to_string(), 7)]);
        assert!(activity.take().is_empty());
        activity.touch("a", 12);
        activity.restore(batch);
        let mut again = activity.take();
        again.sort();
        assert_eq!(again, [("a".to_string(), 12), ("b".to_string(), 7)]);
    }
}
