//! jwtd: a JWT authentication server and library, wire-compatible with Django REST Framework +
//! SimpleJWT (see SPEC.md).
//!
//! Mount the API inside another axum application with [`build_state`] and [`router`], or
//! authenticate your own routes with the [`AuthUser`] extractor, which verifies a request's
//! Bearer access token without a database round trip. A service that is not jwtd verifies
//! jwtd's asymmetric tokens with [`service::Verifier::remote`], from the public keys at jwtd's
//! JWKS URL, holding no secret. [`Application`] runs the whole server, as `jwtd serve` does.
//!
//! That, with the types their signatures name ([`Settings`] and its field types in [`config`],
//! [`Deps`] and the [`clock`]), is the library's surface; everything else is the crate's own.
//!
//! Layers, each using only those before it: `clock` → `tokens`, `password` → `config` →
//! `store`, `telemetry` → `service` → `http` → `app` → `cli`.

mod app;
mod cli;
pub mod config;
pub mod http;
mod password;
pub mod service;
mod store;
mod telemetry;
#[doc(hidden)]
pub mod testing;

/// The clock and the tokens are `jwtd-verify`'s, the verification core jwtd shares with other
/// services.
pub use jwtd_verify::{clock, tokens};

pub use app::{build_state, Application, Background, CertReloader, Deps, StartError};
#[doc(hidden)]
pub use cli::main as command_line;
pub use config::Settings;
pub use http::{router, AppState, AuthUser};
pub use jwtd_proto::UserId;
pub use password::Hasher;
pub use store::StoreError;
