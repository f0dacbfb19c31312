//! Where log lines go: appended to a shared buffer that a background thread writes to stderr
//! every few milliseconds, so a request never waits on a write(2) nor wakes a thread per line.
//! Nothing is dropped: past a high-water mark the logger writes the buffer out itself.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in the buffer before the background thread writes it.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Past this many buffered bytes, the thread logging a line writes the buffer out before going
/// on: a logger that outruns stderr slows down rather than growing memory or losing lines.
const HIGH_WATER: usize = 256 * 1024;

/// Buffers are kept between writes up to this capacity; a burst's bigger one is given back.
const KEEP_CAPACITY: usize = 64 * 1024;

pub(super) struct Sink {
    /// Lines not yet handed to the writer.
    pending: Mutex<Vec<u8>>,
    /// The buffer being written; its lock also keeps writes in the order lines were appended.
    writing: Mutex<Vec<u8>>,
    stop: AtomicBool,
    /// No writer thread could be started: every append writes out at once.
    unattended: AtomicBool,
    /// stderr, but for tests.
    output: fn(&[u8]),
}

fn lock(m: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    // A panic while holding either lock leaves a buffer of whole lines: still fine to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink {
    pub(super) fn stderr() -> Arc<Sink> {
        Sink::to(|lines| {
            // Nowhere to report a failed write of the log itself; the lines are dropped.
            let _ = std::io::stderr().lock().write_all(lines);
        })
    }

    fn to(output: fn(&[u8])) -> Arc<Sink> {
        Arc::new(Sink {
            pending: Mutex::new(Vec::with_capacity(KEEP_CAPACITY)),
            writing: Mutex::new(Vec::with_capacity(KEEP_CAPACITY)),
            stop: AtomicBool::new(false),
            unattended: AtomicBool::new(false),
            output,
        })
    }

    /// Appends one or more whole lines.
    pub(super) fn append(&self, lines: &[u8]) {
        self.append_with(|pending| pending.extend_from_slice(lines));
    }

    /// Formats a line straight into the buffer (`line` must end it with `\n`).
    pub(super) fn append_with(&self, line: impl FnOnce(&mut Vec<u8>)) {
        let full = {
            let mut pending = lock(&self.pending);
            line(&mut pending);
            pending.len() >= HIGH_WATER || self.unattended.load(Ordering::Relaxed)
        };
        if full {
            self.flush();
        }
    }

    /// Writes out everything appended so far.
    pub(super) fn flush(&self) {
        let mut out = lock(&self.writing);
        std::mem::swap(&mut *out, &mut *lock(&self.pending));
        if out.is_empty() {
            return;
        }
        (self.output)(&out);
        out.clear();
        out.shrink_to(KEEP_CAPACITY);
    }

    /// The background writer: flushes every [`FLUSH_EVERY`] until [`LogGuard`] stops it. If
    /// the thread cannot be started, loggers write their lines out themselves.
    pub(super) fn spawn_writer(self: &Arc<Self>) -> LogGuard {
        let sink = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("jwtd-log".into()).spawn(move || {
            while !sink.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(FLUSH_EVERY);
                sink.flush();
            }
        });
        if spawned.is_err() {
            self.unattended.store(true, Ordering::Relaxed);
        }
        LogGuard { sink: Arc::clone(self), thread: spawned.ok() }
    }
}

/// Keeps the log writer running; dropping it writes out the lines still buffered and stops it.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    sink: Arc<Sink>,
    thread: Option<JoinHandle<()>>,
}

impl LogGuard {
    /// A guard with no writer thread (logging was already set up): dropping it only flushes.
    pub(super) fn inert(sink: Arc<Sink>) -> LogGuard {
        LogGuard { sink, thread: None }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.sink.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.sink.flush();
    }
}

/// The `io::Write` tracing-subscriber formats events into: each event arrives as one whole
/// line in one `write_all`, appended as it comes.
#[derive(Clone)]
pub(super) struct SinkWriter(pub(super) Arc<Sink>);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SinkWriter {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> SinkWriter {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn capture(lines: &[u8]) {
        lock(&WRITTEN).extend_from_slice(lines);
    }

    #[test]
    fn lines_come_out_whole_in_order_and_a_full_buffer_is_written_by_its_logger() {
        let sink = Sink::to(capture);
        sink.append(b"one\n");
        sink.append_with(|b| b.extend_from_slice(b"two\n"));
        assert!(lock(&WRITTEN).is_empty(), "nothing is written before a flush or the high-water mark");
        sink.flush();
        assert_eq!(&*lock(&WRITTEN), b"one\ntwo\n");
        let mut big = vec![b'x'; HIGH_WATER];
        big.push(b'\n');
        sink.append(&big);
        assert_eq!(lock(&WRITTEN).len(), 8 + big.len(), "past the high-water mark the logger writes");
        assert!(lock(&sink.pending).is_empty());
        assert!(lock(&sink.writing).capacity() <= KEEP_CAPACITY, "a burst's buffer is given back");

        sink.append(b"three\n");
        drop(sink.spawn_writer());
        assert!(lock(&WRITTEN).ends_with(b"x\nthree\n"), "dropping the guard writes what is left");
    }
}
