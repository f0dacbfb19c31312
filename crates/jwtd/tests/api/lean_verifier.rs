//! A service built on `jwtd-verify` alone: jwtd's refusals, claim guards, optional
//! authentication, and revocations from jwtd's feed (a logout-all refused at the service within one
//! poll, the feed driven by the test instead of its one-second timer).

use serde_json::json;

use crate::helpers::{bearer_refused, forge, LeanService, TestApp, NOT_PROVIDED};
use crate::services::SERVICE_TOKEN;

async fn spawn_with_service_token() -> TestApp {
    TestApp::builder().settings(|s| s.service_tokens = vec![jwtd::config::Secret::new(SERVICE_TOKEN)]).spawn().await
}

#[tokio::test]
async fn a_service_on_jwtd_verify_refuses_a_token_after_the_next_poll_of_a_logout_all() {
    let app = spawn_with_service_token().await;
    let service = LeanService::spawn(&app, Some(SERVICE_TOKEN)).await;
    let ada = app.sign_up("ada").await;
    let grace = app.sign_up("grace").await;
    assert_eq!(service.poll().await, 0);
    service.get("/api/me/", Some(&ada.access)).await.expect(200, &format!("hello, user {}", ada.id));

    app.logout_all(&ada.access).await.expect_status(200);
    // Until the service reads the feed, it cannot know.
    service.get("/api/me/", Some(&ada.access)).await.expect_status(200);
    assert_eq!(service.poll().await, 1);
    let refused = service.get("/api/me/", Some(&ada.access)).await;
    refused.expect(401, &bearer_refused("Token is blacklisted"));
    assert_eq!(refused.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    // Others are untouched; a sign-in after the logout works at once.
    service.get("/api/me/", Some(&grace.access)).await.expect_status(200);
    let again = app.sign_in(&ada).await;
    service.get("/api/me/", Some(&again.access)).await.expect_status(200);
    // Nothing new: nothing applied, and the cursor stays.
    let cursor = service.feed.as_ref().unwrap().cursor();
    assert_eq!(service.poll().await, 0);
    assert_eq!(service.feed.as_ref().unwrap().cursor(), cursor);

    // A service started later reads the whole log on its first poll.
    let late = LeanService::spawn(&app, Some(SERVICE_TOKEN)).await;
    late.get("/api/me/", Some(&ada.access)).await.expect_status(200);
    assert_eq!(late.poll().await, 1);
    late.get("/api/me/", Some(&ada.access)).await.expect(401, &bearer_refused("Token is blacklisted"));
}

#[tokio::test]
async fn the_feed_refuses_a_wrong_service_token_and_plain_http_elsewhere_than_loopback() {
    let app = spawn_with_service_token().await;
    let service = LeanService::spawn(&app, Some("not-the-service-token-0123456789abcdef")).await;
    let error = service.feed.as_ref().unwrap().poll().await.unwrap_err();
    assert_eq!(error.to_string(), format!("{} answered 401", app.url("/api/token/revocations/")));
    let verifier = jwtd_verify::Verifier::hmac(crate::helpers::SIGNING_KEY.as_bytes()).unwrap();
    let insecure = jwtd_verify::RevocationFeed::new("http://auth.example/api/token/revocations/", "t", verifier);
    assert!(matches!(insecure, Err(jwtd_verify::FeedError::Insecure { .. })));
}

#[tokio::test]
async fn refusals_guards_and_optional_authentication_answer_as_jwtd() {
    let app = TestApp::builder().env(&[("JWTD_TOKEN_CLAIMS", "is_staff")]).spawn().await;
    let service = LeanService::spawn(&app, None).await;
    let ada = app.sign_up("ada").await;

    // The same refusals as jwtd's own protected routes, byte for byte.
    for token in [None, Some("not.a.token"), Some(ada.refresh.as_str())] {
        let at_jwtd = match token {
            Some(t) => app.get_with_token("/api/me/", t).await,
            None => app.get("/api/me/").await,
        };
        let at_service = service.get("/api/me/", token).await;
        assert_eq!((at_service.status, &at_service.text), (at_jwtd.status, &at_jwtd.text), "{token:?}");
        assert_eq!(at_service.header("www-authenticate"), at_jwtd.header("www-authenticate"));
    }
    service.get("/api/me/", None).await.expect(401, NOT_PROVIDED);

    // The claim guard: 403 with insufficient_scope for a token without the claim.
    let forbidden = service.get("/api/staff/", Some(&ada.access)).await;
    forbidden.expect(403, r#"{"detail":"You do not have permission to perform this action."}"#);
    assert_eq!(forbidden.header("www-authenticate"), Some(r#"Bearer error="insufficient_scope""#));
    service.get("/api/staff/", None).await.expect(401, NOT_PROVIDED);
    let mut claims = app.claims_for("access", ada.id, crate::helpers::secs(60));
    claims["is_staff"] = json!(true);
    service.get("/api/staff/", Some(&forge(&claims))).await.expect(200, "staff: true");

    // Optional authentication: anonymous callers pass, a bad token does not.
    service.get("/api/hello/", None).await.expect(200, "hello, stranger");
    service.get("/api/hello/", Some(&ada.access)).await.expect(200, &format!("hello, user {}", ada.id));
    assert_eq!(service.get("/api/hello/", Some("not.a.token")).await.status, 401);

    // Expiry follows the injected clock.
    app.clock.advance(crate::helpers::secs(15 * 60));
    service.get("/api/me/", Some(&ada.access)).await.expect(401, &bearer_refused("Token is expired"));
}

#[tokio::test]
async fn a_session_revoked_at_jwtd_is_refused_by_the_service_after_the_next_poll() {
    let app = spawn_with_service_token().await;
    let service = LeanService::spawn(&app, Some(SERVICE_TOKEN)).await;
    let ada = app.sign_up("ada").await;
    let other = app.sign_in(&ada).await;
    // The session of a token is the first half of its jti (jwtd_proto::session).
    let session = crate::helpers::jti(&other.access)[..16].to_string();
    let request = app.client.delete(app.url(&format!("/api/auth/sessions/{session}/"))).bearer_auth(&ada.access);
    app.send(request).await.expect_status(200);
    service.get("/api/me/", Some(&other.access)).await.expect_status(200);
    assert_eq!(service.poll().await, 1);
    service.get("/api/me/", Some(&other.access)).await.expect(401, &bearer_refused("Token is blacklisted"));
    // The feed said which session.
    let feed = app.client.get(app.url("/api/token/revocations/")).bearer_auth(SERVICE_TOKEN);
    let row = &app.send(feed).await.json()["revocations"][0];
    assert_eq!((row["user_id"].as_i64(), row["session"].as_str()), (Some(ada.id), Some(session.as_str())));
    // The caller's own session keeps working.
    service.get("/api/me/", Some(&ada.access)).await.expect_status(200);
}
