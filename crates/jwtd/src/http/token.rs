//! The SimpleJWT token views: obtain pair, refresh, verify, blacklist, sliding. In cookie mode
//! (REFRESH_COOKIE) the refresh token goes out as a cookie and comes back from it; see `cookie`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use jwtd_proto::{Credentials, RefreshRequest, TokenBody, TokenPair};

use super::cookie::{answer_pair, with_cookie};
use super::endpoints::endpoints;
use super::responses::{BodyErrors, CookieOriginRefused, CredentialsRefused, Empty, ServerFaults, TokenRefused};
use super::{ApiError, Input};
use crate::service::AuthService;
use crate::telemetry::TokenKind;

/// The login (USERNAME_FIELD's body field: `username` or `email`) and the password.
fn credentials(auth: &AuthService, input: Input) -> Result<[String; 2], ApiError> {
    input.required([auth.login_field().name(), "password"])
}

endpoints! {
    /// Obtain a token pair (SimpleJWT's TokenObtainPairView).
    post "/api/token/" tag "token" body Credentials
    answers 200 TokenPair "A new refresh token (in cookie mode, in a cookie instead) and its access token."
    refuses BodyErrors, CredentialsRefused, CookieOriginRefused, ServerFaults;
    pub async fn obtain_pair(auth, metrics, addr, user_agent, cookie, input) -> Result<Response, ApiError> {
        let [username, password] = credentials(&auth, input)?;
        let issued = auth.obtain_pair(&username, password, addr, &user_agent).await?;
        answer_pair(&metrics, &cookie, issued)
    }

    /// A new access token from a refresh token (in cookie mode, from the cookie when the body has none);
    /// with rotation on, also a new refresh token.
    post "/api/token/refresh/" tag "token" body RefreshRequest
    answers 200 TokenPair
        "`access`, and `refresh` when ROTATE_REFRESH_TOKENS is on (in cookie mode, in a cookie instead)."
    refuses BodyErrors, TokenRefused, CookieOriginRefused, ServerFaults;
    pub async fn refresh(auth, metrics, cookie, input) -> Result<Response, ApiError> {
        let token = cookie.token(input, "refresh")?;
        let issued = auth.refresh(&token).await?;
        metrics.refreshed(TokenKind::Refresh);
        answer_pair(&metrics, &cookie, issued)
    }

    /// Verify a token of any type; a blacklisted refresh token is refused.
    post "/api/token/verify/" tag "token" body TokenBody
    answers 200 Empty "The token is valid: `{}`."
    refuses BodyErrors, TokenRefused, ServerFaults;
    pub async fn verify(auth, input) -> Result<Empty, ApiError> {
        let [token] = input.required(["token"])?;
        auth.verify(&token).await?;
        Ok(Empty)
    }

    /// Logout. In cookie mode the cookie is cleared whatever the outcome: a token that cannot be
    /// blacklisted (expired, invalid) is of no use to keep either.
    post "/api/token/blacklist/" tag "token" body RefreshRequest
    answers 200 Empty "The token is blacklisted (again: still `{}`)."
    refuses BodyErrors, TokenRefused, CookieOriginRefused, ServerFaults;
    pub async fn blacklist(auth, cookie, input) -> Result<Response, ApiError> {
        let token = cookie.token(input, "refresh")?;
        let response = match auth.blacklist(&token).await {
            Ok(()) => Empty.into_response(),
            Err(e) => ApiError::from(e).into_response(),
        };
        Ok(with_cookie(cookie.clear(), response))
    }

    /// Obtain a sliding token (SimpleJWT's TokenObtainSlidingView).
    post "/api/token/sliding/" tag "token" body Credentials
    answers 200 TokenBody "A new sliding token."
    refuses BodyErrors, CredentialsRefused, ServerFaults;
    pub async fn obtain_sliding(auth, metrics, addr, input) -> Result<Json<TokenBody>, ApiError> {
        let [username, password] = credentials(&auth, input)?;
        let token = auth.obtain_sliding(&username, password, addr).await?;
        metrics.issued(TokenKind::Sliding);
        Ok(Json(TokenBody { token }))
    }

    /// Renew a sliding token within its `refresh_exp`.
    post "/api/token/sliding/refresh/" tag "token" body TokenBody
    answers 200 TokenBody "The sliding token, renewed."
    refuses BodyErrors, TokenRefused, ServerFaults;
    pub async fn refresh_sliding(auth, metrics, input) -> Result<Json<TokenBody>, ApiError> {
        let [token] = input.required(["token"])?;
        let token = auth.refresh_sliding(&token).await?;
        metrics.refreshed(TokenKind::Sliding);
        metrics.issued(TokenKind::Sliding);
        Ok(Json(TokenBody { token }))
    }
}
