//! The one test harness. `spawn_app()` starts the real server in-process on 127.0.0.1:0 with a
//! SQLite file in a temporary folder and a `FakeClock`; `TestApp::builder()` changes what it
//! starts with (settings, environment, transport limits, signing keys, TLS); `TestApp`'s methods
//! speak the API and `Reply` holds a whole answer. Tests advance `app.clock` instead of sleeping.
//!
//! Every use of jwtd's internals beyond `Settings` lives here: building and running the
//! `Application`, opening the store, generating keys, the remote verifier, the binary.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwtd::clock::{Clock, FakeClock, Instant, SystemClock};
use jwtd::config::{self, DatabaseUrl, KeyPem, Secret, Sources};
use jwtd::http::Limits;
use jwtd::service::{RemoteKeys, RemoteOptions, Verifier};
use jwtd::testing::{Database, GeneratedKey};
use jwtd::tokens::{Algorithm, Policy};
use jwtd::{Application, AuthUser, Deps, Hasher, Settings};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The HMAC secret every test server signs with, so tests can forge tokens.
pub const SIGNING_KEY: &str = "jwtd-test-signing-key-0123456789abcdef";
/// The password `sign_up` gives every user.
pub const PASSWORD: &str = "correct horse battery";

// SPEC §2 bodies, byte for byte.
pub const TOKEN_INVALID: &str = r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;
pub const TOKEN_BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
pub const NO_ACTIVE_ACCOUNT: &str = r#"{"detail":"No active account found with the given credentials"}"#;
pub const NOT_PROVIDED: &str = r#"{"detail":"Authentication credentials were not provided."}"#;
pub const BEARER_INVALID: &str = "Given token not valid for any token type";

/// The 401 body of a protected route refusing a Bearer token for `message`.
pub fn bearer_refused(message: &str) -> String {
    json!({
        "detail": BEARER_INVALID,
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    })
    .to_string()
}

/// A running server and what a test needs to talk to it. Dropping it stops the server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: FakeClock,
    /// The clock the delivery worker waits on between retries: its own, holding sleepers, so a
    /// retry moves no time of the server's; a test moves it to bring a retry on.
    pub delivery_clock: FakeClock,
    /// Follows no redirects; trusts the test certificate when the server speaks TLS.
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    /// METRICS_ADDR's listener, when the settings ask for one.
    pub metrics_addr: Option<SocketAddr>,
    /// Reloads TLS_CERT and TLS_KEY as SIGHUP does, when serving HTTPS.
    pub tls_reloader: Option<jwtd::CertReloader>,
    /// The server's periodic steps (revocation poll, session activity), to run one now.
    pub background: jwtd::Background,
    scheme: &'static str,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    dir: Arc<TempDir>,
    _certificate: Option<Certificate>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server with the test defaults (see [`TestApp::builder`]).
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// A server with the test defaults changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::builder().settings(configure).spawn().await
}

type Configure<'a> = Box<dyn FnOnce(&mut Settings) + 'a>;

/// What a test server starts with. The defaults: a fresh SQLite file, HS256 with the known
/// [`SIGNING_KEY`], no LOGIN_RATE nor SIGNUP_RATE, fast password hashing, a `FakeClock` at a whole second
/// and plain HTTP. The environment (`.env`) is read first, then `.settings` changes the result.
#[must_use]
pub struct AppBuilder<'a> {
    env: HashMap<String, String>,
    configure: Vec<Configure<'a>>,
    limits: Option<Limits>,
    tls: bool,
    dir: Option<Arc<TempDir>>,
    clock: Option<FakeClock>,
}

impl TestApp {
    pub fn builder<'a>() -> AppBuilder<'a> {
        AppBuilder { env: HashMap::new(), configure: Vec::new(), limits: None, tls: false, dir: None, clock: None }
    }
}

