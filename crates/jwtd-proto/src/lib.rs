//! Wire types of the jwtd API (SPEC §1–§2): the JSON bodies that cross between jwtd and its
//! clients, and in [`messages`] every text of their error bodies. Changing this crate changes
//! the contract.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

pub mod messages;
#[cfg(feature = "openapi")]
mod schema;
pub mod session;
mod user_id;

pub use user_id::UserId;

/// `POST /api/token/`, `/api/auth/signin/`, `/api/token/sliding/` request.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"username": "ada", "password": "correct horse battery"})))]
pub struct Credentials {
    /// Case-sensitive username.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub username: String,
    /// Plain-text password.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub password: String,
}

/// `POST /api/auth/signup/` request.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"username": "ada", "password": "correct horse battery", "email": "ada@example.com"})))]
pub struct SignUpRequest {
    /// At most 150 characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::new_username))]
    pub username: String,
    /// At least 8 characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::new_password))]
    pub password: String,
    /// Optional e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::email))]
    pub email: Option<String>,
}

/// The user part of a sign-up answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    /// The user id, as tokens carry it: an integer, or a UUID string (USER_ID_TYPE=uuid).
    pub id: UserId,
    /// The username (USERNAME_FIELD=username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The e-mail address, as stored (USERNAME_FIELD=email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /api/auth/signup/` answer (201).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignUpResponse {
    /// The new user.
    pub user: UserSummary,
    /// Its first token pair (in cookie mode, the refresh token travels in a cookie instead).
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// A token pair (`POST /api/token/`); also the refresh answer, whose `refresh` is present only
/// when rotation is on.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    /// Refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::token))]
    pub refresh: Option<String>,
    /// Access token.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::token))]
    pub access: String,
}

/// `POST /api/token/refresh/` and `/api/token/blacklist/` request.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The refresh token.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub refresh: String,
}

/// `POST /api/token/verify/` and `/api/token/sliding/refresh/` request; sliding answers.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenBody {
    /// Any token.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub token: String,
}

/// `GET /api/me/` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// User id: an integer, or a UUID string (USER_ID_TYPE=uuid).
    pub id: UserId,
    /// Username.
    pub username: String,
    /// E-mail, `""` when none was given.
    pub email: String,
    /// ISO 8601 with offset, as Django writes it.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub date_joined: String,
    /// ISO 8601 with offset; `null` until a sign-in is recorded (UPDATE_LAST_LOGIN).
    #[cfg_attr(feature = "openapi", schema(format = DateTime, required = true))]
    pub last_login: Option<String>,
}

/// `POST /api/auth/password/` request.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"old_password": "correct horse battery", "new_password": "staple battery horse"})))]
pub struct PasswordChange {
    /// The current password.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub old_password: String,
    /// The new password, at least 8 characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::new_password))]
    pub new_password: String,
}

/// `POST /api/auth/password/reset/` and `…/activation/resend/` request (djoser's
/// `reset_password`, `resend_activation`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "ada@example.org"})))]
pub struct EmailRequest {
    /// The account's e-mail address.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::account_email))]
    pub email: String,
}

/// `POST /api/auth/password/reset/confirm/` request (djoser's `reset_password_confirm`): the
/// `uid` and `token` of the link, and the new password.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"uid": "MQ", "token": "8bKx2vQ0cZf3mJ7nR1sT5wY9aD4gH6kL0pE2uI8oB3", "new_password": "staple battery horse"})))]
pub struct PasswordResetConfirm {
    /// The user id, base64url (from the link).
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub uid: String,
    /// The token of the link.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub token: String,
    /// The new password, at least 8 characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::new_password))]
    pub new_password: String,
}

/// `POST /api/auth/activation/` request (djoser's `activation`): the link's `uid` and `token`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"uid": "MQ", "token": "8bKx2vQ0cZf3mJ7nR1sT5wY9aD4gH6kL0pE2uI8oB3"})))]
pub struct ActivationRequest {
    /// The user id, base64url (from the link).
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub uid: String,
    /// The token of the link.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::char_field))]
    pub token: String,
}

/// `POST /api/auth/signup/` answer (201) with REQUIRE_EMAIL_VERIFICATION: the new user, inactive
/// until the activation link is followed, and no tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignUpPending {
    /// The new user.
    pub user: UserSummary,
}

/// `GET /healthz`, `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// `"ok"`.
    pub status: String,
}

/// `{"detail": ...}` with an optional `code`: the shape of most SPEC §2 errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Human-readable reason, exactly as SimpleJWT/DRF word it.
    pub detail: String,
    /// Machine-readable code, e.g. `token_not_valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub code: Option<String>,
    /// Per-token-class reasons of a refused Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub messages: Option<Vec<TokenMessage>>,
}

