//! Only a refused refresh token ends a session; network and server failures do not.

use std::time::Duration;

use futures::future::join_all;

use jwtd_client::proto::messages::{NO_ACTIVE_ACCOUNT, TOKEN_BLACKLISTED};
use jwtd_client::{Error, MemoryStore, Method, StatusCode, TokenStore};

use crate::helpers::{TestServer, PASSWORD};

#[tokio::test]
async fn after_blacklisting_requests_fail_with_session_expired() {
    let app = TestServer::spawn().await;
    let store = MemoryStore::new();
    let client = app.client().store(store.clone()).build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    let refresh = store.load().unwrap().unwrap().refresh.unwrap();
    // Signed out elsewhere (another device sharing the token, an admin).
    assert_eq!(app.post("/api/token/blacklist/", serde_json::json!({ "refresh": refresh })).await.status(), 200);
    app.expire_access();

    let err = client.request(Method::GET, "/api/me/").send().await.unwrap_err();
    assert!(matches!(err, Error::SessionExpired), "{err:?}");
    let err = client.request(Method::GET, "/api/me/").send().await.unwrap_err();
    assert!(matches!(err, Error::SessionExpired), "{err:?}");

    assert_eq!(app.count("/api/token/refresh/", 401), 1, "an ended session sends no more refreshes");
    assert!(!client.is_signed_in());
    assert_eq!(store.load().unwrap(), None, "dead tokens are forgotten");
}

#[tokio::test]
async fn sign_out_blacklists_the_refresh_token() {
    let app = TestServer::spawn().await;
    let store = MemoryStore::new();
    let client = app.client().store(store.clone()).build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    let refresh = store.load().unwrap().unwrap().refresh.unwrap();

    client.sign_out().await.unwrap();

    assert_eq!(app.count("/api/token/blacklist/", 200), 1);
    assert_eq!(store.load().unwrap(), None);
    let err = client.request(Method::GET, "/api/me/").send().await.unwrap_err();
    assert!(matches!(err, Error::NotSignedIn), "{err:?}");
    let reuse = app.post("/api/token/refresh/", serde_json::json!({ "refresh": refresh })).await;
    assert_eq!(reuse.status(), 401);
    assert!(reuse.text().await.unwrap().contains(TOKEN_BLACKLISTED));
    client.sign_out().await.unwrap();
}

#[tokio::test]
async fn a_network_error_is_not_session_expired() {
    let mut app = TestServer::spawn().await;
    let store = MemoryStore::new();
    let client = app.client().store(store.clone()).build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.stop().await;
    app.expire_access();

    let err = client.request(Method::GET, "/api/me/").send().await.unwrap_err();

    let Error::RefreshFailed(cause) = &err else { panic!("{err:?}") };
    assert!(matches!(**cause, Error::Http(_)), "{cause:?}");
    assert!(err.is_transient());
    assert!(client.is_signed_in());
    assert!(store.load().unwrap().is_some());
}

#[tokio::test]
async fn a_server_error_on_refresh_is_not_session_expired() {
    let app = TestServer::spawn().await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.expire_access();
    app.fail_refreshes(1);

    let err = client.request(Method::GET, "/api/me/").send().await.unwrap_err();
    assert!(matches!(err, Error::RefreshFailed(_)), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE), "{err:?}");
    assert!(client.is_signed_in());

    let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.count("/api/token/refresh/", 503), 1);
    assert_eq!(app.count("/api/token/refresh/", 200), 1);
}

#[tokio::test]
async fn a_failed_refresh_ahead_falls_back_to_the_still_valid_token() {
    let app = TestServer::spawn().await;
    let client = app.client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    // Within the margin (half of the 2 s lifetime), not yet expired.
    app.clock.advance(Duration::from_millis(1500));
    app.fail_refreshes(1);

    let response = client.request(Method::GET, "/api/me/").send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.count("/api/token/refresh/", 503), 1);
    assert_eq!(app.count("/api/me/", 200), 1);
}

#[tokio::test]
async fn bad_credentials_are_the_servers_answer() {
    let app = TestServer::spawn().await;
    let client = app.client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    client.sign_out().await.unwrap();

    let err = client.sign_in("ada", "wrong password").await.unwrap_err();

    let Error::Rejected { status, body } = &err else { panic!("{err:?}") };
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert!(body.contains(NO_ACTIVE_ACCOUNT), "{body}");
    assert!(!client.is_signed_in());
    client.sign_in("ada", PASSWORD).await.unwrap();
    assert!(client.is_signed_in());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_requests_waiting_for_a_failed_refresh_share_its_failure() {
    let app = TestServer::spawn().await;
    let client = app.reactive_client().build().unwrap();
    client.sign_up("ada", PASSWORD, None).await.unwrap();
    app.expire_access();
    app.fail_refreshes(50);
    // Every request has been sent with the expired token before the refresh fails.
    app.hold_refreshes_until_refused(50);

    let tasks = (0..50).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.request(Method::GET, "/api/me/").send().await.unwrap_err() })
    });
    let errors: Vec<_> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();

    assert!(errors.iter().all(|e| e.status() == Some(StatusCode::SERVICE_UNAVAILABLE)), "{errors:?}");
    assert_eq!(app.refreshes(), 1, "waiters are not sent one by one after a failure");
    app.fail_refreshes(0);
    let response = client.request(Method::GET, "/api/me/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.count("/api/token/refresh/", 200), 1);
}
