//! A session outlives its access tokens: refreshed ahead of expiry, or on a 401 and retried.

use jwtd_client::proto::Me;
use jwtd_client::{Client, FileStore, Method, StatusCode};

use crate::helpers::{concurrent_me, TestServer, PASSWORD};

async fn me(client: &Client) -> Me {
    let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn session_survives_five_access_expiries_refreshing_ahead() {
    let app = TestServer::spawn().await;
    let client = app.client().build().unwrap();
    let user = client.sign_up("ada", PASSWORD, None).await.unwrap();

    for _ in 0..5 {
        app.expire_access();
        assert_eq!(me(&client).await.id, user.id);
    }

    assert_eq!(app.count("/api/token/refresh/", 200), 5);
    assert_eq!(app.count("/api/me/", 401), 0, "every token was refreshed before it was sent");
}

#[tokio::test]
async fn session_survives_five_access_expiries_refreshing_on_401() {
    let app = TestServer::spawn().await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();

    for _ in 0..5 {
        app.expire_access();
        assert_eq!(me(&client).await.username, "ada");
    }

    assert_eq!(app.count("/api/token/refresh/", 200), 5);
    assert_eq!(app.count("/api/me/", 401), 5);
    assert_eq!(app.count("/api/me/", 200), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_after_expiry_cause_one_refresh() {
    let app = TestServer::spawn().await;
    let client = app.client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.expire_access();

    let statuses = concurrent_me(&client, 50).await;

    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(app.refreshes(), 1);
    assert_eq!(app.count("/api/me/", 200), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_401s_cause_one_refresh() {
    let app = TestServer::spawn().await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.expire_access();

    let statuses = concurrent_me(&client, 50).await;

    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(app.refreshes(), 1);
    // A task that starts after the refresh sends the new token at once.
    let refused = app.count("/api/me/", 401);
    assert!((1..=50).contains(&refused), "{refused}");
    assert_eq!(app.count("/api/me/", 200), 50);
}

#[tokio::test]
async fn request_body_is_sent_again_after_a_401() {
    let app = TestServer::spawn().await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.expire_access();

    let response = client
        .request(Method::POST, "/api/auth/password/")
        .json(&serde_json::json!({"old_password": PASSWORD, "new_password": "battery staple horse"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    assert_eq!(app.count("/api/auth/password/", 401), 1);
    assert_eq!(app.count("/api/auth/password/", 200), 1);
}

#[tokio::test]
async fn a_session_in_a_file_store_resumes_in_a_new_client() {
    let app = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let first = app.client().store(FileStore::new(&path)).build().unwrap();
    first.sign_up("ada", PASSWORD, None).await.unwrap();
    drop(first);

    let second = app.client().store(FileStore::new(&path)).build().unwrap();
    assert!(second.is_signed_in());
    app.expire_access();
    assert_eq!(me(&second).await.username, "ada");
    assert_eq!(app.count("/api/token/refresh/", 200), 1);
}

#[tokio::test]
async fn paths_outside_the_base_url_get_no_token() {
    let app = TestServer::spawn().await;
    let client = app.client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    for path in ["http://example.com/api/me/", "https://example.com/"] {
        let err = client.request(Method::GET, path).send().await.unwrap_err();
        assert!(matches!(err, jwtd_client::Error::PathOutsideBase(_)), "{path}: {err:?}");
    }
}
