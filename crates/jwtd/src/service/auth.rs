//! The token lifecycle (SPEC §4) as SimpleJWT's serializers run it, plus jwtd's additions:
//! rotation as one store step with grace period and reuse detection, session end, and
//! revocation of every token of a user.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jwtd_proto::messages::{
    EMAIL_TAKEN, EMAIL_TOO_LONG, INVALID_EMAIL, PASSWORD_TOO_SHORT, REQUIRED, USERNAME_TAKEN, USERNAME_TOO_LONG,
    WRONG_PASSWORD,
};
use jwtd_proto::{RevocationEntry, UserId};
use serde_json::Value;
use tracing::{info, warn};

mod recovery;

pub use recovery::send_link;

use super::delivery::{Delivery, EventKind};
use super::{revocation, PasswordPool, Profiles, SessionActivity, Subject, Throttle, Throttled, Verifier};
use crate::clock::{Instant, SharedClock};
use crate::config::{IdType, LoginField, RotationPolicy, Settings, SignUpPolicy, TokenClaim, REGISTERED_CLAIMS};
use crate::store::{
    valid_after_revocation, NewUser, Profile, RefreshQuery, RefreshRecord, Refusal, RotateRequest, Rotation,
    SessionClient, SessionListing, SessionRevocation, SessionScope, SignIn, Store, StoreError, User, UserState,
};
use crate::tokens::{Claims, Codec, TokenError, TokenType};

/// DRF validation errors: field name → messages, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, Vec<String>)>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, msgs)) => msgs.push(message.into()),
            None => self.0.push((field.to_string(), vec![message.into()])),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a use case refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no active account found with the given credentials")]
    NoActiveAccount,
    #[error("token invalid: {0}")]
    TokenInvalid(TokenError),
    #[error("token is blacklisted")]
    Blacklisted,
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("sign-in throttled")]
    Throttled(Throttled),
    /// SIGNUP=closed.
    #[error("sign-up is closed")]
    SignUpClosed,
    #[error("user not found")]
    UserNotFound,
    /// No session of the caller's has this id (another user's, or none).
    #[error("session not found")]
    SessionNotFound,
    #[error("user is inactive")]
    UserInactive,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hashing,
    #[error("too many sign-ins are waiting")]
    Overloaded,
    /// An activation link of a user who is active already (djoser's 403 "Stale token").
    #[error("stale activation token")]
    StaleToken,
    /// The signing key refused to sign (`Codec::encode`), or a signed token could not be sent.
    #[error("token signing failed")]
    Signing,
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        AuthError::TokenInvalid(e)
    }
}

impl From<super::hashing::HashError> for AuthError {
    fn from(e: super::hashing::HashError) -> Self {
        match e {
            super::hashing::HashError::Busy => AuthError::Overloaded,
            super::hashing::HashError::Failed => AuthError::Hashing,
        }
    }
}

/// Tokens handed out by a use case. `Debug` masks them.
#[derive(Clone)]
pub struct Issued {
    pub access: String,
    pub refresh: Option<IssuedRefresh>,
}

/// A refresh token handed out, with what a transport that stores it (a cookie) needs to know.
/// `Debug` masks the token.
#[derive(Clone)]
pub struct IssuedRefresh {
    pub token: String,
    /// Whole seconds from the request to the token's `exp`, never negative: a cookie's Max-Age.
    pub max_age: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("access", &"****").field("refresh", &self.refresh).finish()
    }
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh").field("token", &"****").field("max_age", &self.max_age).finish()
    }
}

/// What sign-up returns.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub user: User,
    /// `None` with REQUIRE_EMAIL_VERIFICATION: the user awaits activation.
    pub tokens: Option<Issued>,
}

/// The use cases, over one store, one signing key, one verifier and one clock. Cloned for every request (axum's state), so a clone is one reference count.
#[derive(Debug, Clone)]
pub struct AuthService {
    inner: Arc<Parts>,
}

#[derive(Debug)]
struct Parts {
    store: Arc<dyn Store>,
    /// Signs every token handed out; verification is the verifier's.
    signer: Codec,
    verifier: Verifier,
    clock: SharedClock,
    passwords: PasswordPool,
    /// LOGIN_RATE: failed sign-ins and old-password checks, per username and per address.
    throttle: Arc<Throttle>,
    /// SIGNUP_RATE: sign-up requests per address.
    signup_throttle: Arc<Throttle>,
    /// Sessions refreshed since `app`'s task last wrote their `last_used_at`.
    activity: SessionActivity,
    /// What `/api/me/` answers, recently read; `app`'s revocation poll forgets revoked users.
    profiles: Arc<Profiles>,
    settings: Arc<Settings>,
    /// Mails and security events (SPEC §8); disabled unless WEBHOOK_URL or SMTP_URL is set.
    delivery: Delivery,
    /// PASSWORD_RESET_RATE.
    reset_throttles: recovery::ResetThrottles,
    /// Link requests worked on at once.
    link_jobs: Arc<tokio::sync::Semaphore>,
}

/// A new session id (SPEC §3, carried in the jti: [`jwtd_proto::session`]).
fn new_session() -> String {
    crate::store::new_family()
}

/// The jti of a new token of `session` (a random one when `session` is no session id).
fn jti_in(session: Option<&str>) -> String {
    jwtd_proto::session::jti_in_session(session, uuid::Uuid::new_v4())
}

/// The jti of a new token in the session of `from`: an access token made from a refresh token.
fn jti_after(from: &Claims) -> String {
    jti_in(from.session())
}

