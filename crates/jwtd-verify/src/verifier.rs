//! Access-token verification without a database round trip: signature, times, type, and the
//! per-user "valid after" time that password change and logout-all move forward (SPEC §4).
//! The map is filled from the store's revocation log and kept in step by `app`'s sync task.
//! The keys are those the server's [`Codec`] verifies with, or, in another service,
//! [`RemoteKeys`] fetched from jwtd's JWKS URL. A `Verifier` only verifies: signing is
//! `AuthService`'s, with the `Codec` itself, and the clock it reads is its own copy, for
//! checking access tokens at the current time.

use std::sync::Arc;

use dashmap::DashMap;
use jwtd_proto::UserId;
use tracing::warn;

use crate::clock::{Instant, SharedClock, SystemClock};
use crate::remote_keys::RemoteKeys;
use crate::tokens::{self, Algorithm, Claims, Codec, KeySet, Policy, TokenError, TokenType};

/// Whether a token issued at `iat` is revoked by a password change, logout-all, deactivation or
/// deletion that made the user's tokens valid only from `valid_after` (seconds; 0: never
/// revoked). A token without `iat` cannot show it came after a revocation, so any revocation
/// covers it. The rule of jwtd's refresh path and of every [`Verifier`].
pub fn revoked_by_user(iat: Option<i64>, valid_after: i64) -> bool {
    valid_after > 0 && iat.is_none_or(|iat| iat < valid_after)
}

/// The session (refresh-token family) of a token, by [`jwtd_proto::session::session_of`]'s rule:
/// its `sid` claim when it is a string, else the first 16 digits of a jti of 32 lowercase hex
/// digits (where jwtd writes the session id); `None` for any other token.
pub fn session_of(claims: &Claims) -> Option<&str> {
    jwtd_proto::session::session_of(claims.get("sid"), claims.jti())
}

/// Why a Bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no credentials")]
    NotProvided,
    #[error("authorization header must contain two space-delimited values")]
    BadHeader,
    /// Refused for the same reason as each accepted token class (AUTH_TOKEN_CLASSES, listed).
    #[error("token refused: {0}")]
    Token(TokenError, &'static [TokenType]),
    /// A token of an accepted class (the second field), issued before its user revoked it; the
    /// other accepted classes refuse it for its type.
    #[error("token revoked")]
    Revoked(&'static [TokenType], TokenType),
    #[error("token has no user id")]
    NoUserId,
    #[error("the verification keys could not be fetched")]
    KeysUnavailable,
    /// A valid token whose claims a [`RequireClaims`](crate::RequireClaims) guard refuses (403).
    #[error("the token's claims do not allow this")]
    InsufficientScope,
}

/// The token classes accepted as Bearer (AUTH_TOKEN_CLASSES: access, sliding, in the order
/// given), as one of the few lists there are, so that a refusal carries it without allocating.
/// Refresh tokens are never accepted; a list with neither access nor sliding means access.
fn token_classes(classes: &[TokenType]) -> &'static [TokenType] {
    use TokenType::{Access, Sliding};
    let position = |t| classes.iter().position(|c| *c == t);
    match (position(Access), position(Sliding)) {
        (Some(access), Some(sliding)) if sliding < access => &[Sliding, Access],
        (Some(_), Some(_)) => &[Access, Sliding],
        (None, Some(_)) => &[Sliding],
        _ => &[Access],
    }
}

/// The claims of an accepted access token (or sliding token, when AUTH_TOKEN_CLASSES has it).
#[derive(Debug, Clone)]
pub struct AccessClaims {
    /// The id the token carries, as it is (an integer or a UUID).
    pub user_id: UserId,
    pub claims: Claims,
}

/// Verifies tokens; shared by the server's routes and the library's `AuthUser` extractor.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
enum Keys {
    /// The keys the server's own [`Codec`] verifies with.
    Local { keys: KeySet, policy: Policy },
    /// Public keys of a JWKS URL (verification only).
    Remote { keys: RemoteKeys, policy: Policy },
}

#[derive(Debug, Clone)]
struct Inner {
    keys: Keys,
    clock: SharedClock,
    header_types: Vec<String>,
    /// AUTH_TOKEN_CLASSES.
    token_classes: &'static [TokenType],
    user_id_claim: String,
    /// Keyed by the id tokens carry, so an access token is checked without mapping its id.
    valid_after: DashMap<UserId, i64>,
    /// Revoked sessions, with the second of their revocation: every token of one is refused.
    revoked_sessions: DashMap<Box<str>, i64>,
}

