//! POST /api/token/sliding/ and /api/token/sliding/refresh/: SimpleJWT's sliding tokens.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    bearer_refused, claims, forge, secs, spawn_app, spawn_app_with, NO_ACTIVE_ACCOUNT, PASSWORD, TOKEN_BLACKLISTED,
    TOKEN_INVALID,
};

#[tokio::test]
async fn obtain_sliding_answers_one_token_with_refresh_exp() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let reply = app.obtain_sliding("ada", PASSWORD).await;

    reply.expect_status(200);
    assert_eq!(reply.json().as_object().unwrap().keys().collect::<Vec<_>>(), ["token"]);
    let c = claims(&reply.field("token"));
    let now = app.now_secs();
    assert_eq!(c["token_type"], "sliding");
    assert_eq!(c["user_id"], json!(ada.id));
    assert_eq!(c["iat"], json!(now));
    assert_eq!(c["exp"], json!(now + 5 * 60));
    assert_eq!(c["refresh_exp"], json!(now + 86400));
}

#[tokio::test]
async fn obtain_sliding_refuses_bad_credentials() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    app.obtain_sliding("ada", "nope-nope").await.expect(401, NO_ACTIVE_ACCOUNT);
    app.obtain_sliding("ghost", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn sliding_refresh_keeps_jti_and_refresh_exp_and_moves_exp() {
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let token = app.obtain_sliding("ada", PASSWORD).await.field("token");
    app.advance(secs(120));

    let renewed = app.refresh_sliding(&token).await.expect_status(200).field("token");

    let (before, after) = (claims(&token), claims(&renewed));
    let now = app.now_secs();
    assert_eq!(after["jti"], before["jti"]);
    assert_eq!(after["refresh_exp"], before["refresh_exp"]);
    assert_eq!(after["iat"], json!(now));
    assert_eq!(after["exp"], json!(now + 5 * 60));
    assert_eq!(after["token_type"], "sliding");
    app.verify(&renewed).await.expect(200, "{}");
}

#[tokio::test]
async fn sliding_token_can_be_refreshed_until_refresh_exp_and_not_after() {
    let app = spawn_app_with(|s| {
        s.sliding_token_lifetime = Duration::from_secs(300);
        s.sliding_token_refresh_lifetime = Duration::from_secs(600);
    })
    .await;
    app.sign_up("ada").await;
    let mut token = app.obtain_sliding("ada", PASSWORD).await.field("token");
    let refresh_exp = claims(&token)["refresh_exp"].as_i64().unwrap();

    for _ in 0..2 {
        app.advance(secs(240));
        token = app.refresh_sliding(&token).await.expect_status(200).field("token");
    }
    app.advance(secs(120)); // now == refresh_exp; the token's own exp is still 180 s away
    assert_eq!(app.now_secs(), refresh_exp);
    app.verify(&token).await.expect(200, "{}");

    app.refresh_sliding(&token).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn sliding_token_past_refresh_exp_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut c = app.claims_for("sliding", ada.id, secs(300));
    c["refresh_exp"] = json!(app.now_secs() - 10);

    app.refresh_sliding(&forge(&c)).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn expired_sliding_token_is_refused_even_before_refresh_exp() {
    // as SimpleJWT: the token must itself be valid to be refreshed
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let token = app.obtain_sliding("ada", PASSWORD).await.field("token");
    app.advance(secs(300));

    app.refresh_sliding(&token).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn sliding_refresh_refuses_other_token_types() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut no_refresh_exp = app.claims_for("sliding", ada.id, secs(300));
    no_refresh_exp.as_object_mut().unwrap().remove("refresh_exp");

    app.refresh_sliding(&ada.access).await.expect(401, TOKEN_INVALID);
    app.refresh_sliding(&ada.refresh).await.expect(401, TOKEN_INVALID);
    app.refresh_sliding(&forge(&no_refresh_exp)).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn sliding_token_is_not_an_access_token_for_protected_routes() {
    // SimpleJWT's default AUTH_TOKEN_CLASSES holds AccessToken only.
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let token = app.obtain_sliding("ada", PASSWORD).await.field("token");

    app.me(&token).await.expect(401, &bearer_refused("Token has wrong type"));
}

#[tokio::test]
async fn sliding_refresh_is_refused_after_logout_all() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let token = app.obtain_sliding("ada", PASSWORD).await.field("token");
    app.advance(secs(2));

    app.logout_all(&ada.access).await.expect(200, "{}");
    app.advance(secs(2));

    app.refresh_sliding(&token).await.expect(401, TOKEN_BLACKLISTED);
}
