//! jwtd as a library (SPEC §7): `build_state` keeps the revocation map in step as `serve` does,
//! `router()` mounts in a host application with a fallback of its own (nested or merged), and the
//! refresh cookie's path follows the prefix it is nested at.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jwtd::clock::{Clock, FakeClock};
use jwtd::AuthUser;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::{embedded_state, PASSWORD};

async fn send(app: &Router, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    app.clone().oneshot(request.unwrap()).await.unwrap()
}

async fn json_of(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn text_of(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn host_404() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "the host's own 404")
}

async fn hello(user: AuthUser) -> String {
    format!("hello, user {}", user.user_id)
}

#[tokio::test]
async fn the_router_nests_and_merges_into_a_host_with_its_own_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = embedded_state(dir.path(), &FakeClock::new(), |_| {}).await;
    let nested = Router::new()
        .route("/hello", get(hello))
        .with_state(state.clone())
        .nest("/auth", jwtd::router(state.clone()))
        .fallback(host_404);
    let signed_up =
        send(&nested, "POST", "/auth/api/auth/signup/", Some(json!({"username": "ada", "password": PASSWORD})), None)
            .await;
    assert_eq!(signed_up.status(), StatusCode::CREATED);
    let access = json_of(signed_up).await["access"].as_str().unwrap().to_string();
    assert_eq!(text_of(send(&nested, "GET", "/hello", None, Some(&access)).await).await, "hello, user 1");
    assert_eq!(send(&nested, "GET", "/auth/api/me/", None, Some(&access)).await.status(), StatusCode::OK);
    // Paths no route serves, under the prefix or not, are the host's.
    assert_eq!(text_of(send(&nested, "GET", "/nowhere", None, None).await).await, "the host's own 404");
    assert_eq!(text_of(send(&nested, "GET", "/auth/nowhere", None, None).await).await, "the host's own 404");

    // Merged beside a host's fallback: no panic, jwtd's paths served, the rest the host's.
    let merged = Router::new().fallback(host_404).merge(jwtd::router(state.clone()));
    assert_eq!(send(&merged, "GET", "/api/me/", None, Some(&access)).await.status(), StatusCode::OK);
    assert_eq!(text_of(send(&merged, "GET", "/nowhere", None, None).await).await, "the host's own 404");
    // A method jwtd's view does not serve is still DRF's 405.
    assert_eq!(send(&merged, "GET", "/api/token/", None, None).await.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Alone, the router answers DRF's 404 only through the fallback the host chose to add.
    let alone = jwtd::router(state).fallback(jwtd::http::not_found);
    assert_eq!(text_of(send(&alone, "GET", "/nowhere", None, None).await).await, r#"{"detail":"Not found."}"#);
}

#[tokio::test]
async fn the_refresh_cookie_path_follows_the_prefix_the_router_is_nested_at() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = embedded_state(dir.path(), &FakeClock::new(), |s| s.refresh_cookie = true).await;
    let host = Router::new().nest("/auth", jwtd::router(state.clone()));
    let body = json!({"username": "ada", "password": PASSWORD});
    let signed_up = send(&host, "POST", "/auth/api/auth/signup/", Some(body.clone()), None).await;
    let cookie = signed_up.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Secure-jwtd_refresh="), "{cookie}");
    assert!(cookie.contains("; Path=/auth/api/token/;"), "{cookie}");
    // The browser sends it back to the nested refresh route, where it is read.
    let token = cookie.split(';').next().unwrap();
    let request = Request::post("/auth/api/token/refresh/")
        .header("cookie", token)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(host.clone().oneshot(request).await.unwrap().status(), StatusCode::OK);
    // Not nested: the routes' own path.
    let plain = jwtd::router(state);
    let signed_in = send(&plain, "POST", "/api/token/", Some(body), None).await;
    assert!(signed_in.headers()["set-cookie"].to_str().unwrap().contains("; Path=/api/token/;"));
}

#[tokio::test(start_paused = true)]
async fn build_state_reads_the_revocation_log_and_polls_it_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new();
    let (state, settings) = embedded_state(dir.path(), &clock, |_| {}).await;
    let app = jwtd::router(state.clone());
    let body = json!({"username": "ada", "password": PASSWORD});
    let signed_up = json_of(send(&app, "POST", "/api/auth/signup/", Some(body), None).await).await;
    let access = signed_up["access"].as_str().unwrap().to_string();
    assert_eq!(send(&app, "GET", "/api/me/", None, Some(&access)).await.status(), StatusCode::OK);

    // Another instance on the same database revokes the user's tokens (as `jwtd user
    // set-password` or a logout-all there would).
    let other = jwtd::testing::Database::open(&settings).await.unwrap();
    other.revoke_all(1, clock.now()).await.unwrap();
    // The state's poll runs every second (tokio's clock, paused here: it moves on whenever the
    // runtime waits, as while the database writes, so the poll may already have run).
    let mut waited = Duration::ZERO;
    while send(&app, "GET", "/api/me/", None, Some(&access)).await.status() == StatusCode::OK {
        assert!(waited < Duration::from_secs(2), "the revocation was not polled within 2 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(send(&app, "GET", "/api/me/", None, Some(&access)).await.status(), StatusCode::UNAUTHORIZED);

    // A state built later reads the whole log at once.
    let (later, _) = embedded_state(dir.path(), &clock, |_| {}).await;
    let later = jwtd::router(later);
    assert_eq!(send(&later, "GET", "/api/me/", None, Some(&access)).await.status(), StatusCode::UNAUTHORIZED);
}
