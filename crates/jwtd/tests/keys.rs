//! Asymmetric keys end to end (SPEC §3, §5, §7): the real server on 127.0.0.1:0 with a temporary
//! SQLite file and a fake clock, signing with RS256/ES256/EdDSA keys; JWKS; refused forgeries
//! (key confusion, alg=none, unknown kid); key rotation; start-up refusals naming the setting;
//! `jwtd keys generate`; and a separate axum service authenticating jwtd's tokens through the
//! JWKS URL alone.

// A test binary: panicking on an unexpected error is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwtd::clock::{Clock, FakeClock};
use jwtd::config::{DatabaseUrl, KeyPem, Secret};
use jwtd::password::Hasher;
use jwtd::service::{RemoteKeys, RemoteOptions, Verifier};
use jwtd::tokens::keys::{generate, GeneratedKey};
use jwtd::tokens::{Algorithm, Policy};
use jwtd::{Application, AuthUser, Deps, Settings};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

const BEARER_INVALID: &str = "Given token not valid for any token type";
const TOKEN_INVALID: &str = r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;

fn key(alg: Algorithm) -> GeneratedKey {
    generate(alg, &mut rand::rngs::OsRng).unwrap()
}

fn settings(dir: &Path, alg: Algorithm, key: &GeneratedKey) -> Settings {
    Settings {
        addr: "127.0.0.1:0".parse().unwrap(),
        database_url: DatabaseUrl::Sqlite(dir.join("jwtd.db")),
        algorithm: alg,
        signing_key: Some(Secret::new(key.private_pem.clone())),
        login_rate: None,
        ..Settings::default()
    }
}

struct TestApp {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn spawn(settings: Settings, clock: &FakeClock) -> TestApp {
    let deps = Deps { clock: Arc::new(clock.clone()), hasher: Hasher::with_params(8, 1, 1) };
    let app = Application::build(settings, deps).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp { base, client: reqwest::Client::new(), stop: Some(stop), task }
}

impl TestApp {
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    async fn me(&self, access: &str) -> reqwest::Response {
        self.client.get(format!("{}/api/me/", self.base)).bearer_auth(access).send().await.unwrap()
    }

    /// Signs up `name`; returns (user id, access, refresh).
    async fn sign_up(&self, name: &str) -> (i64, String, String) {
        let r = self.post("/api/auth/signup/", json!({"username": name, "password": "correct horse battery"})).await;
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        let text = |k: &str| body[k].as_str().unwrap().to_string();
        (body["user"]["id"].as_i64().unwrap(), text("access"), text("refresh"))
    }

    async fn jwks(&self) -> Value {
        self.get("/.well-known/jwks.json").await.json().await.unwrap()
    }
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// SimpleJWT-shaped access claims for `user_id`, valid for 5 minutes from `clock`.
fn access_claims(user_id: i64, clock: &FakeClock) -> Value {
    let now = clock.now().secs();
    json!({"token_type": "access", "exp": now + 300, "iat": now, "jti": "0123456789abcdef0123456789abcdef", "user_id": user_id})
}

/// A token with this header and payload, signed by `sign` over the signing input.
fn token_with(header: Value, payload: &Value, sign: impl Fn(&[u8]) -> String) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{signature}")
}

async fn assert_refused_everywhere(app: &TestApp, token: &str) {
    let me = app.me(token).await;
    assert_eq!(me.status(), 401);
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["detail"], BEARER_INVALID);
    assert_eq!(body["code"], "token_not_valid");
    let verify = app.post("/api/token/verify/", json!({"token": token})).await;
    assert_eq!(verify.status(), 401);
    assert_eq!(verify.text().await.unwrap(), TOKEN_INVALID);
}

