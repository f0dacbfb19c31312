//! Signing and verifying compact JWS tokens with one pinned algorithm and key.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::{Claims, TokenError};
use crate::clock::Instant;

/// The `alg` a deployment signs with (SPEC §3). `none` is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::HS256 => J::HS256,
            Algorithm::HS384 => J::HS384,
            Algorithm::HS512 => J::HS512,
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            other => return Err(format!("expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, got {other:?}")),
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a token must satisfy besides its signature: SimpleJWT's AUDIENCE, ISSUER and LEEWAY.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub leeway: Duration,
}

/// Signs and verifies tokens with one key and one pinned algorithm.
#[derive(Clone)]
pub struct Codec {
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    policy: Policy,
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec").field("alg", &self.header.alg).field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Codec {
    /// An HMAC codec (HS256/384/512) from the shared secret.
    pub fn from_secret(alg: Algorithm, secret: &[u8], policy: Policy) -> Result<Self, String> {
        if !alg.is_hmac() {
            return Err(format!("{alg} needs a PEM key pair; asymmetric algorithms are not available yet"));
        }
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        let mut validation = Validation::new(alg.jsonwebtoken());
        // Times, audience and issuer are checked in `decode` against the injected `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        validation.leeway = 0;
        Ok(Codec {
            header: Header::new(alg.jsonwebtoken()),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            policy,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Signs `claims`, adding `aud`/`iss` when configured (as SimpleJWT's TokenBackend does).
    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut map = claims.as_map().clone();
        if let Some(aud) = &self.policy.audience {
            map.insert("aud".into(), aud.clone().into());
        }
        if let Some(iss) = &self.policy.issuer {
            map.insert("iss".into(), iss.clone().into());
        }
        jsonwebtoken::encode(&self.header, &map, &self.encoding).map_err(|_| TokenError::Encode)
    }

    /// Verifies signature and `alg`, then the rules of PyJWT + SimpleJWT at `now`:
    /// expired when `exp <= now - leeway`, refused when `iat`/`nbf` lie beyond `now + leeway`,
    /// `aud`/`iss` as configured, `exp` and `jti` present. Does not check `token_type`.
    pub fn decode(&self, token: &str, now: Instant) -> Result<Claims, TokenError> {
        if token.len() > 8192 || token.bytes().filter(|&b| b == b'.').count() != 2 {
            return Err(TokenError::Malformed);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature | K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                        TokenError::BadSignature
                    }
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = Claims::parse(data.claims)?;
        self.check_audience_and_issuer(&claims)?;
        let leeway_ms = i64::try_from(self.policy.leeway.as_millis()).unwrap_or(i64::MAX);
        let now_ms = now.millis() as f64;
        if claims.exp() * 1000.0 <= now_ms - leeway_ms as f64 {
            return Err(TokenError::Expired);
        }
        let not_after = now_ms + leeway_ms as f64;
        if let Some(iat) = claims.iat() {
            if (iat as f64) * 1000.0 > not_after {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
            if nbf * 1000.0 > not_after {
                return Err(TokenError::NotYetValid);
            }
        }
        Ok(claims)
    }

    fn check_audience_and_issuer(&self, claims: &Claims) -> Result<(), TokenError> {
        if let Some(expected) = &self.policy.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == expected,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
                _ => false,
            };
            if !ok {
                return Err(TokenError::WrongAudienceOrIssuer);
            }
        }
        if let Some(expected) = &self.policy.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(expected.as_str()) {
                return Err(TokenError::WrongAudienceOrIssuer);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenType;

    const NOW: i64 = 1_700_000_000;

    fn codec(policy: Policy) -> Codec {
        Codec::from_secret(Algorithm::HS256, b"test-secret-0123456789abcdef0123456789", policy).unwrap()
    }

    fn access(lifetime: u64) -> Claims {
        Claims::new(TokenType::Access, "user_id", 7, NOW, Duration::from_secs(lifetime), "a".repeat(32))
    }

    #[test]
    fn sign_then_verify_is_identity() {
        let c = codec(Policy::default());
        let claims = access(60);
        let token = c.encode(&claims).unwrap();
        assert_eq!(c.decode(&token, Instant::from_secs(NOW)).unwrap(), claims);
    }

    #[test]
    fn exp_equal_to_now_is_expired() {
        let c = codec(Policy::default());
        let token = c.encode(&access(60)).unwrap();
        assert!(c.decode(&token, Instant::from_millis((NOW + 60) * 1000 - 1)).is_ok());
        assert_eq!(c.decode(&token, Instant::from_secs(NOW + 60)), Err(TokenError::Expired));
    }

    #[test]
    fn leeway_extends_validity() {
        let c = codec(Policy { leeway: Duration::from_secs(10), ..Policy::default() });
        let token = c.encode(&access(60)).unwrap();
        assert!(c.decode(&token, Instant::from_secs(NOW + 65)).is_ok());
        assert_eq!(c.decode(&token, Instant::from_secs(NOW + 70)), Err(TokenError::Expired));
    }

    #[test]
    fn other_key_or_algorithm_is_refused() {
        let c = codec(Policy::default());
        let other = Codec::from_secret(Algorithm::HS256, b"another-secret", Policy::default()).unwrap();
        let hs512 =
            Codec::from_secret(Algorithm::HS512, b"test-secret-0123456789abcdef0123456789", Policy::default()).unwrap();
        let now = Instant::from_secs(NOW);
        assert_eq!(c.decode(&other.encode(&access(60)).unwrap(), now), Err(TokenError::BadSignature));
        assert_eq!(c.decode(&hs512.encode(&access(60)).unwrap(), now), Err(TokenError::BadSignature));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let c = codec(Policy::default());
        let token = c.encode(&access(60)).unwrap();
        let now = Instant::from_secs(NOW);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            if let Ok(t) = String::from_utf8(bytes) {
                if t != token {
                    assert!(c.decode(&t, now).is_err(), "accepted a token altered at byte {i}");
                }
            }
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let c = codec(Policy::default());
        let token = c.encode(&access(60)).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(c.decode(&none, Instant::from_secs(NOW)).is_err());
    }

    #[test]
    fn audience_and_issuer_are_written_and_enforced() {
        let policy = Policy { audience: Some("aud".into()), issuer: Some("iss".into()), ..Policy::default() };
        let c = codec(policy);
        let plain = codec(Policy::default());
        let now = Instant::from_secs(NOW);
        let token = c.encode(&access(60)).unwrap();
        let claims = c.decode(&token, now).unwrap();
        assert_eq!(claims.get("aud").unwrap(), "aud");
        assert_eq!(c.decode(&plain.encode(&access(60)).unwrap(), now), Err(TokenError::WrongAudienceOrIssuer));
    }
}
