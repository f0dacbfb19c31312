//! Signing compact JWS tokens with one pinned algorithm and key, and verifying them with a
//! [`KeySet`]: the HMAC secret, or the current and previous public keys, chosen by `kid`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use super::keys::{KeyError, PrivateKey, PublicKey};
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

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
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

/// An HMAC secret with its keyed state prepared once: the inner and outer padded key blocks
/// already hashed (RFC 2104), so that a token costs a clone of that state and the hashing of its
/// own bytes, not the key's too.
#[derive(Clone)]
enum HmacKey {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl HmacKey {
    /// The prepared key of an HMAC algorithm; `None` for any other algorithm.
    fn new(alg: Algorithm, secret: &[u8]) -> Option<HmacKey> {
        // HMAC takes a key of any length, so `new_from_slice` cannot fail here.
        Some(match alg {
            Algorithm::HS256 => HmacKey::Sha256(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS384 => HmacKey::Sha384(Hmac::new_from_slice(secret).ok()?),
            Algorithm::HS512 => HmacKey::Sha512(Hmac::new_from_slice(secret).ok()?),
            _ => return None,
        })
    }

    /// Appends `.` and the MAC of what `token` holds (the signing input), base64url-encoded.
    fn sign_onto(&self, token: &mut String) {
        fn sign<M: Mac + Clone>(key: &M, token: &mut String) {
            let mut mac = key.clone();
            mac.update(token.as_bytes());
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), token);
        }
        match self {
            HmacKey::Sha256(key) => sign(key, token),
            HmacKey::Sha384(key) => sign(key, token),
            HmacKey::Sha512(key) => sign(key, token),
        }
    }

    /// Whether `signature` is the MAC of `message`, compared in constant time.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        fn check<M: Mac + Clone>(key: &M, message: &[u8], signature: &[u8]) -> bool {
            let mut mac = key.clone();
            mac.update(message);
            mac.verify_slice(signature).is_ok()
        }
        match self {
            HmacKey::Sha256(key) => check(key, message, signature),
            HmacKey::Sha384(key) => check(key, message, signature),
            HmacKey::Sha512(key) => check(key, message, signature),
        }
    }
}

/// What checks a signature: a prepared HMAC secret, or a public key (through jsonwebtoken).
#[derive(Clone)]
enum Checker {
    /// Boxed: the prepared states of SHA-512 are some 400 bytes.
    Hmac(Box<HmacKey>),
    Public(DecodingKey),
}

impl Checker {
    /// Whether `signature` (the token's third part) signs `message` (its first two) with `alg`.
    /// A signature that is not base64url is malformed, as jsonwebtoken reports it.
    fn check(&self, signature: &str, message: &[u8], alg: jsonwebtoken::Algorithm) -> Result<(), TokenError> {
        match self {
            Checker::Hmac(key) => {
                let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
                if key.verify(message, &signature) {
                    Ok(())
                } else {
                    Err(TokenError::BadSignature)
                }
            }
            Checker::Public(key) => match jsonwebtoken::crypto::verify(signature, message, key, alg) {
                Ok(true) => Ok(()),
                Ok(false) => Err(TokenError::BadSignature),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    match e.kind() {
                        K::InvalidSignature | K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                            Err(TokenError::BadSignature)
                        }
                        _ => Err(TokenError::Malformed),
                    }
                }
            },
        }
    }
}

/// One key tokens may be verified with.
#[derive(Clone)]
struct Key {
    /// `None` for the HMAC secret: SimpleJWT writes no `kid`, and PyJWT ignores one.
    kid: Option<String>,
    checker: Checker,
    /// The one algorithm a token checked with this key may name.
    alg: jsonwebtoken::Algorithm,
    /// The key as a JWK Set member; `None` for the HMAC secret, which is never published.
    jwk: Option<Value>,
    /// Encoded headers naming exactly `alg` and `kid` (as jsonwebtoken and PyJWT write them):
    /// a token starting with one is known to name them without decoding its header.
    usual_headers: [String; 2],
}

impl Key {
    fn new(kid: Option<String>, checker: Checker, alg: jsonwebtoken::Algorithm, jwk: Option<Value>) -> Key {
        let usual_headers = usual_headers(alg, kid.as_deref());
        Key { kid, checker, alg, jwk, usual_headers }
    }
}