#[tokio::test]
async fn tokens_carry_the_kid_that_jwks_publishes() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let dir = TempDir::new().unwrap();
        let clock = FakeClock::new();
        let app = spawn(settings(dir.path(), alg, &key(alg)), &clock).await;
        let (_, access, refresh) = app.sign_up("ada").await;
        let r = app.get("/.well-known/jwks.json").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        let jwks: Value = r.json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{alg}");
        assert_eq!(keys[0]["alg"], alg.to_string());
        assert_eq!(keys[0]["use"], "sig");
        assert!(keys[0].get("d").is_none(), "{alg}: private key in JWKS");
        for token in [&access, &refresh] {
            assert_eq!(header(token), json!({"typ": "JWT", "alg": alg.to_string(), "kid": keys[0]["kid"]}));
        }
        assert_eq!(app.me(&access).await.status(), 200, "{alg}");
        let refreshed = app.post("/api/token/refresh/", json!({"refresh": refresh})).await;
        assert_eq!(refreshed.status(), 200, "{alg}");
        app.shut_down().await;
    }
}

#[tokio::test]
async fn hmac_publishes_no_key_and_writes_no_kid() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let s = Settings {
        signing_key: Some(Secret::new("a-secret-of-at-least-32-bytes-0123456789")),
        ..settings(dir.path(), Algorithm::HS256, &key(Algorithm::EdDSA))
    };
    let app = spawn(s, &clock).await;
    let (_, access, _) = app.sign_up("ada").await;
    assert_eq!(header(&access), json!({"typ": "JWT", "alg": "HS256"}));
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"keys": []}));
    app.shut_down().await;
}

#[tokio::test]
async fn hs256_token_signed_with_the_public_key_is_refused() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let rsa = key(Algorithm::RS256);
    let app = spawn(settings(dir.path(), Algorithm::RS256, &rsa), &clock).await;
    let (id, access, _) = app.sign_up("ada").await;
    let kid = header(&access)["kid"].clone();
    let hmac_with = |secret: Vec<u8>| {
        move |input: &[u8]| {
            let key = jsonwebtoken::EncodingKey::from_secret(&secret);
            jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
        }
    };
    let claims = access_claims(id, &clock);
    for h in [json!({"alg": "HS256", "typ": "JWT"}), json!({"alg": "HS256", "typ": "JWT", "kid": kid})] {
        let forged = token_with(h.clone(), &claims, hmac_with(rsa.public_pem.clone().into_bytes()));
        assert_refused_everywhere(&app, &forged).await;
        // The JWK's modulus, another form the "secret" could take.
        let jwks = app.jwks().await;
        let forged = token_with(h, &claims, hmac_with(jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec()));
        assert_refused_everywhere(&app, &forged).await;
    }
    app.shut_down().await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let app = spawn(settings(dir.path(), Algorithm::ES256, &key(Algorithm::ES256)), &clock).await;
    let (id, access, _) = app.sign_up("ada").await;
    let kid = header(&access)["kid"].clone();
    for alg in ["none", "None"] {
        let forged =
            token_with(json!({"alg": alg, "typ": "JWT", "kid": kid}), &access_claims(id, &clock), |_| String::new());
        assert_refused_everywhere(&app, &forged).await;
    }
    app.shut_down().await;
}

#[tokio::test]
async fn a_token_whose_kid_matches_no_known_key_is_refused() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let app = spawn(settings(dir.path(), Algorithm::EdDSA, &key(Algorithm::EdDSA)), &clock).await;
    let (id, access, _) = app.sign_up("ada").await;
    let stranger_pem = key(Algorithm::EdDSA);
    let stranger = jwtd::tokens::PrivateKey::from_pem(Algorithm::EdDSA, stranger_pem.private_pem.as_bytes()).unwrap();
    let stranger_encoding = jsonwebtoken::EncodingKey::from_ed_pem(stranger_pem.private_pem.as_bytes()).unwrap();
    let sign =
        |input: &[u8]| jsonwebtoken::crypto::sign(input, &stranger_encoding, jsonwebtoken::Algorithm::EdDSA).unwrap();
    let claims = access_claims(id, &clock);
    // Its own kid, which the server does not know; a made-up kid; and the server's kid over a
    // signature of another key.
    for kid in [json!(stranger.public().kid()), json!("made-up"), header(&access)["kid"].clone()] {
        let forged = token_with(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), &claims, sign);
        assert_refused_everywhere(&app, &forged).await;
    }
    let refresh = token_with(
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "made-up"}),
        &json!({"token_type": "refresh", "exp": clock.now().secs() + 300, "iat": clock.now().secs(), "jti": "ab".repeat(16), "user_id": id}),
        sign,
    );
    let r = app.post("/api/token/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), TOKEN_INVALID);
    app.shut_down().await;
}

