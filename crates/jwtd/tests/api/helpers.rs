//! The test harness: `spawn_app()` starts the real server in-process on 127.0.0.1:0 with a
//! SQLite file in a temporary folder and a `FakeClock`; `TestApp`'s methods speak the API.
//! Tests advance `app.clock` instead of sleeping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwtd::clock::{Clock, FakeClock, Instant, SystemClock};
use jwtd::config::{DatabaseUrl, Secret};
use jwtd::store::Store;
use jwtd::Settings;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The HMAC secret every test server signs with, so tests can forge tokens.
pub const SIGNING_KEY: &str = "jwtd-test-signing-key-0123456789abcdef";
/// The password `sign_up` gives every user.
pub const PASSWORD: &str = "correct horse battery";

// SPEC §2 bodies, byte for byte.
pub const TOKEN_INVALID: &str = r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;
pub const TOKEN_BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
pub const NO_ACTIVE_ACCOUNT: &str = r#"{"detail":"No active account found with the given credentials"}"#;
pub const NOT_PROVIDED: &str = r#"{"detail":"Authentication credentials were not provided."}"#;

/// The 401 body of a protected route refusing a Bearer token for `message`.
pub fn bearer_refused(message: &str) -> String {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
    .to_string()
}

/// A running server and what a test needs to talk to it. Dropping it stops the server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: FakeClock,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A server with the test defaults (see [`spawn_app_with`]).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server with the test defaults changed by `configure`: a fresh SQLite file, the known
/// [`SIGNING_KEY`], no LOGIN_RATE, fast password hashing, and a `FakeClock` at a whole second.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logging();
    let dir = tempfile::tempdir().expect("temporary folder");
    let db_path = dir.path().join("jwtd.db");
    let mut settings = Settings {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: DatabaseUrl::Sqlite(db_path.clone()),
        signing_key: Some(Secret::new(SIGNING_KEY)),
        login_rate: None,
        ..Settings::default()
    };
    configure(&mut settings);
    // A whole second, so a token's `exp` can equal `now` exactly.
    let clock = FakeClock::at(Instant::from_secs(SystemClock.now().secs()));
    let deps = jwtd::Deps { clock: Arc::new(clock.clone()), hasher: jwtd::password::Hasher::with_params(256, 1, 1) };
    let app = jwtd::Application::build(settings, deps).await.expect("the application builds");
    let addr = app.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        clock,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        db_path,
        shutdown: Some(tx),
        _dir: dir,
    }
}

/// Logs go to the test writer, shown only for failing tests; `RUST_LOG` filters them.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A user made by [`TestApp::sign_up`], with the pair sign-up answered.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub refresh: String,
    pub access: String,
}

/// A token pair from a sign-in.
#[derive(Debug, Clone)]
pub struct Pair {
    pub refresh: String,
    pub access: String,
}

