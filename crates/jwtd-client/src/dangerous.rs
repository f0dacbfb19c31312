//! Reading a token's claims WITHOUT verifying its signature.
//!
//! The client holds no key and trusts the server that handed it the token; it reads `exp` and
//! `iat` only to decide when to refresh ahead of expiry. Nothing read here may be used to make
//! an authorization decision: a forged token would pass. The server verifies every token anyway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// The time claims of a JWT, read without checking its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnverifiedTimes {
    /// `exp`: expiry, whole seconds since the Unix epoch (a fractional value is rounded down).
    pub exp: Option<i64>,
    /// `iat`: issue time, whole seconds since the Unix epoch.
    pub iat: Option<i64>,
}

/// Decodes the payload of a compact JWS and returns its `exp` and `iat`, without verifying
/// the signature. `None` when the token is not three dot-separated parts with a base64url JSON
/// object in the middle.
pub fn insecure_times(token: &str) -> Option<UnverifiedTimes> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let claims = claims.as_object()?;
    // SPEC §3: exp/iat may be any JSON number.
    let seconds =
        |name: &str| claims.get(name).and_then(Value::as_f64).filter(|f| f.is_finite()).map(|f| f.floor() as i64);
    Some(UnverifiedTimes { exp: seconds("exp"), iat: seconds("iat") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_integer_exp_and_iat() {
        let t = token(r#"{"token_type":"access","exp":1700000120,"iat":1700000000,"user_id":1}"#);
        assert_eq!(insecure_times(&t), Some(UnverifiedTimes { exp: Some(1_700_000_120), iat: Some(1_700_000_000) }));
    }

    #[test]
    fn rounds_fractional_times_down() {
        let t = token(r#"{"exp":1700000120.9,"iat":1700000000.5}"#);
        assert_eq!(insecure_times(&t), Some(UnverifiedTimes { exp: Some(1_700_000_120), iat: Some(1_700_000_000) }));
    }

    #[test]
    fn missing_or_mistyped_claims_are_none() {
        let t = token(r#"{"exp":"soon"}"#);
        assert_eq!(insecure_times(&t), Some(UnverifiedTimes { exp: None, iat: None }));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for t in ["", "a.b", "a.b.c.d", "a.!!!.c", &token("[1,2]"), &token("not json")] {
            assert_eq!(insecure_times(t), None, "{t}");
        }
    }
}
