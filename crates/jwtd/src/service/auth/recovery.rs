//! Accounts a person can recover (SPEC §1, §8): password reset and activation by e-mail, djoser's
//! flows and bodies. A link carries the user id base64url-encoded (djoser's `uid`) and a random
//! token; the store keeps only the token's SHA-256, bound to the password hash it was issued
//! against, until PASSWORD_RESET_TIMEOUT. Requests for a link answer at once, the same for every
//! address: the lookup, the write and the message run off the request, after PASSWORD_RESET_RATE.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use jwtd_proto::messages::{INVALID_LINK_TOKEN, INVALID_UID, PASSWORD_TOO_SHORT};
use jwtd_proto::UserId;
use rand::RngCore as _;
use sha2::Digest as _;
use tracing::{info, warn};

use super::{client_text, username_digest, AuthError, AuthService, FieldErrors};
use crate::clock::Instant;
use crate::config::{IdType, Settings};
use crate::service::delivery::{Delivery, Event, EventKind, Mail, MailKind};
use crate::service::{Subject, Throttle};
use crate::store::{
    decide_redemption, hex, password_fingerprint, AccountToken, Purpose, Redeemed, Redeemer, Redemption, Store,
    StoreError, User,
};

/// Link requests being worked on at once, past which more are dropped (and logged).
pub(super) const LINK_JOBS: usize = 64;

/// PASSWORD_RESET_RATE: one throttle per account (the address asked for) and one per client.
#[derive(Debug)]
pub(super) struct ResetThrottles {
    account: Arc<Throttle>,
    addr: Arc<Throttle>,
}

impl ResetThrottles {
    pub(super) fn new(settings: &Settings) -> Self {
        ResetThrottles {
            account: Arc::new(Throttle::new(settings.reset_rates.account)),
            addr: Arc::new(Throttle::new(settings.reset_rates.addr)),
        }
    }
}

/// djoser's `uid`: the user's public id as text, base64url without padding.
pub fn encode_uid(id: UserId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The public id a `uid` names, of the configured type; `None` when it names none.
fn decode_uid(uid: &str, id_type: IdType) -> Option<UserId> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    match id_type {
        IdType::Int => text.parse::<i64>().ok().filter(|id| *id > 0).map(UserId::Int),
        IdType::Uuid => uuid::Uuid::try_parse(&text).ok().map(UserId::Uuid),
    }
}

/// The stored form of a link token: its SHA-256, hex.
fn digest(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

fn invalid(field: &str, message: &str) -> AuthError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    AuthError::Validation(errors)
}

/// Makes a link for `user` (a new token, its digest stored) and queues the mail. What the
/// server's use cases and `jwtd user send-reset` share.
pub async fn send_link(
    store: &dyn Store,
    delivery: &Delivery,
    settings: &Settings,
    now: Instant,
    user: &User,
    purpose: Purpose,
) -> Result<(), StoreError> {
    let Some(public_id) = user.public_id(settings.user_id_type) else {
        return Err(StoreError::Database(format!("user {} has no UUID", user.id).into()));
    };
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let lifetime = settings.password_reset_timeout;
    store
        .insert_account_token(&AccountToken {
            digest: digest(&token),
            user_id: user.id,
            purpose,
            bound: password_fingerprint(&user.password),
            expires_at: now.plus(lifetime).secs(),
            used: false,
        })
        .await?;
    let uid = encode_uid(public_id);
    let (kind, page) = match purpose {
        Purpose::PasswordReset => (MailKind::PasswordReset, "reset"),
        Purpose::Activation => (MailKind::Activation, "activate"),
    };
    let url = format!("{}/{page}/{uid}/{token}", delivery.frontend_url());
    let user_id = serde_json::to_value(public_id).unwrap_or_default();
    delivery.mail(&Mail { kind, user_id, email: user.profile.email.clone(), uid, token, url, valid_for: lifetime });
    info!(user_id = user.id, kind = kind.event_type(), "link queued");
    Ok(())
}

/// Django's unusable password (`set_unusable_password`): no reset link is sent for it, as djoser.
fn usable(password_hash: &str) -> bool {
    !password_hash.starts_with('!')
}

