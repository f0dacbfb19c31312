//! The SimpleJWT token views: obtain pair, refresh, verify, blacklist, sliding. In cookie mode
//! (REFRESH_COOKIE) the refresh token goes out as a cookie and comes back from it; see `cookie`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jwtd_proto::{Credentials, RefreshRequest, TokenBody, TokenPair};
use serde_json::{json, Value};

use super::cookie::{hand_out_pair, with_cookie, RefreshCookie};
use super::responses::{BodyErrors, CookieOriginRefused, CredentialsRefused, Empty, ServerFaults, TokenRefused};
use super::{ApiError, ClientAddr, Input, UserAgent};
use crate::service::AuthService;
use crate::telemetry::{Metrics, TokenKind};

/// The login (USERNAME_FIELD's body field: `username` or `email`) and the password.
fn credentials(auth: &AuthService, mut input: Input) -> Result<(String, String), ApiError> {
    let username = input.string(auth.login_field().name());
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
        (status = 200, description = "A new refresh token (in cookie mode, in a cookie instead) and its access token.", body = TokenPair),
        BodyErrors,
        CredentialsRefused,
        CookieOriginRefused,
        ServerFaults,
    )
)]
pub async fn obtain_pair(
    State(auth): State<AuthService>,
    State(metrics): State<Arc<Metrics>>,
    ClientAddr(addr): ClientAddr,
    UserAgent(user_agent): UserAgent,
    cookie: RefreshCookie,
    input: Input,
) -> Result<Response, ApiError> {
    let (username, password) = credentials(&auth, input)?;
    let issued = auth.obtain_pair(&username, password, addr, &user_agent).await?;
    let (set_cookie, pair) = hand_out_pair(&metrics, &cookie, issued)?;
    Ok(with_cookie(set_cookie, Json(pair)))
}

/// A new access token from a refresh token (in cookie mode, from the cookie when the body has none);
/// with rotation on, also a new refresh token.
#[utoipa::path(
    post,
    path = "/api/token/refresh/",
    tag = "token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "`access`, and `refresh` when ROTATE_REFRESH_TOKENS is on (in cookie mode, in a cookie instead).", body = TokenPair),
        BodyErrors,
        TokenRefused,
        CookieOriginRefused,
        ServerFaults,
    )
)]
pub async fn refresh(
    State(auth): State<AuthService>,
    State(metrics): State<Arc<Metrics>>,
    cookie: RefreshCookie,
    input: Input,
) -> Result<Response, ApiError> {
    let token = cookie.token(input, "refresh")?;
    let issued = auth.refresh(&token).await?;
    metrics.refreshed(TokenKind::Refresh);
    let (set_cookie, pair) = hand_out_pair(&metrics, &cookie, issued)?;
    Ok(with_cookie(set_cookie, Json(pair)))
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

/// Logout. In cookie mode the cookie is cleared whatever the outcome: a token that cannot be
/// blacklisted (expired, invalid) is of no use to keep either.
#[utoipa::path(
    post,
    path = "/api/token/blacklist/",
    tag = "token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The token is blacklisted (again: still `{}`).", body = Empty),
        BodyErrors,
        TokenRefused,
        CookieOriginRefused,
        ServerFaults,
    )
)]
pub async fn blacklist(
    State(auth): State<AuthService>,
    cookie: RefreshCookie,
    input: Input,
) -> Result<Response, ApiError> {
    let token = cookie.token(input, "refresh")?;
    let response = match auth.blacklist(&token).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    Ok(with_cookie(cookie.clear(), response))
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
    State(metrics): State<Arc<Metrics>>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<Json<TokenBody>, ApiError> {
    let (username, password) = credentials(&auth, input)?;
    let token = auth.obtain_sliding(&username, password, addr).await?;
    metrics.issued(TokenKind::Sliding);
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
pub async fn refresh_sliding(
    State(auth): State<AuthService>,
    State(metrics): State<Arc<Metrics>>,
    input: Input,
) -> Result<Json<TokenBody>, ApiError> {
    let token = one(input, "token")?;
    let token = auth.refresh_sliding(&token).await?;
    metrics.refreshed(TokenKind::Sliding);
    metrics.issued(TokenKind::Sliding);
    Ok(Json(TokenBody { token }))
}