/// The log line of a session revoked (`session.revoked`): the user and the session, never a token.
fn log_session_revoked(user_id: i64, session: &str, reason: &'static str) {
    info!(event = "session.revoked", user_id, session, reason, "session revoked");
}

fn secs(d: Duration) -> i64 {
    crate::tokens::secs_of(d)
}

impl AuthService {
    /// `signer` signs the tokens handed out; `verifier` checks presented ones (built from the
    /// same codec on the server) and keeps the per-user "valid after" map.
    pub fn new(
        store: Arc<dyn Store>,
        signer: Codec,
        verifier: Verifier,
        clock: SharedClock,
        passwords: PasswordPool,
        settings: Arc<Settings>,
    ) -> Self {
        let throttle = Arc::new(Throttle::new(settings.login_rate));
        let signup_throttle = Arc::new(Throttle::new(settings.signup_rate));
        let activity = SessionActivity::default();
        let reset_throttles = recovery::ResetThrottles::new(&settings);
        AuthService {
            inner: Arc::new(Parts {
                store,
                signer,
                verifier,
                clock,
                passwords,
                throttle,
                signup_throttle,
                activity,
                profiles: Arc::default(),
                settings,
                delivery: Delivery::disabled(),
                reset_throttles,
                link_jobs: recovery::link_jobs(),
            }),
        }
    }

    /// The service sending mails and events through `delivery`. For a service just made with
    /// [`AuthService::new`], before any clone of it exists (a shared one is returned unchanged).
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        if let Some(parts) = Arc::get_mut(&mut self.inner) {
            parts.delivery = delivery;
        }
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The profiles `/api/me/` answers from; a revocation read from the log forgets its user.
    pub fn profiles(&self) -> &Arc<Profiles> {
        &self.inner.profiles
    }

    /// Where mails and events go.
    pub fn delivery(&self) -> &Delivery {
        &self.inner.delivery
    }

    /// USER_ID_CLAIM: the claim holding the user's id.
    pub fn user_id_claim(&self) -> &str {
        self.inner.verifier.user_id_claim()
    }

    /// USERNAME_FIELD: the body field sign-in takes.
    pub fn login_field(&self) -> LoginField {
        self.inner.settings.username_field
    }

    fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        self.inner.signer.encode(claims).map_err(|_| AuthError::Signing)
    }

    /// `claims` signed, with the Max-Age a transport storing it at `now` gives it.
    fn sign_refresh(&self, claims: &Claims, now: Instant) -> Result<IssuedRefresh, AuthError> {
        let max_age = claims.exp_secs().saturating_sub(now.secs()).max(0);
        Ok(IssuedRefresh { token: self.sign(claims)?, max_age })
    }

    fn decode(&self, token: &str, now: Instant) -> Result<Claims, AuthError> {
        Ok(self.inner.verifier.decode(token, now)?)
    }

    /// The id a token carries.
    fn user_id_of(&self, claims: &Claims) -> Result<UserId, AuthError> {
        claims.user_id(self.inner.verifier.user_id_claim())?.ok_or(AuthError::TokenInvalid(TokenError::BadClaim))
    }

    /// The time to date a new token of a user whose tokens are valid from `valid_after`: now,
    /// once the clock has reached that second (a revocation revokes its whole second, so a token
    /// dated in it would be born revoked). Read before the user's state is checked again, so a
    /// revocation committing after that check covers the token ([`revocation::settle`]).
    ///
    /// [`revocation::settle`]: super::revocation::settle
    async fn issue_time(&self, valid_after: i64) -> Instant {
        let now = self.now();
        if now.secs() >= valid_after {
            return now;
        }
        self.inner.clock.sleep_until(Instant::from_secs(valid_after)).await;
        self.now()
    }

    /// [`AuthService::issue_time`] for a token derived from a presented one: waits for the
    /// "valid after" second this instance knows of (ahead only with instances' clocks apart,
    /// review L-17).
    async fn renewal_time(&self, user_id: UserId) -> Instant {
        self.issue_time(self.inner.verifier.valid_after(user_id)).await
    }

    /// The internal key of the user a token's id names: an integer id is the key itself (no
    /// database read); a UUID is looked up. `None`: an id of the other USER_ID_TYPE, or no such
    /// user.
    async fn user_key(&self, id: UserId) -> Result<Option<i64>, AuthError> {
        match (id, self.inner.settings.user_id_type) {
            (UserId::Int(id), IdType::Int) => Ok(Some(id)),
            (UserId::Uuid(uuid), IdType::Uuid) => Ok(self.inner.store.user_by_uuid(uuid).await?.map(|u| u.id)),
            _ => Ok(None),
        }
    }

    /// The user a token's id names, when it is of the configured USER_ID_TYPE.
    async fn user_of(&self, id: UserId) -> Result<Option<User>, AuthError> {
        match (id, self.inner.settings.user_id_type) {
            (UserId::Int(_), IdType::Int) | (UserId::Uuid(_), IdType::Uuid) => {
                Ok(self.inner.store.user_by_public_id(id).await?)
            }
            _ => Ok(None),
        }
    }

    /// The id `user`'s tokens carry (USER_ID_TYPE).
    pub fn public_id(&self, user: &User) -> Result<UserId, AuthError> {
        user.public_id(self.inner.settings.user_id_type)
            .ok_or_else(|| AuthError::Store(StoreError::Database(format!("user {} has no UUID", user.id).into())))
    }

    /// New claims of `token_type` for `user`, with the user's claims: their own (`jwtd user
    /// set-claims`), then the TOKEN_CLAIMS fields. Registered names are never taken.
    ///
    /// `jti` names the token's session ([`jwtd_proto::session`]).
    ///
    /// No `sid` is written although SPEC §3 asks for one: the shared suite's claim-set tests
    /// (`test_tokens.py`, CORE) and SimpleJWT's own tokens hold exactly `token_type`, `exp`,
    /// `iat`, `jti` and the user id, and where the contract and SimpleJWT disagree on the wire,
    /// SimpleJWT's answer decides. The session rides in the jti instead; a presented `sid` is
    /// still read ([`Claims::session`]).
    async fn claims_for(
        &self,
        token_type: TokenType,
        user: &User,
        now: Instant,
        lifetime: Duration,
        jti: String,
    ) -> Result<Claims, AuthError> {
        let id_claim = self.inner.verifier.user_id_claim();
        let mut claims = Claims::new(token_type, id_claim, self.public_id(user)?, now.secs(), lifetime, jti);
        let registered = |name: &str| name == id_claim || REGISTERED_CLAIMS.contains(&name);
        for (name, value) in &user.claims {
            if !registered(name) {
                claims.insert(name, value.clone());
            }
        }
        for field in &self.inner.settings.token_claims.0 {
            let value = match field {
                TokenClaim::Username => Value::from(user.profile.username.clone()),
                TokenClaim::Email => Value::from(user.profile.email.clone()),
                TokenClaim::FirstName => Value::from(user.profile.first_name.clone()),
                TokenClaim::LastName => Value::from(user.profile.last_name.clone()),
                TokenClaim::IsStaff => Value::from(user.profile.is_staff),
                TokenClaim::IsSuperuser => Value::from(user.profile.is_superuser),
                TokenClaim::Groups => Value::from(self.inner.store.user_groups(user.id).await?),
            };
            if !registered(field.name()) {
                claims.insert(field.name(), value);
            }
        }
        Ok(claims)
    }

    /// A new refresh token (first of a new family) and the access token made from it, issued only
    /// if the user is still as `seen` (the state the password check saw): otherwise the sign-in
    /// raced a password change, revocation or deactivation, and gets nothing. The new session
    /// records `client`. Returns the tokens and their session (family) id.
    async fn issue_pair(
        &self,
        user: &User,
        seen: &UserState,
        client: &SessionClient,
    ) -> Result<(Issued, String), AuthError> {
        let now = self.issue_time(seen.tokens_valid_after).await;
        let s = &self.inner.settings;
        let lifetime = s.refresh_token_lifetime.min(s.session_max_lifetime);
        let family = new_session();
        let refresh = self.claims_for(TokenType::Refresh, user, now, lifetime, jti_in(Some(&family))).await?;
        let access = refresh.derive(TokenType::Access, now.secs(), s.access_token_lifetime, jti_in(Some(&family)));
        let record = RefreshRecord {
            jti: refresh.jti().to_string(),
            user_id: user.id,
            issued_at: now.secs(),
            expires_at: refresh.exp_secs(),
        };
        if !self.inner.store.record_sign_in(SignIn { token: &record, family: &family, seen, client }).await? {
            info!(user_id = user.id, "sign-in raced a change of the user; nothing issued");
            return Err(AuthError::NoActiveAccount);
        }
        let issued = Issued { access: self.sign(&access)?, refresh: Some(self.sign_refresh(&refresh, now)?) };
        Ok((issued, family))
    }

    /// Whether sign-up may go ahead for a request from `addr`: SIGNUP open, and SIGNUP_RATE not
    /// used up. Every request counts, as DRF's throttle of a view counts every request; it runs
    /// before the body is read, as DRF checks permissions and throttles before parsing.
    pub fn admit_sign_up(&self, addr: Option<IpAddr>) -> Result<(), AuthError> {
        if self.inner.settings.signup == SignUpPolicy::Closed {
            return Err(AuthError::SignUpClosed);
        }
        let Some(addr) = addr else { return Ok(()) };
        match self.inner.signup_throttle.reserve(&[Subject::Addr(addr)], self.now()) {
            Ok(attempt) => {
                attempt.failed();
                Ok(())
            }
            Err(throttled) => {
                warn!(client = %addr, "sign-up throttled");
                Err(AuthError::Throttled(throttled))
            }
        }
    }

    /// The user signing in with `login` (USERNAME_FIELD): by username, or by e-mail compared
    /// case-insensitively.
    async fn user_by_login(&self, login: &str) -> Result<Option<User>, AuthError> {
        Ok(match self.inner.settings.username_field {
            LoginField::Username => self.inner.store.user_by_name(login).await?,
            LoginField::Email => self.inner.store.user_by_email(login).await?,
        })
    }

    /// POST /api/auth/signup/. Field checks as the reference's serializer: username at most
    /// 150 characters and, when it is the login, not taken; password at least 8; e-mail
    /// well-formed when given and, when it is the login (USERNAME_FIELD=email), not taken by any
    /// case variant. Errors come in the serializer's field order. The session it opens records
    /// `client`.
    pub async fn sign_up(
        &self,
        username: Option<String>,
        password: String,
        email: Option<String>,
        addr: Option<IpAddr>,
        user_agent: &str,
    ) -> Result<SignUp, AuthError> {
        let by_email = self.inner.settings.username_field == LoginField::Email;
        let verify_email = self.inner.settings.require_email_verification;
        let mut errors = FieldErrors::default();
        let username = username.unwrap_or_default();
        if username.chars().count() > 150 {
            errors.add("username", USERNAME_TOO_LONG);
        } else if !by_email && self.inner.store.user_by_name(&username).await?.is_some() {
            errors.add("username", USERNAME_TAKEN);
        }
        let email = email.map(|e| if by_email { normalize_email(&e) } else { e }).unwrap_or_default();
        let mut email_errors = FieldErrors::default();
        if email.is_empty() && verify_email {
            // The activation link needs an address.
            email_errors.add("email", REQUIRED);
        } else if !email.is_empty() && !plausible_email(&email) {
            email_errors.add("email", INVALID_EMAIL);
        } else if email.chars().count() > 254 {
            email_errors.add("email", EMAIL_TOO_LONG);
        } else if by_email && self.inner.store.user_by_email(&email).await?.is_some() {
            email_errors.add("email", EMAIL_TAKEN);
        }
        if by_email {
            errors.0.append(&mut email_errors.0);
        }
        if password.chars().count() < 8 {
            errors.add("password", PASSWORD_TOO_SHORT);
        }
        errors.0.extend(email_errors.0);
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        let password_hash = self.inner.passwords.hash(password).await?;
        let now = self.now();
        let uuid = (self.inner.settings.user_id_type == IdType::Uuid).then(uuid::Uuid::new_v4);
        let new = NewUser { username, password_hash, email, uuid, unique_email: by_email, now };
        let created = if verify_email {
            self.inner.store.create_user_awaiting_activation(new).await
        } else {
            self.inner.store.create_user(new).await
        };
        let user = match created {
            Ok(user) => user,
            Err(StoreError::UsernameTaken) => {
                let mut errors = FieldErrors::default();
                errors.add("username", USERNAME_TAKEN);
                return Err(AuthError::Validation(errors));
            }
            Err(StoreError::EmailTaken) => {
                let mut errors = FieldErrors::default();
                errors.add("email", EMAIL_TAKEN);
                return Err(AuthError::Validation(errors));
            }
            Err(e) => return Err(e.into()),
        };
        info!(user_id = user.id, "user signed up");
        // SQLite may give a deleted user's id again: nothing of that user is answered for this one.
        self.forget_profile(&user);
        self.emit_for(EventKind::UserCreated, &user, addr);
        if verify_email {
            // Inactive until the link is followed: no tokens (djoser answers with the user alone).
            self.send_activation(&user).await?;
            return Ok(SignUp { user, tokens: None });
        }
        let (tokens, _) = self.issue_pair(&user, &user.state(), &SessionClient::new(user_agent, addr)).await?;
        Ok(SignUp { user, tokens: Some(tokens) })
    }

    /// Counts a password check against LOGIN_RATE for `username` and `addr` before it runs
    /// (`throttle.rs`: reserve, then check).
    fn reserve_attempt(&self, username: &str, addr: Option<IpAddr>) -> Result<super::Reservation, AuthError> {
        let mut subjects = vec![Subject::Username(username)];
        subjects.extend(addr.map(Subject::Addr));
        self.inner.throttle.reserve(&subjects, self.now()).map_err(|throttled| {
            warn!(username_hash = %username_digest(username), client = %client_text(addr), "sign-in throttled");
            self.emit(EventKind::SigninThrottled, None, addr);
            AuthError::Throttled(throttled)
        })
    }

    /// Checks credentials as Django's ModelBackend does (inactive users never sign in), with
    /// LOGIN_RATE throttling of failures. Unknown users cost the same time as wrong passwords.
    /// The user returned is as checked (with the upgraded hash after a rehash): what issuance
    /// is conditional on.
    async fn authenticate(&self, login: &str, password: String, addr: Option<IpAddr>) -> Result<User, AuthError> {
        // One throttle bucket for every spelling of an e-mail address.
        let login = match self.inner.settings.username_field {
            LoginField::Username => login.to_string(),
            LoginField::Email => login.to_lowercase(),
        };
        let username = login.as_str();
        let attempt = self.reserve_attempt(username, addr)?;
        let user = self.user_by_login(username).await?;
        let (matches, rehash) =
            self.inner.passwords.verify(password.clone(), user.as_ref().map(|u| u.password.clone())).await?;
        let mut user = match user {
            Some(user) if matches && user.profile.is_active => user,
            _ => {
                attempt.failed();
                warn!(username_hash = %username_digest(username), client = %client_text(addr), "sign-in refused");
                return Err(AuthError::NoActiveAccount);
            }
        };
        attempt.succeeded();
        if rehash {
            let hash = self.inner.passwords.hash(password).await?;
            // Compare-and-swap: a password change meanwhile must not get the old password back.
            if !self.inner.store.update_password_hash(user.id, &user.password, &hash).await? {
                info!(user_id = user.id, "sign-in raced a password change; nothing issued");
                return Err(AuthError::NoActiveAccount);
            }
            user.password = hash;
        }
        if self.inner.settings.update_last_login {
            self.inner.store.set_last_login(user.id, self.now()).await?;
            self.forget_profile(&user);
        }
        Ok(user)
    }

    /// POST /api/token/ and /api/auth/signin/: a new session, recording the client's address and
    /// `User-Agent`.
    pub async fn obtain_pair(
        &self,
        username: &str,
        password: String,
        addr: Option<IpAddr>,
        user_agent: &str,
    ) -> Result<Issued, AuthError> {
        let user = self.authenticate(username, password, addr).await?;
        let (issued, session) = self.issue_pair(&user, &user.state(), &SessionClient::new(user_agent, addr)).await?;
        self.emit_in_session(
            EventKind::SignedIn,
            user.public_id(self.inner.settings.user_id_type),
            Some(session),
            addr,
        );
        Ok(issued)
    }

    /// POST /api/token/sliding/.
    pub async fn obtain_sliding(
        &self,
        username: &str,
        password: String,
        addr: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        let user = self.authenticate(username, password, addr).await?;
        // Not recorded, so conditional this way: dated first, then the user read again and
        // compared with what the password check saw. A revocation committing after that read
        // covers the token's second (`revocation::settle`).
        let now = self.issue_time(user.tokens_valid_after).await;
        let current = self.inner.store.user_by_id(user.id).await?;
        if current.map(|u| u.state()) != Some(user.state()) {
            info!(user_id = user.id, "sign-in raced a change of the user; nothing issued");
            return Err(AuthError::NoActiveAccount);
        }
        let s = &self.inner.settings;
        // A sliding token is its own session: a new id, kept by every sliding refresh.
        let session = new_session();
        let mut claims =
            self.claims_for(TokenType::Sliding, &user, now, s.sliding_token_lifetime, jti_in(Some(&session))).await?;
        claims.insert("refresh_exp", Value::from(now.secs().saturating_add(secs(s.sliding_token_refresh_lifetime))));
        let token = self.sign(&claims)?;
        self.emit_for(EventKind::SignedIn, &user, addr);
        Ok(token)
    }

    /// Checks that the token's user exists, is active (CHECK_USER_IS_ACTIVE) and has not revoked
    /// the token by a password change or logout-all since it was issued ([`UserGate::refuses`]).
    ///
    /// [`UserGate::refuses`]: crate::store::UserGate::refuses
    async fn check_user(&self, claims: &Claims) -> Result<User, AuthError> {
        let user_id = self.user_id_of(claims)?;
        let user = self.user_of(user_id).await?.ok_or(AuthError::TokenInvalid(TokenError::BadClaim))?;
        match user.gate().refuses(claims.iat(), self.inner.settings.check_user_is_active) {
            Some(refusal) => Err(refused(refusal)),
            None => Ok(user),
        }
    }

    /// POST /api/token/refresh/.
    pub async fn refresh(&self, token: &str) -> Result<Issued, AuthError> {
        let claims = self.decode(token, self.now())?;
        claims.expect_type(TokenType::Refresh)?;
        let public_id = self.user_id_of(&claims)?;
        // A revoked session's tokens are blacklisted; this instance knows without a read.
        if self.session_revoked(&claims) {
            return Err(AuthError::Blacklisted);
        }
        let user_id = self.user_key(public_id).await?.ok_or(AuthError::TokenInvalid(TokenError::BadClaim))?;
        // Dated before the store reads the user (a wait here is under a second, and only with
        // instances' clocks apart).
        let now = self.renewal_time(public_id).await;
        let s = &self.inner.settings;
        let presented = RefreshRecord {
            jti: claims.jti().to_string(),
            user_id,
            issued_at: claims.iat().unwrap_or(now.secs()),
            expires_at: claims.exp_secs(),
        };
        let new_access = |from: &Claims| -> Result<String, AuthError> {
            self.sign(&from.derive(TokenType::Access, now.secs(), s.access_token_lifetime, jti_after(from)))
        };
        match s.rotation {
            RotationPolicy::Off => {
                // check_user's rules, and then the token's row, from one read.
                let query = RefreshQuery { user_id, jti: claims.jti(), session: claims.session() };
                let check = self.inner.store.refresh_check(query).await?;
                let check = check.ok_or(AuthError::TokenInvalid(TokenError::BadClaim))?;
                if let Some(refusal) = check.refuses(claims.iat(), now, s.session_max_lifetime, s.check_user_is_active)
                {
                    return Err(refused(refusal));
                }
                self.note_use(&claims, now);
                Ok(Issued { access: new_access(&claims)?, refresh: None })
            }
            RotationPolicy::On { blacklist_after, grace } => {
                let req = RotateRequest {
                    presented,
                    presented_iat: claims.iat(),
                    session: claims.session().map(str::to_string),
                    successor_random: uuid::Uuid::new_v4(),
                    now,
                    lifetime: s.refresh_token_lifetime,
                    session_max: s.session_max_lifetime,
                    blacklist_after,
                    grace,
                    require_active: s.check_user_is_active,
                };
                let successor = match self.inner.store.rotate(&req).await? {
                    Rotation::Rotated(row) | Rotation::Grace(row) => {
                        claims.renew(Some(row.jti), row.issued_at, row.expires_at)
                    }
                    Rotation::Reused { family } => {
                        warn!(user_id, session = %family, "refresh token reused after rotation; family revoked");
                        self.inner.verifier.revoke_session(&family, valid_after_revocation(now));
                        log_session_revoked(user_id, &family, "reuse");
                        self.emit_in_session(
                            EventKind::SessionReuseDetected,
                            Some(public_id),
                            Some(family.to_string()),
                            None,
                        );
                        return Err(AuthError::Blacklisted);
                    }
                    Rotation::Blacklisted => return Err(AuthError::Blacklisted),
                    Rotation::Invalid => return Err(AuthError::TokenInvalid(TokenError::Expired)),
                };
                self.note_use(&successor, now);
                Ok(Issued { access: new_access(&successor)?, refresh: Some(self.sign_refresh(&successor, now)?) })
            }
        }
    }

    /// Whether the session `claims` names was revoked since the token was issued (this
    /// instance's verifier knows, no read).
    fn session_revoked(&self, claims: &Claims) -> bool {
        claims.session().is_some_and(|session| self.inner.verifier.is_session_revoked(session, claims.iat()))
    }

    /// Notes a refresh in the session of `claims` for the next write of `last_used_at`.
    fn note_use(&self, claims: &Claims, now: Instant) {
        if let Some(session) = claims.session() {
            self.inner.activity.touch(session, now.secs());
        }
    }

    /// Writes the `last_used_at` of the sessions refreshed since the last call (`app`'s task,
    /// every [`SessionActivity::FLUSH_EVERY`], and at shutdown); returns how many. A batch the
    /// database refuses is kept for the next call.
    pub async fn flush_session_activity(&self) -> Result<usize, AuthError> {
        let batch = self.inner.activity.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.inner.store.touch_sessions(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                self.inner.activity.restore(batch);
                Err(e.into())
            }
        }
    }

    /// GET /api/auth/sessions/: the live sessions of the user, newest first.
    pub async fn sessions(&self, user_id: UserId) -> Result<Vec<SessionListing>, AuthError> {
        let key = self.user_key(user_id).await?.ok_or(AuthError::UserNotFound)?;
        Ok(self.inner.store.sessions(key, self.now()).await?)
    }

    /// DELETE /api/auth/sessions/{id}/: revokes one session of the user: its refresh tokens at
    /// once, its access tokens here at once and on other instances within a poll.
    /// [`AuthError::SessionNotFound`] when no row of the user names it.
    pub async fn revoke_session(&self, user_id: UserId, session: &str, addr: Option<IpAddr>) -> Result<(), AuthError> {
        if !jwtd_proto::session::is_session_id(session) {
            return Err(AuthError::SessionNotFound);
        }
        let key = self.user_key(user_id).await?.ok_or(AuthError::SessionNotFound)?;
        let revoked = self.revoke_sessions(key, user_id, SessionScope::One(session), "revoked", addr).await?;
        if revoked.is_empty() {
            return Err(AuthError::SessionNotFound);
        }
        Ok(())
    }

    /// POST /api/auth/logout-others/: revokes every session of the user but `current` (the
    /// caller's, from its Bearer token). Returns the sessions revoked.
    pub async fn logout_others(
        &self,
        user_id: UserId,
        current: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<Vec<String>, AuthError> {
        let key = self.user_key(user_id).await?.ok_or(AuthError::UserNotFound)?;
        self.revoke_sessions(key, user_id, SessionScope::AllBut(current), "logout-others", addr).await
    }

    /// [`Store::revoke_sessions`], then this instance's verifier refuses their tokens at once.
    async fn revoke_sessions(
        &self,
        key: i64,
        user_id: UserId,
        scope: SessionScope<'_>,
        reason: &'static str,
        addr: Option<IpAddr>,
    ) -> Result<Vec<String>, AuthError> {
        let now = self.now();
        let revoked = self.inner.store.revoke_sessions(SessionRevocation { user_id: key, scope, now }).await?;
        // A refresh that read its token's row before the commit may have dated its access token
        // in a second turned since `now`: revoke that second too (`revocation::settle`'s rule).
        let later = self.now();
        if later.secs() != now.secs() {
            for session in &revoked {
                let again = SessionRevocation { user_id: key, scope: SessionScope::One(session), now: later };
                self.inner.store.revoke_sessions(again).await?;
            }
        }
        for session in &revoked {
            self.inner.verifier.revoke_session(session, valid_after_revocation(later));
            log_session_revoked(key, session, reason);
            self.emit_in_session(EventKind::SessionRevoked, Some(user_id), Some(session.clone()), addr);
        }
        Ok(revoked)
    }

    /// Whether a refresh token without a row names a session of its own user: one jwtd issued,
    /// whose row was purged or restored away (refused), rather than SimpleJWT's (adopted).
    async fn names_own_family(&self, claims: &Claims, user_id: UserId) -> Result<bool, AuthError> {
        let Some(session) = claims.session() else { return Ok(false) };
        let Some(owner) = self.inner.store.session_owner(session).await? else { return Ok(false) };
        Ok(self.user_key(user_id).await? == Some(owner))
    }

    /// POST /api/token/verify/: any token type. Refresh (and sliding) tokens are looked up in the
    /// blacklist whatever the settings; access tokens need no database.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        self.verified(token).await.map(|_| ())
    }

    /// The claims of a token [`AuthService::verify`] accepts.
    async fn verified(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = self.decode(token, self.now())?;
        // A malformed id (say, a UUID with a digit missing) makes the token invalid.
        if let Some(user_id) = claims.user_id(self.inner.verifier.user_id_claim())? {
            // An id of the wrong USER_ID_TYPE names no user here.
            if !matches!(
                (user_id, self.inner.settings.user_id_type),
                (UserId::Int(_), IdType::Int) | (UserId::Uuid(_), IdType::Uuid)
            ) {
                return Err(AuthError::TokenInvalid(TokenError::BadClaim));
            }
            if self.inner.verifier.is_revoked_token(user_id, &claims) {
                return Err(AuthError::Blacklisted);
            }
        }
        if self.session_revoked(&claims) {
            return Err(AuthError::Blacklisted);
        }
        if claims.token_type().ok() != Some(TokenType::Access) {
            match self.inner.store.refresh_row(claims.jti()).await? {
                Some(row) if row.blacklisted.is_some() => return Err(AuthError::Blacklisted),
                Some(_) => {}
                // A refresh token of jwtd's own issue always has a row: refresh refuses one
                // without whose session is a family of its user's, and so does verify.
                None if claims.token_type().ok() == Some(TokenType::Refresh) => {
                    if let Some(user_id) = claims.user_id(self.inner.verifier.user_id_claim())? {
                        if self.names_own_family(&claims, user_id).await? {
                            return Err(AuthError::TokenInvalid(TokenError::BadClaim));
                        }
                    }
                }
                None => {}
            }
        }
        Ok(claims)
    }

    /// POST /api/token/introspect/ (RFC 7662): the claims of a token that verify accepts (any
    /// type: signature, times, revocation by its user, a blacklisted row), else `None`, whatever
    /// the reason. A database fault is an error, not an inactive token.
    pub async fn introspect(&self, token: &str) -> Result<Option<Claims>, AuthError> {
        match self.verified(token).await {
            Ok(claims) => Ok(Some(claims)),
            Err(AuthError::Store(e)) => Err(AuthError::Store(e)),
            Err(_) => Ok(None),
        }
    }

    /// GET /api/token/revocations/: at most `limit` rows of the revocation log after `after`, in
    /// id order, each with the id the user's tokens carry (rows of a deleted UUID user, whose id
    /// is gone, are skipped: no token of theirs names a user that exists), and the cursor to read
    /// on from.
    pub async fn revocation_feed(&self, after: i64, limit: u32) -> Result<(Vec<RevocationEntry>, i64), AuthError> {
        let rows = self.inner.store.revocations_since(after, limit).await?;
        let next = rows.last().map_or(after, |r| r.cursor);
        let id_type = self.inner.settings.user_id_type;
        let entries = rows
            .iter()
            .filter_map(|r| {
                let user_id = r.public_id(id_type)?;
                Some(RevocationEntry { id: r.cursor, user_id, valid_after: r.valid_after, session: r.session.clone() })
            })
            .collect();
        Ok((entries, next))
    }

    /// POST /api/token/blacklist/: logout. A token already blacklisted (so also one rotated
    /// with BLACKLIST_AFTER_ROTATION) or revoked by its user answers "Token is blacklisted", as
    /// SimpleJWT 5.5.1's `RefreshToken(token)` does before `blacklist()` (SPEC §4); a token rotated
    /// without blacklisting is blacklisted now, as there. Two logouts of one token racing may
    /// both succeed: either way it ends blacklisted once, at the first time (`Store::blacklist`).
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let now = self.now();
        let claims = self.decode(token, now)?;
        claims.expect_type(TokenType::Refresh)?;
        let public_id = self.user_id_of(&claims)?;
        let Some(user_id) = self.user_key(public_id).await? else {
            return Err(AuthError::TokenInvalid(TokenError::BadClaim));
        };
        if self.inner.verifier.is_revoked(public_id, claims.iat()) || self.session_revoked(&claims) {
            return Err(AuthError::Blacklisted);
        }
        if let Some(row) = self.inner.store.refresh_row(claims.jti()).await? {
            if row.blacklisted.is_some() {
                return Err(AuthError::Blacklisted);
            }
        }
        let record = RefreshRecord {
            jti: claims.jti().to_string(),
            user_id,
            issued_at: claims.iat().unwrap_or(now.secs()),
            expires_at: claims.exp_secs(),
        };
        let family = crate::store::family_of_unrecorded(claims.session(), new_session);
        self.inner.store.blacklist(&record, &family, now).await?;
        Ok(())
    }

    /// POST /api/token/sliding/refresh/: same jti and refresh_exp, new exp and iat.
    pub async fn refresh_sliding(&self, token: &str) -> Result<String, AuthError> {
        let claims = self.decode(token, self.now())?;
        claims.expect_type(TokenType::Sliding)?;
        let now = self.renewal_time(self.user_id_of(&claims)?).await;
        let refresh_exp = match claims.get("refresh_exp") {
            Some(Value::Number(n)) => n.as_f64().ok_or(TokenError::BadClaim)?,
            Some(_) => return Err(TokenError::BadClaim.into()),
            None => return Err(TokenError::NoExp.into()),
        };
        let leeway_ms = self.inner.settings.leeway.as_millis() as f64;
        if refresh_exp * 1000.0 <= now.millis() as f64 - leeway_ms {
            return Err(TokenError::Expired.into());
        }
        self.check_user(&claims).await?;
        if self.inner.verifier.is_revoked(self.user_id_of(&claims)?, claims.iat()) || self.session_revoked(&claims) {
            return Err(AuthError::Blacklisted);
        }
        let renewed =
            claims.renew(None, now.secs(), now.secs().saturating_add(secs(self.inner.settings.sliding_token_lifetime)));
        self.sign(&renewed)
    }

    /// GET /api/me/: the profile of an accepted access token's user, as DRF's JWTAuthentication
    /// loads it, from [`Profiles`] when it was read within [`Profiles::FRESH_FOR`].
    pub async fn profile(&self, user_id: UserId) -> Result<Arc<Profile>, AuthError> {
        let now = self.now();
        let profile = match self.inner.profiles.get(user_id, now) {
            Some(profile) => profile,
            None => {
                let start = self.inner.profiles.start_read();
                let user = self.user_of(user_id).await?.ok_or(AuthError::UserNotFound)?;
                let profile = Arc::new(user.profile);
                self.inner.profiles.keep(user_id, profile.clone(), start, now);
                profile
            }
        };
        if self.inner.settings.check_user_is_active && !profile.is_active {
            return Err(AuthError::UserInactive);
        }
        Ok(profile)
    }

    /// Drops what [`Profiles`] holds of `user`, whose profile this instance just changed.
    pub(crate) fn forget_profile(&self, user: &User) {
        if let Ok(id) = self.public_id(user) {
            self.inner.profiles.forget(id);
        }
    }

    /// The user of an accepted access token, read from the store (with its password hash).
    pub async fn me(&self, user_id: UserId) -> Result<User, AuthError> {
        let user = self.user_of(user_id).await?.ok_or(AuthError::UserNotFound)?;
        if self.inner.settings.check_user_is_active && !user.profile.is_active {
            return Err(AuthError::UserInactive);
        }
        Ok(user)
    }

    /// POST /api/auth/password/: checks the old password, sets the new one and revokes every
    /// token of the user issued before now. The old-password check counts against LOGIN_RATE
    /// like a sign-in of the user's login, from `addr`: a stolen access token must not make the
    /// password guessable faster than the sign-in form does.
    pub async fn change_password(
        &self,
        user_id: UserId,
        old: String,
        new: String,
        addr: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let user = self.me(user_id).await?;
        let mut errors = FieldErrors::default();
        // The bucket a sign-in of this user counts in (`authenticate`).
        let login = match self.inner.settings.username_field {
            LoginField::Username => user.profile.username.clone(),
            LoginField::Email => user.profile.email.to_lowercase(),
        };
        let attempt = self.reserve_attempt(&login, addr)?;
        let (matches, _) = self.inner.passwords.verify(old, Some(user.password.clone())).await?;
        if matches {
            attempt.succeeded();
        } else {
            attempt.failed();
            warn!(user_id = user.id, client = %client_text(addr), "password change: wrong old password");
            errors.add("old_password", WRONG_PASSWORD);
        }
        if new.chars().count() < 8 {
            errors.add("new_password", PASSWORD_TOO_SHORT);
        }
        if !errors.is_empty() {
            return Err(AuthError::Validation(errors));
        }
        let hash = self.inner.passwords.hash(new).await?;
        let now = self.now();
        self.inner.store.change_password(user.id, &hash, now).await?;
        self.complete_revocation(user.id, user_id, now).await?;
        warn!(user_id = user.id, "password changed; every token of the user revoked");
        self.emit(EventKind::PasswordChanged, Some(user_id), addr);
        Ok(())
    }

    /// POST /api/auth/logout-all/.
    pub async fn logout_all(&self, user_id: UserId) -> Result<(), AuthError> {
        let now = self.now();
        let key = self.user_key(user_id).await?.ok_or(AuthError::UserNotFound)?;
        self.inner.store.revoke_all(key, now).await?;
        self.complete_revocation(key, user_id, now).await?;
        info!(user_id = key, "logout-all; every token of the user revoked");
        self.emit(EventKind::LogoutAll, Some(user_id), None);
        Ok(())
    }

    /// After a revocation at `now` committed: covers a second turned meanwhile, refuses the
    /// user's earlier access tokens here at once (other instances within a poll), and returns
    /// only once the revoked second is over, so the client's next sign-in needs no wait.
    async fn complete_revocation(&self, key: i64, user_id: UserId, now: Instant) -> Result<(), AuthError> {
        let clock = self.inner.clock.as_ref();
        let valid_after = revocation::settle(self.inner.store.as_ref(), clock, key, now).await?;
        self.inner.verifier.revoke_before(user_id, valid_after);
        self.inner.profiles.forget(user_id);
        revocation::wait_out(clock, valid_after).await;
        Ok(())
    }
}

