//! What other services see (SPEC §1): token introspection and the revocation feed behind
//! SERVICE_TOKENS, and forward-auth at `/api/auth/check/`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwtd::config::Secret;
use serde_json::{json, Value};

use crate::helpers::{flip_signature, secs, TestApp, NOT_PROVIDED};

/// The service token the test servers know.
pub const SERVICE_TOKEN: &str = "service-token-0123456789abcdef0123456789";

async fn spawn_with_service_token() -> TestApp {
    TestApp::builder().settings(|s| s.service_tokens = vec![Secret::new(SERVICE_TOKEN)]).spawn().await
}

impl TestApp {
    async fn introspect_as(&self, service_token: Option<&str>, token: &str) -> crate::helpers::Reply {
        let mut request = self.client.post(self.url("/api/token/introspect/")).form(&[("token", token)]);
        if let Some(t) = service_token {
            request = request.bearer_auth(t);
        }
        self.send(request).await
    }

    async fn introspect(&self, token: &str) -> Value {
        let reply = self.introspect_as(Some(SERVICE_TOKEN), token).await;
        reply.expect_status(200);
        reply.json()
    }

    async fn feed(&self, query: &str) -> crate::helpers::Reply {
        let request = self.client.get(self.url(&format!("/api/token/revocations/{query}"))).bearer_auth(SERVICE_TOKEN);
        self.send(request).await
    }
}

#[tokio::test]
async fn introspection_answers_claims_while_active_and_only_inactive_after_logout_all() {
    let app = spawn_with_service_token().await;
    let ada = app.sign_up("ada").await;

    let active = app.introspect(&ada.access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], ada.id.to_string());
    assert_eq!(active["user_id"], ada.id);
    assert_eq!(active["token_type"], "access");
    for claim in ["exp", "iat", "jti"] {
        assert!(active.get(claim).is_some(), "{claim} in {active}");
    }
    assert_eq!(app.introspect(&ada.refresh).await["token_type"], "refresh");

    // JSON bodies work too.
    let request = app
        .client
        .post(app.url("/api/token/introspect"))
        .bearer_auth(SERVICE_TOKEN)
        .json(&json!({"token": ada.access}));
    assert_eq!(app.send(request).await.json()["active"], true);

    app.logout_all(&ada.access).await.expect_status(200);
    assert_eq!(app.introspect(&ada.access).await, json!({"active": false}));
    assert_eq!(app.introspect(&ada.refresh).await, json!({"active": false}));

    // Anything else is inactive, and says nothing more.
    let grace = app.sign_up("grace").await;
    assert_eq!(app.introspect(&flip_signature(&grace.access)).await, json!({"active": false}));
    assert_eq!(app.introspect("not a token").await, json!({"active": false}));
    app.blacklist(&grace.refresh).await.expect_status(200);
    assert_eq!(app.introspect(&grace.refresh).await, json!({"active": false}));
    app.clock.advance(secs(15 * 60));
    assert_eq!(app.introspect(&grace.access).await, json!({"active": false}));

    // A missing token is a field error, as everywhere.
    let request = app.client.post(app.url("/api/token/introspect/")).bearer_auth(SERVICE_TOKEN).json(&json!({}));
    app.send(request).await.expect_json(400, json!({"token": ["This field is required."]}));
}

