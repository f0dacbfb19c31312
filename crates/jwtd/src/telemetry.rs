//! Logging: a tracing subscriber writing text or JSON lines to stderr, filtered by RUST_LOG
//! (default `info`). Nothing here ever sees a token, password or key: callers log fields, and
//! the request layer logs method, route, status and latency only. Prometheus counters live in
//! [`Metrics`].

mod metrics;

use tracing_subscriber::EnvFilter;

pub use metrics::{Metrics, Rejection, TokenKind};

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
