//! Graceful shutdown: stop accepting, let requests in flight finish within a bound, close the
//! database cleanly.

use std::time::Duration;

use jwtd::http::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::{read_answer, TestApp};

/// Connects until the listener is gone (it closes right after the shutdown signal).
async fn wait_until_refused(addr: std::net::SocketAddr) {
    let refused = async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused).await.expect("new connections refused");
}

/// Waits until the server is answering a request besides the /metrics one asking.
async fn wait_in_flight(app: &TestApp) {
    let seen = async {
        while !app.get("/metrics").await.text.contains("\njwtd_http_requests_in_flight 2\n") {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), seen).await.expect("the request reached the server");
}

#[tokio::test]
async fn a_request_in_flight_finishes_after_the_signal_and_new_connections_are_refused() {
    let mut app = TestApp::builder().spawn().await;
    let token = app.sign_up("ada").await.refresh;
    let body = format!("{{\"refresh\": \"{token}\"}}");
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/token/refresh/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(10);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    wait_in_flight(&app).await;

    app.stop();
    wait_until_refused(app.addr).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("\"access\""));
    tokio::time::timeout(Duration::from_secs(10), app.stopped()).await.expect("stopped after the drain");
}

#[tokio::test]
async fn shutdown_waits_no_longer_than_the_bound() {
    let limits = Limits {
        drain_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let mut app = TestApp::builder().limits(limits).spawn().await;
    // A request whose body never comes.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head =
        "POST /api/token/verify/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    wait_in_flight(&app).await;
    app.stop();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stopped()).await.expect("the bound holds");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_database_is_left_clean() {
    let mut app = TestApp::builder().spawn().await;
    for name in ["ada", "bob", "cy"] {
        app.sign_up(name).await;
    }
    let wal = app.db_path.with_extension("db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "writes went to the write-ahead log");
    app.shut_down().await;
    // Checkpointed: the database file alone holds every committed row.
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0);
    let copy = tempfile::tempdir().unwrap();
    let alone = copy.path().join("alone.db");
    std::fs::copy(&app.db_path, &alone).unwrap();
    let conn = rusqlite::Connection::open(&alone).unwrap();
    let users: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(users, 3);
}
