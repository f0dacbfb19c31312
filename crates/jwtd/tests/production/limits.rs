//! Transport limits (body size, header size, body and request time) and the security headers
//! every answer carries, errors included.

use std::time::Duration;

use jwtd::http::Limits;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// An answer read off a raw connection.
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Writes `first`, then reads one HTTP/1.1 answer (head and `Content-Length` bytes of body).
pub async fn raw_exchange(stream: &mut TcpStream, first: &[u8]) -> Raw {
    stream.write_all(first).await.unwrap();
    read_answer(stream).await
}

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

fn quick() -> Limits {
    Limits {
        body_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(600),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413() {
    let app = spawn_app(&[("MAX_BODY_BYTES", "2048")]).await;
    let big = "x".repeat(4096);
    let r = app.post("/api/token/", json!({"username": big, "password": "p"})).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Request body too large."}"#);
}

#[tokio::test]
async fn headers_over_the_limit_are_431_with_a_json_body() {
    let app = spawn_app(&[]).await;
    let r = app.client.get(app.url("/healthz")).header("X-Padding", "a".repeat(20 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Request header fields too large."}"#);
    // Many small headers add up.
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..90 {
        req = req.header(format!("x-h{i}"), "b".repeat(200));
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    // Far beyond it, the connection's buffer stops reading: still a 431, and nothing is kept.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let huge = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"), "{}", String::from_utf8_lossy(&answer));
    // Normal requests are fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let app = spawn_app_with(&[], quick()).await;
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
    let app = spawn_app_with(&[], quick()).await;
    // Another process holds the database's write lock, so the sign-up waits for it.
    let other = rusqlite::Connection::open(&app.db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = app.post("/api/auth/signup/", json!({"username": "ada", "password": PASSWORD})).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Request timed out, try again later."}"#);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app =
        spawn_app_with(&[("CORS_ALLOWED_ORIGINS", "http://127.0.0.1:3000"), ("MAX_BODY_BYTES", "1024")], quick()).await;
    let access = app.sign_up("ada").await["access"].as_str().unwrap().to_string();
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
        let r = req.send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'", "{what}");
        let status = r.status();
        if status != 200 || what == "preflight" {
            continue;
        }
        assert!(!r.bytes().await.unwrap().is_empty(), "{what}: a body");
    }
}

#[tokio::test]
async fn bad_requests_are_4xx_json_never_5xx() {
    let app = spawn_app(&[("REFRESH_COOKIE", "true")]).await;
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
        let r = req.send().await.unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body.is_object());
    }
}

#[tokio::test]
async fn past_max_in_flight_a_request_waits_its_turn_then_gets_503() {
    let limits = Limits { max_in_flight: 1, queue_timeout: Duration::from_millis(200), ..Limits::default() };
    let app = spawn_app_with(&[], limits).await;
    // A request whose body is still coming holds the one turn.
    let mut holder = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/token/verify/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"token\": ";
    holder.write_all(head.as_bytes()).await.unwrap();
    let r = loop {
        // Until the holder's request has its turn, healthz may still get through.
        let r = app.get("/healthz").await;
        if r.status() != 200 {
            break r;
        }
    };
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Server is busy, try again later."}"#);
    // Once the holder goes, its turn is free again.
    drop(holder);
    let served = async {
        loop {
            if app.get("/healthz").await.status() == 200 {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), served).await.expect("served again once the turn was free");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_rather_than_being_refused() {
    let app = spawn_app_with(&[], Limits { max_connections: 1, ..Limits::default() }).await;
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