/// The header segment of a token naming `alg` and `kid` as jsonwebtoken writes it
/// (`{"typ":"JWT","alg":…,"kid":…}`) and as PyJWT does (keys sorted: `{"alg":…,"kid":…,"typ":"JWT"}`).
fn usual_headers(alg: jsonwebtoken::Algorithm, kid: Option<&str>) -> [String; 2] {
    let mut ours = Header::new(alg);
    ours.kid = kid.map(str::to_string);
    let ours = serde_json::to_vec(&ours).unwrap_or_default();
    let mut pyjwt = Map::new();
    pyjwt.insert("alg".into(), serde_json::to_value(alg).unwrap_or_default());
    if let Some(kid) = kid {
        pyjwt.insert("kid".into(), kid.into());
    }
    pyjwt.insert("typ".into(), "JWT".into());
    let pyjwt = serde_json::to_vec(&pyjwt).unwrap_or_default();
    [URL_SAFE_NO_PAD.encode(ours), URL_SAFE_NO_PAD.encode(pyjwt)]
}

/// The keys presented tokens are verified with: the HMAC secret, or public keys known by `kid`
/// (the current one first, then previous ones kept through a key rotation).
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys.iter().map(|k| (k.alg, &k.kid))).finish()
    }
}

impl KeySet {
    /// The shared secret of an HMAC algorithm.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> Result<KeySet, String> {
        KeySet::hmac_with_fallbacks(alg, secret, &[])
    }

    /// The shared secret of an HMAC algorithm, then earlier secrets that still verify (Django's
    /// SECRET_KEY_FALLBACKS). HMAC tokens carry no `kid`, so each secret is tried in turn.
    pub fn hmac_with_fallbacks(alg: Algorithm, secret: &[u8], fallbacks: &[&[u8]]) -> Result<KeySet, String> {
        if !alg.is_hmac() {
            return Err(format!("{alg} needs a PEM key pair, not a secret"));
        }
        let mut keys = Vec::with_capacity(1 + fallbacks.len());
        for secret in std::iter::once(secret).chain(fallbacks.iter().copied()) {
            if secret.is_empty() {
                return Err("the secret is empty".into());
            }
            let key = HmacKey::new(alg, secret).ok_or_else(|| format!("{alg} cannot take this secret"))?;
            keys.push(Key::new(None, Checker::Hmac(Box::new(key)), alg.jsonwebtoken(), None));
        }
        Ok(KeySet { keys })
    }

    /// Public keys, in order of preference; a key listed twice counts once.
    pub fn public(keys: impl IntoIterator<Item = PublicKey>) -> KeySet {
        let mut set = KeySet::default();
        for key in keys {
            if !set.knows(key.kid()) {
                set.keys.push(Key::new(
                    Some(key.kid().to_string()),
                    Checker::Public(key.decoding().clone()),
                    key.algorithm().jsonwebtoken(),
                    Some(key.jwk()),
                ));
            }
        }
        set
    }

    /// The usable signing keys of a JWK Set document (`{"keys":[...]}`), each with the algorithm
    /// `pinned` or, unpinned, its own `alg`; the others are returned with the reason they were skipped.
    pub fn from_jwks(jwks: &Value, pinned: Option<Algorithm>) -> (KeySet, Vec<KeyError>) {
        let mut skipped = Vec::new();
        let mut keys = Vec::new();
        match jwks.get("keys").and_then(Value::as_array) {
            Some(members) => {
                for member in members {
                    match member.as_object().map(|jwk| PublicKey::from_jwk(jwk, pinned)) {
                        Some(Ok(key)) => keys.push(key),
                        Some(Err(e)) => skipped.push(e),
                        None => skipped.push(KeyError::Jwk("a member is not an object".into())),
                    }
                }
            }
            None => skipped.push(KeyError::Jwk("the document has no \"keys\" array".into())),
        }
        (KeySet::public(keys), skipped)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key of this `kid` is in the set.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The public keys as a JWK Set (RFC 7517 §5); `{"keys":[]}` for an HMAC secret.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().filter_map(|k| k.jwk.clone()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Checks the signature and `alg` of `token`; returns its payload. A token naming a `kid`
    /// is checked with that key only (`UnknownKey` when there is none); one without `kid` (as
    /// SimpleJWT and PyJWT write them) with each key in turn. The header's `alg` must be the
    /// chosen key's: `none`, another family, or an HMAC token "signed" with a public key are refused.
    ///
    /// The header is decoded once, the signature checked over the token's first two parts (with
    /// the prepared HMAC key, or `jsonwebtoken::crypto::verify` for a public key), and only a
    /// payload whose signature holds is decoded.
    fn verify_signature(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = message.split_once('.').ok_or(TokenError::Malformed)?;
        // A header byte for byte one a key's tokens usually carry names that key's `alg` and
        // `kid`, as decoding it would tell; any other header is decoded.
        let usual = self.keys.iter().find(|k| k.usual_headers.iter().any(|h| h == header));
        let decoded;
        let (alg, kid) = match usual {
            Some(key) => (key.alg, key.kid.as_deref()),
            None => {
                decoded = decode_header(header)?;
                (decoded.alg, decoded.kid.as_deref())
            }
        };
        let by_kid = |k: &&Key| match (kid, &k.kid) {
            (Some(wanted), Some(kid)) => wanted == kid,
            _ => true,
        };
        let mut candidates = self.keys.iter().filter(by_kid).peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        let mut outcome = Err(TokenError::BadSignature);
        for key in candidates.filter(|k| k.alg == alg) {
            outcome = key.checker.check(signature, message.as_bytes(), alg);
            if outcome != Err(TokenError::BadSignature) {
                break;
            }
        }
        outcome?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)
    }
}

