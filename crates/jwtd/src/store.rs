//! Storage: users, refresh-token rows and families, revocations, server secrets.
//!
//! [`Store`] is the contract every backend implements; only `store` knows SQL. Atomicity of
//! rotation is a store promise kept in one method, [`Store::rotate`]; the rule it applies
//! inside its transaction is [`decide_rotation`], shared by all backends, which returns the
//! rows to write (built by [`TokenRow::first_of_family`] and [`TokenRow::successor`]). Each
//! SPEC §4 refusal has one home here, used with rotation and without: the user's standing
//! ([`UserGate::refuses`]), a blacklisted row, and the session's end ([`session_end`]);
//! [`RefreshCheck::refuses`] applies them to a refresh without rotation. [`django`] reads the
//! database of a Django project to import (`jwtd import-django`).

pub mod django;
pub mod pg_tls;
pub mod postgres;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod contract;

use async_trait::async_trait;
use jwtd_proto::UserId;
use serde_json::{Map, Value};
use std::time::Duration;

use crate::clock::Instant;
use crate::config::IdType;

/// The columns of `users` that make a [`User`], in the order [`User::from_columns`] reads them;
/// a macro, so that a backend can `concat!` it into its statements.
macro_rules! user_columns {
    () => {
        concat!("id, ", $crate::store::profile_columns!(), ", password, tokens_valid_after, uuid, claims")
    };
}
pub(crate) use user_columns;

/// The columns of `refresh_tokens` that make a [`TokenRow`], in the order
/// [`TokenRow::from_columns`] reads them.
macro_rules! token_columns {
    () => {
        "jti, user_id, family, family_started, issued_at, expires_at, blacklisted_ms, replaced_by, rotated_ms"
    };
}
pub(crate) use token_columns;

/// The columns of `account_tokens` that make an [`AccountToken`], in the order
/// [`AccountToken::from_columns`] reads them.
macro_rules! account_token_columns {
    () => {
        "digest, user_id, purpose, bound, expires_at, used"
    };
}
pub(crate) use account_token_columns;

/// The columns of `users` that make a [`Profile`], in the order [`Profile::from_columns`] reads
/// them.
macro_rules! profile_columns {
    () => {
        "username, email, first_name, last_name, is_active, is_staff, is_superuser, date_joined_ms, last_login_ms"
    };
}
pub(crate) use profile_columns;

/// A result row of either backend, read by column index with the driver's own typed getter
/// ([`columns_of!`]): what lets one function turn the columns into a [`User`] or a [`TokenRow`].
pub(crate) trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// [`Columns`] for a driver's row type, `$get` being its getter (`get`, `try_get`).
macro_rules! columns_of {
    ($row:ty, $error:ty, $get:ident) => {
        impl $crate::store::Columns for $row {
            type Error = $error;
            fn int(&self, i: usize) -> Result<i64, $error> {
                self.$get(i)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, $error> {
                self.$get(i)
            }
            fn text(&self, i: usize) -> Result<String, $error> {
                self.$get(i)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, $error> {
                self.$get(i)
            }
            fn flag(&self, i: usize) -> Result<bool, $error> {
                self.$get(i)
            }
        }
    };
}
pub(crate) use columns_of;

/// A stored user. `id` is the internal key every table refers to; the id tokens carry is
/// [`User::public_id`]: `id` itself, or `uuid` with USER_ID_TYPE=uuid. `Debug` masks the
/// password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// The public id with USER_ID_TYPE=uuid (Django's `str(uuid)` in the database).
    pub uuid: Option<uuid::Uuid>,
    pub password: String,
    pub profile: Profile,
    /// Tokens with `iat` before this second are revoked.
    pub tokens_valid_after: i64,
    /// The user's own claims (`jwtd user set-claims`), written into their tokens.
    pub claims: Map<String, Value>,
}

impl User {
    /// A user from a row of [`user_columns!`].
    pub(crate) fn from_columns<R: Columns>(r: &R) -> Result<User, R::Error> {
        Ok(User {
            id: r.int(0)?,
            uuid: r.opt_text(12)?.and_then(|s| uuid::Uuid::try_parse(&s).ok()),
            password: r.text(10)?,
            profile: Profile::from_columns(r, 1)?,
            tokens_valid_after: r.int(11)?,
            claims: claims_from_column(&r.text(13)?),
        })
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field is a compile error here until it is shown or masked.
        let User { id, uuid, password: _, profile, tokens_valid_after, claims } = self;
        f.debug_struct("User")
            .field("id", id)
            .field("uuid", uuid)
            .field("password", &"****")
            .field("profile", profile)
            .field("tokens_valid_after", tokens_valid_after)
            .field("claims", claims)
            .finish()
    }
}

impl User {
    /// What the refresh rules read of the user.
    pub fn gate(&self) -> UserGate {
        UserGate { is_active: self.profile.is_active, tokens_valid_after: self.tokens_valid_after }
    }

    /// What a password check saw of the user, on which issuance is conditional.
    pub fn state(&self) -> UserState {
        UserState {
            password: self.password.clone(),
            is_active: self.profile.is_active,
            tokens_valid_after: self.tokens_valid_after,
        }
    }

    /// The id tokens and answers carry for this user; `None` for a user without a UUID when ids
    /// are UUIDs.
    pub fn public_id(&self, id_type: IdType) -> Option<UserId> {
        match id_type {
            IdType::Int => Some(UserId::Int(self.id)),
            IdType::Uuid => self.uuid.map(UserId::Uuid),
        }
    }
}

/// The part of a user a sign-in checked: tokens are issued only while the stored user still has
/// exactly these (SPEC §4: a sign-in that raced a password change, logout-all or deactivation
/// hands out nothing). `tokens_valid_after` only grows and hashes are salted, so equality means
/// nothing happened in between.
#[derive(Clone, PartialEq, Eq)]
pub struct UserState {
    pub password: String,
    pub is_active: bool,
    pub tokens_valid_after: i64,
}

impl std::fmt::Debug for UserState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserState")
            .field("is_active", &self.is_active)
            .field("tokens_valid_after", &self.tokens_valid_after)
            .finish_non_exhaustive()
    }
}

/// A user to create. `Debug` masks the password hash.
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub email: String,
    /// Set with USER_ID_TYPE=uuid.
    pub uuid: Option<uuid::Uuid>,
    /// USERNAME_FIELD=email: refuse ([`StoreError::EmailTaken`]) when a user has this e-mail
    /// (case-insensitively), in the same step as the insert.
    pub unique_email: bool,
    pub now: Instant,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let NewUser { username, password_hash: _, email, uuid, unique_email, now } = self;
        f.debug_struct("NewUser")
            .field("username", username)
            .field("password_hash", &"****")
            .field("email", email)
            .field("uuid", uuid)
            .field("unique_email", unique_email)
            .field("now", now)
            .finish()
    }
}