impl AuthService {
    /// Queues a security event on the webhook, dated now.
    pub(crate) fn emit(&self, kind: EventKind, user_id: Option<UserId>, ip: Option<IpAddr>) {
        self.emit_in_session(kind, user_id, None, ip);
    }

    /// [`AuthService::emit`] of an event of one session (refresh-token family).
    pub(crate) fn emit_in_session(
        &self,
        kind: EventKind,
        user_id: Option<UserId>,
        session: Option<String>,
        ip: Option<IpAddr>,
    ) {
        if !self.inner.delivery.enabled() {
            return;
        }
        let user_id = user_id.and_then(|id| serde_json::to_value(id).ok());
        self.inner.delivery.event(Event { kind, user_id, session, ip, at: self.now() });
    }

    /// [`AuthService::emit`] for a user known by internal key.
    pub(crate) fn emit_for(&self, kind: EventKind, user: &User, ip: Option<IpAddr>) {
        self.emit(kind, user.public_id(self.inner.settings.user_id_type), ip);
    }

    /// POST …/password/reset/: always answers at once (204); a link goes out when `email` is an
    /// active account's with a usable password, within PASSWORD_RESET_RATE.
    pub fn request_reset(&self, email: &str, addr: Option<IpAddr>) {
        self.request_link(email, addr, Purpose::PasswordReset);
    }

    /// POST …/activation/resend/: as [`AuthService::request_reset`], for an account still
    /// awaiting activation.
    pub fn resend_activation(&self, email: &str, addr: Option<IpAddr>) {
        self.request_link(email, addr, Purpose::Activation);
    }