/// The header segment of a token, decoded as jsonwebtoken does, and refused when it carries a
/// `crit` member (RFC 7515 §4.1.11): a `crit` that is not a non-empty list of strings is invalid,
/// and one that is names extensions the recipient must understand, of which jwtd implements none
/// (PyJWT 2.15 refuses the same; it knows `b64` alone, which SimpleJWT never writes). The usual
/// headers of [`KeySet::verify_signature`]'s fast path have no `crit`.
fn decode_header(segment: &str) -> Result<Header, TokenError> {
    let json = URL_SAFE_NO_PAD.decode(segment).map_err(|_| TokenError::Malformed)?;
    // As a map first: `"crit": null` is present (PyJWT tests `"crit" in headers`), which
    // `Header`'s `Option` field would not tell from absent.
    let members: Map<String, Value> = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if let Some(crit) = members.get("crit") {
        return Err(crit_refusal(crit));
    }
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

/// Why a `crit` header member makes a token invalid: either it is not a non-empty list of
/// strings, or it names an extension jwtd does not implement (any, since it implements none).
fn crit_refusal(crit: &Value) -> TokenError {
    match crit.as_array() {
        Some(names) if !names.is_empty() && names.iter().all(Value::is_string) => TokenError::UnsupportedCritical,
        _ => TokenError::Malformed,
    }
}

/// Verifies a token against `keys` and the rules of PyJWT + SimpleJWT at `now`: signature and
/// `alg` (see [`KeySet`]), then expired when `exp <= now - leeway`, refused when `iat`/`nbf` lie
/// beyond `now + leeway`, `aud`/`iss` as configured, `exp` and `jti` present. Does not check
/// `token_type`.
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: Instant) -> Result<Claims, TokenError> {
    if token.len() > 8192 || token.bytes().filter(|&b| b == b'.').count() != 2 {
        return Err(TokenError::Malformed);
    }
    let claims = Claims::parse(keys.verify_signature(token)?)?;
    check_audience_and_issuer(policy, &claims)?;
    let leeway_ms = i64::try_from(policy.leeway.as_millis()).unwrap_or(i64::MAX);
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

fn check_audience_and_issuer(policy: &Policy, claims: &Claims) -> Result<(), TokenError> {
    if let Some(expected) = &policy.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == expected,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
            _ => false,
        };
        if !ok {
            return Err(TokenError::WrongAudienceOrIssuer);
        }
    }
    if let Some(expected) = &policy.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(TokenError::WrongAudienceOrIssuer);
        }
    }
    Ok(())
}

/// Signs tokens with one key and one pinned algorithm, and verifies them with its [`KeySet`].
#[derive(Clone)]
pub struct Codec {
    alg: Algorithm,
    /// The `kid` new tokens carry; `None` for HMAC.
    kid: Option<String>,
    /// The header segment every new token starts with, encoded once, as jsonwebtoken writes it
    /// (`{"typ":"JWT","alg":…}`, then `"kid":…` for a public key).
    header: String,
    signer: Signer,
    keys: KeySet,
    policy: Policy,
}

