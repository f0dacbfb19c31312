//! Password hashing off the async runtime, on a bounded pool of dedicated threads, one per core.
//! Jobs queue without holding a runtime thread, so a flood of sign-ins never starves the request
//! workers that serve refresh and verify. Fixed threads also bound memory: each argon2id hash
//! takes 19 MiB, which a thread keeps for the next job while jobs are waiting and gives back
//! when there are none; so the pool holds at most threads × 19 MiB, and nothing when idle.

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};

use tokio::sync::oneshot;

use crate::password::{Hasher, PasswordHash, Scratch};

type Job = Box<dyn FnOnce(&Hasher, &mut Scratch) + Send>;

/// Jobs waiting beyond this many are refused rather than queued without bound.
const QUEUE: usize = 4096;

#[derive(Debug, Clone)]
pub struct PasswordPool {
    jobs: Sender<Job>,
    /// Checked against when the user does not exist, so that costs the same as a wrong password.
    dummy: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed")]
    Failed,
    #[error("too many password hashes are waiting")]
    Busy,
}

fn work(hasher: Hasher, jobs: Receiver<Job>) {
    let mut scratch = Scratch::default();
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Empty) => {
                scratch = Scratch::default(); // nothing waiting: give the memory back
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => return, // every sender is gone: the application stopped
        };
        job(&hasher, &mut scratch);
    }
}

impl PasswordPool {
    pub fn new(hasher: Hasher) -> Result<Self, HashError> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let (tx, rx) = bounded::<Job>(QUEUE);
        for i in 0..threads {
            let (hasher, rx) = (hasher.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("jwtd-hash-{i}"))
                .spawn(move || work(hasher, rx))
                .map_err(|_| HashError::Failed)?;
        }
        // The dummy hash is made on a worker, in the scratch memory it will reuse anyway.
        let (made, dummy) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |h, scratch| {
            let _ = made.send(h.hash("jwtd-dummy-password", scratch));
        });
        tx.send(job).map_err(|_| HashError::Failed)?;
        let dummy = dummy.recv().map_err(|_| HashError::Failed)?.map_err(|_| HashError::Failed)?;
        Ok(PasswordPool { jobs: tx, dummy: dummy.into() })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Hasher, &mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |h, scratch| {
            let _ = done.send(span.in_scope(|| f(h, scratch)));
        });
        self.jobs.try_send(job).map_err(|_| HashError::Busy)?;
        result.await.map_err(|_| HashError::Failed)
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |h, s| h.hash(&password, s)).await?.map_err(|_| HashError::Failed)
    }

    /// Checks `password` against `stored` (jwtd's argon2id or a Django hash), or against a dummy
    /// hash when there is no user or no usable hash, in the same time. Returns (matches, needs_rehash).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<(bool, bool), HashError> {
        let dummy = self.dummy.clone();
        self.run(move |h, s| {
            // An unusable or unknown stored hash costs a dummy check too, as Django's
            // verify_password does, so it cannot be told apart from a wrong password.
            let usable = stored.filter(|stored| match PasswordHash::parse(stored) {
                Ok(hash) => match hash.too_costly() {
                    Some(why) => {
                        // An imported hash asking for hours of work: refused, never computed.
                        tracing::warn!(scheme = hash.scheme(), why, "stored password hash refused as too costly");
                        false
                    }
                    None => hash.is_usable(),
                },
                Err(_) => false,
            });
            match usable {
                Some(stored) => {
                    let ok = h.verify(&password, &stored, s);
                    (ok, ok && h.needs_rehash(&stored))
                }
                None => {
                    let _ = h.verify(&password, &dummy, s);
                    (false, false)
                }
            }
        })
        .await
    }
}
