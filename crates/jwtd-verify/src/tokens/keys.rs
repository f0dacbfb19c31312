//! Asymmetric keys from PEM bytes and JWKs: parsing, the checks a deployment needs at start
//! (key type matches the algorithm, RSA of at least 2048 bits, private and public halves match),
//! RFC 7638 thumbprints as `kid`, JWK Set entries, and generating new key pairs.
//!
//! PURE: keys arrive as bytes or JSON, randomness as an argument; nothing here reads files.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Algorithm;

/// The smallest RSA modulus accepted (NIST SP 800-57; RFC 7518 §3.3 requires 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;
/// What `KeyKind::generate` makes for RSA.
const GENERATED_RSA_BITS: usize = 2048;
const PEM_LINE_ENDING: rsa::pkcs8::LineEnding = rsa::pkcs8::LineEnding::LF;

/// The type of an asymmetric key, as far as JWS cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// The key type an algorithm signs with; `None` for HMAC.
    pub fn of(alg: Algorithm) -> Option<KeyKind> {
        use Algorithm as A;
        match alg {
            A::HS256 | A::HS384 | A::HS512 => None,
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => Some(KeyKind::Rsa),
            A::ES256 => Some(KeyKind::P256),
            A::ES384 => Some(KeyKind::P384),
            A::EdDSA => Some(KeyKind::Ed25519),
        }
    }

    /// A short lower-case name, for key names in storage.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::P256 => "p256",
            KeyKind::P384 => "p384",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "a P-256 EC key",
            KeyKind::P384 => "a P-384 EC key",
            KeyKind::Ed25519 => "an Ed25519 key",
        })
    }
}

/// Why a key was refused. Messages never include key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected PEM text (-----BEGIN ...) or the path of a PEM file")]
    NotPem,
    #[error("the PEM holds an encrypted private key; store it unencrypted, readable by jwtd only (mode 0600)")]
    Encrypted,
    #[error("the PEM holds a public key where a private key is needed")]
    PublicNotPrivate,
    #[error("the PEM holds a private key where a public key is needed")]
    PrivateNotPublic,
    #[error("no key this version reads in the PEM ({0}); expected PKCS#8, PKCS#1 RSA or SEC1 EC")]
    Unreadable(String),
    #[error("{alg} needs {expected}, got {found}")]
    WrongType { alg: Algorithm, expected: KeyKind, found: KeyKind },
    #[error("RSA keys need at least {MIN_RSA_BITS} bits, got {0}")]
    RsaTooSmall(usize),
    #[error("{0} is an HMAC algorithm: it takes a secret, not a key pair")]
    Hmac(Algorithm),
    #[error("the public key does not match the private key (a probe signed with one does not verify with the other)")]
    Mismatch,
    #[error("the key could not be used with jsonwebtoken: {0}")]
    Unusable(String),
    #[error("not a usable JWK: {0}")]
    Jwk(String),
    #[error("key generation failed")]
    Generate,
}

/// A generated key pair, as PEM text.
pub struct GeneratedKey {
    /// PKCS#8 `-----BEGIN PRIVATE KEY-----`.
    pub private_pem: String,
    /// SubjectPublicKeyInfo `-----BEGIN PUBLIC KEY-----`.
    pub public_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedKey(****)")
    }
}

/// A public key that verifies tokens of one algorithm, known by its RFC 7638 thumbprint.
#[derive(Clone)]
pub struct PublicKey {
    alg: Algorithm,
    kind: KeyKind,
    kid: String,
    /// The key's JWK members (`kty`, `crv`, `n`, `e`, `x`, `y`).
    params: Map<String, Value>,
    decoding: DecodingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A private key that signs tokens of one algorithm, with its public half.
#[derive(Clone)]
pub struct PrivateKey {
    encoding: EncodingKey,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("public", &self.public).finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The first PEM block of `pem` that is not `EC PARAMETERS` (which `openssl ecparam -genkey`
/// writes before the key): its label and the block's text.
fn pem_block(pem: &[u8]) -> Result<(String, String), KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::NotPem)?;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or(KeyError::NotPem)?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after.find(&end_marker).ok_or(KeyError::NotPem)?;
        let block_end = start + "-----BEGIN ".len() + end + end_marker.len();
        let block = &rest[start..block_end];
        if label != "EC PARAMETERS" {
            return Ok((label.to_string(), format!("{block}\n")));
        }
        rest = &rest[block_end..];
    }
    Err(KeyError::NotPem)
}