/// What signs new tokens: the prepared HMAC secret, or a private key (through jsonwebtoken).
#[derive(Clone)]
enum Signer {
    Hmac(Box<HmacKey>),
    Private(EncodingKey),
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("alg", &self.alg)
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// An HMAC codec (HS256/384/512) from the shared secret. Its tokens carry no `kid`, exactly
    /// like SimpleJWT's (`{"alg":"HS256","typ":"JWT"}`).
    pub fn from_secret(alg: Algorithm, secret: &[u8], policy: Policy) -> Result<Self, String> {
        Codec::from_secrets(alg, secret, &[], policy)
    }

    /// An HMAC codec that signs with `secret` only and verifies with it and with `fallbacks`,
    /// earlier secrets kept through a rotation (SIGNING_KEY_FALLBACKS).
    pub fn from_secrets(alg: Algorithm, secret: &[u8], fallbacks: &[&[u8]], policy: Policy) -> Result<Self, String> {
        let keys = KeySet::hmac_with_fallbacks(alg, secret, fallbacks)?;
        let signer = HmacKey::new(alg, secret).ok_or_else(|| format!("{alg} cannot take this secret"))?;
        Ok(Codec::new(alg, None, Signer::Hmac(Box::new(signer)), keys, policy))
    }

    /// An asymmetric codec: signs with `signing` (its header names the key's `kid`), verifies with
    /// its public half and with `previous` public keys, kept so that tokens signed before a key
    /// rotation stay valid until they expire.
    pub fn from_keys(signing: &PrivateKey, previous: Vec<PublicKey>, policy: Policy) -> Self {
        let current = signing.public().clone();
        let (alg, kid) = (current.algorithm(), Some(current.kid().to_string()));
        let keys = KeySet::public(std::iter::once(current).chain(previous));
        Codec::new(alg, kid, Signer::Private(signing.encoding().clone()), keys, policy)
    }

    fn new(alg: Algorithm, kid: Option<String>, signer: Signer, keys: KeySet, policy: Policy) -> Self {
        let [header, _] = usual_headers(alg.jsonwebtoken(), kid.as_deref());
        Codec { alg, kid, header, signer, keys, policy }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The `kid` new tokens carry; `None` for HMAC.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The keys presented tokens are checked with.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The public keys as a JWK Set document.
    pub fn jwks(&self) -> Value {
        self.keys.jwks()
    }

    /// Signs `claims`, adding `aud`/`iss` when configured (as SimpleJWT's TokenBackend does).
    /// The token is byte for byte the one `jsonwebtoken::encode` writes with this key and header.
    pub fn encode(&self, claims: &Claims) -> Result<String, TokenError> {
        let payload = match (&self.policy.audience, &self.policy.issuer) {
            (None, None) => serde_json::to_vec(claims.as_map()),
            (audience, issuer) => {
                let mut map = claims.as_map().clone();
                if let Some(aud) = audience {
                    map.insert("aud".into(), aud.clone().into());
                }
                if let Some(iss) = issuer {
                    map.insert("iss".into(), iss.clone().into());
                }
                serde_json::to_vec(&map)
            }
        }
        .map_err(|_| TokenError::Encode)?;
        // header '.' payload '.' signature, the last at most 512 bytes (RSA-4096) as base64.
        let mut token = String::with_capacity(self.header.len() + payload.len() * 4 / 3 + 700);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        match &self.signer {
            Signer::Hmac(key) => key.sign_onto(&mut token),
            Signer::Private(key) => {
                let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key, self.alg.jsonwebtoken())
                    .map_err(|_| TokenError::Encode)?;
                token.push('.');
                token.push_str(&signature);
            }
        }
        Ok(token)
    }

    /// [`verify`] with this codec's keys and policy.
    pub fn decode(&self, token: &str, now: Instant) -> Result<Claims, TokenError> {
        verify(token, &self.keys, &self.policy, now)
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
        Claims::new(
            TokenType::Access,
            "user_id",
            jwtd_proto::UserId::Int(7),
            NOW,
            Duration::from_secs(lifetime),
            "a".repeat(32),
        )
    }

    #[test]
    fn sign_then_verify_is_identity() {
        let c = codec(Policy::default());
        let claims = access(60);
        let token = c.encode(&claims).unwrap();
        assert_eq!(c.decode(&token, Instant::from_secs(NOW)).unwrap(), claims);
    }

