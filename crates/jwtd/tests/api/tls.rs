//! TLS_CERT and TLS_KEY: HTTPS with rustls, tried with a certificate made at run time.

use serde_json::json;

use crate::helpers::{certificate, TestApp, PASSWORD};

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let app = TestApp::builder().tls().spawn().await;
    assert!(app.origin().starts_with("https://127.0.0.1:"), "{}", app.origin());

    app.get("/healthz").await.expect(200, r#"{"status":"ok"}"#);

    let r = app.post_sign_up(&json!({"username": "ada", "password": PASSWORD})).await;
    r.expect_status(201);
    app.me(&r.field("access")).await.expect_status(200);
    // The same name works too (the certificate names both).
    let by_name = format!("https://localhost:{}/healthz", app.addr.port());
    assert_eq!(app.send(app.client.get(by_name)).await.status, 200);
}

#[tokio::test]
async fn plain_http_and_untrusted_clients_get_nothing() {
    let app = TestApp::builder().tls().spawn().await;
    let plain = format!("http://{}/healthz", app.addr);
    assert!(reqwest::get(plain).await.is_err(), "no answer over plain HTTP");
    let untrusting = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).build().unwrap();
    assert!(untrusting.get(app.url("/healthz")).send().await.is_err(), "self-signed: refused by default");
    // The server still serves trusting clients afterwards.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_the_start_with_a_message() {
    let cert = certificate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let empty = dir.path().join("empty.pem").display().to_string();
    let cert_path = cert.cert_path();
    let key_path = cert.key_path();
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
        let err = TestApp::builder().env(&[("TLS_CERT", cert_file), ("TLS_KEY", key_file)]).start_error().await;
        assert!(err.starts_with(message), "{err}");
    }
}

#[tokio::test]
async fn https_answers_carry_strict_transport_security_and_plain_http_does_not() {
    let app = TestApp::builder().tls().spawn().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"));
    let r = app.post_json("/api/token/", &json!({})).await;
    assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000"));
    let plain = TestApp::builder().spawn().await;
    assert_eq!(plain.get("/healthz").await.header("strict-transport-security"), None);
}

#[tokio::test]
async fn a_reloaded_certificate_serves_new_connections_and_open_ones_stay() {
    let app = TestApp::builder().tls().spawn().await;
    let reloader = app.tls_reloader.clone().expect("a TLS reloader");
    let first = certificate();
    let (cert_file, key_file) = app.tls_files();
    assert_eq!(app.get("/healthz").await.status, 200, "the first certificate serves");

    // A new pair in place of the files, then the reload SIGHUP triggers.
    std::fs::copy(first.cert_path(), &cert_file).unwrap();
    std::fs::copy(first.key_path(), &key_file).unwrap();
    reloader.reload().unwrap();
    // The connection the client kept open still works: nothing was dropped.
    assert_eq!(app.get("/healthz").await.status, 200);
    // A new connection gets the new certificate: trusted by a client trusting only it.
    let trusting_new = first.client();
    assert_eq!(trusting_new.get(app.url("/healthz")).send().await.unwrap().status(), 200);

    // A bad new certificate is refused, naming the setting; the one in use stays.
    std::fs::write(&cert_file, "not a certificate").unwrap();
    let e = reloader.reload().unwrap_err();
    assert!(e.starts_with("TLS_CERT: "), "{e}");
    let again = first.client();
    assert_eq!(again.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}