/// A parsed private key of any supported kind.
enum AnyPrivate {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl AnyPrivate {
    fn parse(pem: &[u8]) -> Result<AnyPrivate, KeyError> {
        let (label, block) = pem_block(pem)?;
        let parsed = match label.as_str() {
            "PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs8_pem(&block)
                .map(|k| AnyPrivate::Rsa(Box::new(k)))
                .ok()
                .or_else(|| p256::SecretKey::from_pkcs8_pem(&block).ok().map(AnyPrivate::P256))
                .or_else(|| p384::SecretKey::from_pkcs8_pem(&block).ok().map(AnyPrivate::P384))
                .or_else(|| {
                    ed25519_dalek::SigningKey::from_pkcs8_pem(&block).ok().map(|k| AnyPrivate::Ed25519(Box::new(k)))
                }),
            "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_pem(&block).ok().map(|k| AnyPrivate::Rsa(Box::new(k))),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(&block)
                .ok()
                .map(AnyPrivate::P256)
                .or_else(|| p384::SecretKey::from_sec1_pem(&block).ok().map(AnyPrivate::P384)),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => return Err(KeyError::PublicNotPrivate),
            _ => None,
        };
        parsed.ok_or(KeyError::Unreadable(label))
    }

    fn kind(&self) -> KeyKind {
        match self {
            AnyPrivate::Rsa(_) => KeyKind::Rsa,
            AnyPrivate::P256(_) => KeyKind::P256,
            AnyPrivate::P384(_) => KeyKind::P384,
            AnyPrivate::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    fn public(&self) -> AnyPublic {
        match self {
            AnyPrivate::Rsa(k) => AnyPublic::Rsa(Box::new(k.to_public_key())),
            AnyPrivate::P256(k) => AnyPublic::P256(k.public_key()),
            AnyPrivate::P384(k) => AnyPublic::P384(k.public_key()),
            AnyPrivate::Ed25519(k) => AnyPublic::Ed25519(k.verifying_key()),
        }
    }

    /// The DER form jsonwebtoken's RustCrypto backend signs with: PKCS#1 for RSA, PKCS#8 otherwise.
    fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let unusable = |e: &dyn fmt::Display| KeyError::Unusable(e.to_string());
        Ok(match self {
            AnyPrivate::Rsa(k) => EncodingKey::from_rsa_der(k.to_pkcs1_der().map_err(|e| unusable(&e))?.as_bytes()),
            AnyPrivate::P256(k) => EncodingKey::from_ec_der(k.to_pkcs8_der().map_err(|e| unusable(&e))?.as_bytes()),
            AnyPrivate::P384(k) => EncodingKey::from_ec_der(k.to_pkcs8_der().map_err(|e| unusable(&e))?.as_bytes()),
            AnyPrivate::Ed25519(k) => EncodingKey::from_ed_der(k.to_pkcs8_der().map_err(|e| unusable(&e))?.as_bytes()),
        })
    }

    fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let doc = match self {
            AnyPrivate::Rsa(k) => k.to_pkcs8_pem(PEM_LINE_ENDING),
            AnyPrivate::P256(k) => k.to_pkcs8_pem(PEM_LINE_ENDING),
            AnyPrivate::P384(k) => k.to_pkcs8_pem(PEM_LINE_ENDING),
            // Version 1, without the optional public key, as OpenSSL and Python's cryptography
            // write it; cryptography does not read the version 2 form ed25519-dalek writes.
            AnyPrivate::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes { secret_key: k.to_bytes(), public_key: None }
                .to_pkcs8_pem(PEM_LINE_ENDING),
        };
        doc.map(|pem| pem.to_string()).map_err(|_| KeyError::Generate)
    }
}

/// A parsed public key of any supported kind.
enum AnyPublic {
    Rsa(Box<rsa::RsaPublicKey>),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl AnyPublic {
    fn parse(pem: &[u8]) -> Result<AnyPublic, KeyError> {
        let (label, block) = pem_block(pem)?;
        let parsed = match label.as_str() {
            "PUBLIC KEY" => rsa::RsaPublicKey::from_public_key_pem(&block)
                .map(|k| AnyPublic::Rsa(Box::new(k)))
                .ok()
                .or_else(|| p256::PublicKey::from_public_key_pem(&block).ok().map(AnyPublic::P256))
                .or_else(|| p384::PublicKey::from_public_key_pem(&block).ok().map(AnyPublic::P384))
                .or_else(|| ed25519_dalek::VerifyingKey::from_public_key_pem(&block).ok().map(AnyPublic::Ed25519)),
            "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_pem(&block).ok().map(|k| AnyPublic::Rsa(Box::new(k))),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError::PrivateNotPublic)
            }
            _ => None,
        };
        parsed.ok_or(KeyError::Unreadable(label))
    }

