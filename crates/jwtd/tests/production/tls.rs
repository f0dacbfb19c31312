//! TLS_CERT and TLS_KEY: HTTPS with rustls, tried with a certificate made at run time.

use std::sync::Arc;

use jwtd::clock::FakeClock;
use jwtd::password::Hasher;
use jwtd::{Application, Deps};
use serde_json::{json, Value};

use crate::helpers::*;

struct Certificate {
    dir: tempfile::TempDir,
    pem: String,
}

fn certificate() -> Certificate {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = made.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    Certificate { dir, pem }
}

impl Certificate {
    fn env(&self) -> [(String, String); 2] {
        let path = |f: &str| self.dir.path().join(f).display().to_string();
        [("TLS_CERT".into(), path("cert.pem")), ("TLS_KEY".into(), path("key.pem"))]
    }

    fn client(&self) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .build()
            .unwrap()
    }
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let cert = certificate();
    let env = cert.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app(&env).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    let client = cert.client();

    let r = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);

    let r = client
        .post(app.url("/api/auth/signup/"))
        .json(&json!({"username": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let r = client.get(app.url("/api/me/")).bearer_auth(body["access"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The same name works too (the certificate names both).
    let by_name = format!("https://localhost:{}/healthz", app.addr.port());
    assert_eq!(client.get(by_name).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn plain_http_and_untrusted_clients_get_nothing() {
    let cert = certificate();
    let env = cert.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app(&env).await;
    let plain = format!("http://{}/healthz", app.addr);
    assert!(reqwest::get(plain).await.is_err(), "no answer over plain HTTP");
    let untrusting = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).build().unwrap();
    assert!(untrusting.get(app.url("/healthz")).send().await.is_err(), "self-signed: refused by default");
    // The server still serves trusting clients afterwards.
    assert_eq!(cert.client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start_with_a_message() {
    let cert = certificate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let empty = dir.path().join("empty.pem").display().to_string();
    let cert_path = cert.dir.path().join("cert.pem").display().to_string();
    let key_path = cert.dir.path().join("key.pem").display().to_string();
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    std::fs::write(dir.path().join("other.pem"), other_key).unwrap();
    let other = dir.path().join("other.pem").display().to_string();
    let cases = [
        (empty.as_str(), key_path.as_str(), "TLS_CERT: "),
        (cert_path.as_str(), empty.as_str(), "TLS_KEY: "),
        ("/nonexistent/cert.pem", key_path.as_str(), "TLS_CERT: "),
        (cert_path.as_str(), other.as_str(), "TLS_CERT/TLS_KEY: "),
    ];
    for (cert_file, key_file, message) in cases {
        let settings = settings(&dir, &[("TLS_CERT", cert_file), ("TLS_KEY", key_file)]);
        let deps = Deps { clock: Arc::new(FakeClock::new()), hasher: Hasher::with_params(256, 1, 1) };
        let err = Application::build(settings, deps).await.err().expect("start refused");
        assert!(err.to_string().starts_with(message), "{err}");
    }
}
