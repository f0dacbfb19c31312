//! The SimpleJWT token views: obtain pair, refresh, verify, blacklist, sliding.

use axum::extract::State;
use axum::Json;
use jwtd_proto::{Credentials, RefreshRequest, TokenBody, TokenPair};
use serde_json::{json, Value};

use super::openapi::{BodyErrors, CredentialsRefused, Empty, ServerFaults, TokenRefused};
use super::{ApiError, ClientAddr, Input};
use crate::service::AuthService;

fn credentials(mut input: Input) -> Result<(String, String), ApiError> {
    let username = input.string("username");
    let password = input.string("password");
    input.finish(username.zip(password))
}

fn one(mut input: Input, name: &str) -> Result<String, ApiError> {
    let value = input.string(name);
    input.finish(value)
}

/// Obtain a token pair (SimpleJWT's TokenObtainPairView).
#[utoipa::path(
    post,
    path = "/api/token/",
    tag = "token",
    request_body = Credentials,
    responses(
        (status = 200, description = "A new refresh token and its access token.", body = TokenPair),
        BodyErrors,
        CredentialsRefused,
        ServerFaults,
    )
)]
pub async fn obtain_pair(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<Json<TokenPair>, ApiError> {
    let (username, password) = credentials(input)?;
    let issued = auth.obtain_pair(&username, password, addr).await?;
    Ok(Json(TokenPair { refresh: issued.refresh, access: issued.access }))
}

/// A new access token from a refresh token; with rotation on, also a new refresh token.
#[utoipa::path(
    post,
    path = "/api/token/refresh/",
    tag = "token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "`access`, and `refresh` when ROTATE_REFRESH_TOKENS is on.", body = TokenPair),
        BodyErrors,
        TokenRefused,
        ServerFaults,
    )
)]
pub async fn refresh(State(auth): State<AuthService>, input: Input) -> Result<Json<TokenPair>, ApiError> {
    let token = one(input, "refresh")?;
    let issued = auth.refresh(&token).await?;
    Ok(Json(TokenPair { refresh: issued.refresh, access: issued.access }))
}

/// Verify a token of any type; a blacklisted refresh token is refused.
#[utoipa::path(
    post,
    path = "/api/token/verify/",
    tag = "token",
    request_body = TokenBody,
    responses(
        (status = 200, description = "The token is valid: `{}`.", body = Empty),
        BodyErrors,
        TokenRefused,
        ServerFaults,
    )
)]
pub async fn verify(State(auth): State<AuthService>, input: Input) -> Result<Json<Value>, ApiError> {
    let token = one(input, "token")?;
    auth.verify(&token).await?;
    Ok(Json(json!({})))
}

/// Log out: blacklist a refresh token (again: still `{}`).
#[utoipa::path(
    post,
    path = "/api/token/blacklist/",
    tag = "token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The token is blacklisted: `{}`.", body = Empty),
        BodyErrors,
        TokenRefused,
        ServerFaults,
    )
)]
pub async fn blacklist(State(auth): State<AuthService>, input: Input) -> Result<Json<Value>, ApiError> {
    let token = one(input, "refresh")?;
    auth.blacklist(&token).await?;
    Ok(Json(json!({})))
}

/// Obtain a sliding token (SimpleJWT's TokenObtainSlidingView).
#[utoipa::path(
    post,
    path = "/api/token/sliding/",
    tag = "token",
    request_body = Credentials,
    responses(
        (status = 200, description = "A new sliding token.", body = TokenBody),
        BodyErrors,
        CredentialsRefused,
        ServerFaults,
    )
)]
pub async fn obtain_sliding(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<Json<TokenBody>, ApiError> {
    let (username, password) = credentials(input)?;
    let token = auth.obtain_sliding(&username, password, addr).await?;
    Ok(Json(TokenBody { token }))
}

/// Renew a sliding token within its `refresh_exp`.
#[utoipa::path(
    post,
    path = "/api/token/sliding/refresh/",
    tag = "token",
    request_body = TokenBody,
    responses(
        (status = 200, description = "The sliding token, renewed.", body = TokenBody),
        BodyErrors,
        TokenRefused,
        ServerFaults,
    )
)]
pub async fn refresh_sliding(State(auth): State<AuthService>, input: Input) -> Result<Json<TokenBody>, ApiError> {
    let token = one(input, "token")?;
    Ok(Json(TokenBody { token: auth.refresh_sliding(&token).await? }))
}