/// Parses the `claims` column; the column only ever holds what `set_user_claims` was given.
pub(crate) fn claims_from_column(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// What a refresh token says about itself, for recording it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub jti: String,
    pub user_id: i64,
    /// `iat`, seconds; the family start of a token first seen here.
    pub issued_at: i64,
    /// `exp`, seconds.
    pub expires_at: i64,
}

/// A stored refresh-token row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub jti: String,
    pub user_id: i64,
    pub family: String,
    pub family_started: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub blacklisted: Option<Instant>,
    pub replaced_by: Option<String>,
    pub rotated: Option<Instant>,
}

impl TokenRow {
    /// A row of [`token_columns!`].
    pub(crate) fn from_columns<R: Columns>(r: &R) -> Result<TokenRow, R::Error> {
        Ok(TokenRow {
            jti: r.text(0)?,
            user_id: r.int(1)?,
            family: r.text(2)?,
            family_started: r.int(3)?,
            issued_at: r.int(4)?,
            expires_at: r.int(5)?,
            blacklisted: r.opt_int(6)?.map(Instant::from_millis),
            replaced_by: r.opt_text(7)?,
            rotated: r.opt_int(8)?.map(Instant::from_millis),
        })
    }
}

impl TokenRow {
    /// The row of a token first seen here, as the first member of the new family `family`,
    /// which starts at the token's `iat`.
    pub fn first_of_family(token: &RefreshRecord, family: String) -> Self {
        Self::successor(token, family, token.issued_at)
    }

    /// The row of `token` joining the family `family`, which started at `family_started`: the
    /// successor a rotation creates.
    pub fn successor(token: &RefreshRecord, family: String, family_started: i64) -> Self {
        TokenRow {
            jti: token.jti.clone(),
            user_id: token.user_id,
            family,
            family_started,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
            blacklisted: None,
            replaced_by: None,
            rotated: None,
        }
    }

    /// This row, blacklisted at `now`.
    pub fn blacklisted_at(self, now: Instant) -> Self {
        TokenRow { blacklisted: Some(now), ..self }
    }
}

/// What a refresh without rotation checks, read at once: the user's standing and the presented
/// token's row, when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshCheck {
    pub user: UserGate,
    pub token: Option<TokenStanding>,
    /// The session the token names is a family of the user's (a row or a session names it);
    /// read only when the token has no row, the one case it decides.
    pub session_known: bool,
}

impl RefreshCheck {
    /// SPEC §4 for a refresh without rotation of a token issued at `iat`, in the order a
    /// rotation applies the same rules: the user's standing, the token's row blacklisted, the
    /// session's end (a token never recorded starts its session at its `iat`, or now without one).
    /// A token without a row whose session is a family of the user's is refused
    /// ([`Refusal::Unrecorded`]).
    pub fn refuses(
        &self,
        iat: Option<i64>,
        now: Instant,
        session_max: Duration,
        require_active: bool,
    ) -> Option<Refusal> {
        if let Some(refusal) = self.user.refuses(iat, require_active) {
            return Some(refusal);
        }
        let family_started = match self.token {
            Some(row) if row.blacklisted => return Some(Refusal::Blacklisted),
            Some(row) => row.family_started,
            None if self.session_known => return Some(Refusal::Unrecorded),
            None => iat.unwrap_or(now.secs()),
        };
        session_end(family_started, session_max).reached(now).then_some(Refusal::SessionOver)
    }
}

/// The part of a [`TokenRow`] a refresh without rotation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStanding {
    pub blacklisted: bool,
    pub family_started: i64,
}

/// A revocation of every token of a user issued before `valid_after` (seconds), or, with
/// `session`, of every token of that session of the user issued before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub cursor: i64,
    pub user_id: i64,
    /// The user's UUID, when the user is still there and has one.
    pub uuid: Option<uuid::Uuid>,
    pub valid_after: i64,
    /// The session revoked; `None`: every token of the user.
    pub session: Option<String>,
}

impl Revocation {
    /// A revocation from the columns id, user_id, valid_after, the user's uuid and session, on
    /// either backend.
    pub(crate) fn from_columns<R: Columns>(r: &R) -> Result<Revocation, R::Error> {
        Ok(Revocation {
            cursor: r.int(0)?,
            user_id: r.int(1)?,
            valid_after: r.int(2)?,
            uuid: r.opt_text(3)?.and_then(|s| uuid::Uuid::try_parse(&s).ok()),
            session: r.opt_text(4)?,
        })
    }

    /// The id the revoked user's tokens carry.
    pub fn public_id(&self, id_type: IdType) -> Option<UserId> {
        match id_type {
            IdType::Int => Some(UserId::Int(self.user_id)),
            IdType::Uuid => self.uuid.map(UserId::Uuid),
        }
    }
}

/// A sign-in (or sign-up) for [`Store::record_sign_in`]: its refresh token, recorded as the first
/// member of the new family `family` only while the user is as `seen`, and the session's
/// `client`.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub token: &'a RefreshRecord,
    pub family: &'a str,
    pub seen: &'a UserState,
    pub client: &'a SessionClient,
}

impl SignIn<'_> {
    /// The token's row: the first of its family.
    pub(crate) fn row(&self) -> TokenRow {
        TokenRow::first_of_family(self.token, self.family.to_string())
    }
}

/// Who began a session: what its sign-in recorded (SPEC §1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionClient {
    /// The `User-Agent` header, at most [`USER_AGENT_CHARS`] characters.
    pub user_agent: String,
    /// The client's address (`http::ClientAddr`).
    pub ip: Option<String>,
}

/// How much of a `User-Agent` a session keeps.
pub const USER_AGENT_CHARS: usize = 256;

impl SessionClient {
    /// A session's client from a `User-Agent` header (cut to [`USER_AGENT_CHARS`]) and address.
    pub fn new(user_agent: &str, ip: Option<std::net::IpAddr>) -> Self {
        SessionClient { user_agent: user_agent.chars().take(USER_AGENT_CHARS).collect(), ip: ip.map(|a| a.to_string()) }
    }
}

/// One live session of a user (a family with a refresh token neither blacklisted nor expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionListing {
    pub id: String,
    /// Seconds: the family's first sign-in.
    pub created_at: i64,
    /// Seconds: the last refresh known to the database ([`Store::touch_sessions`] is a few
    /// seconds behind) or the newest token of the family, whichever is later.
    pub last_used_at: i64,
    /// Empty for a session adopted from a SimpleJWT token (no sign-in here recorded it).
    pub user_agent: String,
    pub ip: Option<String>,
}

impl SessionListing {
    /// A session from the columns family, its start, its newest token's `iat`, and the session
    /// row's last use, user agent and address (all three NULL without a row), on either backend.
    pub(crate) fn from_columns<R: Columns>(r: &R) -> Result<SessionListing, R::Error> {
        let newest = r.int(2)?;
        Ok(SessionListing {
            id: r.text(0)?,
            created_at: r.int(1)?,
            last_used_at: r.opt_int(3)?.map_or(newest, |used| used.max(newest)),
            user_agent: r.opt_text(4)?.unwrap_or_default(),
            ip: r.opt_text(5)?,
        })
    }
}