    /// Counts the request against PASSWORD_RESET_RATE (per address asked for, per client), then
    /// does the rest off the request, so that known and unknown addresses answer alike.
    fn request_link(&self, email: &str, addr: Option<IpAddr>, purpose: Purpose) {
        let email = email.trim().to_lowercase();
        let now = self.now();
        let throttles = &self.inner.reset_throttles;
        let by_account = throttles.account.reserve(&[Subject::Username(&email)], now);
        let by_addr = match addr {
            Some(a) => throttles.addr.reserve(&[Subject::Addr(a)], now).map(Some),
            None => Ok(None),
        };
        match (by_account, by_addr) {
            (Ok(account), Ok(client)) => {
                account.failed();
                if let Some(client) = client {
                    client.failed();
                }
            }
            _ => {
                warn!(email_hash = %username_digest(&email), client = %client_text(addr), kind = purpose.name(),
                    "link request over PASSWORD_RESET_RATE; nothing sent");
                return;
            }
        }
        let Ok(permit) = self.inner.link_jobs.clone().try_acquire_owned() else {
            warn!(kind = purpose.name(), "too many link requests at once; this one is dropped");
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = this.link_for(&email, purpose, addr).await {
                warn!(kind = purpose.name(), error = %e, "link request failed");
            }
        });
    }

    async fn link_for(&self, email: &str, purpose: Purpose, addr: Option<IpAddr>) -> Result<(), StoreError> {
        let store = self.inner.store.as_ref();
        let Some(user) = store.user_by_email(email).await?.filter(|u| !u.profile.email.is_empty()) else {
            info!(email_hash = %username_digest(email), kind = purpose.name(), "link request for no account");
            return Ok(());
        };
        let wanted = match purpose {
            Purpose::PasswordReset => user.profile.is_active && usable(&user.password),
            Purpose::Activation => !user.profile.is_active && store.awaits_activation(user.id).await?,
        };
        if !wanted {
            info!(user_id = user.id, kind = purpose.name(), "link request for an account that takes none");
            return Ok(());
        }
        if purpose == Purpose::PasswordReset {
            self.emit_for(EventKind::PasswordResetRequested, &user, addr);
        }
        send_link(store, &self.inner.delivery, &self.inner.settings, self.now(), &user, purpose).await
    }

    /// The user a `uid` names, or djoser's `uid` error.
    async fn user_of_uid(&self, uid: &str) -> Result<(User, UserId), AuthError> {
        let id = decode_uid(uid, self.inner.settings.user_id_type).ok_or_else(|| invalid("uid", INVALID_UID))?;
        let user = self.user_of(id).await?.ok_or_else(|| invalid("uid", INVALID_UID))?;
        Ok((user, id))
    }

    /// POST …/password/reset/confirm/: djoser's order of checks (the new password, the `uid`,
    /// the token); then the password is set and every token of the user revoked, as a password
    /// change does. A link works once, until PASSWORD_RESET_TIMEOUT, and only while the password
    /// is the one it was issued against.
    pub async fn confirm_reset(&self, uid: &str, token: &str, new_password: String) -> Result<(), AuthError> {
        if new_password.chars().count() < 8 {
            return Err(invalid("new_password", PASSWORD_TOO_SHORT));
        }
        let (user, public_id) = self.user_of_uid(uid).await?;
        let digest = digest(token);
        // Checked before the (slow) hash, so a wrong link costs no hashing; decided again below
        // on the state the store reads in its transaction.
        let seen = Redeemer {
            password_fingerprint: password_fingerprint(&user.password),
            is_active: user.profile.is_active,
            awaiting_activation: false,
        };
        let row = self.inner.store.account_token(&digest).await?;
        if decide_redemption(row.as_ref(), Some(&seen), Purpose::PasswordReset, user.id, self.now()) != Redeemed::Done {
            info!(user_id = user.id, "password reset: invalid link");
            return Err(invalid("token", INVALID_LINK_TOKEN));
        }
        let hash = self.inner.passwords.hash(new_password).await?;
        let now = self.now();
        let redemption =
            Redemption { digest, user_id: user.id, purpose: Purpose::PasswordReset, now, new_password: Some(hash) };
        if self.inner.store.redeem(&redemption).await? != Redeemed::Done {
            info!(user_id = user.id, "password reset: the link was used or outdated meanwhile");
            return Err(invalid("token", INVALID_LINK_TOKEN));
        }
        self.complete_revocation(user.id, public_id, now).await?;
        warn!(user_id = user.id, "password reset; every token of the user revoked");
        self.emit(EventKind::PasswordChanged, Some(public_id), None);
        Ok(())
    }

    /// POST …/activation/: activates a user who signed up awaiting it; a link of a user who is
    /// active already is stale (403), as djoser answers.
    pub async fn activate(&self, uid: &str, token: &str) -> Result<(), AuthError> {
        let (user, _) = self.user_of_uid(uid).await?;
        let redemption = Redemption {
            digest: digest(token),
            user_id: user.id,
            purpose: Purpose::Activation,
            now: self.now(),
            new_password: None,
        };
        match self.inner.store.redeem(&redemption).await? {
            Redeemed::Done => {
                self.forget_profile(&user);
                info!(user_id = user.id, "account activated");
                Ok(())
            }
            Redeemed::Stale => Err(AuthError::StaleToken),
            Redeemed::Invalid => Err(invalid("token", INVALID_LINK_TOKEN)),
        }
    }

    /// After a sign-up awaiting activation: the activation link.
    pub(super) async fn send_activation(&self, user: &User) -> Result<(), AuthError> {
        let s = &self.inner;
        send_link(s.store.as_ref(), &s.delivery, &s.settings, self.now(), user, Purpose::Activation).await?;
        Ok(())
    }
}

/// The semaphore bounding link work in flight.
pub(super) fn link_jobs() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(LINK_JOBS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_djosers() {
        assert_eq!(encode_uid(UserId::Int(1)), "MQ");
        assert_eq!(encode_uid(UserId::Int(42)), "NDI");
        assert_eq!(decode_uid("MQ", IdType::Int), Some(UserId::Int(1)));
        assert_eq!(decode_uid("MQ==", IdType::Int), Some(UserId::Int(1)));
        assert_eq!(decode_uid("MQ", IdType::Uuid), None);
        assert_eq!(decode_uid("!!", IdType::Int), None);
        let id = uuid::Uuid::new_v4();
        assert_eq!(decode_uid(&encode_uid(UserId::Uuid(id)), IdType::Uuid), Some(UserId::Uuid(id)));
    }
}
