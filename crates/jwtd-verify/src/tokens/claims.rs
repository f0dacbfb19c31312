//! The claims of a verified token, with typed accessors for the ones SimpleJWT relies on,
//! and the constructors of new tokens' claims.

use jwtd_proto::UserId;
use serde_json::{Map, Value};
use std::time::Duration;

use super::TokenError;

/// `token_type` claim values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
    Sliding,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
            TokenType::Sliding => "sliding",
        }
    }
}

/// Claims SimpleJWT sets itself; everything else is copied from a refresh token into the
/// access tokens made from it (SimpleJWT's `no_copy_claims`).
const NO_COPY: [&str; 4] = ["token_type", "exp", "iat", "jti"];

/// The payload of a token whose signature, algorithm, times and required claims were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    map: Map<String, Value>,
    exp: f64,
    iat: Option<i64>,
    jti: String,
}

impl Claims {
    /// Checks the claim types of a decoded payload. `exp` and `jti` are required (SimpleJWT's
    /// `Token.verify`); `iat`, when present, must be a number.
    pub(crate) fn parse(map: Map<String, Value>) -> Result<Self, TokenError> {
        let exp = match map.get("exp") {
            None => return Err(TokenError::NoExp),
            Some(v) => number(v)?,
        };
        let iat = match map.get("iat") {
            None => None,
            Some(v) => Some(number(v)?.floor() as i64),
        };
        let jti = match map.get("jti") {
            None => return Err(TokenError::NoId),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
            Some(_) => return Err(TokenError::BadClaim),
        };
        if let Some(nbf) = map.get("nbf") {
            number(nbf)?;
        }
        Ok(Claims { map, exp, iat, jti })
    }

    /// New claims of `token_type` for `user_id`, issued at `now_secs`, in SimpleJWT's order. The
    /// id is a JSON integer for integer ids, a string for UUIDs, and always a string in `sub`
    /// (RFC 7519; PyJWT ≥ 2.10 refuses any other `sub`).
    pub fn new(
        token_type: TokenType,
        user_id_claim: &str,
        user_id: UserId,
        now_secs: i64,
        lifetime: Duration,
        jti: String,
    ) -> Self {
        let mut claims = Claims::standard(token_type, now_secs, lifetime, jti);
        claims.map.insert(user_id_claim.into(), user_id.to_json(user_id_claim == "sub"));
        claims
    }

    /// SimpleJWT's own claims, in its order: `token_type`, `exp`, `iat`, `jti`.
    fn standard(token_type: TokenType, now_secs: i64, lifetime: Duration, jti: String) -> Self {
        let exp = now_secs.saturating_add(secs(lifetime));
        let mut map = Map::new();
        map.insert("token_type".into(), token_type.as_str().into());
        map.insert("exp".into(), exp.into());
        map.insert("iat".into(), now_secs.into());
        map.insert("jti".into(), jti.clone().into());
        Claims { map, exp: exp as f64, iat: Some(now_secs), jti }
    }