impl<'a> AppBuilder<'a> {
    /// Changes the settings, after the environment is read.
    pub fn settings(mut self, configure: impl FnOnce(&mut Settings) + 'a) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// Settings as the environment gives them, named without the `JWTD_` prefix.
    pub fn env(mut self, vars: &[(&str, &str)]) -> Self {
        self.env.extend(vars.iter().map(|(k, v)| (format!("JWTD_{k}"), v.to_string())));
        self
    }

    /// Transport limits, all of them (rather than those the settings give).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Signs with `algorithm` and the private key `private_pem`.
    pub fn key(self, algorithm: Algorithm, private_pem: &str) -> Self {
        let pem = private_pem.to_string();
        self.settings(move |s| {
            s.algorithm = algorithm;
            s.signing_key = Some(Secret::new(pem));
        })
    }

    /// VERIFYING_KEY: the public key `public_pem`.
    pub fn verifying_key(self, public_pem: &str) -> Self {
        let pem = KeyPem::text(public_pem);
        self.settings(move |s| s.verifying_key = Some(pem))
    }

    /// PREVIOUS_VERIFYING_KEYS: these public keys, in order.
    pub fn previous_keys(self, public_pems: &[&str]) -> Self {
        let pems: Vec<KeyPem> = public_pems.iter().map(|pem| KeyPem::text(pem)).collect();
        self.settings(move |s| s.previous_verifying_keys = pems)
    }

    /// HTTPS with a self-signed certificate for `localhost` and `127.0.0.1`, which
    /// `TestApp::client` trusts.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The settings (the test defaults, then `.env`, then `.settings`) and what else a start needs.
    fn prepare(self) -> Result<Prepared, String> {
        let dir = self.dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temporary folder")));
        // A whole second, so a token's `exp` can equal `now` exactly.
        let clock = self.clock.unwrap_or_else(|| FakeClock::at(Instant::from_secs(SystemClock.now().secs())));
        let certificate = self.tls.then(certificate);
        let mut env: HashMap<String, String> = HashMap::from([
            ("JWTD_ADDR".into(), "127.0.0.1:0".into()),
            ("JWTD_DATABASE_URL".into(), format!("sqlite://{}", dir.path().join("jwtd.db").display())),
            ("JWTD_SIGNING_KEY".into(), SIGNING_KEY.into()),
            ("JWTD_LOGIN_RATE".into(), "off".into()),
            ("JWTD_SIGNUP_RATE".into(), "off".into()),
        ]);
        if let Some(c) = &certificate {
            env.insert("JWTD_TLS_CERT".into(), c.cert_path());
            env.insert("JWTD_TLS_KEY".into(), c.key_path());
        }
        env.extend(self.env);
        let mut settings = config::load(&Sources { env, ..Default::default() }).map_err(|e| e.to_string())?;
        for configure in self.configure {
            configure(&mut settings);
        }
        Ok(Prepared { settings, limits: self.limits, dir, clock, certificate })
    }

    /// Starts the server.
    pub async fn spawn(self) -> TestApp {
        init_logging();
        let Prepared { settings, limits, dir, clock, certificate } =
            self.prepare().unwrap_or_else(|e| panic!("settings: {e}"));
        let delivery_clock = delivery_clock(&clock);
        let app = build(settings, limits, &clock, &delivery_clock)
            .await
            .unwrap_or_else(|e| panic!("the application builds: {e}"));
        let addr = app.local_addr();
        let scheme = if app.is_https() { "https" } else { "http" };
        let (metrics_addr, tls_reloader, background) = (app.metrics_addr(), app.tls_reloader(), app.background());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(c) = &certificate {
            client = c.trusting(client);
        }
        TestApp {
            addr,
            clock,
            delivery_clock,
            client: client.build().expect("client"),
            db_path: dir.path().join("jwtd.db"),
            metrics_addr,
            tls_reloader,
            background,
            scheme,
            shutdown: Some(tx),
            server: Some(server),
            dir,
            _certificate: certificate,
        }
    }

    /// Why the server refuses to start: the settings' error or the start's. Panics if it starts.
    pub async fn start_error(self) -> String {
        // `_dir` keeps the temporary folder until the start is over.
        let Prepared { settings, limits, clock, dir: _dir, .. } = match self.prepare() {
            Ok(prepared) => prepared,
            Err(e) => return e,
        };
        match build(settings, limits, &clock, &delivery_clock(&clock)).await {
            Ok(app) => panic!("the server started on {}", app.local_addr()),
            Err(e) => e.to_string(),
        }
    }
}

struct Prepared {
    settings: Settings,
    limits: Option<Limits>,
    dir: Arc<TempDir>,
    clock: FakeClock,
    certificate: Option<Certificate>,
}

/// A clock for the delivery worker, at `clock`'s time, whose sleepers wait for the test.
fn delivery_clock(clock: &FakeClock) -> FakeClock {
    let delivery = FakeClock::at(clock.now());
    delivery.hold_sleepers();
    delivery
}

/// The server as `jwtd serve` builds it, but on `clock` and with fast password hashing.
async fn build(
    settings: Settings,
    limits: Option<Limits>,
    clock: &FakeClock,
    delivery_clock: &FakeClock,
) -> Result<Application, jwtd::StartError> {
    let deps = Deps {
        clock: Arc::new(clock.clone()),
        hasher: Hasher::with_params(256, 1, 1),
        delivery_clock: Some(Arc::new(delivery_clock.clone())),
    };
    let app = Application::build(settings, deps).await?;
    Ok(match limits {
        Some(limits) => app.with_limits(limits),
        None => app,
    })
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
        format!("{}{path}", self.origin())
    }