#[tokio::test]
async fn introspection_and_the_feed_need_a_service_token() {
    let app = spawn_with_service_token().await;
    let ada = app.sign_up("ada").await;

    let missing = app.introspect_as(None, &ada.access).await;
    missing.expect(401, NOT_PROVIDED);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    let wrong = app.introspect_as(Some("service-token-0123456789abcdef012345678X"), &ada.access).await;
    wrong.expect(401, r#"{"detail":"Invalid token."}"#);
    assert_eq!(wrong.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    // A user's own access token is no service token.
    app.introspect_as(Some(&ada.access), &ada.access).await.expect(401, r#"{"detail":"Invalid token."}"#);
    // Refused before the body is read.
    let request =
        app.client.post(app.url("/api/token/introspect/")).body("{").header("content-type", "application/json");
    app.send(request).await.expect(401, NOT_PROVIDED);

    app.get("/api/token/revocations/").await.expect(401, NOT_PROVIDED);
    let request = app.client.get(app.url("/api/token/revocations/")).bearer_auth("nope");
    app.send(request).await.expect(401, r#"{"detail":"Invalid token."}"#);
}

#[tokio::test]
async fn without_service_tokens_the_service_routes_are_not_served() {
    let app = TestApp::builder().spawn().await;
    let ada = app.sign_up("ada").await;
    let not_found = r#"{"detail":"Not found."}"#;
    app.introspect_as(Some(SERVICE_TOKEN), &ada.access).await.expect(404, not_found);
    app.feed("").await.expect(404, not_found);
    let schema = app.get("/api/schema/").await.json();
    assert!(schema["paths"].get("/api/token/introspect/").is_none());
    assert!(schema["paths"].get("/api/auth/check/").is_some(), "forward-auth needs no service token");
}

#[tokio::test]
async fn the_feed_pages_through_the_revocation_log_in_id_order() {
    let app = spawn_with_service_token().await;
    let empty = app.feed("").await;
    empty.expect_json(200, json!({"revocations": [], "next": 0}));

    let ada = app.sign_up("ada").await;
    let grace = app.sign_up("grace").await;
    app.logout_all(&ada.access).await.expect_status(200);
    let now = app.now_secs();
    app.logout_all(&grace.access).await.expect_status(200);

    let page = app.feed("?after=0").await.json();
    let rows = page["revocations"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{page}");
    assert_eq!(rows[0]["user_id"], ada.id);
    assert_eq!(rows[1]["user_id"], grace.id);
    assert!(rows[0]["valid_after"].as_i64().unwrap() > now - 1);
    assert_eq!(rows[0]["session"], Value::Null);
    let (first, second) = (rows[0]["id"].as_i64().unwrap(), rows[1]["id"].as_i64().unwrap());
    assert!(first < second);
    assert_eq!(page["next"], second);

    // Reading on from a cursor: what came after it, then nothing new.
    let rest = app.feed(&format!("?after={first}")).await.json();
    assert_eq!(rest["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(rest["revocations"][0]["id"], second);
    app.feed(&format!("?after={second}")).await.expect_json(200, json!({"revocations": [], "next": second}));

    // A page holds at most 1,000 rows; `next` leads on to the rest.
    let store = app.store().await;
    let now = jwtd::clock::Instant::from_secs(app.now_secs());
    for _ in 0..1004 {
        store.revoke_all(ada.id, now).await.unwrap();
    }
    store.revoke_all(grace.id, now).await.unwrap();
    let page = app.feed(&format!("?after={second}")).await.json();
    assert_eq!(page["revocations"].as_array().unwrap().len(), 1000);
    let next = page["next"].as_i64().unwrap();
    assert_eq!(next, page["revocations"][999]["id"].as_i64().unwrap());
    let last = app.feed(&format!("?after={next}")).await.json();
    assert_eq!(last["revocations"].as_array().unwrap().len(), 5);
    assert_eq!(last["revocations"][4]["user_id"], grace.id);

    let invalid = json!({"after": ["A valid integer is required."]});
    app.feed("?after=x").await.expect_json(400, invalid.clone());
    app.feed("?after=99999999999999999999").await.expect_json(400, invalid);
}

#[tokio::test]
async fn forward_auth_passes_the_user_and_claims_and_refuses_as_a_protected_route() {
    let app = TestApp::builder().spawn().await;
    let ada = app.sign_up("ada").await;
    let ok = app.get_with_token("/api/auth/check/", &ada.access).await;
    ok.expect(200, "{}");
    assert_eq!(ok.header("x-auth-user-id"), Some(ada.id.to_string().as_str()));
    let claims = URL_SAFE_NO_PAD.decode(ok.header("x-auth-claims").unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["user_id"], ada.id);
    assert_eq!(claims["token_type"], "access");

    let refused = app.get("/api/auth/check/").await;
    refused.expect(401, NOT_PROVIDED);
    assert_eq!(refused.header("x-auth-user-id"), None);
    app.get_with_token("/api/auth/check", &ada.refresh).await.expect_bearer_refused("Token has wrong type");
    app.logout_all(&ada.access).await.expect_status(200);
    app.get_with_token("/api/auth/check/", &ada.access).await.expect_bearer_refused("Token is blacklisted");
}