/// One entry of `messages` in a refused Bearer token's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenMessage {
    /// `"AccessToken"` (or `"SlidingToken"`, with AUTH_TOKEN_CLASSES=sliding).
    pub token_class: String,
    /// `"access"` (or `"sliding"`).
    pub token_type: String,
    /// Why, e.g. `"Token is expired"`.
    pub message: String,
}

/// `Debug` for a body that carries secrets: the `shown` fields as they are, the `masked` ones
/// as `"****"` (or `None`), so that a `{:?}` in a log line or a panic never prints a password
/// or a token.
macro_rules! masked_debug {
    ($ty:ident { shown: [$($shown:ident),*], masked: [$($masked:ident),*] }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct(stringify!($ty));
                $(d.field(stringify!($shown), &self.$shown);)*
                $(d.field(stringify!($masked), &Masked::of(&self.$masked));)*
                d.finish()
            }
        }
    };
}

/// What [`masked_debug`] prints for a secret.
struct Masked(bool);

impl Masked {
    fn of<T: MaybeSecret + ?Sized>(value: &T) -> Masked {
        Masked(value.present())
    }
}

impl std::fmt::Debug for Masked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "\"****\"" } else { "None" })
    }
}

/// A secret field: a `String`, or an `Option<String>` that may be absent.
trait MaybeSecret {
    fn present(&self) -> bool;
}

impl MaybeSecret for String {
    fn present(&self) -> bool {
        true
    }
}

impl MaybeSecret for Option<String> {
    fn present(&self) -> bool {
        self.is_some()
    }
}

masked_debug!(Credentials { shown: [username], masked: [password] });
masked_debug!(SignUpRequest { shown: [username, email], masked: [password] });
masked_debug!(SignUpResponse { shown: [user, tokens], masked: [] });
masked_debug!(TokenPair { shown: [], masked: [refresh, access] });
masked_debug!(RefreshRequest { shown: [], masked: [refresh] });
masked_debug!(TokenBody { shown: [], masked: [token] });
masked_debug!(PasswordChange { shown: [], masked: [old_password, new_password] });
masked_debug!(PasswordResetConfirm { shown: [uid], masked: [token, new_password] });
masked_debug!(ActivationRequest { shown: [uid], masked: [token] });

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_never_prints_a_password_or_a_token() {
        let secret = "s3cret-value";
        let s = || secret.to_string();
        let user = UserSummary { id: UserId::Int(1), username: Some("ada".into()), email: None };
        let printed = [
            format!("{:?}", Credentials { username: "ada".into(), password: s() }),
            format!("{:?}", SignUpRequest { username: "ada".into(), password: s(), email: None }),
            format!("{:?}", SignUpResponse { user, tokens: TokenPair { refresh: Some(s()), access: s() } }),
            format!("{:?}", TokenPair { refresh: None, access: s() }),
            format!("{:?}", RefreshRequest { refresh: s() }),
            format!("{:?}", TokenBody { token: s() }),
            format!("{:?}", PasswordChange { old_password: s(), new_password: s() }),
        ];
        for p in &printed {
            assert!(!p.contains(secret), "{p}");
        }
        assert_eq!(printed[0], r#"Credentials { username: "ada", password: "****" }"#);
        assert_eq!(printed[3], r#"TokenPair { refresh: None, access: "****" }"#);
    }
}

/// One row of the revocation log, as `GET /api/token/revocations/` lists it: every token of
/// `user_id` issued before `valid_after` (seconds) is revoked, or, when `session` is set, every
/// token of that session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationEntry {
    /// The row's place in the log: pass the last one seen as `after` to read on.
    pub id: i64,
    /// The user whose tokens are revoked, as tokens carry it.
    pub user_id: UserId,
    /// The first second whose tokens stay valid (tokens with `iat` below it are revoked).
    pub valid_after: i64,
    /// The session (refresh-token family) revoked, when the revocation is of one session only.
    #[serde(default)]
    pub session: Option<String>,
}

/// `GET /api/token/revocations/?after=N` answer: the log's rows after `N`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationFeed {
    /// At most one page of rows, in id order.
    pub revocations: Vec<RevocationEntry>,
    /// The `after` of the next request: the last row's id, or the `after` given when none came.
    pub next: i64,
}

/// One session (a refresh-token family, SPEC §1) as `GET /api/auth/sessions/` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The session id: 16 lowercase hex digits, the first half of its tokens' `jti`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{16}$"))]
    pub id: String,
    /// ISO 8601 with offset: the sign-in that began it.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    /// ISO 8601 with offset: its last refresh (recorded in batches, a few seconds late), or its
    /// sign-in.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_used_at: String,
    /// The `User-Agent` of its sign-in (empty when none was sent or the session was adopted from
    /// a token issued elsewhere).
    pub user_agent: String,
    /// The client address of its sign-in, through TRUSTED_PROXIES; `null` when unknown.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ip: Option<String>,
    /// Whether it is the session of the access token that asked.
    pub current: bool,
}

/// `GET /api/auth/sessions/` answer: the caller's live sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sessions {
    /// Newest first.
    pub sessions: Vec<Session>,
}