impl Verifier {
    /// A verifier of the tokens `codec` signs: its current and previous keys, its policy.
    pub fn new(codec: &Codec, clock: SharedClock, header_types: Vec<String>, user_id_claim: String) -> Self {
        let keys = Keys::Local { keys: codec.keys().clone(), policy: codec.policy().clone() };
        Self::with_keys(keys, clock, header_types, user_id_claim)
    }

    /// A verifier for another service: access tokens are checked against the public keys published
    /// at a JWKS URL (jwtd's `/.well-known/jwks.json`), with `policy`'s audience, issuer and
    /// leeway. It holds no secret and cannot sign. It does not see revocations by password change
    /// or logout-all (those live in jwtd's database); keep access tokens short-lived.
    pub fn remote(
        keys: RemoteKeys,
        policy: Policy,
        clock: SharedClock,
        header_types: Vec<String>,
        user_id_claim: String,
    ) -> Self {
        Self::with_keys(Keys::Remote { keys, policy }, clock, header_types, user_id_claim)
    }

    /// A verifier of HS256 tokens signed with `secret` (jwtd's SIGNING_KEY, a Django project's
    /// SECRET_KEY), with SimpleJWT's defaults: `Authorization: Bearer`, the id in `user_id`, no
    /// audience or issuer, the system clock. Change them with the `with_*` methods, before
    /// cloning. A secret under 32 bytes is refused.
    pub fn hmac(secret: &[u8]) -> Result<Self, String> {
        Self::hmac_with(Algorithm::HS256, secret, Policy::default())
    }

    /// [`Verifier::hmac`] for another HMAC algorithm and `policy`'s audience, issuer and leeway.
    pub fn hmac_with(algorithm: Algorithm, secret: &[u8], policy: Policy) -> Result<Self, String> {
        let keys = KeySet::hmac(algorithm, secret)?;
        let clock: SharedClock = Arc::new(SystemClock);
        Ok(Self::with_keys(Keys::Local { keys, policy }, clock, vec!["Bearer".into()], "user_id".into()))
    }

    /// A verifier of the tokens signed by the keys published at `jwks_url` (jwtd's
    /// `/.well-known/jwks.json`), with SimpleJWT's defaults as [`Verifier::hmac`].
    pub fn from_jwks_url(jwks_url: &str, algorithm: Algorithm) -> Result<Self, crate::RemoteKeysError> {
        let options = crate::RemoteOptions { algorithm: Some(algorithm), ..Default::default() };
        let keys = RemoteKeys::new(jwks_url, options)?;
        Ok(Self::remote(keys, Policy::default(), Arc::new(SystemClock), vec!["Bearer".into()], "user_id".into()))
    }

