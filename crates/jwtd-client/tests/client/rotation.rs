//! With rotation on, every refresh hands back a new refresh token, and the old one is
//! blacklisted: the client must keep the newest, and send exactly one refresh per expiry.

use std::collections::HashSet;
use std::time::Duration;

use jwtd::config::RotationPolicy;
use jwtd_client::{MemoryStore, Method, StatusCode, TokenStore};

use crate::helpers::{concurrent_me, TestServer, PASSWORD};

/// Rotation with blacklisting and no grace period: presenting a rotated token is reuse.
fn strict(settings: &mut jwtd::Settings) {
    settings.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO };
}

fn refresh_token(store: &MemoryStore) -> String {
    store.load().unwrap().unwrap().refresh.unwrap()
}

#[tokio::test]
async fn with_rotation_session_survives_five_access_expiries() {
    let app = TestServer::spawn_with(strict).await;
    let store = MemoryStore::new();
    let client = app.client().store(store.clone()).build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    let mut seen = HashSet::from([refresh_token(&store)]);

    for _ in 0..5 {
        app.expire_access();
        let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(seen.insert(refresh_token(&store)), "the rotated refresh token was stored");
    }

    assert_eq!(app.count("/api/token/refresh/", 200), 5);
    assert_eq!(app.refreshes(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rotation_fifty_concurrent_requests_cause_one_refresh() {
    let app = TestServer::spawn_with(strict).await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();

    for _ in 0..2 {
        app.expire_access();
        let statuses = concurrent_me(&client, 50).await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    }

    assert_eq!(app.refreshes(), 2);
    assert_eq!(app.count("/api/token/refresh/", 200), 2);
}

#[tokio::test]
async fn in_the_grace_period_two_clients_with_one_refresh_token_both_continue() {
    let app = TestServer::spawn_with(|s| s.rotation = RotationPolicy::on()).await;
    let store = MemoryStore::new();
    let first = app.client().store(store.clone()).build().unwrap();
    first.sign_up("ada", PASSWORD, None).await.unwrap();
    // Another process resumes the same session from the same store.
    let second = app.client().store(store.clone()).build().unwrap();
    app.expire_access();

    let a = first.request(Method::GET, "/api/me/").send().await.unwrap();
    let successor = refresh_token(&store);
    // `second` still holds the rotated-away token: within the grace period the server hands
    // back the same successor instead of treating it as reuse.
    let b = second.request(Method::GET, "/api/me/").send().await.unwrap();

    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(refresh_token(&store), successor);
    assert_eq!(app.count("/api/token/refresh/", 200), 2);
    app.expire_access();
    for client in [&first, &second] {
        let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