/// Restarts on the same database with a new signing key and the old public key in
/// PREVIOUS_VERIFYING_KEYS: old tokens keep working until they expire; new ones use the new key.
#[tokio::test]
async fn tokens_signed_before_a_key_rotation_work_until_they_expire() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let old = key(Algorithm::ES256);
    let new = key(Algorithm::ES256);

    let before = spawn(settings(dir.path(), Algorithm::ES256, &old), &clock).await;
    let (_, old_access, old_refresh) = before.sign_up("ada").await;
    let old_kid = header(&old_access)["kid"].clone();
    before.shut_down().await;

    let rotated = Settings {
        previous_verifying_keys: vec![KeyPem::text(&old.public_pem)],
        ..settings(dir.path(), Algorithm::ES256, &new)
    };
    let after = spawn(rotated.clone(), &clock).await;
    let kids: Vec<Value> = after.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1], old_kid, "JWKS lists the current key, then the previous one");
    assert_eq!(after.me(&old_access).await.status(), 200);
    let r = after.post("/api/token/refresh/", json!({"refresh": old_refresh})).await;
    assert_eq!(r.status(), 200);
    let fresh_access = r.json::<Value>().await.unwrap()["access"].as_str().unwrap().to_string();
    assert_eq!(header(&fresh_access)["kid"], kids[0], "new tokens are signed with the current key only");
    let (_, new_access, _) = after.sign_up("grace").await;
    assert_eq!(header(&new_access)["kid"], kids[0]);

    // Past the access lifetime (15 minutes) the old access token has expired like any other,
    // while the old refresh token (7 days) still works.
    clock.advance(Duration::from_secs(15 * 60));
    let expired = after.me(&old_access).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.json::<Value>().await.unwrap()["messages"][0]["message"], "Token is expired");
    assert_eq!(after.post("/api/token/refresh/", json!({"refresh": old_refresh})).await.status(), 200);
    after.shut_down().await;

    // Once the previous key is dropped from the settings, its tokens are refused.
    let forgetful = Settings { previous_verifying_keys: vec![], ..rotated };
    let last = spawn(forgetful, &clock).await;
    let r = last.post("/api/token/refresh/", json!({"refresh": old_refresh})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), TOKEN_INVALID);
    assert_eq!(last.jwks().await["keys"].as_array().unwrap().len(), 1);
    last.shut_down().await;
}

