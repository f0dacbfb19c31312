//! Logging: a tracing subscriber writing text or JSON lines to stderr, filtered by RUST_LOG
//! (default `info`). Nothing here ever sees a token, password or key: callers log fields, and
//! the request layer logs method, route, status and latency only. Prometheus counters live in
//! [`Metrics`].

mod metrics;

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

pub use metrics::{Metrics, Rejection, TokenKind};

use crate::config::LogFormat;

/// Lines written to stderr by a background thread, so a request never waits on the write(2) of
/// its log line; flushed when the guard drops. When that thread falls behind by this many lines,
/// loggers wait for it rather than lose lines.
const BUFFERED_LINES: usize = 64 * 1024;

/// The thread gathers the lines queued since its last write into one write(2) of up to this many
/// bytes; it flushes whenever the queue runs empty, so a line never waits for the next one.
const WRITE_BUFFER: usize = 64 * 1024;

/// Installs the global subscriber; a second call (tests) is a no-op. Keep the guard until the
/// process ends: dropping it writes out the lines still buffered.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(BufWriter::with_capacity(WRITE_BUFFER, std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}
