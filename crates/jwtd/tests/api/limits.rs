//! Transport limits (body size, header size, body and request time) and the security headers
//! every answer carries, errors included.

use std::time::Duration;

use jwtd::http::Limits;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{raw_exchange, read_answer, TestApp, PASSWORD};

fn quick() -> Limits {
    Limits {
        body_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(600),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413() {
    let app = TestApp::builder().env(&[("MAX_BODY_BYTES", "2048")]).spawn().await;
    let big = "x".repeat(4096);
    let r = app.post_json("/api/token/", &json!({"username": big, "password": "p"})).await;
    r.expect(413, r#"{"detail":"Request body too large."}"#);
}

#[tokio::test]
async fn headers_over_the_limit_are_431_with_a_json_body() {
    let app = TestApp::builder().spawn().await;
    let r = app.send(app.client.get(app.url("/healthz")).header("X-Padding", "a".repeat(20 * 1024))).await;
    r.expect(431, r#"{"detail":"Request header fields too large."}"#);
    assert_eq!(r.headers["content-type"], "application/json");
    // Many small headers add up.
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..90 {
        req = req.header(format!("x-h{i}"), "b".repeat(200));
    }
    assert_eq!(app.send(req).await.status, 431);
    // Far beyond it, the connection's buffer stops reading: still a 431, and nothing is kept.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let huge = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"), "{}", String::from_utf8_lossy(&answer));
    // Normal requests are fine.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let app = TestApp::builder().limits(quick()).spawn().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/token/verify/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"token\": ";
    let answer = raw_exchange(&mut stream, head.as_bytes()).await;
    assert_eq!(answer.status, 408);
    assert_eq!(answer.body, r#"{"detail":"Timed out reading the request body."}"#);
    assert!(answer.head.to_ascii_lowercase().contains("content-type: application/json"));
}

#[tokio::test]
async fn a_request_the_server_cannot_finish_in_time_is_503() {
    let app = TestApp::builder().limits(quick()).spawn().await;
    // Another process holds the database's write lock, so the sign-up waits for it.
    let other = rusqlite::Connection::open(&app.db_path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = app.post_sign_up(&json!({"username": "ada", "password": PASSWORD})).await;
    r.expect(503, r#"{"detail":"Request timed out, try again later."}"#);
    assert_eq!(r.headers["cache-control"], "no-store");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::builder()
        .env(&[("CORS_ALLOWED_ORIGINS", "http://127.0.0.1:3000"), ("MAX_BODY_BYTES", "1024")])
        .limits(quick())
        .spawn()
        .await;
    let access = app.sign_up("ada").await.access;
    let c = &app.client;
    let requests = vec![
        ("obtain 200", c.post(app.url("/api/token/")).json(&json!({"username": "ada", "password": PASSWORD}))),
        ("obtain 401", c.post(app.url("/api/token/")).json(&json!({"username": "ada", "password": "wrong"}))),
        ("refresh 400", c.post(app.url("/api/token/refresh/")).json(&json!({}))),
        ("me 200", c.get(app.url("/api/me/")).bearer_auth(&access)),
        ("me 401", c.get(app.url("/api/me/"))),
        ("404", c.get(app.url("/no/such/route"))),
        ("405", c.get(app.url("/api/token/"))),
        ("413", c.post(app.url("/api/token/")).json(&json!({"username": "x".repeat(2048)}))),
        ("415", c.post(app.url("/api/token/")).header("Content-Type", "text/plain").body("x")),
        ("431", c.get(app.url("/healthz")).header("X-Padding", "a".repeat(20 * 1024))),
        ("healthz", c.get(app.url("/healthz"))),
        ("metrics", c.get(app.url("/metrics"))),
        (
            "preflight",
            c.request(reqwest::Method::OPTIONS, app.url("/api/token/"))
                .header("Origin", "http://127.0.0.1:3000")
                .header("Access-Control-Request-Method", "POST"),
        ),
    ];
    for (what, req) in requests {
        let r = app.send(req).await;
        let h = &r.headers;
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'", "{what}");
        if r.status != 200 || what == "preflight" {
            continue;
        }
        assert!(!r.text.is_empty(), "{what}: a body");
    }
}

#[tokio::test]
async fn bad_requests_are_4xx_json_never_5xx() {
    let app = TestApp::builder().env(&[("REFRESH_COOKIE", "true")]).spawn().await;
    let c = &app.client;
    let requests = vec![
        c.post(app.url("/api/token/refresh/")).header("Cookie", "jwtd_refresh=%%%; jwtd_refresh=x"),
        c.post(app.url("/api/token/refresh/")).header("Cookie", "garbage"),
        c.post(app.url("/api/token/refresh/")).header("Cookie", "jwtd_refresh=\"a.b.c\""),
        c.post(app.url("/api/token/blacklist/")).header("Origin", "null"),
        c.post(app.url("/api/token/blacklist/")).header("Origin", "http://x").header("Host", "x"),
        c.get(app.url("/api/me/")).header("Authorization", "Bearer"),
        c.post(app.url("/api/token/")).header("Content-Type", "application/json").body("{"),
    ];
    for req in requests {
        let r = app.send(req).await;
        assert!((400..500).contains(&r.status), "{}", r.status);
        assert!(r.json().is_object());
    }
}

#[tokio::test]
async fn past_max_in_flight_a_request_waits_its_turn_then_gets_503() {
    let app = TestApp::builder().env(&[("MAX_IN_FLIGHT", "1"), ("QUEUE_TIMEOUT", "1s")]).spawn().await;
    // A request whose body is still coming holds the one turn.
    let mut holder = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/token/verify/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"token\": ";
    holder.write_all(head.as_bytes()).await.unwrap();
    let r = loop {
        // Until the holder's request has its turn, healthz may still get through.
        let r = app.get("/healthz").await;
        if r.status != 200 {
            break r;
        }
    };
    r.expect(503, r#"{"detail":"Server is busy, try again later."}"#);
    assert_eq!(r.headers["retry-after"], "1");
    // Once the holder goes, its turn is free again.
    drop(holder);
    let served = async {
        loop {
            if app.get("/healthz").await.status == 200 {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), served).await.expect("served again once the turn was free");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_rather_than_being_refused() {
    let app = TestApp::builder().env(&[("MAX_CONNECTIONS", "1")]).spawn().await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(raw_exchange(&mut first, request).await.status, 200);
    // The second connection is not accepted while the first stays open, nor refused.
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
    assert!(early.is_err(), "the second connection was answered while the first held the only slot");
    drop(first);
    assert_eq!(read_answer(&mut second).await.status, 200);
}

#[test]
fn the_limit_settings_default_to_the_transport_defaults() {
    let from_settings = Limits::from_settings(&jwtd::Settings::default());
    let defaults = Limits::default();
    assert_eq!(from_settings.max_connections, defaults.max_connections);
    assert_eq!(from_settings.max_in_flight, defaults.max_in_flight);
    assert_eq!(from_settings.queue_timeout, defaults.queue_timeout);
    assert_eq!(from_settings.request_timeout, defaults.request_timeout);
    assert_eq!(from_settings.drain_timeout, defaults.drain_timeout);
}

#[tokio::test]
async fn a_limit_setting_of_zero_stops_the_start_naming_it() {
    for (name, value, message) in [
        ("MAX_CONNECTIONS", "0", "JWTD_MAX_CONNECTIONS: expected a number of at least 1, got \"0\""),
        ("MAX_IN_FLIGHT", "none", "JWTD_MAX_IN_FLIGHT: expected a number of at least 1, got \"none\""),
        ("REQUEST_TIMEOUT", "0", "JWTD_REQUEST_TIMEOUT: must be longer than 0s"),
    ] {
        assert_eq!(TestApp::builder().env(&[(name, value)]).start_error().await, message);
    }
}
