//! Extractors: the Bearer-authenticated user and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::ApiError;
use crate::service::{AccessClaims, Verifier};
use crate::tokens::Claims;

/// The user of a request's valid access token (`Authorization: Bearer …`), checked without a
/// database round trip: signature, `alg`, expiry, type, and revocation by password change or
/// logout-all. Generic over the outer state, so it works in any axum app holding a [`Verifier`],
/// including one that verifies against jwtd's JWKS URL ([`Verifier::remote`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: i64,
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
        let raw = verifier.bearer(header)?;
        let AccessClaims { user_id, claims } = verifier.authenticate(raw).await?;
        Ok(AuthUser { user_id, claims })
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