    /// A new token of `token_type` carrying every claim of `self` but the ones SimpleJWT sets
    /// (an access token made from a refresh token).
    pub fn derive(&self, token_type: TokenType, now_secs: i64, lifetime: Duration, jti: String) -> Self {
        let mut claims = Claims::standard(token_type, now_secs, lifetime, jti);
        for (k, v) in &self.map {
            if !NO_COPY.contains(&k.as_str()) {
                claims.map.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    /// The same token with new times and, when given, a new jti (rotation, sliding refresh).
    pub fn renew(&self, jti: Option<String>, iat_secs: i64, exp_secs: i64) -> Self {
        let mut next = self.clone();
        next.map.insert("exp".into(), exp_secs.into());
        next.map.insert("iat".into(), iat_secs.into());
        next.exp = exp_secs as f64;
        next.iat = Some(iat_secs);
        if let Some(jti) = jti {
            next.map.insert("jti".into(), jti.clone().into());
            next.jti = jti;
        }
        next
    }

    pub fn insert(&mut self, name: &str, value: Value) {
        self.map.insert(name.into(), value);
    }

    pub fn token_type(&self) -> Result<TokenType, TokenError> {
        match self.map.get("token_type") {
            None => Err(TokenError::NoType),
            Some(Value::String(s)) => match s.as_str() {
                "access" => Ok(TokenType::Access),
                "refresh" => Ok(TokenType::Refresh),
                "sliding" => Ok(TokenType::Sliding),
                _ => Err(TokenError::WrongType),
            },
            Some(_) => Err(TokenError::WrongType),
        }
    }

    /// Fails unless the token is of `expected` type.
    pub fn expect_type(&self, expected: TokenType) -> Result<(), TokenError> {
        if self.token_type()? == expected {
            Ok(())
        } else {
            Err(TokenError::WrongType)
        }
    }

    /// The user id: a JSON integer, a decimal string as SimpleJWT 5.5 writes it, or a UUID
    /// string. `Ok(None)` when the claim is absent; an error when it has any other shape (a
    /// malformed UUID makes the token invalid).
    pub fn user_id(&self, claim: &str) -> Result<Option<UserId>, TokenError> {
        match self.map.get(claim) {
            None => Ok(None),
            Some(v) => UserId::from_json(v).map(Some).ok_or(TokenError::BadClaim),
        }
    }

    /// The session (refresh-token family) id jwtd writes; tokens issued by Django have none.
    pub fn sid(&self) -> Option<&str> {
        self.map.get("sid").and_then(Value::as_str)
    }

    /// The session the token names: its `sid` claim when that is a string, else the first half
    /// of a 32-hex jti ([`jwtd_proto::session::session_of`]).
    pub fn session(&self) -> Option<&str> {
        jwtd_proto::session::session_of(self.map.get("sid"), &self.jti)
    }

    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `exp` in seconds, as sent (may be fractional).
    pub fn exp(&self) -> f64 {
        self.exp
    }

    /// `exp` rounded down to whole seconds.
    pub fn exp_secs(&self) -> i64 {
        self.exp.floor() as i64
    }

    /// `iat` in whole seconds, when present.
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }
}

fn number(v: &Value) -> Result<f64, TokenError> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).ok_or(TokenError::BadClaim),
        _ => Err(TokenError::BadClaim),
    }
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Claims, TokenError> {
        match v {
            Value::Object(m) => Claims::parse(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn user_id_accepts_integer_and_decimal_string_only() {
        let base = json!({"exp": 10, "jti": "a"});
        let with = |uid: Value| {
            let mut v = base.clone();
            v["user_id"] = uid;
            parse(v).unwrap().user_id("user_id")
        };
        assert_eq!(with(json!(42)), Ok(Some(UserId::Int(42))));
        assert_eq!(with(json!("42")), Ok(Some(UserId::Int(42))));
        let uuid = uuid::Uuid::from_u128(42);
        assert_eq!(with(json!(uuid.to_string())), Ok(Some(UserId::Uuid(uuid))));
        assert_eq!(with(json!("00000000-0000-0000-0000-00000000002")), Err(TokenError::BadClaim));
        assert_eq!(with(json!("4x")), Err(TokenError::BadClaim));
        assert_eq!(with(json!({"a": 1})), Err(TokenError::BadClaim));
        assert_eq!(with(json!(1.5)), Err(TokenError::BadClaim));
        assert_eq!(with(json!("")), Err(TokenError::BadClaim));
    }

    #[test]
    fn exp_must_be_a_number_and_jti_a_string() {
        assert_eq!(parse(json!({"exp": "10", "jti": "a"})), Err(TokenError::BadClaim));
        assert_eq!(parse(json!({"jti": "a"})), Err(TokenError::NoExp));
        assert_eq!(parse(json!({"exp": 1})), Err(TokenError::NoId));
        assert_eq!(parse(json!({"exp": 1, "jti": 5})), Err(TokenError::BadClaim));
        assert!(parse(json!({"exp": 1.5, "jti": "x", "iat": 1.2})).is_ok());
    }

    #[test]
    fn derive_copies_custom_claims_but_not_the_reserved_ones() {
        let refresh = parse(json!({"token_type": "refresh", "exp": 100, "iat": 1, "jti": "r",
            "user_id": "7", "role": "admin"}))
        .unwrap();
        let access = refresh.derive(TokenType::Access, 50, Duration::from_secs(10), "a".into());
        assert_eq!(
            Value::Object(access.as_map().clone()),
            json!({"token_type": "access", "exp": 60, "iat": 50, "jti": "a", "user_id": "7", "role": "admin"})
        );
    }
}
