//! Accounts a person can recover (SPEC §1, §8): password reset and activation, djoser's bodies
//! and answers. Served only when links can leave (WEBHOOK_URL or SMTP_URL); otherwise 404.

use axum::extract::State;
use axum::http::StatusCode;
use jwtd_proto::messages::INVALID_EMAIL;
use jwtd_proto::{ActivationRequest, EmailRequest, PasswordResetConfirm};

use super::responses::{ActivationStale, BodyErrors, ServerFaults};
use super::{ApiError, ClientAddr, Input};
use crate::service::{plausible_email, AuthService, FieldErrors};

/// The `email` of a link request, well-formed (djoser's EmailField).
fn email_of(mut input: Input) -> Result<String, ApiError> {
    let email = input.string("email");
    let email = input.finish(email)?;
    if !plausible_email(email.trim()) || email.chars().count() > 254 {
        let mut errors = FieldErrors::default();
        errors.add("email", INVALID_EMAIL);
        return Err(ApiError::Fields(errors));
    }
    Ok(email)
}

/// Ask for a password-reset link. 204 whatever the address: a link is mailed only to an active
/// account's address, within PASSWORD_RESET_RATE, and the answer takes the same time either way.
#[utoipa::path(
    post,
    path = "/api/auth/password/reset/",
    tag = "account",
    request_body = EmailRequest,
    responses((status = 204, description = "Accepted; a link goes out if the address is an account's."), BodyErrors, ServerFaults)
)]
pub async fn password_reset(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<StatusCode, ApiError> {
    let email = email_of(input)?;
    auth.request_reset(&email, addr);
    Ok(StatusCode::NO_CONTENT)
}

/// Set a new password with a reset link's `uid` and `token`; revokes every token of the user.
#[utoipa::path(
    post,
    path = "/api/auth/password/reset/confirm/",
    tag = "account",
    request_body = PasswordResetConfirm,
    responses((status = 204, description = "The password is set; every token of the user is revoked."), BodyErrors, ServerFaults)
)]
pub async fn password_reset_confirm(State(auth): State<AuthService>, mut input: Input) -> Result<StatusCode, ApiError> {
    let uid = input.string("uid");
    let token = input.string("token");
    let new_password = input.string("new_password");
    let ((uid, token), new_password) = input.finish(uid.zip(token).zip(new_password))?;
    auth.confirm_reset(&uid, &token, new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Activate an account (REQUIRE_EMAIL_VERIFICATION) with its link's `uid` and `token`.
#[utoipa::path(
    post,
    path = "/api/auth/activation/",
    tag = "account",
    request_body = ActivationRequest,
    responses((status = 204, description = "The account is active."), BodyErrors, ActivationStale, ServerFaults)
)]
pub async fn activation(State(auth): State<AuthService>, mut input: Input) -> Result<StatusCode, ApiError> {
    let uid = input.string("uid");
    let token = input.string("token");
    let (uid, token) = input.finish(uid.zip(token))?;
    auth.activate(&uid, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send the activation link again. 204 whatever the address (only an account awaiting
/// activation gets one), within PASSWORD_RESET_RATE.
#[utoipa::path(
    post,
    path = "/api/auth/activation/resend/",
    tag = "account",
    request_body = EmailRequest,
    responses((status = 204, description = "Accepted; a link goes out if the address awaits activation."), BodyErrors, ServerFaults)
)]
pub async fn activation_resend(
    State(auth): State<AuthService>,
    ClientAddr(addr): ClientAddr,
    input: Input,
) -> Result<StatusCode, ApiError> {
    let email = email_of(input)?;
    auth.resend_activation(&email, addr);
    Ok(StatusCode::NO_CONTENT)
}