    fn kind(&self) -> KeyKind {
        match self {
            AnyPublic::Rsa(_) => KeyKind::Rsa,
            AnyPublic::P256(_) => KeyKind::P256,
            AnyPublic::P384(_) => KeyKind::P384,
            AnyPublic::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The JWK members of RFC 7518 §6 (RFC 8037 §2 for OKP), in RFC 7638's lexicographic order.
    fn params(&self) -> Result<Map<String, Value>, KeyError> {
        let mut m = Map::new();
        let point = |x: Option<&[u8]>, y: Option<&[u8]>| match (x, y) {
            (Some(x), Some(y)) => Ok((b64(x), b64(y))),
            _ => Err(KeyError::Unusable("EC point at infinity".into())),
        };
        match self {
            AnyPublic::Rsa(k) => {
                m.insert("e".into(), b64(&k.e().to_bytes_be()).into());
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64(&k.n().to_bytes_be()).into());
            }
            AnyPublic::P256(k) => {
                let p = k.to_encoded_point(false);
                let (x, y) = point(p.x().map(|v| &v[..]), p.y().map(|v| &v[..]))?;
                m.insert("crv".into(), "P-256".into());
                m.insert("kty".into(), "EC".into());
                m.insert("x".into(), x.into());
                m.insert("y".into(), y.into());
            }
            AnyPublic::P384(k) => {
                let p = k.to_encoded_point(false);
                let (x, y) = point(p.x().map(|v| &v[..]), p.y().map(|v| &v[..]))?;
                m.insert("crv".into(), "P-384".into());
                m.insert("kty".into(), "EC".into());
                m.insert("x".into(), x.into());
                m.insert("y".into(), y.into());
            }
            AnyPublic::Ed25519(k) => {
                m.insert("crv".into(), "Ed25519".into());
                m.insert("kty".into(), "OKP".into());
                m.insert("x".into(), b64(k.as_bytes()).into());
            }
        }
        Ok(m)
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            AnyPublic::Rsa(k) => DecodingKey::from_rsa_raw_components(&k.n().to_bytes_be(), &k.e().to_bytes_be()),
            AnyPublic::P256(k) => DecodingKey::from_ec_der(k.to_encoded_point(false).as_bytes()),
            AnyPublic::P384(k) => DecodingKey::from_ec_der(k.to_encoded_point(false).as_bytes()),
            AnyPublic::Ed25519(k) => DecodingKey::from_ed_der(k.as_bytes()),
        }
    }