/// A presented refresh token, as [`Store::refresh_check`] reads for it: its user (the store's
/// id), its jti, and the session it names.
#[derive(Debug, Clone, Copy)]
pub struct RefreshQuery<'a> {
    pub user_id: i64,
    pub jti: &'a str,
    pub session: Option<&'a str>,
}

/// What [`Store::revoke_sessions`] revokes: `scope`'s sessions of the user `user_id`, at `now`.
#[derive(Debug, Clone, Copy)]
pub struct SessionRevocation<'a> {
    pub user_id: i64,
    pub scope: SessionScope<'a>,
    pub now: Instant,
}

/// Which sessions of a user [`Store::revoke_sessions`] revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope<'a> {
    /// This one, if it is the user's.
    One(&'a str),
    /// Every live one but this one (`None`: every live one).
    AllBut(Option<&'a str>),
}

/// One refresh with rotation, as asked of [`Store::rotate`].
#[derive(Debug, Clone)]
pub struct RotateRequest {
    pub presented: RefreshRecord,
    /// The presented token's own `iat` (`presented.issued_at` falls back to now without one).
    pub presented_iat: Option<i64>,
    /// The session the presented token names ([`jwtd_proto::session::session_of`]): the family a
    /// token first seen here starts when it has a session id's shape ([`family_of_unrecorded`]).
    pub session: Option<String>,
    /// Random bits of the successor's jti, which is a jti of the presented token's family
    /// ([`jwtd_proto::session::jti_in_session`]): pass `uuid::Uuid::new_v4()`.
    pub successor_random: uuid::Uuid,
    pub now: Instant,
    pub lifetime: Duration,
    pub session_max: Duration,
    pub blacklist_after: bool,
    pub grace: Duration,
    /// CHECK_USER_IS_ACTIVE: an inactive user's token is invalid.
    pub require_active: bool,
}

/// The one rule of revocation by the user, shared with the `Verifier` (`jwtd-verify`): a
/// revocation at `now` writes [`valid_after_revocation`]`(now)`, the next second, so it also covers
/// tokens issued earlier in its own second; issuance for a user whose `valid_after` is still ahead
/// waits for that second.
pub use jwtd_verify::revoked_by_user;

/// The `valid_after` a revocation at `now` writes: the second after `now`'s, so that every token
/// whose `iat` is `now`'s second or earlier is revoked, whenever in that second it was issued.
pub fn valid_after_revocation(now: Instant) -> i64 {
    now.secs().saturating_add(1)
}

/// What the refresh rules need to know of the token's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserGate {
    pub is_active: bool,
    /// The user's [`User::tokens_valid_after`].
    pub tokens_valid_after: i64,
}

/// Why a refresh is refused (SPEC §4), with rotation or without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user is inactive, and CHECK_USER_IS_ACTIVE is on.
    Inactive,
    /// A password change or logout-all since the token was issued ([`revoked_by_user`]).
    Revoked,
    /// The token's row is blacklisted (logged out, revoked, or rotated with BLACKLIST_AFTER_ROTATION).
    Blacklisted,
    /// A token without a row whose session is a family of its user's: one of jwtd's own whose
    /// row was purged or restored away. Fails closed.
    Unrecorded,
    /// The session reached SESSION_MAX_LIFETIME ([`session_end`]).
    SessionOver,
}

impl UserGate {
    /// Whether the user's standing refuses a token issued at `iat`: inactive (checked when
    /// `require_active`, CHECK_USER_IS_ACTIVE), or revoked since by the user.
    pub fn refuses(&self, iat: Option<i64>, require_active: bool) -> Option<Refusal> {
        if require_active && !self.is_active {
            return Some(Refusal::Inactive);
        }
        revoked_by_user(iat, self.tokens_valid_after).then_some(Refusal::Revoked)
    }
}

/// The end of a session (seconds): SESSION_MAX_LIFETIME after the first token of its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd(i64);

/// When the session of a family that started at `family_started` ends.
pub fn session_end(family_started: i64, max: Duration) -> SessionEnd {
    SessionEnd(family_started.saturating_add(crate::tokens::secs_of(max)))
}

impl SessionEnd {
    /// Whether a refresh at `now` comes too late: at the end second or after.
    pub fn reached(self, now: Instant) -> bool {
        now.secs() >= self.0
    }

    /// `exp` brought back to the session's end: no token outlives its session.
    pub fn cap(self, exp: i64) -> i64 {
        exp.min(self.0)
    }
}

/// What [`Store::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// A new family member was created; the presented token was marked rotated.
    Rotated(TokenRow),
    /// The token was rotated within the grace period: here is the same successor again.
    Grace(TokenRow),
    /// The token was rotated before the grace period: reuse. The whole family is now revoked.
    Reused { family: String },
    /// The token is blacklisted (logged out, revoked, or its successor is gone).
    Blacklisted,
    /// The session reached SESSION_MAX_LIFETIME, or the user is gone or inactive.
    Invalid,
}

/// The decision [`Store::rotate`] takes inside its transaction, with the rows it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationDecision {
    /// Insert `record_presented` (the presented token, never recorded before) and `successor`,
    /// then mark the presented token replaced by `successor` at `now` (and blacklisted, with
    /// BLACKLIST_AFTER_ROTATION). The answer is [`Rotation::Rotated`] with `successor`.
    Rotate { record_presented: Option<TokenRow>, successor: TokenRow },
    /// Reuse after the grace period: blacklist every row of `family` not blacklisted yet and log
    /// the session's revocation ([`valid_after_revocation`]). The answer is [`Rotation::Reused`].
    RevokeFamily { family: String },
    /// Nothing to write: [`Rotation::Grace`], [`Rotation::Blacklisted`] or [`Rotation::Invalid`].
    Answer(Rotation),
}

