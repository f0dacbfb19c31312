//! The jwtd API end to end: one test binary (STYLE §7), a module per endpoint group. Every test
//! starts the real server on 127.0.0.1:0 with its own SQLite file and a `FakeClock`.

// A test fails by panicking; clippy's allow-*-in-tests covers #[test] fns, not their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod account;
mod blacklist;
mod body;
mod cli;
mod expiry;
mod health;
mod me;
mod obtain;
mod properties;
mod race;
mod refresh;
mod rotation;
mod schema;
mod signup;
mod sliding;
mod throttle;
mod verify;
