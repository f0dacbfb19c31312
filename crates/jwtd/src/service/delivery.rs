//! Delivery of mails and security events (SPEC §8): signed webhooks (Standard Webhooks) and SMTP
//! (lettre, STARTTLS or implicit TLS over rustls). A request only puts a message on a bounded
//! queue ([`Delivery::send`] never waits); one background task drains it, sends each message to
//! each sink, and retries a failed send with exponential backoff for [`GIVE_UP_AFTER`], after
//! which it is logged as dropped (so is a message that finds the queue full). Time in the worker
//! is the injected clock's (`Clock::sleep_until`), so tests move a clock instead of sleeping.
//! Must not: log a token, a link or a password; know what the messages mean (the use cases in
//! `auth` build them).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::clock::{Instant, SharedClock};
use crate::config::{DeliverySettings, SmtpTarget, SmtpTls, WebhookTarget};

/// Messages waiting to be sent, at most (the queue and the retries together).
pub const QUEUE_CAPACITY: usize = 4096;
/// A message that could not be sent for this long is dropped (and logged).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The first retry comes after this; each next one after twice the wait, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Sends in flight at once.
const CONCURRENT_SENDS: usize = 8;
/// One webhook POST or SMTP session, at most.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// A mail: a password-reset or activation link for one user. `Debug` masks the token and link.
#[derive(Clone)]
pub struct Mail {
    pub kind: MailKind,
    /// The user's public id, as tokens carry it.
    pub user_id: Value,
    pub email: String,
    /// The user id, base64url (djoser's `uid`).
    pub uid: String,
    pub token: String,
    /// The FRONTEND_URL link with `uid` and `token`.
    pub url: String,
    /// How long the link works, for the text.
    pub valid_for: Duration,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("token", &"****")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    PasswordReset,
    Activation,
}

impl MailKind {
    /// The webhook's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "mail.password_reset",
            MailKind::Activation => "mail.activation",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            MailKind::PasswordReset => "Reset your password",
            MailKind::Activation => "Activate your account",
        }
    }
}

/// A security event (SPEC §8): its type, the user, the session, the client and the time; never
/// a token or password.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub user_id: Option<Value>,
    pub session: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    UserCreated,
    SignedIn,
    SigninThrottled,
    PasswordChanged,
    PasswordResetRequested,
    SessionReuseDetected,
    /// A session revoked (its DELETE, logout-others) by its user.
    SessionRevoked,
    LogoutAll,
    Deactivated,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::UserCreated => "user.created",
            EventKind::SignedIn => "user.signed_in",
            EventKind::SigninThrottled => "signin.throttled",
            EventKind::PasswordChanged => "password.changed",
            EventKind::PasswordResetRequested => "password.reset_requested",
            EventKind::SessionReuseDetected => "session.reuse_detected",
            EventKind::SessionRevoked => "session.revoked",
            EventKind::LogoutAll => "user.logout_all",
            EventKind::Deactivated => "user.deactivated",
        }
    }
}

/// The webhook body of a mail (SPEC §8).
pub fn mail_body(mail: &Mail) -> Value {
    serde_json::json!({
        "type": mail.kind.event_type(),
        "user_id": mail.user_id,
        "email": mail.email,
        "uid": mail.uid,
        "token": mail.token,
        "url": mail.url,
    })
}

/// The webhook body of an event (SPEC §8): `type` and `user_id` at the top level.
pub fn event_body(event: &Event) -> Value {
    serde_json::json!({
        "type": event.kind.name(),
        "user_id": event.user_id,
        "session": event.session,
        "ip": event.ip.map(|ip| ip.to_string()),
        "time": rfc3339(event.at),
    })
}

