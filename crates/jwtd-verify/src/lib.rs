//! Verify jwtd's (and SimpleJWT's) tokens in any axum/tower service, without a database and
//! without the rest of jwtd: a [`VerifyLayer`], the [`AuthUser`] extractor (and
//! `Option<AuthUser>`, and [`AuthClaims<T>`] for typed custom claims), [`RequireClaims`] guards,
//! keys from a shared HMAC secret ([`Verifier::hmac`]) or jwtd's JWKS URL ([`Verifier::remote`],
//! [`RemoteKeys`]), and revocations from jwtd's feed ([`RevocationFeed`]). Refusals answer as
//! SimpleJWT does (SPEC §2; the texts are `jwtd_proto::messages`).
//!
//! This is the verification core jwtd itself runs: its routes authenticate with this crate's
//! [`Verifier`] and [`AuthUser`].
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use jwtd_verify::{AuthUser, RevocationFeed, Verifier, VerifyLayer};
//!
//! async fn me(user: AuthUser) -> String {
//!     format!("hello, user {}", user.user_id)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The SIGNING_KEY jwtd signs with (HS256, SimpleJWT's default).
//! let verifier = Verifier::hmac(b"the SIGNING_KEY of jwtd, 32 bytes or more")?;
//! // Revocations (logout-all, password change, revoked sessions) from jwtd, every second.
//! let feed = RevocationFeed::new("https://auth.example/api/token/revocations/", "a service token", verifier.clone())?;
//! feed.poll().await?;
//! feed.spawn(jwtd_verify::feed::DEFAULT_POLL);
//! let app: Router = Router::new()
//!     .route("/api/me/", get(me))
//!     .layer(VerifyLayer::new(verifier.clone()))
//!     .with_state(verifier);
//! # let _ = app; Ok(()) }
//! ```

pub mod clock;
mod extract;
pub mod feed;
mod fetch;
mod layer;
mod refusal;
mod remote_keys;
pub mod tokens;
mod verifier;

pub use extract::{authenticate, bearer, AuthClaims, AuthUser};
pub use feed::{FeedError, RevocationFeed};
pub use fetch::FetchError;
pub use jwtd_proto::UserId;
pub use layer::{Check, Checked, CheckedFuture, Guarded, RequireClaims, Verdict, Verify, VerifyLayer};
pub use refusal::{WWW_AUTHENTICATE, WWW_AUTHENTICATE_INSUFFICIENT_SCOPE};
pub use remote_keys::{RemoteKeys, RemoteKeysError, RemoteOptions, MAX_JWKS_BYTES};
pub use tokens::{Claims, TokenError, TokenType};
pub use verifier::{revoked_by_user, session_of, AccessClaims, BearerError, Verifier};