    /// jsonwebtoken's own check of `token` with `secret`, `exp` only.
    fn jsonwebtoken_decodes(token: &str, alg: Algorithm, secret: &[u8]) -> Map<String, Value> {
        let mut validation = jsonwebtoken::Validation::new(alg.jsonwebtoken());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let key = DecodingKey::from_secret(secret);
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).unwrap().claims
    }

    #[test]
    fn hmac_tokens_are_jsonwebtokens_byte_for_byte_and_verify_both_ways() {
        let secret = b"test-secret-0123456789abcdef0123456789abcdef0123456789";
        let now = Instant::from_secs(NOW);
        let with_aud = Policy { audience: Some("aud".into()), issuer: Some("iss".into()), ..Policy::default() };
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for policy in [Policy::default(), with_aud.clone()] {
                let ours = Codec::from_secret(alg, secret, policy.clone()).unwrap();
                // The payload jsonwebtoken is given: the claims, then aud/iss as configured.
                let payload = |claims: &Claims| {
                    let mut map = claims.as_map().clone();
                    if let (Some(aud), Some(iss)) = (&policy.audience, &policy.issuer) {
                        map.insert("aud".into(), aud.clone().into());
                        map.insert("iss".into(), iss.clone().into());
                    }
                    map
                };
                let theirs = |claims: &Claims, secret: &[u8]| {
                    let header = Header::new(alg.jsonwebtoken());
                    jsonwebtoken::encode(&header, &payload(claims), &EncodingKey::from_secret(secret)).unwrap()
                };
                let token = ours.encode(&access(60)).unwrap();
                assert_eq!(token, theirs(&access(60), secret), "{alg}");
                assert_eq!(jsonwebtoken_decodes(&token, alg, secret), payload(&access(60)), "{alg}");
                let signed = theirs(&access(120), secret);
                assert_eq!(ours.decode(&signed, now).unwrap().as_map(), &payload(&access(120)), "{alg}");
                let forged = theirs(&access(60), b"another-secret-0123456789abcdef0123");
                assert_eq!(ours.decode(&forged, now), Err(TokenError::BadSignature), "{alg}");
            }
        }
    }

    #[test]
    fn asymmetric_tokens_are_jsonwebtokens_byte_for_byte() {
        // RS256 and EdDSA signatures are deterministic, so the whole token can be compared.
        for alg in [Algorithm::RS256, Algorithm::EdDSA] {
            let c = asymmetric(alg);
            let claims = access(60);
            let mut header = Header::new(alg.jsonwebtoken());
            header.kid = Some(private(alg).public().kid().to_string());
            let theirs = jsonwebtoken::encode(&header, claims.as_map(), private(alg).encoding()).unwrap();
            assert_eq!(c.encode(&claims).unwrap(), theirs, "{alg}");
            assert_eq!(c.kid(), header.kid.as_deref());
        }
    }

    #[test]
    fn a_signature_that_is_not_base64url_is_malformed_and_a_short_one_bad() {
        let c = codec(Policy::default());
        let token = c.encode(&access(60)).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let now = Instant::from_secs(NOW);
        assert_eq!(c.decode(&format!("{message}.{signature}="), now), Err(TokenError::Malformed));
        assert_eq!(c.decode(&format!("{message}.{}", &signature[..40]), now), Err(TokenError::BadSignature));
        assert_eq!(c.decode(&format!("{message}."), now), Err(TokenError::BadSignature));
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

    use crate::tokens::keys::tests::{test_key, ASYMMETRIC};
    use crate::tokens::keys::{generate, PrivateKey, PublicKey};

    fn private(alg: Algorithm) -> PrivateKey {
        PrivateKey::from_pem(alg, test_key(alg).private_pem.as_bytes()).unwrap()
    }

    fn asymmetric(alg: Algorithm) -> Codec {
        Codec::from_keys(&private(alg), vec![], Policy::default())
    }

    fn header_of(token: &str) -> Value {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    /// A token with `header` and the payload of `token`, signed by `sign(signing input)`.
    fn resigned(token: &str, header: Value, sign: impl Fn(&[u8]) -> String) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{}.{}", b64.encode(header.to_string()), token.split('.').nth(1).unwrap());
        let signature = sign(input.as_bytes());
        format!("{input}.{signature}")
    }

    #[test]
    fn usual_headers_name_exactly_the_keys_alg_and_kid_and_our_tokens_carry_the_first() {
        let hs = codec(Policy::default());
        let token = hs.encode(&access(60)).unwrap();
        let key = &hs.keys().keys[0];
        assert!(token.starts_with(&format!("{}.", key.usual_headers[0])));
        assert_eq!(
            header_of(&format!("{}.x.y", key.usual_headers[1])),
            serde_json::json!({"alg": "HS256", "typ": "JWT"})
        );
        let rs = asymmetric(Algorithm::RS256);
        let key = &rs.keys().keys[0];
        let kid = key.kid.clone().unwrap();
        assert!(rs.encode(&access(60)).unwrap().starts_with(&format!("{}.", key.usual_headers[0])));
        for h in &key.usual_headers {
            let header = header_of(&format!("{h}.x.y"));
            assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("RS256"), Some(kid.as_str())));
            assert_eq!(header.as_object().unwrap().len(), 3, "{header}");
        }
    }

    #[test]
    fn a_pyjwt_header_verifies_like_ours() {
        let hs = codec(Policy::default());
        let token = hs.encode(&access(60)).unwrap();
        let pyjwt = resigned(&token, serde_json::json!({"alg": "HS256", "typ": "JWT"}), |input| {
            let key = EncodingKey::from_secret(b"test-secret-0123456789abcdef0123456789");
            jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
        });
        assert_ne!(pyjwt, token);
        assert_eq!(
            hs.decode(&pyjwt, Instant::from_secs(NOW)).unwrap(),
            hs.decode(&token, Instant::from_secs(NOW)).unwrap()
        );
    }

    #[test]
    fn fallback_secrets_verify_but_never_sign() {
        let now = Instant::from_secs(NOW);
        let old = codec(Policy::default());
        let old_token = old.encode(&access(60)).unwrap();
        let new_secret = b"new-secret-0123456789abcdef0123456789";
        let rotated = Codec::from_secrets(
            Algorithm::HS256,
            new_secret,
            &[b"another-old-secret-0123456789abcdef", b"test-secret-0123456789abcdef0123456789"],
            Policy::default(),
        )
        .unwrap();
        assert_eq!(rotated.decode(&old_token, now).unwrap(), access(60));
        assert_eq!(rotated.decode(&old_token, Instant::from_secs(NOW + 60)), Err(TokenError::Expired));
        let new_token = rotated.encode(&access(60)).unwrap();
        assert_eq!(old.decode(&new_token, now), Err(TokenError::BadSignature));
        let only_new = Codec::from_secret(Algorithm::HS256, new_secret, Policy::default()).unwrap();
        assert_eq!(only_new.decode(&new_token, now).unwrap(), access(60));
        assert_eq!(only_new.decode(&old_token, now), Err(TokenError::BadSignature));
        assert_eq!(rotated.jwks(), serde_json::json!({"keys": []}));
        let other = Codec::from_secret(Algorithm::HS256, b"unrelated-secret-0123456789abcdef", Policy::default());
        assert_eq!(rotated.decode(&other.unwrap().encode(&access(60)).unwrap(), now), Err(TokenError::BadSignature));
        assert!(Codec::from_secrets(Algorithm::HS256, new_secret, &[b""], Policy::default()).is_err());
    }

    #[test]
    fn a_crit_header_makes_the_token_invalid() {
        let hs = codec(Policy::default());
        let token = hs.encode(&access(60)).unwrap();
        let sign = |input: &[u8]| {
            let key = EncodingKey::from_secret(b"test-secret-0123456789abcdef0123456789");
            jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
        };
        let now = Instant::from_secs(NOW);
        let with_crit = |crit: Value| {
            let token = resigned(&token, serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": crit}), sign);
            hs.decode(&token, now)
        };
        // Well formed, but naming extensions jwtd does not implement (b64 included: PyJWT knows
        // it, jwtd does not), even when the header carries the named member.
        for names in [serde_json::json!(["exp"]), serde_json::json!(["b64"]), serde_json::json!(["x", "y"])] {
            assert_eq!(with_crit(names.clone()), Err(TokenError::UnsupportedCritical), "{names}");
        }
        let named =
            resigned(&token, serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["ext"], "ext": 1}), sign);
        assert_eq!(hs.decode(&named, now), Err(TokenError::UnsupportedCritical));
        // Not a non-empty list of strings.
        for bad in [
            serde_json::json!([]),
            serde_json::json!(null),
            serde_json::json!("exp"),
            serde_json::json!([1]),
            serde_json::json!(["exp", null]),
            serde_json::json!({"exp": true}),
        ] {
            assert_eq!(with_crit(bad.clone()), Err(TokenError::Malformed), "{bad}");
        }
        // The same token without crit verifies, through the fast path and the decoding one.
        assert!(hs.decode(&token, now).is_ok());
        let spaced = resigned(&token, serde_json::json!({"typ": "JWT", "alg": "HS256", "cty": "x"}), sign);
        assert!(hs.decode(&spaced, now).is_ok());
        assert_eq!(TokenError::UnsupportedCritical.message(), jwtd_proto::messages::TOKEN_IS_INVALID);
    }

    #[test]
    fn a_crit_header_is_refused_with_asymmetric_keys_too() {
        let c = asymmetric(Algorithm::EdDSA);
        let token = c.encode(&access(60)).unwrap();
        let kid = header_of(&token)["kid"].clone();
        let signing = private(Algorithm::EdDSA);
        let forged =
            resigned(&token, serde_json::json!({"alg": "EdDSA", "kid": kid, "crit": ["b64"], "b64": true}), |input| {
                jsonwebtoken::crypto::sign(input, signing.encoding(), jsonwebtoken::Algorithm::EdDSA).unwrap()
            });
        assert_eq!(c.decode(&forged, Instant::from_secs(NOW)), Err(TokenError::UnsupportedCritical));
    }

    #[test]
    fn every_algorithm_round_trips() {
        let now = Instant::from_secs(NOW);
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let c =
                Codec::from_secret(alg, b"test-secret-0123456789abcdef0123456789abcdef0123456789", Policy::default())
                    .unwrap();
            let token = c.encode(&access(60)).unwrap();
            assert_eq!(header_of(&token), serde_json::json!({"typ": "JWT", "alg": alg.to_string()}), "{alg}");
            assert_eq!(c.decode(&token, now).unwrap(), access(60), "{alg}");
            assert_eq!(c.jwks(), serde_json::json!({"keys": []}));
        }
        for alg in ASYMMETRIC {
            let c = asymmetric(alg);
            let token = c.encode(&access(60)).unwrap();
            let header = header_of(&token);
            assert_eq!(header["alg"], alg.to_string(), "{alg}");
            assert_eq!(header["kid"], private(alg).public().kid(), "{alg}");
            assert_eq!(c.decode(&token, now).unwrap(), access(60), "{alg}");
            assert_eq!(c.decode(&token, Instant::from_secs(NOW + 60)), Err(TokenError::Expired), "{alg}");
            let jwks = c.jwks();
            assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
            assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
            // A verifier holding only the published JWK Set accepts the token.
            let (remote, skipped) = KeySet::from_jwks(&jwks, Some(alg));
            assert!(skipped.is_empty(), "{alg}: {skipped:?}");
            assert_eq!(verify(&token, &remote, &Policy::default(), now).unwrap(), access(60), "{alg}");
        }
    }

    #[test]
    fn asymmetric_tampering_is_refused() {
        let now = Instant::from_secs(NOW);
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let c = asymmetric(alg);
            let token = c.encode(&access(60)).unwrap();
            let (head, rest) = token.split_once('.').unwrap();
            let (payload, signature) = rest.split_once('.').unwrap();
            let other = asymmetric(alg).encode(&access(120)).unwrap();
            let other_payload = other.split('.').nth(1).unwrap();
            assert_eq!(c.decode(&format!("{head}.{other_payload}.{signature}"), now), Err(TokenError::BadSignature));
            let mut sig = signature.to_string().into_bytes();
            sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
            let sig = String::from_utf8(sig).unwrap();
            assert!(c.decode(&format!("{head}.{payload}.{sig}"), now).is_err(), "{alg}");
        }
    }

    #[test]
    fn hmac_token_signed_with_the_public_key_is_refused() {
        // Key confusion: a verifier that let the token pick its algorithm would check this HS256
        // token with the (public) RSA key as the HMAC secret.
        let c = asymmetric(Algorithm::RS256);
        let token = c.encode(&access(60)).unwrap();
        let public_pem = test_key(Algorithm::RS256).public_pem.clone();
        let kid = header_of(&token)["kid"].clone();
        for header in [
            serde_json::json!({"alg": "HS256", "typ": "JWT"}),
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        ] {
            let forged = resigned(&token, header, |input| {
                let key = EncodingKey::from_secret(public_pem.as_bytes());
                jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
            });
            assert_eq!(c.decode(&forged, Instant::from_secs(NOW)), Err(TokenError::BadSignature));
        }
    }

    #[test]
    fn alg_none_is_refused_with_asymmetric_keys() {
        let c = asymmetric(Algorithm::ES256);
        let token = c.encode(&access(60)).unwrap();
        let kid = header_of(&token)["kid"].clone();
        for alg in ["none", "None", "NONE"] {
            let forged = resigned(&token, serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid}), |_| String::new());
            assert_eq!(c.decode(&forged, Instant::from_secs(NOW)), Err(TokenError::Malformed), "{alg}");
        }
    }

    #[test]
    fn another_algorithm_of_the_same_key_is_refused() {
        let rs256 = asymmetric(Algorithm::RS256);
        let ps256 = asymmetric(Algorithm::PS256);
        let now = Instant::from_secs(NOW);
        assert_eq!(rs256.decode(&ps256.encode(&access(60)).unwrap(), now), Err(TokenError::BadSignature));
        assert_eq!(ps256.decode(&rs256.encode(&access(60)).unwrap(), now), Err(TokenError::BadSignature));
    }

    #[test]
    fn unknown_kid_is_refused_and_no_kid_tries_every_key() {
        let now = Instant::from_secs(NOW);
        let c = asymmetric(Algorithm::EdDSA);
        let token = c.encode(&access(60)).unwrap();
        let signing = private(Algorithm::EdDSA);
        let sign = |input: &[u8]| {
            jsonwebtoken::crypto::sign(input, signing.encoding(), jsonwebtoken::Algorithm::EdDSA).unwrap()
        };
        let unknown = resigned(&token, serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "no-such-key"}), sign);
        assert_eq!(c.decode(&unknown, now), Err(TokenError::UnknownKey));
        // SimpleJWT and PyJWT write no kid: such a token is checked with each known key.
        let without_kid = resigned(&token, serde_json::json!({"alg": "EdDSA", "typ": "JWT"}), sign);
        assert_eq!(c.decode(&without_kid, now).unwrap(), access(60));
    }

    #[test]
    fn previous_keys_verify_but_never_sign() {
        let now = Instant::from_secs(NOW);
        let old = asymmetric(Algorithm::ES256);
        let old_token = old.encode(&access(60)).unwrap();
        let fresh = generate(Algorithm::ES256, &mut rand::rngs::OsRng).unwrap();
        let new_key = PrivateKey::from_pem(Algorithm::ES256, fresh.private_pem.as_bytes()).unwrap();
        let old_public =
            PublicKey::from_pem(Algorithm::ES256, test_key(Algorithm::ES256).public_pem.as_bytes()).unwrap();
        let rotated = Codec::from_keys(&new_key, vec![old_public], Policy::default());
        assert_eq!(rotated.decode(&old_token, now).unwrap(), access(60));
        assert_eq!(rotated.decode(&old_token, Instant::from_secs(NOW + 60)), Err(TokenError::Expired));
        let new_token = rotated.encode(&access(60)).unwrap();
        assert_eq!(header_of(&new_token)["kid"], new_key.public().kid());
        assert_eq!(old.decode(&new_token, now), Err(TokenError::UnknownKey));
        let kids: Vec<Value> = rotated.jwks()["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
        assert_eq!(
            kids,
            vec![Value::from(new_key.public().kid()), Value::from(private(Algorithm::ES256).public().kid())]
        );
        // Without the previous key, the old token names an unknown kid.
        let forgetful = Codec::from_keys(&new_key, vec![], Policy::default());
        assert_eq!(forgetful.decode(&old_token, now), Err(TokenError::UnknownKey));
    }

    #[test]
    fn audience_issuer_and_leeway_apply_to_asymmetric_tokens() {
        let policy =
            Policy { audience: Some("aud".into()), issuer: Some("iss".into()), leeway: Duration::from_secs(10) };
        let c = Codec::from_keys(&private(Algorithm::EdDSA), vec![], policy);
        let token = c.encode(&access(60)).unwrap();
        let claims = c.decode(&token, Instant::from_secs(NOW + 65)).unwrap();
        assert_eq!(claims.get("aud").unwrap(), "aud");
        assert_eq!(claims.get("iss").unwrap(), "iss");
        assert_eq!(c.decode(&token, Instant::from_secs(NOW + 70)), Err(TokenError::Expired));
        let plain = asymmetric(Algorithm::EdDSA).encode(&access(60)).unwrap();
        assert_eq!(c.decode(&plain, Instant::from_secs(NOW)), Err(TokenError::WrongAudienceOrIssuer));
    }
}