/// A whole answer: status, headers, body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Reply { status, headers, text }
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    /// The string field `name` of the JSON body.
    #[track_caller]
    pub fn field(&self, name: &str) -> String {
        match self.json().get(name) {
            Some(Value::String(s)) => s.clone(),
            _ => panic!("no string {name:?} in {} {}", self.status, self.text),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and the body, byte for byte.
    #[track_caller]
    pub fn expect(&self, status: u16, body: &str) {
        assert_eq!((self.status, self.text.as_str()), (status, body));
    }

    /// Asserts the status and the body as JSON (key order aside).
    #[track_caller]
    pub fn expect_json(&self, status: u16, body: Value) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.json(), body);
    }

    /// Asserts the status only, showing the body when it differs.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    /// Asserts a refused Bearer token: 401, the SPEC §2 body with `message`, and WWW-Authenticate.
    #[track_caller]
    pub fn expect_bearer_refused(&self, message: &str) {
        self.expect(401, &bearer_refused(message));
        assert_eq!(self.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.db_path.display())
    }

    /// The fake clock's time in whole seconds (what `iat` and `exp` carry).
    pub fn now_secs(&self) -> i64 {
        self.clock.now().secs()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// A second connection to the server's database, to change what no endpoint changes.
    pub async fn store(&self) -> Arc<dyn Store> {
        let settings = Settings { database_url: DatabaseUrl::Sqlite(self.db_path.clone()), ..Settings::default() };
        jwtd::app::open_store(&settings).await.expect("the database opens")
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::read(request.send().await.expect("the server answers")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn get_with_token(&self, path: &str, access: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(access)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// POSTs `body` as is, with `content_type` when given.
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        self.send(request).await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.url(path)).form(pairs)).await
    }

    pub async fn post_sign_up(&self, body: &Value) -> Reply {
        self.post_json("/api/auth/signup/", body).await
    }

    /// Signs up `username` with [`PASSWORD`]; asserts the 201.
    pub async fn sign_up(&self, username: &str) -> TestUser {
        let reply = self.post_sign_up(&json!({"username": username, "password": PASSWORD})).await;
        reply.expect_status(201);
        let body = reply.json();
        TestUser {
            id: body["user"]["id"].as_i64().expect("an integer id"),
            username: username.to_string(),
            password: PASSWORD.to_string(),
            refresh: reply.field("refresh"),
            access: reply.field("access"),
        }
    }

    /// POST /api/token/.
    pub async fn obtain_pair(&self, username: &str, password: &str) -> Reply {
        self.post_json("/api/token/", &json!({"username": username, "password": password})).await
    }

    /// A new pair for `user` (a new token family); asserts the 200.
    pub async fn sign_in(&self, user: &TestUser) -> Pair {
        let reply = self.obtain_pair(&user.username, &user.password).await;
        reply.expect_status(200);
        Pair { refresh: reply.field("refresh"), access: reply.field("access") }
    }

    pub async fn refresh(&self, refresh: &str) -> Reply {
        self.post_json("/api/token/refresh/", &json!({"refresh": refresh})).await
    }

    pub async fn verify(&self, token: &str) -> Reply {
        self.post_json("/api/token/verify/", &json!({"token": token})).await
    }

    pub async fn blacklist(&self, refresh: &str) -> Reply {
        self.post_json("/api/token/blacklist/", &json!({"refresh": refresh})).await
    }

    pub async fn obtain_sliding(&self, username: &str, password: &str) -> Reply {
        self.post_json("/api/token/sliding/", &json!({"username": username, "password": password})).await
    }

    pub async fn refresh_sliding(&self, token: &str) -> Reply {
        self.post_json("/api/token/sliding/refresh/", &json!({"token": token})).await
    }

    pub async fn me(&self, access: &str) -> Reply {
        self.get_with_token("/api/me/", access).await
    }

    pub async fn change_password(&self, access: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url("/api/auth/password/")).bearer_auth(access).json(body)).await
    }

    pub async fn logout_all(&self, access: &str) -> Reply {
        self.send(self.client.post(self.url("/api/auth/logout-all/")).bearer_auth(access)).await
    }

    /// Claims of a token of `token_type` for `user_id` issued now, as jwtd writes them.
    pub fn claims_for(&self, token_type: &str, user_id: i64, lifetime: Duration) -> Value {
        let now = self.now_secs();
        json!({
            "token_type": token_type,
            "exp": now + lifetime.as_secs() as i64,
            "iat": now,
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "user_id": user_id,
        })
    }
}

/// Signs `claims` with the test server's key (HS256), as SimpleJWT sharing that key would.
pub fn forge(claims: &Value) -> String {
    forge_with(claims, SIGNING_KEY)
}

/// Signs `claims` with another HS256 key.
pub fn forge_with(claims: &Value, key: &str) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(key.as_bytes())).expect("signs")
}

/// The unverified payload of a token.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("a JSON payload")
}

/// The unverified header of a token.
pub fn header(token: &str) -> Value {
    let header = token.split('.').next().expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("a JSON header")
}

pub fn jti(token: &str) -> String {
    claims(token)["jti"].as_str().expect("a string jti").to_string()
}

/// `token` with its payload replaced by `payload` and its signature kept.
pub fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{body}.{}", parts[0], parts[2])
}

/// An unsigned token (`alg: none`) with `payload`.
pub fn unsigned(payload: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload.to_string()))
}

/// `token` with one character of its signature changed.
pub fn flip_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.len() - 2; // the last character may carry padding bits only
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

pub const DAY: Duration = Duration::from_secs(86400);

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
