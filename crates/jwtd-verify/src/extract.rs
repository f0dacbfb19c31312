//! The extractors: [`AuthUser`] (and `Option<AuthUser>` for routes open to anonymous callers)
//! and [`Claims<T>`](AuthClaims), the token's claims as a type of the service's own.

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jwtd_proto::UserId;
use serde::de::DeserializeOwned;

use crate::tokens::{Claims, TokenError};
use crate::{AccessClaims, BearerError, Verifier};

/// The user of a request's valid access token (`Authorization: Bearer …`), checked without a
/// database round trip: signature, `alg`, expiry, type, and revocation (the user's logout-all,
/// password change, deactivation or deletion; a revoked session). Works in any axum app whose
/// state gives a [`Verifier`] (`Verifier: FromRef<S>`), or behind a [`VerifyLayer`](crate::VerifyLayer),
/// whose verdict it reuses. A refusal answers as SimpleJWT does (SPEC §2).
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user id as the token carries it: an integer, or a UUID (USER_ID_TYPE=uuid).
    pub user_id: UserId,
    /// Every claim of the token, custom ones (TOKEN_CLAIMS, the user's own) included.
    pub claims: Claims,
}

impl From<AccessClaims> for AuthUser {
    fn from(AccessClaims { user_id, claims }: AccessClaims) -> Self {
        AuthUser { user_id, claims }
    }
}

impl AuthUser {
    /// The claims as `T` (any `serde` type), e.g. a struct of the custom claims a service needs.
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, BearerError> {
        let map = serde_json::Value::Object(self.claims.as_map().clone());
        serde_json::from_value(map).map_err(|_| BearerError::Token(TokenError::BadClaim, &[crate::TokenType::Access]))
    }
}

/// The token of an `Authorization` header value, the one reading of it (jwtd's service tokens
/// are read the same way): `NotProvided` when absent or of another scheme than `header_types`
/// (AUTH_HEADER_TYPES; DRF then answers "not provided"), `BadHeader` when the scheme matches but
/// not exactly one value follows.
pub fn bearer<'a>(header: Option<&'a str>, header_types: &[impl AsRef<str>]) -> Result<&'a str, BearerError> {
    let header = header.ok_or(BearerError::NotProvided)?;
    let mut parts = header.split_ascii_whitespace();
    let scheme = parts.next().ok_or(BearerError::NotProvided)?;
    if !header_types.iter().any(|t| t.as_ref() == scheme) {
        return Err(BearerError::NotProvided);
    }
    match (parts.next(), parts.next()) {
        (Some(token), None) => Ok(token),
        _ => Err(BearerError::BadHeader),
    }
}

/// Authenticates the request of `parts` with `verifier`: the verdict a [`VerifyLayer`](crate::VerifyLayer)
/// left in the request's extensions, else the `Authorization` header's token, checked now.
pub async fn authenticate(parts: &Parts, verifier: &Verifier) -> Result<AuthUser, BearerError> {
    if let Some(user) = parts.extensions.get::<AuthUser>() {
        return Ok(user.clone());
    }
    let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let raw = bearer(header, verifier.header_types())?;
    verifier.authenticate(raw).await.map(AuthUser::from)
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BearerError> {
        // The layer's verdict is taken, not copied (the claims are a map): a second extractor of
        // the same request verifies the header again.
        if let Some(user) = parts.extensions.remove::<AuthUser>() {
            return Ok(user);
        }
        authenticate(parts, &Verifier::from_ref(state)).await
    }
}

/// `Option<AuthUser>`: `None` for a request without credentials; a request with a bad token is
/// still refused (as DRF does on a route open to anonymous users).
impl<S> OptionalFromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, BearerError> {
        match <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(BearerError::NotProvided) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The claims of the request's valid access token as `T`, a `serde` type of the service's own
/// (say `struct Staff { is_staff: bool, groups: Vec<String> }`). A token whose claims do not fit
/// `T` is refused as invalid.
#[derive(Debug, Clone)]
pub struct AuthClaims<T>(pub T);

impl<S, T> FromRequestParts<S> for AuthClaims<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BearerError> {
        let user = <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        user.claims_as().map(AuthClaims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_the_one_value_after_a_known_scheme() {
        let types = vec!["Bearer".to_string(), "JWT".into()];
        assert_eq!(bearer(Some("Bearer a.b.c"), &types), Ok("a.b.c"));
        assert_eq!(bearer(Some("JWT  a.b.c "), &types), Ok("a.b.c"));
        assert_eq!(bearer(None, &types), Err(BearerError::NotProvided));
        assert_eq!(bearer(Some(""), &types), Err(BearerError::NotProvided));
        assert_eq!(bearer(Some("Basic dXNlcg=="), &types), Err(BearerError::NotProvided));
        assert_eq!(bearer(Some("Bearer"), &types), Err(BearerError::BadHeader));
        assert_eq!(bearer(Some("Bearer a b"), &types), Err(BearerError::BadHeader));
    }
}
