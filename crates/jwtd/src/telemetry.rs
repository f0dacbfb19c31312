//! Logging: a tracing subscriber writing text or JSON lines to stderr, filtered by RUST_LOG
//! (default `info`). Nothing here ever sees a token, password or key: callers log fields, and
//! the request layer logs method, route, status and latency only. Prometheus counters live in
//! [`Metrics`].

mod access;
mod metrics;
mod sink;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use access::request;
pub use metrics::{Metrics, Rejection, TokenKind};
pub use sink::LogGuard;

use crate::config::LogFormat;
use sink::{Sink, SinkWriter};

/// Installs the global subscriber; a second call (tests) is a no-op. Lines are buffered and
/// written to stderr by a background thread within milliseconds; keep the guard until the
/// process ends: dropping it writes out the lines still buffered.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let sink = Sink::stderr();
    let ansi = std::io::stderr().is_terminal();
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(SinkWriter(sink.clone()));
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_err() {
        return LogGuard::inert(sink);
    }
    if !ansi {
        // With colours, request lines go through the formatter so they are coloured alike.
        access::write_directly(sink.clone(), format);
    }
    sink.spawn_writer()
}
