//! jwtd end to end: one test binary (STYLE §7), a module per endpoint group or concern, all on
//! the one harness in `helpers.rs`. Every test starts the real server on 127.0.0.1:0 with its
//! own SQLite file and a `FakeClock`, or runs the `jwtd` binary.

// A test fails by panicking; clippy's allow-*-in-tests covers #[test] fns, not their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod account;
mod blacklist;
mod body;
mod cli;
mod cookie;
mod cors;
mod dropin;
mod expiry;
mod fallbacks;
mod health;
mod keys;
mod lean_verifier;
mod library;
mod limits;
mod logs;
mod me;
mod metrics;
mod obtain;
mod race;
mod recovery;
mod refresh;
mod remote;
mod rotation;
mod routes;
mod schema;
mod security;
mod services;
mod sessions;
mod shutdown;
mod signup;
mod sliding;
mod throttle;
mod tls;
mod token_classes;
mod verify;
