//! Production-readiness tests (issue 5): CORS, cookie mode and its origin check, TLS, sign-in
//! throttling, transport limits, security headers, graceful shutdown, metrics and logs. Each
//! test starts the real server on 127.0.0.1:0 with its own SQLite file and a FakeClock.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not this binary's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cookie;
mod cors;
mod helpers;
mod limits;
mod logs;
mod metrics;
mod shutdown;
mod throttle;
mod tls;
