//! jwtd: a JWT authentication server and library, wire-compatible with Django REST Framework +
//! SimpleJWT (see SPEC.md).
//!
//! Mount the API inside another axum application with [`build_state`] and [`router`], or
//! authenticate your own routes with the [`AuthUser`] extractor, which verifies a request's
//! Bearer access token without a database round trip. A service that is not jwtd verifies
//! jwtd's asymmetric tokens with [`service::Verifier::remote`], from the public keys at jwtd's
//! JWKS URL, holding no secret.
//!
//! Layers, each using only those before it: `clock` → `tokens`, `password` → `config` →
//! `store`, `telemetry` → `service` → `http` → `app` → `cli`.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod password;
pub mod service;
pub mod store;
pub mod telemetry;

/// The clock and the tokens are `jwtd-verify`'s, the verification core jwtd shares with other
/// services.
pub use jwtd_verify::{clock, tokens};

pub use app::{build_state, Application, Deps};
pub use config::Settings;
pub use http::{router, AppState, AuthUser};
pub use jwtd_proto::UserId;