/// How logs name a username without writing it: the first 12 hex digits of its SHA-256, enough
/// to tell one attacked account from many across log lines (ASVS 7.1.3), not to read the name
/// back from a log (a guess can still be checked against it, so logs stay access-controlled).
pub fn username_digest(username: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(username.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// A client address for a log line; `-` when unknown.
fn client_text(addr: Option<IpAddr>) -> String {
    addr.map_or_else(|| "-".to_string(), |a| a.to_string())
}

/// The answer to a refresh (without rotation) or a sliding-token refresh the store's rules refuse.
fn refused(refusal: Refusal) -> AuthError {
    match refusal {
        Refusal::Inactive => AuthError::TokenInvalid(TokenError::BadClaim),
        Refusal::Revoked | Refusal::Blacklisted => AuthError::Blacklisted,
        Refusal::SessionOver | Refusal::Unrecorded => AuthError::TokenInvalid(TokenError::Expired),
    }
}

/// Django's `BaseUserManager.normalize_email`: the domain part lowercased, the local part kept.
pub fn normalize_email(email: &str) -> String {
    match email.trim().rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.trim().to_string(),
    }
}

/// Django's EmailValidator in short: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_email_lowercases_the_domain_only() {
        assert_eq!(normalize_email("Ada.L@Example.ORG"), "Ada.L@example.org");
        assert_eq!(normalize_email(" a@b@C.d "), "a@b@c.d", "the last @ splits, as Django's rpartition");
        assert_eq!(normalize_email("no-at-sign"), "no-at-sign");
    }
}
