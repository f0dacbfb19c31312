//! The client against the real jwtd router, in process, one server per test.

// clippy's allow-unwrap-in-tests covers #[test] functions only; the helpers are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cookie;
mod failures;
mod helpers;
mod rotation;
mod session;
