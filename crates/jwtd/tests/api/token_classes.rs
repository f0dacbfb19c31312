//! AUTH_TOKEN_CLASSES: the token types accepted as Bearer (access by default; access, sliding).
//! A sliding token goes through every check an access token does; a refusal lists one message
//! per accepted class, as SimpleJWT's JWTAuthentication does.

use serde_json::json;

use crate::helpers::{forge, jwtd, secs, TestApp, BEARER_INVALID, PASSWORD};

async fn app_accepting(classes: &str) -> TestApp {
    TestApp::builder().env(&[("AUTH_TOKEN_CLASSES", classes)]).spawn().await
}

fn refused(messages: &[(&str, &str, &str)]) -> serde_json::Value {
    let messages: Vec<_> = messages
        .iter()
        .map(|(class, token_type, message)| json!({"token_class": class, "token_type": token_type, "message": message}))
        .collect();
    json!({"detail": BEARER_INVALID, "code": "token_not_valid", "messages": messages})
}

#[tokio::test]
async fn a_sliding_token_is_accepted_as_bearer_when_configured() {
    let app = app_accepting("access,sliding").await;
    let ada = app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");

    let me = app.me(&sliding).await;
    me.expect_status(200);
    assert_eq!(me.json()["username"], "ada");
    let renewed = app.refresh_sliding(&sliding).await.field("token");
    app.me(&renewed).await.expect_status(200);
    app.me(&ada.access).await.expect_status(200);
}

#[tokio::test]
async fn by_default_a_sliding_token_is_refused_for_its_type() {
    let app = TestApp::builder().spawn().await;
    app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");

    app.me(&sliding).await.expect_json(401, refused(&[("AccessToken", "access", "Token has wrong type")]));
}

#[tokio::test]
async fn with_sliding_only_an_access_token_is_refused() {
    let app = app_accepting("sliding").await;
    let ada = app.sign_up("ada").await;

    app.me(&ada.access).await.expect_json(401, refused(&[("SlidingToken", "sliding", "Token has wrong type")]));
}

#[tokio::test]
async fn a_refusal_lists_every_accepted_class_in_order() {
    let app = app_accepting("sliding,access").await;
    let ada = app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");

    app.me(&ada.refresh).await.expect_json(
        401,
        refused(&[
            ("SlidingToken", "sliding", "Token has wrong type"),
            ("AccessToken", "access", "Token has wrong type"),
        ]),
    );
    app.clock.advance(secs(5 * 60));
    app.me(&sliding).await.expect_json(
        401,
        refused(&[("SlidingToken", "sliding", "Token is expired"), ("AccessToken", "access", "Token is expired")]),
    );
}

#[tokio::test]
async fn a_sliding_bearer_token_is_refused_once_its_user_logs_out_everywhere() {
    let app = app_accepting("access,sliding").await;
    let ada = app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");
    app.clock.advance(secs(1));

    app.logout_all(&ada.access).await.expect(200, "{}");

    app.me(&sliding).await.expect_json(
        401,
        refused(&[
            ("AccessToken", "access", "Token has wrong type"),
            ("SlidingToken", "sliding", "Token is blacklisted"),
        ]),
    );
    app.refresh_sliding(&sliding).await.expect_status(401);
}

#[tokio::test]
async fn a_forged_sliding_token_without_refresh_exp_still_needs_a_valid_signature_and_expiry() {
    let app = app_accepting("access,sliding").await;
    let ada = app.sign_up("ada").await;
    let claims = app.claims_for("sliding", ada.id, secs(60));

    app.me(&forge(&claims)).await.expect_status(200);
    let mut expired = claims.clone();
    expired["exp"] = json!(app.now_secs());
    app.me(&forge(&expired)).await.expect_status(401);
    app.me(&crate::helpers::forge_with(&claims, "another-key-0123456789abcdef0123456789")).await.expect_status(401);
}

#[tokio::test]
async fn an_unknown_token_class_stops_the_server_with_exit_code_2() {
    for classes in ["refresh", "access,bogus", " , "] {
        let run = jwtd(&["config", "check"], &[("JWTD_AUTH_TOKEN_CLASSES", classes)], None).await;
        assert_eq!(run.code, Some(2), "{classes}: {run:?}");
        assert!(run.stderr.starts_with("jwtd: invalid settings: JWTD_AUTH_TOKEN_CLASSES: "), "{}", run.stderr);
    }
    let run = jwtd(
        &["config", "check"],
        &[("JWTD_AUTH_TOKEN_CLASSES", "rest_framework_simplejwt.tokens.SlidingToken, access")],
        None,
    )
    .await;
    assert!(run.stdout.lines().any(|l| l == "AUTH_TOKEN_CLASSES = sliding,access"), "{run:?}");
}