async fn start_error(settings: Settings) -> String {
    let deps = Deps { clock: Arc::new(FakeClock::new()), hasher: Hasher::with_params(8, 1, 1) };
    match Application::build(settings, deps).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn wrong_keys_stop_the_start_naming_the_setting() {
    let dir = TempDir::new().unwrap();
    let ec = key(Algorithm::ES256);
    let rsa = key(Algorithm::RS256);
    let err = start_error(settings(dir.path(), Algorithm::ES256, &rsa)).await;
    assert_eq!(err, "SIGNING_KEY: ES256 needs a P-256 EC key, got an RSA key");

    let other = key(Algorithm::ES256);
    let mismatched = Settings {
        verifying_key: Some(KeyPem::text(&other.public_pem)),
        ..settings(dir.path(), Algorithm::ES256, &ec)
    };
    assert_eq!(start_error(mismatched).await, "VERIFYING_KEY: is not the public key of SIGNING_KEY");

    let matched =
        Settings { verifying_key: Some(KeyPem::text(&ec.public_pem)), ..settings(dir.path(), Algorithm::ES256, &ec) };
    let app = spawn(matched, &FakeClock::new()).await;
    app.shut_down().await;

    let previous = Settings {
        previous_verifying_keys: vec![KeyPem::text(&rsa.public_pem)],
        ..settings(dir.path(), Algorithm::ES256, &ec)
    };
    assert_eq!(
        start_error(previous).await,
        "PREVIOUS_VERIFYING_KEYS: PEM text: ES256 needs a P-256 EC key, got an RSA key"
    );

    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let small_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&small, rsa::pkcs8::LineEnding::LF).unwrap();
    let small = Settings {
        signing_key: Some(Secret::new(small_pem.to_string())),
        ..settings(dir.path(), Algorithm::RS256, &rsa)
    };
    let err = start_error(small).await;
    assert_eq!(err, "SIGNING_KEY: RSA keys need at least 2048 bits, got 1024");
    assert!(!err.contains("BEGIN"));
}

#[tokio::test]
async fn without_signing_key_a_key_is_generated_once_and_kept() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let s = Settings { signing_key: None, ..settings(dir.path(), Algorithm::EdDSA, &key(Algorithm::EdDSA)) };
    let first = spawn(s.clone(), &clock).await;
    let (_, access, _) = first.sign_up("ada").await;
    let jwks = first.jwks().await;
    first.shut_down().await;
    let second = spawn(s, &clock).await;
    assert_eq!(second.jwks().await, jwks);
    assert_eq!(second.me(&access).await.status(), 200);
    second.shut_down().await;
}

fn run_jwtd(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jwtd"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn keys_generate_writes_a_private_key_only_its_owner_reads() {
    let dir = TempDir::new().unwrap();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let out: PathBuf = dir.path().join(alg);
        let done = run_jwtd(&["keys", "generate", "--algorithm", alg, "--out", out.to_str().unwrap()], &[]);
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
        let private = out.join("private.pem");
        let pem = std::fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(out.join("public.pem")).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let stdout = String::from_utf8_lossy(&done.stdout).to_string();
        assert!(!stdout.contains("BEGIN"), "key material printed");

        // The written pair is what the server loads, by path, and config check agrees.
        let public = out.join("public.pem");
        let env = [
            ("JWTD_ALGORITHM", alg),
            ("JWTD_SIGNING_KEY", private.to_str().unwrap()),
            ("JWTD_VERIFYING_KEY", public.to_str().unwrap()),
        ];
        let check = run_jwtd(&["config", "check"], &env);
        let printed = String::from_utf8_lossy(&check.stdout).to_string();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert!(printed.contains("SIGNING_KEY = ****") && !printed.contains("BEGIN"), "{printed}");
        let kid_line = stdout.lines().find(|l| l.starts_with("kid ")).unwrap().trim_start_matches("kid ");
        assert!(printed.contains(&format!("# kid of SIGNING_KEY: {kid_line}")), "{printed}");

        // Never overwrites.
        let again = run_jwtd(&["keys", "generate", "--algorithm", alg, "--out", out.to_str().unwrap()], &[]);
        assert!(!again.status.success());
        assert_eq!(std::fs::read_to_string(&private).unwrap(), pem);
    }
    let hmac = run_jwtd(&["keys", "generate", "--algorithm", "HS256", "--out", dir.path().to_str().unwrap()], &[]);
    assert!(!hmac.status.success());
}

/// Another axum service: verifies jwtd's access tokens with the JWKS URL only.
async fn spawn_resource_server(verifier: Verifier) -> (String, oneshot::Sender<()>) {
    async fn hello(user: AuthUser) -> String {
        format!("hello, user {}", user.user_id)
    }
    let app = Router::new().route("/hello", get(hello)).with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    (base, stop)
}

