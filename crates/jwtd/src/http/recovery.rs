//! Accounts a person can recover (SPEC §1, §8): password reset and activation, djoser's bodies
//! and answers. Served only when links can leave (WEBHOOK_URL or SMTP_URL); otherwise 404.

use axum::http::StatusCode;
use jwtd_proto::messages::INVALID_EMAIL;
use jwtd_proto::{ActivationRequest, EmailRequest, PasswordResetConfirm};

use super::endpoints::endpoints;
use super::responses::{ActivationStale, BodyErrors, ServerFaults};
use super::{ApiError, Input};
use crate::service::{plausible_email, FieldErrors};

/// A link request (password reset, activation): its `email`, well-formed (djoser's EmailField),
/// goes to `request`; the answer is 204 whatever the address.
fn link_request(input: Input, request: impl FnOnce(&str)) -> Result<StatusCode, ApiError> {
    let [email] = input.required(["email"])?;
    if !plausible_email(email.trim()) || email.chars().count() > 254 {
        let mut errors = FieldErrors::default();
        errors.add("email", INVALID_EMAIL);
        return Err(ApiError::Fields(errors));
    }
    request(&email);
    Ok(StatusCode::NO_CONTENT)
}

endpoints! {
    /// Ask for a password-reset link. 204 whatever the address: a link is mailed only to an active
    /// account's address, within PASSWORD_RESET_RATE, and the answer takes the same time either way.
    post "/api/auth/password/reset/" tag "account" body EmailRequest
    answers 204 "Accepted; a link goes out if the address is an account's."
    refuses BodyErrors, ServerFaults;
    pub async fn password_reset(auth, addr, input) -> Result<StatusCode, ApiError> {
        link_request(input, |email| auth.request_reset(email, addr))
    }

    /// Set a new password with a reset link's `uid` and `token`; revokes every token of the user.
    post "/api/auth/password/reset/confirm/" tag "account" body PasswordResetConfirm
    answers 204 "The password is set; every token of the user is revoked."
    refuses BodyErrors, ServerFaults;
    pub async fn password_reset_confirm(auth, input) -> Result<StatusCode, ApiError> {
        let [uid, token, new_password] = input.required(["uid", "token", "new_password"])?;
        auth.confirm_reset(&uid, &token, new_password).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// Activate an account (REQUIRE_EMAIL_VERIFICATION) with its link's `uid` and `token`.
    post "/api/auth/activation/" tag "account" body ActivationRequest
    answers 204 "The account is active."
    refuses BodyErrors, ActivationStale, ServerFaults;
    pub async fn activation(auth, input) -> Result<StatusCode, ApiError> {
        let [uid, token] = input.required(["uid", "token"])?;
        auth.activate(&uid, &token).await?;
        Ok(StatusCode::NO_CONTENT)
    }

    /// Send the activation link again. 204 whatever the address (only an account awaiting
    /// activation gets one), within PASSWORD_RESET_RATE.
    post "/api/auth/activation/resend/" tag "account" body EmailRequest
    answers 204 "Accepted; a link goes out if the address awaits activation."
    refuses BodyErrors, ServerFaults;
    pub async fn activation_resend(auth, addr, input) -> Result<StatusCode, ApiError> {
        link_request(input, |email| auth.resend_activation(email, addr))
    }
}