    fn to_pem(&self) -> Result<String, KeyError> {
        let pem = match self {
            AnyPublic::Rsa(k) => k.to_public_key_pem(PEM_LINE_ENDING),
            AnyPublic::P256(k) => k.to_public_key_pem(PEM_LINE_ENDING),
            AnyPublic::P384(k) => k.to_public_key_pem(PEM_LINE_ENDING),
            AnyPublic::Ed25519(k) => k.to_public_key_pem(PEM_LINE_ENDING),
        };
        pem.map_err(|_| KeyError::Generate)
    }
}

/// RFC 7638: SHA-256 of the required members, lexicographically ordered, no whitespace.
fn thumbprint(params: &Map<String, Value>) -> String {
    // `params` is built in lexicographic order and serde_json keeps insertion order.
    let canonical = Value::Object(params.clone()).to_string();
    b64(&Sha256::digest(canonical.as_bytes()))
}

fn check_kind(alg: Algorithm, found: KeyKind) -> Result<(), KeyError> {
    match KeyKind::of(alg) {
        None => Err(KeyError::Hmac(alg)),
        Some(expected) if expected != found => Err(KeyError::WrongType { alg, expected, found }),
        Some(_) => Ok(()),
    }
}

impl PublicKey {
    fn from_any(alg: Algorithm, key: &AnyPublic) -> Result<PublicKey, KeyError> {
        check_kind(alg, key.kind())?;
        if let AnyPublic::Rsa(k) = key {
            let bits = k.n().bits();
            if bits < MIN_RSA_BITS {
                return Err(KeyError::RsaTooSmall(bits));
            }
        }
        let params = key.params()?;
        Ok(PublicKey { alg, kind: key.kind(), kid: thumbprint(&params), params, decoding: key.decoding_key() })
    }

    /// A public key from PEM: SubjectPublicKeyInfo (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`).
    pub fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<PublicKey, KeyError> {
        PublicKey::from_any(alg, &AnyPublic::parse(pem)?)
    }