fn remote_verifier(jwks_url: String, clock: &FakeClock, alg: Algorithm) -> Verifier {
    let options = RemoteOptions { algorithm: Some(alg), ..RemoteOptions::default() };
    Verifier::remote(
        RemoteKeys::new(jwks_url, options).unwrap(),
        Policy::default(),
        Arc::new(clock.clone()),
        vec!["Bearer".into()],
        "user_id".into(),
    )
}

#[tokio::test]
async fn another_service_authenticates_jwtd_tokens_through_jwks() {
    let dir = TempDir::new().unwrap();
    let clock = FakeClock::new();
    let first_key = key(Algorithm::ES256);
    let jwtd_app = spawn(settings(dir.path(), Algorithm::ES256, &first_key), &clock).await;
    let (id, access, _) = jwtd_app.sign_up("ada").await;
    let jwks_url = format!("{}/.well-known/jwks.json", jwtd_app.base);
    let (base, stop) = spawn_resource_server(remote_verifier(jwks_url.clone(), &clock, Algorithm::ES256)).await;
    let client = reqwest::Client::new();
    let hello = |token: String| {
        let client = client.clone();
        let url = format!("{base}/hello");
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };

    let r = hello(access.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("hello, user {id}"));
    let forged = token_with(json!({"alg": "none", "typ": "JWT"}), &access_claims(id, &clock), |_| String::new());
    let r = hello(forged).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], BEARER_INVALID);
    let no_token = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);

    // jwtd rotates its key (old one kept as previous). The service meets the new kid and fetches
    // the JWKS again; old and new tokens both pass.
    jwtd_app.shut_down().await;
    let second_key = key(Algorithm::ES256);
    let mut rotated = settings(dir.path(), Algorithm::ES256, &second_key);
    rotated.previous_verifying_keys = vec![KeyPem::text(&first_key.public_pem)];
    rotated.addr = jwks_url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
    let jwtd_app = spawn(rotated, &clock).await;
    let (_, new_access, _) = jwtd_app.sign_up("grace").await;
    clock.advance(Duration::from_secs(11)); // past RemoteOptions::min_refresh, no sleep
    assert_eq!(hello(new_access.clone()).await.status(), 200);
    assert_eq!(hello(access.clone()).await.status(), 200);

    // A made-up kid right after a fetch does not fetch again (min_refresh) and is refused.
    let stranger = generate(Algorithm::ES256, &mut rand::rngs::OsRng).unwrap();
    let stranger_key = jsonwebtoken::EncodingKey::from_ec_pem(stranger.private_pem.as_bytes()).unwrap();
    let forged =
        token_with(json!({"alg": "ES256", "typ": "JWT", "kid": "made-up"}), &access_claims(id, &clock), |input| {
            jsonwebtoken::crypto::sign(input, &stranger_key, jsonwebtoken::Algorithm::ES256).unwrap()
        });
    assert_eq!(hello(forged).await.status(), 401);
    let _ = stop.send(());
    jwtd_app.shut_down().await;
}

#[tokio::test]
async fn remote_verification_without_any_fetched_key_is_a_503() {
    let clock = FakeClock::new();
    // A port nothing listens on: bind, read the port, close.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let verifier = remote_verifier(format!("http://127.0.0.1:{port}/.well-known/jwks.json"), &clock, Algorithm::EdDSA);
    let (base, stop) = spawn_resource_server(verifier).await;
    let signer = generate(Algorithm::EdDSA, &mut rand::rngs::OsRng).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(signer.private_pem.as_bytes()).unwrap();
    let token = token_with(json!({"alg": "EdDSA", "typ": "JWT", "kid": "k"}), &access_claims(1, &clock), |input| {
        jsonwebtoken::crypto::sign(input, &encoding, jsonwebtoken::Algorithm::EdDSA).unwrap()
    });
    let r = reqwest::Client::new().get(format!("{base}/hello")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
    let _ = stop.send(());
}
