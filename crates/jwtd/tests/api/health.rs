//! /healthz, /readyz and the JWKS document.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_is_ok() {
    let app = spawn_app().await;
    let reply = app.get("/healthz").await;
    reply.expect(200, r#"{"status":"ok"}"#);
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn readyz_is_ok_when_the_database_answers() {
    let app = spawn_app().await;
    app.get("/readyz").await.expect(200, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn jwks_is_empty_for_hmac() {
    let app = spawn_app().await;
    let reply = app.get("/.well-known/jwks.json").await;
    reply.expect(200, r#"{"keys":[]}"#);
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn health_routes_need_no_credentials_and_ignore_bad_ones() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json"] {
        app.get_with_token(path, "garbage").await.expect_status(200);
    }
}