/// SPEC §4: rotation, grace period, reuse detection, session end; from the presented token's
/// row (`None` when never recorded, e.g. issued by SimpleJWT), its successor's row, the user
/// (`None` when gone) and, for a token without a row, the user whose family its session names
/// (`session_owner`, read only then). A token without a row is refused when its session is a
/// family of the same user (jwtd issued it; its row was purged or restored away), else adopted as
/// the first of a new family: the one its session names ([`family_of_unrecorded`]), or
/// `new_family()` when another user's family has that name.
pub fn decide_rotation(
    presented: Option<&TokenRow>,
    successor: Option<&TokenRow>,
    user: Option<UserGate>,
    session_owner: Option<i64>,
    req: &RotateRequest,
    new_family: impl FnOnce() -> String,
) -> RotationDecision {
    let refused = |refusal| {
        RotationDecision::Answer(match refusal {
            Refusal::Revoked | Refusal::Blacklisted => Rotation::Blacklisted,
            Refusal::Inactive | Refusal::SessionOver | Refusal::Unrecorded => Rotation::Invalid,
        })
    };
    let Some(user) = user else {
        return RotationDecision::Answer(Rotation::Invalid);
    };
    if let Some(refusal) = user.refuses(req.presented_iat, req.require_active) {
        return refused(refusal);
    }
    let (family, family_started, record_presented) = match presented {
        None if session_owner == Some(req.presented.user_id) => return refused(Refusal::Unrecorded),
        None => {
            let family = match session_owner {
                Some(_) => new_family(),
                None => family_of_unrecorded(req.session.as_deref(), new_family),
            };
            let first = TokenRow::first_of_family(&req.presented, family);
            (first.family.clone(), first.family_started, Some(first))
        }
        Some(row) => {
            if let (Some(_), Some(rotated)) = (&row.replaced_by, row.rotated) {
                if req.blacklist_after {
                    let within_grace = req.now < rotated.plus(req.grace);
                    // A successor rotated in turn: the client holds a newer token; nothing is
                    // revoked (SPEC §4).
                    return match successor {
                        Some(s) if within_grace && s.blacklisted.is_none() && s.replaced_by.is_none() => {
                            RotationDecision::Answer(Rotation::Grace(s.clone()))
                        }
                        _ if within_grace => refused(Refusal::Blacklisted),
                        _ => RotationDecision::RevokeFamily { family: row.family.clone() },
                    };
                }
            }
            if row.blacklisted.is_some() {
                return refused(Refusal::Blacklisted);
            }
            (row.family.clone(), row.family_started, None)
        }
    };
    let end = session_end(family_started, req.session_max);
    if end.reached(req.now) {
        return refused(Refusal::SessionOver);
    }
    let now = req.now.secs();
    let next = RefreshRecord {
        jti: jwtd_proto::session::jti_in_session(Some(&family), req.successor_random),
        user_id: req.presented.user_id,
        issued_at: now,
        expires_at: end.cap(now.saturating_add(crate::tokens::secs_of(req.lifetime))),
    };
    RotationDecision::Rotate { record_presented, successor: TokenRow::successor(&next, family, family_started) }
}

/// The family (session) a refresh token first seen here starts: the session it names when that
/// has a session id's shape (SimpleJWT's tokens name the first half of their jti), so that the
/// tokens handed out in the family carry the session the token already named; else `fresh()`.
pub fn family_of_unrecorded(session: Option<&str>, fresh: impl FnOnce() -> String) -> String {
    match session {
        Some(id) if jwtd_proto::session::is_session_id(id) => id.to_string(),
        _ => fresh(),
    }
}

/// A new session (family) id ([`jwtd_proto::session::new_session_id`]).
pub fn new_family() -> String {
    jwtd_proto::session::new_session_id(uuid::Uuid::new_v4())
}

/// The id type a database holds, as far as it says: `meta.user_id_type` when recorded, else what
/// its users show (any user without a UUID: `int`; only users with one: `uuid`; none: unknown).
pub fn database_id_type(recorded: Option<&str>, without_uuid: bool, with_uuid: bool) -> Option<IdType> {
    match recorded.and_then(|r| IdType::parse(r).ok()) {
        Some(kind) => Some(kind),
        None if without_uuid => Some(IdType::Int),
        None if with_uuid => Some(IdType::Uuid),
        None => None,
    }
}

/// What [`Store::import_id_type`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTypeCheck {
    /// The database was made for this id type already.
    Matches,
    /// The database had none: this one is recorded now (or would be, in a dry run).
    Recorded,
    /// The database holds the other id type; nothing was written.
    Mismatch { database: IdType },
}

/// The rule of [`Store::import_id_type`]: `database` is [`database_id_type`]'s answer.
pub fn decide_id_type(database: Option<IdType>, recorded: bool, incoming: IdType) -> IdTypeCheck {
    match database {
        Some(kind) if kind != incoming => IdTypeCheck::Mismatch { database: kind },
        Some(_) if recorded => IdTypeCheck::Matches,
        _ => IdTypeCheck::Recorded,
    }
}

/// Whether an import writes (`jwtd import-django`) or only decides (`--dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    Write,
    /// Read and decide as [`ImportMode::Write`] would, write nothing.
    DryRun,
}

/// A user's id in the system it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// Kept as jwtd's own id.
    Int(i64),
    /// Django's `str(uuid)`, kept in `users.uuid`; jwtd's id is a new one.
    Uuid(String),
}

/// A user's profile: the fields of Django's `AbstractUser` but the password, as a [`User`]
/// holds them, `jwtd user list` shows them and `jwtd import-django` brings them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// May be blank (e-mail sign-in projects); unique when not.
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Of an imported user from a Django model without `date_joined`: the time of the import.
    pub date_joined: Instant,
    pub last_login: Option<Instant>,
}

impl Profile {
    /// A profile from the nine columns of [`profile_columns!`], the first at `first`, on either
    /// backend.
    pub(crate) fn from_columns<R: Columns>(r: &R, first: usize) -> Result<Profile, R::Error> {
        Ok(Profile {
            username: r.text(first)?,
            email: r.text(first + 1)?,
            first_name: r.text(first + 2)?,
            last_name: r.text(first + 3)?,
            is_active: r.flag(first + 4)?,
            is_staff: r.flag(first + 5)?,
            is_superuser: r.flag(first + 6)?,
            date_joined: Instant::from_millis(r.int(first + 7)?),
            last_login: r.opt_int(first + 8)?.map(Instant::from_millis),
        })
    }

    /// An active user's profile with only a username and an e-mail address, joined at 0.
    #[cfg(test)]
    pub(crate) fn sample(username: &str, email: &str) -> Profile {
        Profile {
            username: username.into(),
            email: email.into(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: Instant::from_secs(0),
            last_login: None,
        }
    }

    /// What the user signs in with: the username, or the e-mail address when it has none.
    pub fn login(&self) -> &str {
        if self.username.is_empty() {
            &self.email
        } else {
            &self.username
        }
    }
}

/// A user brought in from another system (`jwtd import-django`). No `Debug`: it holds a
/// password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportUser {
    pub id: SourceId,
    pub password: String,
    pub profile: Profile,
    /// Names of the user's groups; each must exist here ([`Store::import_groups`]).
    pub groups: Vec<String>,
    /// The user's refresh-token rows; their `user_id` is the store's to fill.
    pub tokens: Vec<TokenRow>,
}

/// A user already here that an imported one meets: by id (or UUID), or by login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub id: i64,
    pub username: String,
    pub email: String,
}

/// What [`Store::import_user`] found for the user (the same rule in every backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserImport {
    /// Inserted: with the id it had (integer ids), or a new id and its UUID kept.
    Inserted,
    /// A user with this id (or UUID) and login is already here: left as it is (a second import
    /// run, or a user whose password jwtd has upgraded since).
    Present,
    /// The id (or UUID) belongs to another user here, named `username` (or its e-mail address);
    /// nothing was written.
    IdTaken { username: String },
    /// The username belongs to another user here; nothing was written.
    UsernameTaken { id: i64 },
    /// The user signs in by e-mail (no username) and another user here has that address;
    /// nothing was written.
    EmailTaken { id: i64 },
}

