//! Tokens as SimpleJWT writes and reads them: claims, signing and verification (SPEC §3).
//!
//! PURE: no I/O, no clock. Time arrives as an argument, keys as bytes. HMAC signatures are made
//! and checked with the `hmac` crate over a key prepared once, public-key ones with jsonwebtoken;
//! the pinned algorithm, the time-based and SimpleJWT-specific checks are ours, so that they
//! use the injected `now` and yield SimpleJWT's exact failure reasons.
//! Asymmetric keys (PEM, JWK, thumbprints, generation) are in [`keys`].

mod claims;
mod codec;
pub mod keys;

pub use claims::{Claims, TokenType};
pub use codec::{verify, Algorithm, Codec, KeySet, Policy};
pub use keys::{KeyError, KeyKind, PrivateKey, PublicKey};

use thiserror::Error;

/// Why a presented token was refused. `message()` is SimpleJWT's wording (in
/// `jwtd_proto::messages`), used in the `messages` list of a refused Bearer token.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("signature or algorithm mismatch")]
    BadSignature,
    #[error("the header names a critical extension jwtd does not implement")]
    UnsupportedCritical,
    #[error("no known key has the token's kid")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("audience or issuer mismatch")]
    WrongAudienceOrIssuer,
    #[error("a claim has the wrong type")]
    BadClaim,
    #[error("token has no exp claim")]
    NoExp,
    #[error("token has no jti claim")]
    NoId,
    #[error("token has no token_type claim")]
    NoType,
    #[error("token has the wrong type")]
    WrongType,
    #[error("token could not be encoded")]
    Encode,
}

impl TokenError {
    /// SimpleJWT 5.5's message for this failure.
    pub fn message(&self) -> &'static str {
        use jwtd_proto::messages::{
            TOKEN_EXPIRED, TOKEN_IS_INVALID, TOKEN_NO_EXP, TOKEN_NO_ID, TOKEN_NO_TYPE, TOKEN_WRONG_TYPE,
        };
        match self {
            TokenError::Expired => TOKEN_EXPIRED,
            TokenError::NoExp => TOKEN_NO_EXP,
            TokenError::NoId => TOKEN_NO_ID,
            TokenError::NoType => TOKEN_NO_TYPE,
            TokenError::WrongType => TOKEN_WRONG_TYPE,
            TokenError::Malformed
            | TokenError::BadSignature
            | TokenError::UnsupportedCritical
            | TokenError::UnknownKey
            | TokenError::NotYetValid
            | TokenError::WrongAudienceOrIssuer
            | TokenError::BadClaim
            | TokenError::Encode => TOKEN_IS_INVALID,
        }
    }
}

/// Whole seconds of a duration, saturating.
pub fn secs_of(d: std::time::Duration) -> i64 {
    claims::secs(d)
}