fn rfc3339(t: Instant) -> String {
    let nanos = i128::from(t.millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|dt| dt.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// The plain-text mail of `mail`, from `from`.
fn mail_message(mail: &Mail, from: &Mailbox) -> Result<Message, String> {
    let to: Mailbox = mail.email.parse().map_err(|e| format!("the user's address is refused: {e}"))?;
    let hours = mail.valid_for.as_secs().div_ceil(3600);
    let text = match mail.kind {
        MailKind::PasswordReset => format!(
            "Someone asked to reset the password of your account.\n\n\
             To choose a new password, open this link:\n\n{}\n\n\
             The link works once, for {hours} hours. If you did not ask for it, ignore this mail: \
             your password stays as it is.\n",
            mail.url
        ),
        MailKind::Activation => format!(
            "Welcome! To activate your account, open this link:\n\n{}\n\n\
             The link works for {hours} hours. If you did not sign up, ignore this mail.\n",
            mail.url
        ),
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.kind.subject())
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| format!("the mail could not be built: {e}"))
}

/// What one queued message is, to one sink.
#[derive(Clone)]
enum Payload {
    /// A webhook: its id (the same on every retry, for the receiver's idempotency) and body.
    Webhook {
        id: String,
        body: Arc<String>,
    },
    Smtp(Box<Message>),
}

/// One message on the queue.
struct Job {
    payload: Payload,
    /// What logs call it: its type, never its content.
    what: &'static str,
    queued: Instant,
    attempts: u32,
}

/// The sinks, shared by the sends in flight.
struct Sinks {
    webhook: Option<WebhookSink>,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    clock: SharedClock,
}

struct WebhookSink {
    url: String,
    key: Vec<u8>,
    client: reqwest::Client,
}

/// Standard Webhooks' signature of `body` sent as `id` at `timestamp`: `v1,` and the base64 of
/// HMAC-SHA256 over `id.timestamp.body`.
pub fn webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Why a send failed; `permanent` ones are not retried.
struct SendError {
    message: String,
    permanent: bool,
}

impl Sinks {
    async fn send(&self, payload: &Payload) -> Result<(), SendError> {
        match payload {
            Payload::Webhook { id, body } => {
                let Some(sink) = &self.webhook else { return Ok(()) };
                let timestamp = self.clock.now().secs();
                let signature = webhook_signature(&sink.key, id, timestamp, body);
                let response = sink
                    .client
                    .post(&sink.url)
                    .header("content-type", "application/json")
                    .header("webhook-id", id.as_str())
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(body.as_str().to_owned())
                    .send()
                    .await
                    .map_err(|e| SendError { message: format!("webhook: {}", without_url(&e)), permanent: false })?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(SendError { message: format!("webhook answered {status}"), permanent: false })
                }
            }
            Payload::Smtp(message) => {
                let Some(smtp) = &self.smtp else { return Ok(()) };
                match smtp.send(message.as_ref().clone()).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(SendError { message: format!("smtp: {e}"), permanent: e.is_permanent() }),
                }
            }
        }
    }
}

/// A reqwest error without its URL (WEBHOOK_URL may carry a secret in its path or query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut cause = String::new();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// The queue of mails and events. Cloned into the use cases; [`Delivery::disabled`] when neither
/// WEBHOOK_URL nor SMTP_URL is set.
#[derive(Clone)]
pub struct Delivery {
    inner: Option<Arc<Outbox>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("enabled", &self.inner.is_some()).finish()
    }
}