/// The key an import looks up the user holding an imported user's login by: its username, or
/// its e-mail address (compared case-insensitively) when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginKey<'a> {
    Username(&'a str),
    Email(&'a str),
}

impl Profile {
    /// How to find the user holding this login; `None` for a user with neither.
    pub(crate) fn login_key(&self) -> Option<LoginKey<'_>> {
        if !self.username.is_empty() {
            Some(LoginKey::Username(&self.username))
        } else if !self.email.is_empty() {
            Some(LoginKey::Email(&self.email))
        } else {
            None
        }
    }
}

/// What [`Store::import_user`] writes for the user, by [`plan_user_import`]; a backend runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserWrite<'a> {
    /// Nothing at all: the user is refused, and so are its token rows.
    Refused,
    /// Nothing for the user: its token rows go to `user_id` (a user present here, or a new one
    /// in a dry run: `None` when its id would be drawn at insertion), `groups` memberships
    /// counted as added.
    Keep { user_id: Option<i64>, groups: u64 },
    /// Insert the user with its id (`id`), or a new id and its `uuid` kept; then its groups.
    Insert { id: Option<i64>, uuid: Option<&'a str> },
}

/// The user step of [`Store::import_user`]: [`decide_user_import`]'s answer and what it writes in
/// `mode`.
pub(crate) fn plan_user_import<'a>(
    user: &'a ImportUser,
    same_id: Option<&Holder>,
    same_login: Option<&Holder>,
    mode: ImportMode,
) -> (UserImport, UserWrite<'a>) {
    let decision = decide_user_import(user, same_id, same_login);
    let write = match (&decision, same_id) {
        (UserImport::Present, Some(h)) => UserWrite::Keep { user_id: Some(h.id), groups: 0 },
        (UserImport::Inserted, _) => {
            let (id, uuid) = match &user.id {
                SourceId::Int(id) => (Some(*id), None),
                SourceId::Uuid(uuid) => (None, Some(uuid.as_str())),
            };
            match mode {
                ImportMode::Write => UserWrite::Insert { id, uuid },
                ImportMode::DryRun => UserWrite::Keep { user_id: id, groups: user.groups.len() as u64 },
            }
        }
        _ => UserWrite::Refused,
    };
    (decision, write)
}

impl ImportOutcome {
    /// The outcome of a refused user: nothing written.
    pub(crate) fn refused(user: UserImport) -> ImportOutcome {
        ImportOutcome { user, user_id: None, tokens: Vec::new(), groups: 0 }
    }
}

/// An imported token row as it goes in for the user `user_id` here (its own `user_id` is the
/// source's). A new user of a dry run has no id yet: 0, nobody's, so any row here is another's.
pub(crate) fn imported_row(row: &TokenRow, user_id: Option<i64>) -> TokenRow {
    TokenRow { user_id: user_id.unwrap_or(0), ..row.clone() }
}

/// What [`Store::import_user`] did with one refresh-token row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenImport {
    Insert,
    /// Already here, not blacklisted, and blacklisted in the source: blacklist it.
    Blacklist,
    /// Already here as it should be.
    Present,
    /// The jti is here for another user; left alone.
    Conflict,
}

/// The outcome of one [`Store::import_user`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub user: UserImport,
    /// The user's id here (inserted or present); `None` when refused, or new in a dry run with
    /// a UUID (its id would be drawn at insertion).
    pub user_id: Option<i64>,
    /// One entry per token row of the user, in order; empty when the user was not imported.
    pub tokens: Vec<TokenImport>,
    /// Group memberships added (a new user's only: a user already here is left as it is).
    pub groups: u64,
}

/// The user rule of [`Store::import_user`]: `same_id` is the user here with the incoming id (or
/// UUID), `same_login` the one holding its login (the username; the e-mail address, compared
/// case-insensitively, for a user without one).
pub fn decide_user_import(incoming: &ImportUser, same_id: Option<&Holder>, same_login: Option<&Holder>) -> UserImport {
    let incoming = &incoming.profile;
    let is_same = |h: &Holder| {
        h.username == incoming.username
            && (!incoming.username.is_empty() || h.email.to_lowercase() == incoming.email.to_lowercase())
    };
    match (same_id, same_login) {
        (Some(h), _) if is_same(h) => UserImport::Present,
        (Some(h), _) => {
            UserImport::IdTaken { username: if h.username.is_empty() { h.email.clone() } else { h.username.clone() } }
        }
        (None, Some(h)) if incoming.username.is_empty() => UserImport::EmailTaken { id: h.id },
        (None, Some(h)) => UserImport::UsernameTaken { id: h.id },
        (None, None) => UserImport::Inserted,
    }
}

/// One user as `jwtd user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListing {
    pub id: i64,
    pub uuid: Option<String>,
    pub profile: Profile,
    /// Sorted group names.
    pub groups: Vec<String>,
}

impl UserListing {
    /// A listed user from the first eleven columns of `user_page`'s statement (id, uuid, then
    /// [`profile_columns!`]) and its groups, which each backend aggregates in its own way.
    pub(crate) fn from_columns<R: Columns>(r: &R, groups: Vec<String>) -> Result<UserListing, R::Error> {
        Ok(UserListing { id: r.int(0)?, uuid: r.opt_text(1)?, profile: Profile::from_columns(r, 2)?, groups })
    }
}

/// The token rule of [`Store::import_user`]: an import adds rows and blacklistings, and never
/// lifts a blacklisting or touches another user's row.
pub fn decide_token_import(existing: Option<&TokenRow>, incoming: &TokenRow) -> TokenImport {
    match existing {
        None => TokenImport::Insert,
        Some(row) if row.user_id != incoming.user_id => TokenImport::Conflict,
        Some(row) if row.blacklisted.is_none() && incoming.blacklisted.is_some() => TokenImport::Blacklist,
        Some(_) => TokenImport::Present,
    }
}

/// Storage failures. Anything but `UsernameTaken` and `EmailTaken` is the server's fault (a 5xx).
/// What an account token (a password-reset or activation link) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    Activation,
}

impl Purpose {
    /// As stored in `account_tokens.purpose`.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "reset",
            Purpose::Activation => "activation",
        }
    }

    pub fn from_name(name: &str) -> Option<Purpose> {
        match name {
            "reset" => Some(Purpose::PasswordReset),
            "activation" => Some(Purpose::Activation),
            _ => None,
        }
    }
}

/// A stored account token: never the token itself, only its SHA-256 (`digest`, hex), and
/// `bound`, the [`password_fingerprint`] of the user's password hash when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub digest: String,
    pub user_id: i64,
    pub purpose: Purpose,
    pub bound: String,
    /// Unix seconds; the token works while `now < expires_at`.
    pub expires_at: i64,
    /// An activation token that activated its user (a used reset token is deleted).
    pub used: bool,
}