    /// This verifier reading time from `clock` (a test's fake clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        Arc::make_mut(&mut self.inner).clock = clock;
        self
    }

    /// This verifier reading the user id from `claim` (USER_ID_CLAIM).
    pub fn with_user_id_claim(mut self, claim: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).user_id_claim = claim.into();
        self
    }

    /// This verifier taking the `Authorization` schemes `types` (AUTH_HEADER_TYPES).
    pub fn with_header_types(mut self, types: Vec<String>) -> Self {
        Arc::make_mut(&mut self.inner).header_types = types;
        self
    }

    fn with_keys(keys: Keys, clock: SharedClock, header_types: Vec<String>, user_id_claim: String) -> Self {
        let token_classes = token_classes(&[TokenType::Access]);
        let inner = Inner {
            keys,
            clock,
            header_types,
            token_classes,
            user_id_claim,
            valid_after: DashMap::new(),
            revoked_sessions: DashMap::new(),
        };
        Verifier { inner: Arc::new(inner) }
    }

    /// This verifier accepting the token types `classes` as Bearer (AUTH_TOKEN_CLASSES; access
    /// tokens only by default), tried in that order; refresh tokens never. A sliding token goes
    /// through every check an access token does (signature, times, revocation by its user).
    /// Call it on a new verifier, before it is cloned: a clone made earlier keeps its own
    /// classes and its own revocation map.
    pub fn accepting(mut self, classes: &[TokenType]) -> Self {
        Arc::make_mut(&mut self.inner).token_classes = token_classes(classes);
        self
    }

    /// The token types accepted as Bearer, in the order tried.
    pub fn token_classes(&self) -> &'static [TokenType] {
        self.inner.token_classes
    }

    /// The public keys as a JWK Set document (`{"keys":[]}` for HMAC).
    pub fn jwks(&self) -> serde_json::Value {
        match &self.inner.keys {
            Keys::Local { keys, .. } => keys.jwks(),
            Keys::Remote { keys, .. } => keys.keys().jwks(),
        }
    }

    /// Verifies any token (signature, `alg`, times, audience, issuer) with the current keys.
    pub fn decode(&self, raw: &str, now: Instant) -> Result<Claims, TokenError> {
        match &self.inner.keys {
            Keys::Local { keys, policy } => tokens::verify(raw, keys, policy, now),
            Keys::Remote { keys, policy } => tokens::verify(raw, &keys.keys(), policy, now),
        }
    }

    pub fn user_id_claim(&self) -> &str {
        &self.inner.user_id_claim
    }

    pub fn header_types(&self) -> &[String] {
        &self.inner.header_types
    }

    /// Records that the user's tokens issued before `valid_after` (seconds) are revoked.
    pub fn revoke_before(&self, user_id: UserId, valid_after: i64) {
        let mut entry = self.inner.valid_after.entry(user_id).or_insert(valid_after);
        if *entry < valid_after {
            *entry = valid_after;
        }
    }

    /// The first second whose tokens of `user_id` are valid, as far as this verifier knows (0:
    /// none revoked).
    pub fn valid_after(&self, user_id: UserId) -> i64 {
        self.inner.valid_after.get(&user_id).map_or(0, |after| *after)
    }

    /// Records that the tokens of `session` issued before `valid_after` (seconds) are revoked
    /// (the rule is [`revoked_by_user`]'s, for one session).
    pub fn revoke_session(&self, session: &str, valid_after: i64) {
        let mut entry = self.inner.revoked_sessions.entry(session.into()).or_insert(valid_after);
        if *entry < valid_after {
            *entry = valid_after;
        }
    }

    /// Whether a token of `session` issued at `iat` was revoked with its session.
    pub fn is_session_revoked(&self, session: &str, iat: Option<i64>) -> bool {
        !self.inner.revoked_sessions.is_empty()
            && self.inner.revoked_sessions.get(session).is_some_and(|after| revoked_by_user(iat, *after))
    }

    /// Forgets the sessions revoked before `before` (seconds): once every token of theirs has
    /// expired (the longest token lifetime after their revocation), none can be presented.
    pub fn forget_sessions_revoked_before(&self, before: i64) {
        self.inner.revoked_sessions.retain(|_, after| *after >= before);
    }

    /// Forgets the sessions revoked more than `age` ago by this verifier's clock: pass the longest
    /// lifetime a token it accepts can have (plus the leeway), after which no token of theirs can
    /// be presented any more.
    pub fn forget_sessions_older_than(&self, age: std::time::Duration) {
        let now = self.inner.clock.now().secs();
        self.forget_sessions_revoked_before(now.saturating_sub(crate::tokens::secs_of(age)));
    }

    /// Whether the claims of a token are revoked: by its user ([`Verifier::is_revoked`]) or with
    /// its session ([`session_of`]).
    pub fn is_revoked_token(&self, user_id: UserId, claims: &Claims) -> bool {
        self.is_revoked(user_id, claims.iat())
            || session_of(claims).is_some_and(|s| self.is_session_revoked(s, claims.iat()))
    }

    /// Whether a token of `user_id` issued at `iat` was revoked by a password change or logout-all
    /// (the rule is [`revoked_by_user`]'s).
    pub fn is_revoked(&self, user_id: UserId, iat: Option<i64>) -> bool {
        self.inner.valid_after.get(&user_id).is_some_and(|after| revoked_by_user(iat, *after))
    }

    /// Verifies a Bearer token at the current time: signature, `alg`, times, type (one of
    /// [`Verifier::token_classes`]), user id, revocation. No database round trip.
    pub fn access(&self, raw: &str) -> Result<AccessClaims, BearerError> {
        let classes = self.inner.token_classes;
        let refused = |e| BearerError::Token(e, classes);
        let claims = self.decode(raw, self.inner.clock.now()).map_err(refused)?;
        let token_type = claims.token_type().map_err(refused)?;
        if !classes.contains(&token_type) {
            return Err(refused(TokenError::WrongType));
        }
        let user_id = match claims.user_id(&self.inner.user_id_claim) {
            Ok(Some(id)) => id,
            Ok(None) => return Err(BearerError::NoUserId),
            Err(e) => return Err(refused(e)),
        };
        if self.is_revoked_token(user_id, &claims) {
            return Err(BearerError::Revoked(classes, token_type));
        }
        Ok(AccessClaims { user_id, claims })
    }

    /// Whether [`Verifier::authenticate`] may wait (remote keys, fetched when stale or missing a
    /// `kid`); with local keys it is [`Verifier::access`], decided at once.
    pub fn waits(&self) -> bool {
        matches!(self.inner.keys, Keys::Remote { .. })
    }

    /// [`Verifier::access`], first fetching remote keys when they are stale, and again when the
    /// token names a `kid` they lack (a key rotation at the issuer). Local keys never wait.
    pub async fn authenticate(&self, raw: &str) -> Result<AccessClaims, BearerError> {
        let Keys::Remote { keys, .. } = &self.inner.keys else {
            return self.access(raw);
        };
        let now = self.inner.clock.now();
        if keys.is_stale(now) {
            if let Err(e) = keys.refresh(now).await {
                warn!(error = %e, "could not fetch the JWKS; using the keys fetched before");
            }
        }
        match self.access(raw) {
            Err(BearerError::Token(TokenError::UnknownKey, _)) => {
                match keys.refresh(now).await {
                    Ok(true) => {}
                    Ok(false) if keys.is_loaded() => {}
                    Ok(false) => return Err(BearerError::KeysUnavailable),
                    Err(e) => {
                        warn!(error = %e, "could not fetch the JWKS");
                        if !keys.is_loaded() {
                            return Err(BearerError::KeysUnavailable);
                        }
                    }
                }
                self.access(raw)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenType::{Access, Refresh, Sliding};

    #[test]
    fn a_revoked_session_refuses_its_tokens_issued_before_and_no_other() {
        let verifier = Verifier::hmac(&[7; 32]).unwrap();
        let claims = |jti: &str, iat: i64| {
            let mut map = serde_json::Map::new();
            map.insert("exp".into(), 10_000.into());
            map.insert("iat".into(), iat.into());
            map.insert("jti".into(), jti.into());
            Claims::parse(map).unwrap()
        };
        let ada = UserId::Int(1);
        let in_session = claims("0123456789abcdef8123456789abcdef", 99);
        let other_session = claims("fedcba98765432108123456789abcdef", 99);
        assert!(!verifier.is_revoked_token(ada, &in_session));
        verifier.revoke_session("0123456789abcdef", 100);
        assert!(verifier.is_revoked_token(ada, &in_session));
        assert!(!verifier.is_revoked_token(ada, &other_session));
        assert!(!verifier.is_revoked_token(ada, &claims("0123456789abcdef8123456789abcdef", 100)));
        verifier.forget_sessions_revoked_before(101);
        assert!(!verifier.is_revoked_token(ada, &in_session));
    }

    #[test]
    fn revoked_sessions_are_forgotten_by_age_on_the_verifiers_clock() {
        let clock = Arc::new(crate::clock::FakeClock::at(Instant::from_secs(1_000)));
        let verifier = Verifier::hmac(&[7; 32]).unwrap().with_clock(clock.clone());
        verifier.revoke_session("0123456789abcdef", 500);
        verifier.forget_sessions_older_than(std::time::Duration::from_secs(600));
        assert!(verifier.is_session_revoked("0123456789abcdef", Some(400)), "revoked 500 s ago: kept");
        verifier.forget_sessions_older_than(std::time::Duration::from_secs(400));
        assert!(!verifier.is_session_revoked("0123456789abcdef", Some(400)), "older than 400 s: forgotten");
    }

    #[test]
    fn token_classes_keep_the_order_given_and_never_take_refresh_tokens() {
        assert_eq!(token_classes(&[Access]), &[Access]);
        assert_eq!(token_classes(&[Sliding]), &[Sliding]);
        assert_eq!(token_classes(&[Access, Sliding]), &[Access, Sliding]);
        assert_eq!(token_classes(&[Refresh, Sliding, Access]), &[Sliding, Access]);
        assert_eq!(token_classes(&[Refresh]), &[Access]);
        assert_eq!(token_classes(&[]), &[Access]);
    }
}
