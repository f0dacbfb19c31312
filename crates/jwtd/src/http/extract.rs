//! Extractors: the Bearer-authenticated user and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use jwtd_proto::UserId;

use super::ApiError;
use crate::service::{AccessClaims, BearerError, Verifier};
use crate::tokens::Claims;

/// The user of a request's valid access token (`Authorization: Bearer …`), checked without a
/// database round trip: signature, `alg`, expiry, type, and revocation by password change or
/// logout-all. Generic over the outer state, so it works in any axum app holding a [`Verifier`],
/// including one that verifies against jwtd's JWKS URL ([`Verifier::remote`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user id as the token carries it: an integer, or a UUID (USER_ID_TYPE=uuid).
    pub user_id: UserId,
    /// Every claim of the token, custom ones (TOKEN_CLAIMS, the user's own) included.
    pub claims: Claims,
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let verifier = Verifier::from_ref(state);
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let raw = bearer(header, verifier.header_types())?;
        let AccessClaims { user_id, claims } = verifier.authenticate(raw).await?;
        Ok(AuthUser { user_id, claims })
    }
}

/// The token of an `Authorization` header value: `None` when absent or of another scheme than
/// `header_types` (AUTH_HEADER_TYPES; DRF then answers "not provided"), an error when the scheme
/// matches but the shape doesn't.
fn bearer<'a>(header: Option<&'a str>, header_types: &[String]) -> Result<&'a str, BearerError> {
    let header = header.ok_or(BearerError::NotProvided)?;
    let mut parts = header.split_ascii_whitespace();
    let scheme = parts.next().ok_or(BearerError::NotProvided)?;
    if !header_types.iter().any(|t| t == scheme) {
        return Err(BearerError::NotProvided);
    }
    match (parts.next(), parts.next()) {
        (Some(token), None) => Ok(token),
        _ => Err(BearerError::BadHeader),
    }
}

/// The peer address of the connection, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
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