impl AccountToken {
    /// An account token from a row of [`account_token_columns!`], on either backend.
    pub(crate) fn from_columns<R: Columns>(r: &R) -> Result<AccountToken, R::Error> {
        Ok(AccountToken {
            digest: r.text(0)?,
            user_id: r.int(1)?,
            purpose: Purpose::from_name(&r.text(2)?).unwrap_or(Purpose::Activation),
            bound: r.text(3)?,
            expires_at: r.int(4)?,
            used: r.flag(5)?,
        })
    }
}

/// What a redemption reads of the user, in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemer {
    pub password_fingerprint: String,
    pub is_active: bool,
    /// Signed up with REQUIRE_EMAIL_VERIFICATION and not activated yet.
    pub awaiting_activation: bool,
}

/// A password reset or an activation to apply, if [`decide_redemption`] allows it.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub digest: String,
    pub user_id: i64,
    pub purpose: Purpose,
    pub now: Instant,
    /// A reset's new password hash (`None` for an activation). `Debug` of the hash is not masked
    /// here: the type is never logged.
    pub new_password: Option<String>,
}

/// What a redemption came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// Applied: the password set (every token of the user revoked) or the user activated.
    Done,
    /// No such token for this user, of this purpose, unexpired and bound to the current
    /// password (a used reset token is gone): djoser's "Invalid token for given user."
    Invalid,
    /// A valid activation token of a user who is active already (or whose activation an
    /// operator decided): djoser's 403 "Stale token for given user."
    Stale,
}

/// A digest of a password hash that an account token is bound to: SHA-256, hex. A new password
/// (salted, so every hash differs) makes every earlier link stop working.
pub fn password_fingerprint(password_hash: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(password_hash.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The rule of [`Store::redeem`], applied by each backend inside its transaction on the rows it
/// read: the token must be the user's, of the purpose, unexpired and bound to the user's current
/// password hash. A reset needs an active user and an unused token; an activation a user still
/// awaiting it (else it is stale).
pub fn decide_redemption(
    token: Option<&AccountToken>,
    user: Option<&Redeemer>,
    purpose: Purpose,
    user_id: i64,
    now: Instant,
) -> Redeemed {
    let (Some(token), Some(user)) = (token, user) else { return Redeemed::Invalid };
    let bound = subtle::ConstantTimeEq::ct_eq(token.bound.as_bytes(), user.password_fingerprint.as_bytes());
    if token.user_id != user_id || token.purpose != purpose || now.secs() >= token.expires_at || !bool::from(bound) {
        return Redeemed::Invalid;
    }
    match purpose {
        Purpose::PasswordReset if token.used || !user.is_active => Redeemed::Invalid,
        Purpose::PasswordReset => Redeemed::Done,
        Purpose::Activation if user.is_active || !user.awaiting_activation => Redeemed::Stale,
        Purpose::Activation => Redeemed::Done,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with that username already exists")]
    UsernameTaken,
    #[error("a user with that email already exists")]
    EmailTaken,
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The database was migrated by a newer jwtd: this binary would misread its tables, so it
/// refuses to start (`main` exits 2 on it).
#[derive(Debug, thiserror::Error)]
#[error("the database is at schema version {found}, newer than the {known} this jwtd knows; run the newer jwtd (or restore a backup)")]
pub struct SchemaTooNew {
    pub found: usize,
    pub known: usize,
}

/// The schema's migrations, in order, as SQL of the dialect whose files are in
/// `migrations/$dialect/`: the one list of their names, which every dialect has a file of.
macro_rules! migrations {
    ($dialect:literal) => {
        [
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dialect, "/0001_initial.sql")),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dialect, "/0002_django_shapes.sql")),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dialect, "/0003_sessions.sql")),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dialect, "/0004_account_tokens.sql")),
        ]
    };
}
pub(crate) use migrations;

