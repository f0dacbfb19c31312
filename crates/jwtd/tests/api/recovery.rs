//! Accounts a person can recover (SPEC §1, §8): password reset, activation, the signed webhooks
//! that carry their links and the security events, against a real webhook receiver on loopback
//! that checks every signature as Standard Webhooks says (HMAC-SHA256 of `id.timestamp.body`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::sync::Notify;

use crate::helpers::{secs, TestApp};

/// The key of WEBHOOK_SECRET below.
const KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A webhook receiver: records each body whose signature checks out, refuses others (401).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    forged: Arc<Mutex<usize>>,
    arrived: Arc<Notify>,
}

struct Running {
    receiver: Receiver,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(receiver: Receiver, addr: SocketAddr) -> Running {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("the receiver's port");
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/hooks", post(receive)).with_state(receiver.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Running { receiver, addr, server }
    }

    async fn spawn() -> Running {
        Running::start(Receiver::default(), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// Stops listening: sends are refused from now on.
    async fn stop(self) -> (Receiver, SocketAddr) {
        self.server.abort();
        let _ = self.server.await;
        (self.receiver, self.addr)
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let key = base64::engine::general_purpose::STANDARD.decode(KEY_B64).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    if id.is_empty() || signature.split(' ').all(|s| s != expected) {
        *r.forged.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    r.got.lock().unwrap().push(body);
    r.arrived.notify_waiters();
    StatusCode::NO_CONTENT
}

impl Receiver {
    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.got.lock().unwrap().iter().filter(|b| b["type"] == kind).cloned().collect()
    }

    /// Waits (for an arrival, never for a time) until `n` bodies of `kind` arrived; at most 10 s.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let arrived = self.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let got = self.of_type(kind);
                if got.len() >= n {
                    return got;
                }
                arrived.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("{n} webhook(s) of type {kind}; got {:?}", self.got.lock().unwrap()))
    }
}

/// A server sending to `hooks`, with FRONTEND_URL set.
async fn app_with(hooks: &str, env: &[(&str, &str)]) -> TestApp {
    let secret = format!("whsec_{KEY_B64}");
    let mut vars =
        vec![("WEBHOOK_URL", hooks), ("WEBHOOK_SECRET", secret.as_str()), ("FRONTEND_URL", "https://app.example/")];
    vars.extend_from_slice(env);
    TestApp::builder().env(&vars).spawn().await
}

async fn sign_up(app: &TestApp, name: &str) -> (String, String) {
    let reply = app
        .post_sign_up(
            &json!({"username": name, "password": "correct horse battery", "email": format!("{name}@example.org")}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    (reply.field("refresh"), reply.field("access"))
}

fn uid_token(mail: &Value) -> (String, String) {
    (mail["uid"].as_str().unwrap().to_string(), mail["token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn without_a_webhook_or_smtp_the_reset_and_activation_routes_are_not_there() {
    let app = TestApp::builder().env(&[("ROUTES", "djoser")]).spawn().await;
    for path in [
        "/api/auth/password/reset/",
        "/api/auth/password/reset/confirm/",
        "/api/auth/activation/",
        "/api/auth/activation/resend/",
        "/auth/users/reset_password/",
        "/auth/users/activation/",
    ] {
        app.post_json(path, &json!({"email": "ada@example.org"}))
            .await
            .expect_json(404, json!({"detail": "Not found."}));
    }
    let schema = app.get("/api/schema/").await.json();
    assert!(schema["paths"].get("/api/auth/password/reset/").is_none());
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_revokes_every_token() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[("ROTATE_REFRESH_TOKENS", "true")]).await;
    let (refresh, access) = sign_up(&app, "ada").await;

    app.post_json("/api/auth/password/reset/", &json!({"email": "ADA@example.org"})).await.expect_status(204);

    let mail = hooks.receiver.wait_for("mail.password_reset", 1).await.remove(0);
    let (uid, token) = uid_token(&mail);
    assert_eq!(mail["user_id"], json!(1));
    assert_eq!(mail["email"], "ada@example.org");
    assert_eq!(uid, "MQ", "djoser's uid: the id base64url");
    assert_eq!(mail["url"], format!("https://app.example/reset/{uid}/{token}"));
    assert!(token.len() >= 43, "a random token: {token}");
    let requested = hooks.receiver.wait_for("password.reset_requested", 1).await;
    assert_eq!(requested[0]["user_id"], json!(1));
    assert!(requested[0].get("token").is_none());
    let store = app.store().await;
    assert!(!store.has_account_token(&token).await.unwrap(), "the token itself is never stored");
    let digest: String = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert!(store.has_account_token(&digest).await.unwrap(), "only its SHA-256");

    let confirm = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    app.post_json("/api/auth/password/reset/confirm/", &confirm).await.expect_status(204);

    app.refresh(&refresh).await.expect(401, r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#);
    assert_eq!(app.me(&access).await.status, 401);
    app.obtain_pair("ada", "correct horse battery").await.expect_status(401);
    app.obtain_pair("ada", NEW_PASSWORD).await.expect_status(200);
    // Used: the link works once.
    app.post_json("/api/auth/password/reset/confirm/", &confirm)
        .await
        .expect_json(400, json!({"token": ["Invalid token for given user."]}));
    let changed = hooks.receiver.wait_for("password.changed", 1).await;
    assert_eq!(changed[0]["user_id"], json!(1));
    assert_eq!(*hooks.receiver.forged.lock().unwrap(), 0);
}

#[tokio::test]
async fn an_expired_or_outdated_link_and_bad_fields_answer_as_djoser() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[("PASSWORD_RESET_TIMEOUT", "1h")]).await;
    let (_, access) = sign_up(&app, "ada").await;
    app.post_json("/api/auth/password/reset/", &json!({"email": "ada@example.org"})).await.expect_status(204);
    let (uid, token) = uid_token(&hooks.receiver.wait_for("mail.password_reset", 1).await[0]);

    // djoser's order: the password rules, then the uid, then the token.
    app.post_json(
        "/api/auth/password/reset/confirm/",
        &json!({"uid": "Zm9v", "token": token, "new_password": "short"}),
    )
    .await
    .expect_json(400, json!({"new_password": ["Ensure this field has at least 8 characters."]}));
    for bad_uid in ["Zm9v", "OTk5", "!!!", ""] {
        let reply = app
            .post_json(
                "/api/auth/password/reset/confirm/",
                &json!({"uid": bad_uid, "token": token, "new_password": NEW_PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 400, "{bad_uid}: {}", reply.text);
        if !bad_uid.is_empty() {
            reply.expect_json(400, json!({"uid": ["Invalid user id or user doesn't exist."]}));
        }
    }
    app.post_json("/api/auth/password/reset/confirm/", &json!({"uid": uid}))
        .await
        .expect_json(400, json!({"token": ["This field is required."], "new_password": ["This field is required."]}));
    app.post_json("/api/auth/password/reset/", &json!({"email": "not an address"}))
        .await
        .expect_json(400, json!({"email": ["Enter a valid email address."]}));

    // Outdated: a password change since the link was sent.
    let changed = app
        .change_password(
            &access,
            &json!({"old_password": "correct horse battery", "new_password": "changed meanwhile"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let confirm = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    app.post_json("/api/auth/password/reset/confirm/", &confirm)
        .await
        .expect_json(400, json!({"token": ["Invalid token for given user."]}));

    // Expired: PASSWORD_RESET_TIMEOUT later.
    app.post_json("/api/auth/password/reset/", &json!({"email": "ada@example.org"})).await.expect_status(204);
    let (uid, token) = uid_token(&hooks.receiver.wait_for("mail.password_reset", 2).await[1]);
    app.advance(secs(3600));
    app.post_json(
        "/api/auth/password/reset/confirm/",
        &json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD}),
    )
    .await
    .expect_json(400, json!({"token": ["Invalid token for given user."]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_gets_the_same_answer_and_nothing_is_sent() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[("PASSWORD_RESET_RATE", "off")]).await;
    sign_up(&app, "ada").await;
    // Alternating, so that whatever else the machine does weighs on both alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for (email, took) in [("ada@example.org", &mut known), ("nobody@example.org", &mut unknown)] {
            let started = std::time::Instant::now();
            app.post_json("/api/auth/password/reset/", &json!({"email": email})).await.expect_status(204);
            took.push(started.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[known.len() / 2], unknown[unknown.len() / 2]);
    hooks.receiver.wait_for("mail.password_reset", 15).await;
    let mails = hooks.receiver.of_type("mail.password_reset");
    assert!(mails.iter().all(|m| m["email"] == "ada@example.org"), "{mails:?}");
    // The work runs off the request: both answers are the bare request's cost.
    let (fast, slow) = (unknown.min(known), unknown.max(known));
    assert!(slow < fast * 3 + Duration::from_millis(5), "median known {known:?}, unknown {unknown:?}");
}

#[tokio::test]
async fn a_flood_of_reset_requests_is_throttled_per_account() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[("PASSWORD_RESET_RATE", "5/h,100/h")]).await;
    sign_up(&app, "ada").await;
    sign_up(&app, "bob").await;
    for _ in 0..12 {
        app.post_json("/api/auth/password/reset/", &json!({"email": "ada@example.org"})).await.expect_status(204);
    }
    // Bob's request, last, still goes out: the limit is ada's.
    app.post_json("/api/auth/password/reset/", &json!({"email": "bob@example.org"})).await.expect_status(204);
    let mails = hooks.receiver.wait_for("mail.password_reset", 6).await;
    let to_ada = mails.iter().filter(|m| m["email"] == "ada@example.org").count();
    assert_eq!(to_ada, 5, "{mails:?}");
    assert!(mails.iter().any(|m| m["email"] == "bob@example.org"));
    // An hour later ada can ask again.
    app.advance(secs(3601));
    app.post_json("/api/auth/password/reset/", &json!({"email": "ada@example.org"})).await.expect_status(204);
    hooks.receiver.wait_for("mail.password_reset", 7).await;
}

#[tokio::test]
async fn with_email_verification_sign_up_waits_for_the_activation_link() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[("REQUIRE_EMAIL_VERIFICATION", "true"), ("ROUTES", "djoser")]).await;

    app.post_sign_up(&json!({"username": "eve", "password": "correct horse battery"}))
        .await
        .expect_json(400, json!({"email": ["This field is required."]}));
    let reply = app
        .post_sign_up(&json!({"username": "ada", "password": "correct horse battery", "email": "ada@example.org"}))
        .await;
    reply.expect_json(201, json!({"user": {"id": 1, "username": "ada"}}));
    app.obtain_pair("ada", "correct horse battery")
        .await
        .expect_json(401, json!({"detail": "No active account found with the given credentials"}));

    let mail = hooks.receiver.wait_for("mail.activation", 1).await.remove(0);
    let (uid, token) = uid_token(&mail);
    assert_eq!(mail["url"], format!("https://app.example/activate/{uid}/{token}"));
    let created = hooks.receiver.wait_for("user.created", 1).await;
    assert_eq!(created[0]["user_id"], json!(1));

    app.post_json("/auth/users/activation/", &json!({"uid": uid, "token": "wrong"}))
        .await
        .expect_json(400, json!({"token": ["Invalid token for given user."]}));
    app.post_json("/auth/users/activation/", &json!({"uid": uid, "token": token})).await.expect_status(204);
    let pair = app.obtain_pair("ada", "correct horse battery").await;
    assert_eq!(pair.status, 200);
    app.post_json("/api/auth/activation/", &json!({"uid": uid, "token": token}))
        .await
        .expect_json(403, json!({"detail": "Stale token for given user."}));
    let signed_in = hooks.receiver.wait_for("user.signed_in", 1).await.remove(0);
    let session =
        jwtd_proto::session::session_of(None, &crate::helpers::jti(&pair.field("refresh"))).unwrap().to_string();
    assert_eq!(signed_in["session"], json!(session), "the event names the session of the sign-in");
    assert_eq!(signed_in["user_id"], json!(1));
    assert!(signed_in["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{signed_in}");

    // Resend: 204 always; only an account awaiting activation gets a link.
    app.post_sign_up(&json!({"username": "bob", "password": "correct horse battery", "email": "bob@example.org"}))
        .await
        .expect_status(201);
    for email in ["ada@example.org", "nobody@example.org", "bob@example.org"] {
        app.post_json("/auth/users/resend_activation/", &json!({"email": email})).await.expect_status(204);
    }
    let links = hooks.receiver.wait_for("mail.activation", 3).await;
    assert_eq!(links.iter().filter(|m| m["email"] == "bob@example.org").count(), 2, "{links:?}");
    assert_eq!(links.iter().filter(|m| m["email"] == "ada@example.org").count(), 1, "{links:?}");
}

#[tokio::test]
async fn events_wait_for_a_receiver_that_is_down_and_requests_never_do() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[]).await;
    let (receiver, addr) = hooks.stop().await;

    let started = std::time::Instant::now();
    sign_up(&app, "ada").await;
    app.obtain_pair("ada", "correct horse battery").await.expect_status(200);
    app.post_json("/api/auth/password/reset/", &json!({"email": "ada@example.org"})).await.expect_status(204);
    assert!(started.elapsed() < Duration::from_secs(2), "requests waited for the receiver: {:?}", started.elapsed());

    // The first sends fail (nothing listens); the worker waits on its clock for the retry.
    while app.delivery_clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    let back = Running::start(receiver, addr).await;
    // An hour of retries later (backoff doubles up to 10 minutes) everything has arrived.
    for _ in 0..40 {
        app.delivery_clock.advance(secs(120));
        if back.receiver.of_type("mail.password_reset").len() == 1 && back.receiver.of_type("user.signed_in").len() == 1
        {
            break;
        }
        tokio::time::timeout(Duration::from_millis(200), back.receiver.arrived.notified()).await.ok();
    }
    back.receiver.wait_for("user.created", 1).await;
    back.receiver.wait_for("user.signed_in", 1).await;
    back.receiver.wait_for("mail.password_reset", 1).await;
}

#[tokio::test]
async fn ending_sessions_sends_session_revoked_with_the_session_and_the_callers_address() {
    let hooks = Running::spawn().await;
    let app = app_with(&hooks.url(), &[]).await;
    let (first, _) = sign_up(&app, "ada").await;
    let phone = app.obtain_pair("ada", "correct horse battery").await.field("refresh");
    let laptop = app.obtain_pair("ada", "correct horse battery").await.field("access");
    let session = |token: &str| jwtd_proto::session::session_of(None, &crate::helpers::jti(token)).unwrap().to_string();
    let url = app.url(&format!("/api/auth/sessions/{}/", session(&phone)));
    app.send(app.client.delete(url).bearer_auth(&laptop)).await.expect_status(200);
    let one = hooks.receiver.wait_for("session.revoked", 1).await.remove(0);
    assert_eq!(
        (one["user_id"].clone(), one["session"].clone(), one["ip"].clone()),
        (json!(1), json!(session(&phone)), json!("127.0.0.1"))
    );

    app.send(app.client.post(app.url("/api/auth/logout-others/")).bearer_auth(&laptop)).await.expect_status(200);
    let both = hooks.receiver.wait_for("session.revoked", 2).await;
    assert_eq!(both[1]["session"], json!(session(&first)), "the sign-up's session; the caller's stays");
    for body in &both {
        assert!(!body.to_string().contains(&phone) && !body.to_string().contains(&laptop), "{body}");
    }
}

#[tokio::test]
async fn security_events_name_the_user_and_never_carry_a_token() {
    let hooks = Running::spawn().await;
    let app = app_with(
        &hooks.url(),
        &[("ROTATE_REFRESH_TOKENS", "true"), ("ROTATION_GRACE_PERIOD", "0"), ("LOGIN_RATE", "2/min")],
    )
    .await;
    let (refresh, _) = sign_up(&app, "ada").await;
    let rotated = app.refresh(&refresh).await;
    assert_eq!(rotated.status, 200);
    app.advance(secs(1));
    app.refresh(&refresh).await.expect_status(401);
    let reuse = hooks.receiver.wait_for("session.reuse_detected", 1).await.remove(0);
    let session = jwtd_proto::session::session_of(None, &crate::helpers::jti(&refresh)).unwrap().to_string();
    assert_eq!((reuse["user_id"].clone(), reuse["session"].clone()), (json!(1), json!(session)));

    for _ in 0..3 {
        app.obtain_pair("ada", "wrong password").await;
    }
    hooks.receiver.wait_for("signin.throttled", 1).await;
    let pair = app.obtain_pair("ada", "correct horse battery").await;
    assert_eq!(pair.status, 429, "throttled still: {}", pair.text);
    app.advance(secs(61));
    let access_now = app.obtain_pair("ada", "correct horse battery").await.field("access");
    app.logout_all(&access_now).await.expect_status(200);
    hooks.receiver.wait_for("user.logout_all", 1).await;

    let everything = hooks.receiver.got.lock().unwrap().clone();
    for body in &everything {
        assert!(body.get("type").is_some() && body.get("user_id").is_some(), "{body}");
        let text = body.to_string();
        assert!(!text.contains(&refresh) && !text.contains("correct horse"), "{text}");
    }
}