    /// `scheme://127.0.0.1:port`, what a browser on the API's own pages sends as `Origin`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Signals shutdown; the server then drains and ends (see [`TestApp::stopped`]).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the server to end after [`TestApp::stop`]; asserts it ended without error.
    pub async fn stopped(&mut self) {
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends").expect("the server ends without error");
        }
    }

    /// Stops the server and waits for it to end.
    pub async fn shut_down(&mut self) {
        self.stop();
        self.stopped().await;
    }

    /// Shuts this server down and starts another on the same database and clock, with the
    /// test defaults changed by `configure` (nothing else carries over).
    pub async fn restart<'a>(mut self, configure: impl FnOnce(AppBuilder<'a>) -> AppBuilder<'a>) -> TestApp {
        self.shut_down().await;
        let builder = AppBuilder { dir: Some(self.dir.clone()), clock: Some(self.clock.clone()), ..TestApp::builder() };
        configure(builder).spawn().await
    }

    /// Another server on this one's database and clock (a second instance), with the test
    /// defaults changed by `configure`.
    pub async fn beside<'a>(&self, configure: impl FnOnce(AppBuilder<'a>) -> AppBuilder<'a>) -> TestApp {
        let builder = AppBuilder { dir: Some(self.dir.clone()), clock: Some(self.clock.clone()), ..TestApp::builder() };
        configure(builder).spawn().await
    }

    /// TLS_CERT and TLS_KEY of a server started with `tls()`.
    pub fn tls_files(&self) -> (String, String) {
        let c = self._certificate.as_ref().expect("a server started with tls()");
        (c.cert_path(), c.key_path())
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
    pub async fn store(&self) -> Database {
        let settings = Settings { database_url: DatabaseUrl::Sqlite(self.db_path.clone()), ..Settings::default() };
        Database::open(&settings).await.expect("the database opens")
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

    /// Signs up `username` with [`PASSWORD`]; asserts the 201. The refresh token is the body's,
    /// or the refresh cookie's in cookie mode.
    pub async fn sign_up(&self, username: &str) -> TestUser {
        let reply = self.post_sign_up(&json!({"username": username, "password": PASSWORD})).await;
        reply.expect_status(201);
        let body = reply.json();
        let refresh = match body.get("refresh") {
            Some(Value::String(token)) => token.clone(),
            _ => cookie_token(&refresh_cookie(&reply.headers).expect("a refresh token in the body or a cookie")),
        };
        TestUser {
            id: body["user"]["id"].as_i64().expect("an integer id"),
            username: username.to_string(),
            password: PASSWORD.to_string(),
            refresh,
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

    /// GET /.well-known/jwks.json; asserts the 200.
    pub async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.expect_status(200).json()
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

/// SimpleJWT-shaped access claims for `user_id`, valid for 5 minutes from `now`.
pub fn access_claims(user_id: i64, now: i64) -> Value {
    json!({"token_type": "access", "exp": now + 300, "iat": now, "jti": "0123456789abcdef0123456789abcdef", "user_id": user_id})
}

/// A token with this header and payload, signed by `sign` over the signing input.
pub fn token_with(header: Value, payload: &Value, sign: impl Fn(&[u8]) -> String) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{signature}")
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

/// The `Set-Cookie` value that sets the refresh cookie, if `headers` have one (its name is
/// `__Host-` prefixed on `/`, `__Secure-` elsewhere).
pub fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    let names = ["__Host-jwtd_refresh", "__Secure-jwtd_refresh"];
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("an ASCII Set-Cookie").to_string())
        .find(|v| names.iter().any(|name| v.starts_with(&format!("{name}="))))
}

/// The token inside a `Set-Cookie` value.
pub fn cookie_token(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("a name=value pair");
    pair.split_once('=').expect("a name=value pair").1.to_string()
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, in PEM files of a temporary folder.
pub struct Certificate {
    dir: TempDir,
    pem: String,
}

pub fn certificate() -> Certificate {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("a certificate");
    let dir = tempfile::tempdir().expect("temporary folder");
    let pem = made.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &pem).expect("cert.pem written");
    std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).expect("key.pem written");
    Certificate { dir, pem }
}

impl Certificate {
    pub fn cert_path(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }

    pub fn key_path(&self) -> String {
        self.dir.path().join("key.pem").display().to_string()
    }

    /// A client trusting this certificate and no other.
    pub fn client(&self) -> reqwest::Client {
        self.trusting(reqwest::Client::builder()).build().expect("client")
    }

    /// `client` trusting this certificate and no other.
    fn trusting(&self, client: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let root = reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("a PEM certificate");
        client.use_rustls_tls().tls_built_in_root_certs(false).add_root_certificate(root)
    }
}

/// A new key pair for `algorithm` (not HMAC).
pub fn generate_key(algorithm: Algorithm) -> GeneratedKey {
    jwtd::testing::generate_key(algorithm).expect("a key")
}

/// The `kid` jwtd gives the public half of `key`.
pub fn kid(algorithm: Algorithm, key: &GeneratedKey) -> String {
    jwtd::testing::kid(algorithm, &key.private_pem).expect("a private key")
}

/// Another axum service, with one route `GET /hello` behind `AuthUser`, that verifies jwtd's
/// access tokens with the JWKS URL only. Dropping it stops it.
pub struct ResourceServer {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl ResourceServer {
    /// Trusts the keys at `jwks_url` for `algorithm`; `clock` says when a token expires and
    /// when the keys may be fetched again.
    pub async fn spawn(jwks_url: String, clock: &FakeClock, algorithm: Algorithm) -> ResourceServer {
        async fn hello(user: AuthUser) -> String {
            format!("hello, user {}", user.user_id)
        }
        let options = RemoteOptions { algorithm: Some(algorithm), ..RemoteOptions::default() };
        let verifier = Verifier::remote(
            RemoteKeys::new(jwks_url, options).expect("remote keys"),
            Policy::default(),
            Arc::new(clock.clone()),
            vec!["Bearer".into()],
            "user_id".into(),
        );
        // The same handler behind a `VerifyLayer`, whose remote keys make its verdict a wait.
        let layered =
            Router::new().route("/layered", get(hello)).layer(jwtd_verify::VerifyLayer::new(verifier.clone()));
        let app = Router::new().route("/hello", get(hello)).merge(layered).with_state(verifier);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        ResourceServer { base, client: reqwest::Client::new(), stop: Some(stop) }
    }

    /// GET /hello with `token` as Bearer token.
    pub async fn hello(&self, token: &str) -> Reply {
        let request = self.client.get(format!("{}/hello", self.base)).bearer_auth(token);
        Reply::read(request.send().await.expect("the service answers")).await
    }

    /// GET /layered (the handler behind a `VerifyLayer`) with `token` as Bearer token, or none.
    pub async fn layered(&self, token: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}/layered", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the service answers")).await
    }

    /// GET /hello with no credentials.
    pub async fn hello_anonymously(&self) -> Reply {
        let request = self.client.get(format!("{}/hello", self.base));
        Reply::read(request.send().await.expect("the service answers")).await
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// jwtd embedded as a library (SPEC §7): the state `jwtd::build_state` gives, on a SQLite file in
/// `dir`, with the test [`SIGNING_KEY`], fast hashing and `clock`; `configure` changes the
/// settings first. Also returns the settings, to open the same database as another instance would.
pub async fn embedded_state(
    dir: &std::path::Path,
    clock: &FakeClock,
    configure: impl FnOnce(&mut Settings),
) -> (jwtd::AppState, Settings) {
    let mut settings = Settings {
        database_url: DatabaseUrl::Sqlite(dir.join("jwtd.db")),
        signing_key: Some(Secret::new(SIGNING_KEY)),
        login_rate: None,
        signup_rate: None,
        ..Settings::default()
    };
    configure(&mut settings);
    let deps = Deps { clock: Arc::new(clock.clone()), hasher: Hasher::with_params(256, 1, 1), delivery_clock: None };
    let state = jwtd::build_state(settings.clone(), deps).await.expect("the state builds");
    (state, settings)
}

/// A service of its own built on `jwtd-verify` alone (not on `jwtd`): `/api/me/` and `/api/staff/`
/// (claim guard `"is_staff": true`) behind a [`VerifyLayer`](jwtd_verify::VerifyLayer),
/// `/api/hello/` open to anonymous callers, keys from the test [`SIGNING_KEY`], time from the
/// server's clock, revocations from the server's feed when given a service token. The feed is
/// polled only when a test calls [`LeanService::poll`], so a test drives it. Dropping it stops it.
pub struct LeanService {
    base: String,
    client: reqwest::Client,
    pub feed: Option<jwtd_verify::RevocationFeed>,
    stop: Option<oneshot::Sender<()>>,
}

impl LeanService {
    pub async fn spawn(app: &TestApp, service_token: Option<&str>) -> LeanService {
        use jwtd_verify::{AuthClaims, AuthUser as LeanUser, RequireClaims, RevocationFeed, VerifyLayer};

        #[derive(serde::Deserialize)]
        struct Staff {
            is_staff: bool,
        }
        async fn me(user: LeanUser) -> String {
            format!("hello, user {}", user.user_id)
        }
        async fn staff(AuthClaims(staff): AuthClaims<Staff>) -> String {
            format!("staff: {}", staff.is_staff)
        }
        async fn hello(user: Option<LeanUser>) -> String {
            user.map_or("hello, stranger".into(), |u| format!("hello, user {}", u.user_id))
        }
        let verifier = jwtd_verify::Verifier::hmac(SIGNING_KEY.as_bytes())
            .expect("an HMAC verifier")
            .with_clock(Arc::new(app.clock.clone()));
        let feed = service_token.map(|token| {
            RevocationFeed::new(app.url("/api/token/revocations/"), token, verifier.clone()).expect("a feed")
        });
        let signed_in = Router::new()
            .route("/api/me/", get(me))
            .merge(Router::new().route("/api/staff/", get(staff)).layer(RequireClaims::equals("is_staff", true)))
            .layer(VerifyLayer::new(verifier.clone()));
        let open = Router::new().route("/api/hello/", get(hello)).layer(VerifyLayer::optional(verifier.clone()));
        let service = signed_in.merge(open).with_state(verifier);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        LeanService { base, client: reqwest::Client::new(), feed, stop: Some(stop) }
    }

    /// One read of the revocation feed; returns how many rows it applied.
    pub async fn poll(&self) -> usize {
        self.feed.as_ref().expect("a service token was given").poll().await.expect("the feed answers")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::read(request.send().await.expect("the service answers")).await
    }
}

impl Drop for LeanService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a run of the `jwtd` binary printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect_success(&self, stdout: &str) {
        assert_eq!((self.code, self.stdout.as_str()), (Some(0), stdout), "stderr: {}", self.stderr);
    }
}

/// Runs `jwtd args…` with exactly `env` as its environment, `stdin` on its standard input.
pub async fn jwtd(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtd"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the jwtd binary starts");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("stdin written");
    }
    drop(input);
    // A bound, not a sleep: a command that never ends (say, a server that did start) fails.
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("jwtd ends within a minute")
        .expect("jwtd's output");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `jwtd args…` on the test server's database.
pub async fn jwtd_on(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Run {
    jwtd(args, &[("JWTD_DATABASE_URL", &app.database_url())], stdin).await
}

/// An answer read off a raw connection.
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Writes `first`, then reads one HTTP/1.1 answer (head and `Content-Length` bytes of body).
pub async fn raw_exchange(stream: &mut TcpStream, first: &[u8]) -> Raw {
    stream.write_all(first).await.expect("the request is written");
    read_answer(stream).await
}

/// Reads one HTTP/1.1 answer (head and `Content-Length` bytes of body) within 20 s.
pub async fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if buf.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return Raw { status, head, body };
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before a full answer: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("an answer within 20 s")
}
