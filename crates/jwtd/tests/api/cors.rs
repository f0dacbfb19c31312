//! CORS_ALLOWED_ORIGINS: preflight for Authorization and Content-Type, credentials for the
//! listed origins only.

use crate::helpers::{Reply, TestApp};

const APP: &str = "http://127.0.0.1:3000";

async fn allowing(origins: &str) -> TestApp {
    TestApp::builder().env(&[("CORS_ALLOWED_ORIGINS", origins)]).spawn().await
}

async fn preflight(app: &TestApp, origin: &str, path: &str) -> Reply {
    app.send(
        app.client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type"),
    )
    .await
}

#[tokio::test]
async fn preflight_from_a_listed_origin_allows_authorization_content_type_and_credentials() {
    let app = allowing("http://127.0.0.1:3000, https://app.example").await;
    for path in ["/api/token/", "/api/token/refresh/", "/api/me/", "/api/auth/signup"] {
        let r = preflight(&app, APP, path).await;
        assert_eq!(r.status, 200, "{path}");
        let h = &r.headers;
        assert_eq!(h["access-control-allow-origin"], APP);
        assert_eq!(h["access-control-allow-credentials"], "true");
        let allowed_headers = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        assert!(h["vary"].to_str().unwrap().contains("origin"));
    }
    let r = preflight(&app, "https://app.example", "/api/token/").await;
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.example");
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_grant() {
    let app = allowing(APP).await;
    for origin in ["http://127.0.0.1:3001", "https://127.0.0.1:3000", "null", "http://evil.example"] {
        let r = preflight(&app, origin, "/api/token/").await;
        assert!(r.headers.get("access-control-allow-origin").is_none(), "{origin}");
        let r = app.send(app.client.get(app.url("/healthz")).header("Origin", origin)).await;
        assert!(r.headers.get("access-control-allow-origin").is_none(), "{origin}");
    }
}

#[tokio::test]
async fn actual_requests_from_a_listed_origin_carry_the_grant() {
    let app = allowing(APP).await;
    let access = app.sign_up("ada").await.access;
    let r = app.send(app.client.get(app.url("/api/me/")).bearer_auth(&access).header("Origin", APP)).await;
    r.expect_status(200);
    assert_eq!(r.headers["access-control-allow-origin"], APP);
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    // Errors carry it too, or the page could not read why it failed.
    let r = app.send(app.client.get(app.url("/api/me/")).header("Origin", APP)).await;
    r.expect_status(401);
    assert_eq!(r.headers["access-control-allow-origin"], APP);
}

#[tokio::test]
async fn a_wildcard_origin_is_refused_at_start() {
    let err = TestApp::builder().env(&[("CORS_ALLOWED_ORIGINS", "*")]).start_error().await;
    assert!(err.starts_with("JWTD_CORS_ALLOWED_ORIGINS: "), "{err}");
}