    /// A public key from one member of a JWK Set (RFC 7517). The algorithm is `pinned` when given,
    /// else the JWK's `alg`, else the one its curve implies; an RSA JWK without `alg` needs a pin.
    /// The JWK's `alg`, when present, must agree with the pin; symmetric (`oct`) keys are refused,
    /// so a published key can never become an HMAC secret.
    pub fn from_jwk(jwk: &Map<String, Value>, pinned: Option<Algorithm>) -> Result<PublicKey, KeyError> {
        let str_of = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes_of = |name: &str| -> Result<Vec<u8>, KeyError> {
            let text = str_of(name).ok_or_else(|| KeyError::Jwk(format!("no {name:?} member")))?;
            URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyError::Jwk(format!("{name:?} is not base64url")))
        };
        if let Some(u) = str_of("use") {
            if u != "sig" {
                return Err(KeyError::Jwk(format!("use is {u:?}, not \"sig\"")));
            }
        }
        let unusable = |what: &str| KeyError::Jwk(format!("not a valid {what} public key"));
        let key = match (str_of("kty"), str_of("crv")) {
            (Some("RSA"), _) => {
                let n = rsa::BigUint::from_bytes_be(&bytes_of("n")?);
                let e = rsa::BigUint::from_bytes_be(&bytes_of("e")?);
                AnyPublic::Rsa(Box::new(rsa::RsaPublicKey::new(n, e).map_err(|_| unusable("RSA"))?))
            }
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let mut sec1 = vec![0x04];
                sec1.extend(bytes_of("x")?);
                sec1.extend(bytes_of("y")?);
                if crv == "P-256" {
                    AnyPublic::P256(p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| unusable("P-256"))?)
                } else {
                    AnyPublic::P384(p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| unusable("P-384"))?)
                }
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x: [u8; 32] = bytes_of("x")?.try_into().map_err(|_| unusable("Ed25519"))?;
                AnyPublic::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| unusable("Ed25519"))?)
            }
            (kty, crv) => return Err(KeyError::Jwk(format!("unsupported key type {kty:?} (curve {crv:?})"))),
        };
        let named = match str_of("alg") {
            Some(name) => {
                Some(name.parse::<Algorithm>().map_err(|_| KeyError::Jwk(format!("unsupported alg {name:?}")))?)
            }
            None => None,
        };
        let alg = match (pinned, named) {
            (Some(p), Some(n)) if p != n => return Err(KeyError::Jwk(format!("alg is {n}, expected {p}"))),
            (Some(p), _) => p,
            (None, Some(n)) => n,
            (None, None) => match key.kind() {
                KeyKind::P256 => Algorithm::ES256,
                KeyKind::P384 => Algorithm::ES384,
                KeyKind::Ed25519 => Algorithm::EdDSA,
                KeyKind::Rsa => return Err(KeyError::Jwk("an RSA key without \"alg\"; pin the algorithm".into())),
            },
        };
        PublicKey::from_any(alg, &key)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The RFC 7638 SHA-256 thumbprint, used as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The key as a member of a JWK Set: its parameters plus `kid`, `alg` and `use`.
    pub fn jwk(&self) -> Value {
        let mut m = Map::new();
        m.insert("kty".into(), self.params.get("kty").cloned().unwrap_or(Value::Null));
        m.insert("use".into(), "sig".into());
        m.insert("alg".into(), self.alg.to_string().into());
        m.insert("kid".into(), self.kid.clone().into());
        for (k, v) in &self.params {
            if k != "kty" {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }
}

impl PrivateKey {
    /// A private key from PEM: PKCS#8 (`PRIVATE KEY`, what Python's cryptography and
    /// `openssl genpkey` write), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    /// Checks that the key suits `alg` and, by signing and verifying a probe, that jsonwebtoken
    /// can use it.
    pub fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<PrivateKey, KeyError> {
        let any = AnyPrivate::parse(pem)?;
        check_kind(alg, any.kind())?;
        let public = PublicKey::from_any(alg, &any.public())?;
        let key = PrivateKey { encoding: any.encoding_key()?, public };
        key.check_pair(&key.public)?;
        Ok(key)
    }

    /// The public half, derived from the private key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Signs a probe with this key and verifies it with `public`: `Mismatch` unless they are a pair.
    pub fn check_pair(&self, public: &PublicKey) -> Result<(), KeyError> {
        const PROBE: &[u8] = b"jwtd key pair probe";
        let alg = self.public.alg.jsonwebtoken();
        let signature =
            jsonwebtoken::crypto::sign(PROBE, &self.encoding, alg).map_err(|e| KeyError::Unusable(e.to_string()))?;
        match jsonwebtoken::crypto::verify(&signature, PROBE, &public.decoding, alg) {
            Ok(true) => Ok(()),
            _ => Err(KeyError::Mismatch),
        }
    }
}

/// Generates a key for `alg`: PKCS#8 private key PEM and SubjectPublicKeyInfo public key PEM.
/// Randomness comes from `rng`, so that this module stays free of I/O.
pub fn generate<R: rand::RngCore + rand::CryptoRng>(alg: Algorithm, rng: &mut R) -> Result<GeneratedKey, KeyError> {
    let kind = KeyKind::of(alg).ok_or(KeyError::Hmac(alg))?;
    let key = match kind {
        KeyKind::Rsa => {
            AnyPrivate::Rsa(Box::new(rsa::RsaPrivateKey::new(rng, GENERATED_RSA_BITS).map_err(|_| KeyError::Generate)?))
        }
        KeyKind::P256 => AnyPrivate::P256(p256::SecretKey::random(rng)),
        KeyKind::P384 => AnyPrivate::P384(p384::SecretKey::random(rng)),
        KeyKind::Ed25519 => AnyPrivate::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(rng))),
    };
    Ok(GeneratedKey { private_pem: key.to_pkcs8_pem()?, public_pem: key.public().to_pem()? })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use serde_json::json;

    use super::*;

    /// One generated key per kind, shared by the tests (RSA generation takes a moment).
    pub(crate) fn test_key(alg: Algorithm) -> &'static GeneratedKey {
        static RSA: OnceLock<GeneratedKey> = OnceLock::new();
        static P256: OnceLock<GeneratedKey> = OnceLock::new();
        static P384: OnceLock<GeneratedKey> = OnceLock::new();
        static ED25519: OnceLock<GeneratedKey> = OnceLock::new();
        let (cell, kind_alg) = match KeyKind::of(alg).unwrap() {
            KeyKind::Rsa => (&RSA, Algorithm::RS256),
            KeyKind::P256 => (&P256, Algorithm::ES256),
            KeyKind::P384 => (&P384, Algorithm::ES384),
            KeyKind::Ed25519 => (&ED25519, Algorithm::EdDSA),
        };
        cell.get_or_init(|| generate(kind_alg, &mut rand::rngs::OsRng).unwrap())
    }

    pub(crate) const ASYMMETRIC: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    #[test]
    fn generated_keys_load_with_their_public_half() {
        for alg in ASYMMETRIC {
            let generated = test_key(alg);
            assert!(generated.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
            assert!(generated.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{alg}");
            let private = PrivateKey::from_pem(alg, generated.private_pem.as_bytes()).unwrap();
            let public = PublicKey::from_pem(alg, generated.public_pem.as_bytes()).unwrap();
            assert_eq!(private.public().kid(), public.kid(), "{alg}");
            private.check_pair(&public).unwrap();
        }
    }

    #[test]
    fn pkcs1_rsa_and_sec1_ec_private_keys_are_accepted() {
        let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(&test_key(Algorithm::RS256).private_pem).unwrap();
        let pkcs1 = rsa.to_pkcs1_pem(PEM_LINE_ENDING).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let from_pkcs1 = PrivateKey::from_pem(Algorithm::RS256, pkcs1.as_bytes()).unwrap();
        let from_pkcs8 =
            PrivateKey::from_pem(Algorithm::RS256, test_key(Algorithm::RS256).private_pem.as_bytes()).unwrap();
        assert_eq!(from_pkcs1.public().kid(), from_pkcs8.public().kid());

        let ec = p256::SecretKey::from_pkcs8_pem(&test_key(Algorithm::ES256).private_pem).unwrap();
        let sec1 = ec.to_sec1_pem(PEM_LINE_ENDING).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        // `openssl ecparam -genkey` writes the curve's parameters first.
        let with_params =
            format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}", *sec1);
        let key = PrivateKey::from_pem(Algorithm::ES256, with_params.as_bytes()).unwrap();
        assert_eq!(key.public().kind(), KeyKind::P256);
    }

    #[test]
    fn a_key_of_another_type_is_refused() {
        let rsa = test_key(Algorithm::RS256);
        let ec = test_key(Algorithm::ES256);
        let ed = test_key(Algorithm::EdDSA);
        let err = PrivateKey::from_pem(Algorithm::ES256, rsa.private_pem.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "ES256 needs a P-256 EC key, got an RSA key");
        assert!(matches!(
            PrivateKey::from_pem(Algorithm::ES384, ec.private_pem.as_bytes()),
            Err(KeyError::WrongType { .. })
        ));
        assert!(matches!(
            PrivateKey::from_pem(Algorithm::RS256, ed.private_pem.as_bytes()),
            Err(KeyError::WrongType { .. })
        ));
        assert!(matches!(
            PublicKey::from_pem(Algorithm::EdDSA, ec.public_pem.as_bytes()),
            Err(KeyError::WrongType { .. })
        ));
        assert_eq!(
            PrivateKey::from_pem(Algorithm::HS256, ec.private_pem.as_bytes()).unwrap_err(),
            KeyError::Hmac(Algorithm::HS256)
        );
    }

    #[test]
    fn rsa_under_2048_bits_is_refused() {
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&small, PEM_LINE_ENDING).unwrap();
        assert_eq!(PrivateKey::from_pem(Algorithm::RS256, pem.as_bytes()).unwrap_err(), KeyError::RsaTooSmall(1024));
        let public = rsa::pkcs8::EncodePublicKey::to_public_key_pem(&small.to_public_key(), PEM_LINE_ENDING).unwrap();
        assert_eq!(PublicKey::from_pem(Algorithm::PS256, public.as_bytes()).unwrap_err(), KeyError::RsaTooSmall(1024));
    }

    #[test]
    fn a_public_key_of_another_pair_is_a_mismatch() {
        let one = PrivateKey::from_pem(Algorithm::EdDSA, test_key(Algorithm::EdDSA).private_pem.as_bytes()).unwrap();
        let other = generate(Algorithm::EdDSA, &mut rand::rngs::OsRng).unwrap();
        let other = PublicKey::from_pem(Algorithm::EdDSA, other.public_pem.as_bytes()).unwrap();
        assert_eq!(one.check_pair(&other), Err(KeyError::Mismatch));
    }

    #[test]
    fn wrong_pem_contents_are_named() {
        let ec = test_key(Algorithm::ES256);
        assert_eq!(
            PrivateKey::from_pem(Algorithm::ES256, ec.public_pem.as_bytes()).unwrap_err(),
            KeyError::PublicNotPrivate
        );
        assert_eq!(
            PublicKey::from_pem(Algorithm::ES256, ec.private_pem.as_bytes()).unwrap_err(),
            KeyError::PrivateNotPublic
        );
        assert_eq!(PrivateKey::from_pem(Algorithm::ES256, b"not a key").unwrap_err(), KeyError::NotPem);
        assert_eq!(PrivateKey::from_pem(Algorithm::ES256, &[0xff, 0xfe]).unwrap_err(), KeyError::NotPem);
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(PrivateKey::from_pem(Algorithm::ES256, encrypted.as_bytes()).unwrap_err(), KeyError::Encrypted);
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(PrivateKey::from_pem(Algorithm::ES256, garbage.as_bytes()), Err(KeyError::Unreadable(_))));
        // No message repeats the key.
        for err in [KeyError::Unreadable("PRIVATE KEY".into()), KeyError::NotPem, KeyError::Mismatch] {
            assert!(!err.to_string().contains("AAAA"));
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = PublicKey::from_jwk(jwk.as_object().unwrap(), None).unwrap();
        assert_eq!(key.kid(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn jwk_round_trips_and_holds_no_private_part() {
        for alg in ASYMMETRIC {
            let key = PrivateKey::from_pem(alg, test_key(alg).private_pem.as_bytes()).unwrap();
            let jwk = key.public().jwk();
            let members = jwk.as_object().unwrap();
            assert_eq!(members["alg"], alg.to_string());
            assert_eq!(members["use"], "sig");
            assert_eq!(members["kid"], key.public().kid());
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(!members.contains_key(private), "{alg}: {private}");
            }
            let back = PublicKey::from_jwk(members, Some(alg)).unwrap();
            assert_eq!(back.kid(), key.public().kid());
            key.check_pair(&back).unwrap();
        }
    }

    #[test]
    fn unusable_jwks_are_refused() {
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"});
        assert!(PublicKey::from_jwk(oct.as_object().unwrap(), None).is_err());
        assert!(PublicKey::from_jwk(oct.as_object().unwrap(), Some(Algorithm::HS256)).is_err());
        let key = PrivateKey::from_pem(Algorithm::RS256, test_key(Algorithm::RS256).private_pem.as_bytes()).unwrap();
        let mut jwk = key.public().jwk().as_object().unwrap().clone();
        assert!(PublicKey::from_jwk(&jwk, Some(Algorithm::PS256)).is_err(), "alg disagrees with the pin");
        jwk.remove("alg");
        assert!(PublicKey::from_jwk(&jwk, None).is_err(), "RSA without alg needs a pin");
        assert_eq!(PublicKey::from_jwk(&jwk, Some(Algorithm::PS256)).unwrap().algorithm(), Algorithm::PS256);
        jwk.insert("use".into(), "enc".into());
        assert!(PublicKey::from_jwk(&jwk, Some(Algorithm::RS256)).is_err());
        let ec = PrivateKey::from_pem(Algorithm::ES256, test_key(Algorithm::ES256).private_pem.as_bytes()).unwrap();
        let mut jwk = ec.public().jwk().as_object().unwrap().clone();
        jwk.remove("alg");
        assert_eq!(PublicKey::from_jwk(&jwk, None).unwrap().algorithm(), Algorithm::ES256);
        jwk.insert("x".into(), "AAAA".into());
        assert!(PublicKey::from_jwk(&jwk, None).is_err(), "not a point on the curve");
    }

    #[test]
    fn generated_ed25519_key_is_pkcs8_version_1_as_openssl_writes_it() {
        // 48 bytes of DER: the key alone, no public key (which OpenSSL 3 and cryptography omit).
        let pem = &test_key(Algorithm::EdDSA).private_pem;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(body.starts_with("MC4CAQAwBQYDK2VwBCIEI"), "{body}");
        assert_eq!(body.len(), 64);
    }

    #[test]
    fn ed25519_pkcs8_from_another_encoder_is_read() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let pem = key.to_pkcs8_pem(PEM_LINE_ENDING).unwrap();
        let parsed = PrivateKey::from_pem(Algorithm::EdDSA, pem.as_bytes()).unwrap();
        assert_eq!(parsed.public().jwk()["x"], b64(key.verifying_key().as_bytes()));
    }
}
