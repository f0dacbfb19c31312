//! Accounts: sign-up, the protected `/api/me/`, password change and logout-all.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jwtd_proto::{Me, PasswordChange, Session, Sessions, SignUpPending, SignUpRequest, SignUpResponse, UserSummary};
use time::format_description::well_known::Iso8601;
use time::OffsetDateTime;

use super::cookie::{hand_out_pair, with_cookie};
use super::endpoints::endpoints;
use super::responses::{
    BearerRefused, BodyErrors, CookieOriginRefused, Empty, PasswordChecksThrottled, ServerFaults, SessionNotFound,
    SignUpRefused,
};
use super::{ApiError, Input};
use crate::clock::Instant;
use crate::config::LoginField;

/// Django's `datetime.isoformat()` of an aware UTC time: `2026-01-02T03:04:05.678000+00:00`.
fn isoformat(t: Instant) -> String {
    let nanos = i128::from(t.millis()) * 1_000_000;
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    let base = dt.format(&Iso8601::DATE_TIME).unwrap_or_default();
    let date_time = base.split('.').next().unwrap_or(&base).to_string();
    format!("{date_time}.{:06}+00:00", dt.microsecond())
}

endpoints! {
    /// Create an account; answers with the user and a token pair.
    post "/api/auth/signup/" tag "auth" body SignUpRequest
    answers 201 SignUpResponse "The new user and a token pair."
    refuses BodyErrors, SignUpRefused, CookieOriginRefused, ServerFaults;
    pub async fn sign_up(
        auth,
        metrics,
        addr,
        user_agent,
        cookie,
        input: Result<Input, ApiError>,
    ) -> Result<Response, ApiError> {
        // DRF checks permissions and throttles before it reads the body.
        auth.admit_sign_up(addr)?;
        let mut input = input?;
        // The reference serializer's fields, in its order: with USERNAME_FIELD=email the e-mail is
        // required and comes before the password, the username optional.
        let (username, password, email) = match auth.login_field() {
            LoginField::Username => {
                let username = input.string("username");
                let password = input.string("password");
                let email = input.optional_string("email");
                let (username, password) = input.finish(username.zip(password))?;
                (Some(username), password, email)
            }
            LoginField::Email => {
                let username = input.optional_string("username");
                let email = input.string("email");
                let password = input.string("password");
                let (email, password) = input.finish(email.zip(password))?;
                (username, password, Some(email))
            }
        };
        let signed_up = auth.sign_up(username, password, email, addr, &user_agent).await?;
        let id = auth.public_id(&signed_up.user)?;
        let user = match auth.login_field() {
            LoginField::Username => UserSummary { id, username: Some(signed_up.user.profile.username), email: None },
            LoginField::Email => UserSummary { id, username: None, email: Some(signed_up.user.profile.email) },
        };
        let Some(tokens) = signed_up.tokens else {
            // REQUIRE_EMAIL_VERIFICATION: inactive until the link is followed, so no tokens yet.
            return Ok((StatusCode::CREATED, Json(SignUpPending { user })).into_response());
        };
        let (set_cookie, pair) = hand_out_pair(&metrics, &cookie, tokens)?;
        let body = Json(SignUpResponse { user, tokens: pair });
        Ok(with_cookie(set_cookie, (StatusCode::CREATED, body)))
    }

    /// The signed-in user.
    get "/api/me/" tag "account" security "bearerAuth"
    answers 200 Me "The user of the access token."
    refuses BearerRefused, ServerFaults;
    pub async fn me(auth, user) -> Result<Json<Me>, ApiError> {
        let p = auth.profile(user.user_id).await?;
        Ok(Json(Me {
            id: user.user_id,
            username: p.username.clone(),
            email: p.email.clone(),
            date_joined: isoformat(p.date_joined),
            last_login: p.last_login.map(isoformat),
        }))
    }

    /// Change the password; revokes every refresh token of the user and the access tokens issued before.
    post "/api/auth/password/" tag "account" security "bearerAuth" body PasswordChange
    answers 200 Empty "Changed: `{}`."
    refuses BodyErrors, BearerRefused, PasswordChecksThrottled, ServerFaults;
    pub async fn change_password(auth, user, addr, input) -> Result<Empty, ApiError> {
        let [old, new] = input.required(["old_password", "new_password"])?;
        auth.change_password(user.user_id, old, new, addr).await?;
        Ok(Empty)
    }

    /// Log out everywhere: revokes every refresh token of the user and the access tokens issued before.
    post "/api/auth/logout-all/" tag "account" security "bearerAuth"
    answers 200 Empty "Done: `{}`."
    refuses BearerRefused, ServerFaults;
    pub async fn logout_all(auth, user) -> Result<Empty, ApiError> {
        auth.logout_all(user.user_id).await?;
        Ok(Empty)
    }

    /// The caller's live sessions, newest first; `current` marks the one its access token is of.
    get "/api/auth/sessions/" tag "account" security "bearerAuth"
    answers 200 Sessions "The caller's sessions."
    refuses BearerRefused, ServerFaults;
    pub async fn sessions(auth, user) -> Result<Json<Sessions>, ApiError> {
        let current = user.claims.session();
        let listed = auth.sessions(user.user_id).await?;
        let sessions = listed
            .into_iter()
            .map(|s| Session {
                current: current == Some(s.id.as_str()),
                id: s.id,
                created_at: isoformat(Instant::from_secs(s.created_at)),
                last_used_at: isoformat(Instant::from_secs(s.last_used_at)),
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect();
        Ok(Json(Sessions { sessions }))
    }

    /// Revokes one session of the caller's: its refresh tokens at once, its access tokens within a
    /// second on every instance.
    delete "/api/auth/sessions/{id}/" tag "account" security "bearerAuth"
    params ((
        "id" = String, Path, description = "The session id (16 hex digits).",
        pattern = "^[0-9a-f]{16}$", min_length = 16, max_length = 16,
    ))
    answers 200 Empty "Done: `{}`."
    refuses BearerRefused, SessionNotFound, ServerFaults;
    pub async fn revoke_session(
        auth,
        user,
        addr,
        id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    ) -> Result<Empty, ApiError> {
        // An id that is not even text (bad percent-encoding) names no session either.
        let Ok(Path(id)) = id else { return Err(ApiError::NotFound) };
        auth.revoke_session(user.user_id, &id, addr).await?;
        Ok(Empty)
    }

    /// Revokes every session of the caller's but the one its access token is of.
    post "/api/auth/logout-others/" tag "account" security "bearerAuth"
    answers 200 Empty "Done: `{}`."
    refuses BearerRefused, ServerFaults;
    pub async fn logout_others(auth, user, addr) -> Result<Empty, ApiError> {
        auth.logout_others(user.user_id, user.claims.session(), addr).await?;
        Ok(Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_matches_django() {
        assert_eq!(isoformat(Instant::from_millis(1_700_000_000_123)), "2023-11-14T22:13:20.123000+00:00");
    }
}