/// The migrations of `all` that a database at schema version `applied` lacks, each with the
/// version it brings the database to; a database migrated by a newer jwtd is [`SchemaTooNew`].
pub(crate) fn pending<'a>(
    all: &'a [&'a str],
    applied: usize,
) -> Result<impl Iterator<Item = (usize, &'a str)> + 'a, StoreError> {
    if applied > all.len() {
        return Err(StoreError::Database(Box::new(SchemaTooNew { found: applied, known: all.len() })));
    }
    Ok(all.iter().enumerate().skip(applied).map(|(i, sql)| (i + 1, *sql)))
}

/// The storage contract. Every method is one atomic step.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The secret named `name`, created from `generate()` if there is none yet.
    async fn secret_or_insert(&self, name: &str, generate: Vec<u8>) -> Result<Vec<u8>, StoreError>;

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// The user with this e-mail address, compared case-insensitively (Django's `email__iexact`);
    /// the first by id when several have it.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    async fn user_by_uuid(&self, uuid: uuid::Uuid) -> Result<Option<User>, StoreError>;
    /// The user a token's id names, by the id type the database holds.
    async fn user_by_public_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        match id {
            UserId::Int(id) => self.user_by_id(id).await,
            UserId::Uuid(uuid) => self.user_by_uuid(uuid).await,
        }
    }
    /// The user id type this database was made for (USER_ID_TYPE): `wanted` recorded when none
    /// is yet (the first start), else the one recorded.
    async fn fix_user_id_type(&self, wanted: IdType) -> Result<IdType, StoreError>;
    /// Replaces the user's own claims. Returns false when there is no such user.
    async fn set_user_claims(&self, user_id: i64, claims: &Map<String, Value>) -> Result<bool, StoreError>;
    /// The names of the user's groups, sorted.
    async fn user_groups(&self, user_id: i64) -> Result<Vec<String>, StoreError>;
    /// Adds the user to the groups `add` (created as needed) and takes them out of `remove`, in
    /// one step; returns the names of the user's groups afterwards, sorted.
    async fn change_groups(&self, user_id: i64, add: &[String], remove: &[String]) -> Result<Vec<String>, StoreError>;
    /// Activates or deactivates the user; deactivating also revokes every token of theirs, as
    /// [`Store::revoke_all`], in the same transaction. Returns false when there is no such user.
    async fn set_active(&self, user_id: i64, active: bool, now: Instant) -> Result<bool, StoreError>;
    /// Deletes the user and every token row of theirs, and logs a revocation at `now` (the log's
    /// rows of a deleted user stay, so instances started later still refuse its access tokens).
    /// Returns false when there is no such user.
    async fn delete_user(&self, user_id: i64, now: Instant) -> Result<bool, StoreError>;
    async fn set_last_login(&self, user_id: i64, now: Instant) -> Result<(), StoreError>;
    /// Replaces the stored hash `old` by `new` without revoking anything (rehash on sign-in): a
    /// compare-and-swap, false (nothing written) when the stored hash is no longer `old`.
    async fn update_password_hash(&self, user_id: i64, old: &str, new: &str) -> Result<bool, StoreError>;
    /// Sets a new password and revokes every token of the user, as [`Store::revoke_all`].
    async fn change_password(&self, user_id: i64, hash: &str, now: Instant) -> Result<(), StoreError>;
    /// Blacklists every refresh token of the user and records that tokens issued up to `now`'s
    /// second included are revoked ([`valid_after_revocation`]), in the user's row and the log.
    async fn revoke_all(&self, user_id: i64, now: Instant) -> Result<(), StoreError>;
    /// Revocations recorded after `cursor`, oldest first.
    async fn revocations_since(&self, cursor: i64, limit: u32) -> Result<Vec<Revocation>, StoreError>;

    /// Records a refresh token issued at sign-in or sign-up, as the first member of a new family, only if the token's user still has
    /// the `seen` state, atomically (SQLite: one statement on the single writer; PostgreSQL: the
    /// user's row locked first). Returns false, writing nothing, when the user moved on.
    /// The session's row ([`SessionClient`], created and last used at the token's `iat`) goes in
    /// with it.
    async fn record_sign_in(&self, sign_in: SignIn<'_>) -> Result<bool, StoreError>;
    async fn refresh_row(&self, jti: &str) -> Result<Option<TokenRow>, StoreError>;
    /// The user `query.user_id` (`None` when there is none), the row of the refresh token
    /// `query.jti` and whether `query.session` is a family of the user's, for a refresh without
    /// rotation, read in one statement.
    async fn refresh_check(&self, query: RefreshQuery<'_>) -> Result<Option<RefreshCheck>, StoreError>;
    /// The user whose family (token rows or session row) `session` is, if any.
    async fn session_owner(&self, session: &str) -> Result<Option<i64>, StoreError>;
    /// The user's live sessions, newest first: families with a refresh token neither
    /// blacklisted nor expired at `now`.
    async fn sessions(&self, user_id: i64, now: Instant) -> Result<Vec<SessionListing>, StoreError>;
    /// Revokes sessions of the user, in one transaction: blacklists every refresh token of each
    /// and logs a revocation of each ([`valid_after_revocation`]`(now)`, `session` set), which
    /// every instance's poll brings to its verifier. Returns the ids revoked: for
    /// [`SessionScope::One`], empty when no row of the user names it (another user's or unknown).
    async fn revoke_sessions(&self, revocation: SessionRevocation<'_>) -> Result<Vec<String>, StoreError>;
    /// Moves `last_used_at` of each session forward to the time given (seconds), never back:
    /// the batched record of refreshes.
    async fn touch_sessions(&self, used: &[(String, i64)]) -> Result<(), StoreError>;
    /// Blacklists a refresh token, recording it first if it was never seen. Idempotent.
    async fn blacklist(&self, token: &RefreshRecord, family: &str, now: Instant) -> Result<(), StoreError>;
    /// One atomic rotation step, applying [`decide_rotation`].
    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError>;
    /// Brings in a user from another system keeping its id (`jwtd import-django`), with its
    /// refresh-token rows and group memberships, in one transaction, applying
    /// [`decide_user_import`] and, unless the user is refused, [`decide_token_import`] to each
    /// row. The rows' `user_id` is ignored: each gets the user's id here. An inserted integer id
    /// is taken as used (users created later get higher ids); a user with a UUID gets a new id.
    /// With [`ImportMode::DryRun`] it reads and decides the same way and writes nothing.
    async fn import_user(&self, user: &ImportUser, mode: ImportMode) -> Result<ImportOutcome, StoreError>;
    /// Before an import: checks the database's id type against `incoming`, recording it in
    /// `meta` when the database has none (not in a dry run), by [`decide_id_type`].
    async fn import_id_type(&self, incoming: IdType, mode: ImportMode) -> Result<IdTypeCheck, StoreError>;
    /// Creates the groups of `names` not here yet (none in a dry run); returns how many are new.
    async fn import_groups(&self, names: &[String], mode: ImportMode) -> Result<u64, StoreError>;
    /// Up to `limit` users with ids above `after`, in id order, with their groups.
    async fn user_page(&self, after: i64, limit: u32) -> Result<Vec<UserListing>, StoreError>;
    /// Deletes up to `batch` token rows that expired before `now` and returns how many went; and
    /// up to `batch` session rows whose family has no token row left.
    async fn flush_expired(&self, now: Instant, batch: u32) -> Result<u64, StoreError>;
    /// Creates `user` inactive and awaiting activation by e-mail (REQUIRE_EMAIL_VERIFICATION), in
    /// one transaction; otherwise as [`Store::create_user`].
    async fn create_user_awaiting_activation(&self, user: NewUser) -> Result<User, StoreError>;
    /// Whether the user signed up awaiting activation and has not activated yet.
    async fn awaits_activation(&self, user_id: i64) -> Result<bool, StoreError>;
    async fn insert_account_token(&self, token: &AccountToken) -> Result<(), StoreError>;
    async fn account_token(&self, digest: &str) -> Result<Option<AccountToken>, StoreError>;
    /// Reads the token and the user in one transaction, applies [`decide_redemption`] and, when
    /// it allows: a reset sets the password, revokes like [`Store::change_password`] and deletes
    /// the user's reset tokens; an activation activates the user, ends the wait and marks the
    /// token used.
    async fn redeem(&self, redemption: &Redemption) -> Result<Redeemed, StoreError>;

    /// Called once at shutdown, after the last request: leaves the database clean (connections
    /// closed or pooled ones released, logs checkpointed). Later calls may still work.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_user_masks_the_password_hash() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let user = User {
            id: 1,
            uuid: None,
            password: hash.into(),
            profile: Profile::sample("ada", ""),
            tokens_valid_after: 0,
            claims: Map::new(),
        };
        let new = NewUser {
            username: "ada".into(),
            password_hash: hash.into(),
            email: String::new(),
            uuid: None,
            unique_email: false,
            now: Instant::from_secs(0),
        };
        for printed in [format!("{user:?}"), format!("{new:?}")] {
            assert!(printed.contains("\"ada\"") && !printed.contains("argon2"), "{printed}");
        }
    }

    #[test]
    fn revocation_covers_earlier_seconds_and_tokens_without_iat() {
        assert!(!revoked_by_user(Some(100), 0), "never revoked");
        assert!(!revoked_by_user(None, 0), "never revoked, token without iat");
        assert!(!revoked_by_user(Some(-5), 0), "never revoked, absurd iat");
        assert!(revoked_by_user(Some(99), 100));
        assert!(!revoked_by_user(Some(100), 100), "the first second after a revocation is valid");
        assert_eq!(valid_after_revocation(Instant::from_millis(99_999)), 100);
        assert!(revoked_by_user(Some(99), valid_after_revocation(Instant::from_millis(99_000))), "its own second");
        assert!(!revoked_by_user(Some(101), 100));
        assert!(revoked_by_user(None, 100));
    }

    #[test]
    fn a_refresh_without_rotation_is_refused_by_the_user_then_the_row_then_the_session() {
        let now = Instant::from_secs(1_000);
        let max = Duration::from_secs(100);
        let user = UserGate { is_active: true, tokens_valid_after: 0 };
        let row = TokenStanding { blacklisted: false, family_started: 950 };
        let check = |user, token| RefreshCheck { user, token, session_known: false };
        assert_eq!(check(user, Some(row)).refuses(Some(950), now, max, true), None);
        let inactive = UserGate { is_active: false, ..user };
        assert_eq!(check(inactive, Some(row)).refuses(Some(950), now, max, true), Some(Refusal::Inactive));
        assert_eq!(check(inactive, Some(row)).refuses(Some(950), now, max, false), None, "not checked");
        let revoked = UserGate { tokens_valid_after: 960, ..user };
        let blacklisted = TokenStanding { blacklisted: true, ..row };
        assert_eq!(check(revoked, Some(blacklisted)).refuses(Some(950), now, max, true), Some(Refusal::Revoked));
        assert_eq!(check(user, Some(blacklisted)).refuses(Some(950), now, max, true), Some(Refusal::Blacklisted));
        let old = TokenStanding { family_started: 900, ..row };
        assert_eq!(check(user, Some(old)).refuses(Some(950), now, max, true), Some(Refusal::SessionOver));
        assert_eq!(check(user, None).refuses(Some(900), now, max, true), Some(Refusal::SessionOver), "its iat");
        assert_eq!(check(user, None).refuses(None, now, max, true), None, "no iat: starts now");
        let known = RefreshCheck { user, token: None, session_known: true };
        assert_eq!(known.refuses(Some(990), now, max, true), Some(Refusal::Unrecorded), "its session is the user's");
    }

    #[test]
    fn a_database_holds_one_id_type_recorded_or_shown_by_its_users() {
        assert_eq!(database_id_type(Some("uuid"), true, false), Some(IdType::Uuid), "recorded wins");
        assert_eq!(database_id_type(None, true, true), Some(IdType::Int), "any user without a UUID");
        assert_eq!(database_id_type(None, false, true), Some(IdType::Uuid));
        assert_eq!(database_id_type(None, false, false), None, "empty: either");
        assert_eq!(decide_id_type(None, false, IdType::Uuid), IdTypeCheck::Recorded);
        assert_eq!(decide_id_type(Some(IdType::Int), false, IdType::Int), IdTypeCheck::Recorded, "inferred");
        assert_eq!(decide_id_type(Some(IdType::Int), true, IdType::Int), IdTypeCheck::Matches);
        assert_eq!(
            decide_id_type(Some(IdType::Int), true, IdType::Uuid),
            IdTypeCheck::Mismatch { database: IdType::Int }
        );
    }

    #[test]
    fn an_imported_user_is_present_only_under_the_same_id_and_login() {
        let user = |id, username: &str, email: &str| ImportUser {
            id,
            password: "!".into(),
            profile: Profile::sample(username, email),
            groups: Vec::new(),
            tokens: Vec::new(),
        };
        let holder = |id, username: &str, email: &str| Holder { id, username: username.into(), email: email.into() };
        let ada = user(SourceId::Int(7), "ada", "ada@example.com");
        assert_eq!(decide_user_import(&ada, None, None), UserImport::Inserted);
        assert_eq!(decide_user_import(&ada, Some(&holder(7, "ada", "other@x")), None), UserImport::Present);
        assert_eq!(
            decide_user_import(&ada, Some(&holder(7, "eve", "")), None),
            UserImport::IdTaken { username: "eve".into() }
        );
        assert_eq!(decide_user_import(&ada, None, Some(&holder(3, "ada", ""))), UserImport::UsernameTaken { id: 3 });
        let by_mail = user(SourceId::Uuid("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into()), "", "ada@example.com");
        let same = holder(9, "", "ADA@example.com");
        assert_eq!(decide_user_import(&by_mail, Some(&same), Some(&same)), UserImport::Present, "case aside");
        assert_eq!(
            decide_user_import(&by_mail, Some(&holder(9, "", "bob@example.com")), None),
            UserImport::IdTaken { username: "bob@example.com".into() }
        );
        assert_eq!(decide_user_import(&by_mail, None, Some(&same)), UserImport::EmailTaken { id: 9 });
    }

    #[test]
    fn an_import_writes_a_new_user_only_outside_a_dry_run_and_nothing_of_a_refused_one() {
        let user = |id| ImportUser {
            id,
            password: "!".into(),
            profile: Profile::sample("ada", "ada@example.com"),
            groups: vec!["staff".into()],
            tokens: Vec::new(),
        };
        let (int, uuid) = (user(SourceId::Int(7)), user(SourceId::Uuid("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into())));
        let write = |u| plan_user_import(u, None, None, ImportMode::Write);
        let dry = |u| plan_user_import(u, None, None, ImportMode::DryRun);
        assert_eq!(write(&int), (UserImport::Inserted, UserWrite::Insert { id: Some(7), uuid: None }));
        assert_eq!(
            write(&uuid),
            (UserImport::Inserted, UserWrite::Insert { id: None, uuid: Some("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f") })
        );
        assert_eq!(dry(&int), (UserImport::Inserted, UserWrite::Keep { user_id: Some(7), groups: 1 }));
        assert_eq!(dry(&uuid), (UserImport::Inserted, UserWrite::Keep { user_id: None, groups: 1 }), "id drawn later");
        let here = Holder { id: 7, username: "ada".into(), email: String::new() };
        for mode in [ImportMode::Write, ImportMode::DryRun] {
            let present = plan_user_import(&int, Some(&here), Some(&here), mode);
            assert_eq!(present, (UserImport::Present, UserWrite::Keep { user_id: Some(7), groups: 0 }));
            let taken = plan_user_import(&int, None, Some(&Holder { id: 3, ..here.clone() }), mode);
            assert_eq!(taken, (UserImport::UsernameTaken { id: 3 }, UserWrite::Refused));
        }
        assert_eq!(Profile::sample("", "ada@example.com").login_key(), Some(LoginKey::Email("ada@example.com")));
        assert_eq!(Profile::sample("ada", "").login_key(), Some(LoginKey::Username("ada")));
        assert_eq!(Profile::sample("", "").login_key(), None);
    }

    #[test]
    fn pending_migrations_follow_the_applied_version_and_a_newer_schema_is_refused() {
        let all = ["a", "b", "c"];
        assert_eq!(pending(&all, 0).unwrap().collect::<Vec<_>>(), [(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(pending(&all, 2).unwrap().collect::<Vec<_>>(), [(3, "c")]);
        assert_eq!(pending(&all, 3).unwrap().count(), 0);
        let Err(StoreError::Database(e)) = pending(&all, 4).map(|p| p.count()) else { panic!("refused") };
        let too_new = e.downcast_ref::<SchemaTooNew>().expect("SchemaTooNew");
        assert_eq!((too_new.found, too_new.known), (4, 3));
    }

    #[test]
    fn a_session_ends_at_its_last_second_and_caps_expiry() {
        let end = session_end(900, Duration::from_secs(100));
        assert!(!end.reached(Instant::from_millis(999_999)));
        assert!(end.reached(Instant::from_secs(1_000)));
        assert_eq!((end.cap(999), end.cap(1_001)), (999, 1_000));
    }
}