struct Outbox {
    queue: mpsc::Sender<Job>,
    /// Messages queued, waiting for a retry or being sent.
    pending: Arc<AtomicUsize>,
    webhook: bool,
    smtp: Option<Mailbox>,
    frontend_url: String,
    clock: SharedClock,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Delivery {
    /// Nothing is configured: nothing is sent, and the reset and activation routes are 404.
    pub fn disabled() -> Self {
        Delivery { inner: None }
    }

    /// The sinks `settings` name and the worker draining the queue (spawned on the current
    /// runtime); disabled when none is set.
    pub fn start(settings: &DeliverySettings, clock: SharedClock) -> Result<Self, String> {
        if !settings.enabled() {
            return Ok(Delivery::disabled());
        }
        let webhook = match &settings.webhook {
            Some(WebhookTarget { url, key }) => Some(WebhookSink {
                url: url.clone(),
                key: key.clone(),
                client: reqwest::Client::builder()
                    .timeout(SEND_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("WEBHOOK_URL: {e}"))?,
            }),
            None => None,
        };
        let (smtp, from) = match &settings.smtp {
            Some(target) => {
                let from: Mailbox = target.from.parse().map_err(|e| format!("EMAIL_FROM: {e}"))?;
                (Some(smtp_transport(target)?), Some(from))
            }
            None => (None, None),
        };
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let sinks = Arc::new(Sinks { webhook, smtp, clock: clock.clone() });
        let has_webhook = sinks.webhook.is_some();
        let worker = tokio::spawn(run(jobs, sinks, clock.clone(), pending.clone()));
        Ok(Delivery {
            inner: Some(Arc::new(Outbox {
                queue,
                pending,
                webhook: has_webhook,
                smtp: from,
                frontend_url: settings.frontend_url.clone().unwrap_or_default(),
                clock,
                worker: Mutex::new(Some(worker)),
            })),
        })
    }

    /// Whether mails can leave (WEBHOOK_URL or SMTP_URL set).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// FRONTEND_URL (empty when delivery is off).
    pub fn frontend_url(&self) -> &str {
        self.inner.as_ref().map_or("", |o| o.frontend_url.as_str())
    }

    /// Queues `mail` to every sink: the webhook (SPEC §8's body) and SMTP.
    pub fn mail(&self, mail: &Mail) {
        let Some(outbox) = &self.inner else { return };
        if outbox.webhook {
            outbox.put(webhook_payload(&mail_body(mail)), mail.kind.event_type());
        }
        if let Some(from) = &outbox.smtp {
            match mail_message(mail, from) {
                Ok(message) => outbox.put(Payload::Smtp(Box::new(message)), mail.kind.event_type()),
                Err(e) => warn!(kind = mail.kind.event_type(), error = %e, "mail not sent"),
            }
        }
    }

    /// Queues `event` to the webhook (events are not mailed).
    pub fn event(&self, event: Event) {
        let Some(outbox) = &self.inner else { return };
        if outbox.webhook {
            outbox.put(webhook_payload(&event_body(&event)), event.kind.name());
        }
    }

    /// Stops taking messages and waits up to `within` for those queued to be sent (retries
    /// included); what is left then is logged as dropped, and counted in the answer. For
    /// commands that send and exit (the queue closes once this is the last clone).
    pub async fn finish(self, within: Duration) -> usize {
        let Some(outbox) = self.inner else { return 0 };
        let worker = outbox.worker.lock().ok().and_then(|mut w| w.take());
        let pending = outbox.pending.clone();
        // The worker ends once the queue is closed (every sender dropped) and empty.
        drop(outbox);
        if let Some(mut worker) = worker {
            if tokio::time::timeout(within, &mut worker).await.is_err() {
                worker.abort();
                let left = pending.load(Ordering::SeqCst);
                warn!(dropped = left, "delivery: messages not sent before exit were dropped");
                return left;
            }
        }
        pending.load(Ordering::SeqCst)
    }
}

impl Delivery {
    /// Waits up to `within` (wall time: for shutdown) until nothing is left to send, without
    /// closing the queue; returns how many messages are still waiting then.
    pub async fn settle(&self, within: Duration) -> usize {
        let Some(outbox) = &self.inner else { return 0 };
        let waited = tokio::time::timeout(within, async {
            while outbox.pending.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if waited.is_ok() {
            0
        } else {
            outbox.pending.load(Ordering::SeqCst)
        }
    }
}

impl Outbox {
    /// Puts a message on the queue without waiting; a full queue drops it (logged).
    fn put(&self, payload: Payload, what: &'static str) {
        let job = Job { payload, what, queued: self.clock.now(), attempts: 0 };
        if self.pending.load(Ordering::SeqCst) >= QUEUE_CAPACITY {
            warn!(kind = what, "delivery queue full; message dropped");
            return;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(job).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            warn!(kind = what, "delivery queue full; message dropped");
        }
    }
}

fn webhook_payload(body: &Value) -> Payload {
    Payload::Webhook { id: format!("msg_{}", uuid::Uuid::new_v4().simple()), body: Arc::new(body.to_string()) }
}

/// The SMTP transport SMTP_URL names: implicit TLS (`smtps://`), STARTTLS required, or on a
/// loopback address STARTTLS when offered.
fn smtp_transport(target: &SmtpTarget) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let server = &target.server;
    let params = TlsParameters::new(server.host.clone()).map_err(|e| format!("SMTP_URL: {e}"))?;
    let tls = match server.tls {
        SmtpTls::Implicit => Tls::Wrapper(params),
        SmtpTls::StartTls => Tls::Required(params),
        SmtpTls::Opportunistic => Tls::Opportunistic(params),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(user) = &server.user {
        let password = server.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// The wait before retry number `attempts` (1 = the first retry).
fn backoff(attempts: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX));
    doubled.min(MAX_BACKOFF)
}

/// The worker: takes queued messages, sends up to [`CONCURRENT_SENDS`] at once, puts failed
/// ones back for a later retry (dated by `clock`), and ends when the queue is closed and nothing
/// is left.
async fn run(mut jobs: mpsc::Receiver<Job>, sinks: Arc<Sinks>, clock: SharedClock, pending: Arc<AtomicUsize>) {
    // Retries by due time (then by a sequence number, so equal times keep their order).
    let mut waiting: BTreeMap<(i64, u64), Job> = BTreeMap::new();
    let mut seq: u64 = 0;
    let mut sending: JoinSet<(Job, Result<(), SendError>)> = JoinSet::new();
    let mut open = true;
    loop {
        let now = clock.now();
        while sending.len() < CONCURRENT_SENDS {
            let Some(entry) = waiting.first_entry() else { break };
            if entry.key().0 > now.millis() {
                break;
            }
            let job = entry.remove();
            let sinks = sinks.clone();
            sending.spawn(async move {
                let result = sinks.send(&job.payload).await;
                (job, result)
            });
        }
        if !open && waiting.is_empty() && sending.is_empty() {
            return;
        }
        let next_due = waiting.first_key_value().map(|((due, _), _)| Instant::from_millis(*due));
        let can_start = sending.len() < CONCURRENT_SENDS;
        tokio::select! {
            job = jobs.recv(), if open => match job {
                Some(job) => {
                    seq += 1;
                    waiting.insert((clock.now().millis(), seq), job);
                }
                None => open = false,
            },
            Some(done) = sending.join_next(), if !sending.is_empty() => {
                let Ok((mut job, result)) = done else {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    continue;
                };
                job.attempts += 1;
                match result {
                    Ok(()) => {
                        pending.fetch_sub(1, Ordering::SeqCst);
                        info!(kind = job.what, attempts = job.attempts, "delivered");
                    }
                    Err(e) if e.permanent => {
                        pending.fetch_sub(1, Ordering::SeqCst);
                        warn!(kind = job.what, error = %e.message, "delivery refused for good; message dropped");
                    }
                    Err(e) => {
                        let now = clock.now();
                        let due = now.plus(backoff(job.attempts));
                        if due.millis() - job.queued.millis() > GIVE_UP_AFTER.as_millis() as i64 {
                            pending.fetch_sub(1, Ordering::SeqCst);
                            warn!(kind = job.what, attempts = job.attempts, error = %e.message,
                                "delivery failed for 24 h; message dropped");
                        } else {
                            warn!(kind = job.what, attempts = job.attempts, error = %e.message,
                                retry_in_ms = due.millis() - now.millis(), "delivery failed; will retry");
                            seq += 1;
                            waiting.insert((due.millis(), seq), job);
                        }
                    }
                }
            },
            () = sleep_until(&clock, next_due), if can_start && next_due.is_some() => {},
        }
    }
}

async fn sleep_until(clock: &SharedClock, due: Option<Instant>) {
    match due {
        Some(due) => clock.sleep_until(due).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let key = base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            webhook_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_what_comes_past_its_capacity() {
        use crate::clock::Clock as _;
        // Nothing listens on the webhook's port: every send fails and waits for a retry on a
        // clock that never moves, so every message stays pending.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = DeliverySettings {
            frontend_url: Some("https://app.example".into()),
            webhook: Some(WebhookTarget { url: format!("http://127.0.0.1:{port}/hooks"), key: vec![7; 32] }),
            smtp: None,
        };
        let clock = crate::clock::FakeClock::new();
        clock.hold_sleepers();
        let delivery = Delivery::start(&settings, std::sync::Arc::new(clock.clone())).unwrap();
        let event = || Event { kind: EventKind::SignedIn, user_id: None, session: None, ip: None, at: clock.now() };
        for _ in 0..QUEUE_CAPACITY + 10 {
            delivery.event(event());
        }
        let outbox = delivery.inner.as_ref().unwrap();
        assert_eq!(outbox.pending.load(Ordering::SeqCst), QUEUE_CAPACITY, "the 10 past the capacity are dropped");
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn mail_debug_masks_the_token() {
        let mail = Mail {
            kind: MailKind::PasswordReset,
            user_id: Value::from(1),
            email: "ada@example.org".into(),
            uid: "MQ".into(),
            token: "s3cret-token".into(),
            url: "https://app.example/reset/MQ/s3cret-token".into(),
            valid_for: Duration::from_secs(3600),
        };
        assert!(!format!("{mail:?}").contains("s3cret"));
    }
}
