//! Token expiry against the injected clock: `exp <= now - LEEWAY` is expired (SimpleJWT's
//! rule, so `exp == now` is expired).

use serde_json::json;

use crate::helpers::{forge, secs, spawn_app, spawn_app_with, DAY, PASSWORD, TOKEN_INVALID};

#[tokio::test]
async fn access_token_is_good_until_the_second_before_exp() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.advance(secs(15 * 60 - 1));
    app.me(&ada.access).await.expect_status(200);

    app.advance(secs(1)); // exp == now
    app.me(&ada.access).await.expect_bearer_refused("Token is expired");
    app.verify(&ada.access).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn refresh_token_expires_after_refresh_token_lifetime() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.advance(7 * DAY - secs(1));
    let access = app.refresh(&ada.refresh).await.expect_status(200).field("access");
    app.me(&access).await.expect_status(200);

    app.advance(secs(1));
    app.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);
    app.verify(&ada.refresh).await.expect(401, TOKEN_INVALID);
    // a fresh access token made just before still lives its own lifetime
    app.me(&access).await.expect_status(200);
}

#[tokio::test]
async fn an_access_token_from_a_refresh_lives_its_own_lifetime() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(600));
    let access = app.refresh(&ada.refresh).await.field("access");

    app.advance(secs(15 * 60 - 1));
    app.me(&access).await.expect_status(200);
    app.me(&ada.access).await.expect_bearer_refused("Token is expired");
    app.advance(secs(1));
    app.me(&access).await.expect_bearer_refused("Token is expired");
}

#[tokio::test]
async fn fractional_exp_expires_at_its_exact_time() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut c = app.claims_for("access", ada.id, secs(0));
    c["exp"] = json!(app.now_secs() as f64 + 1.5);
    let token = forge(&c);

    app.advance(std::time::Duration::from_millis(1499));
    app.me(&token).await.expect_status(200);
    app.advance(std::time::Duration::from_millis(1));
    app.me(&token).await.expect_bearer_refused("Token is expired");
}

#[tokio::test]
async fn leeway_extends_acceptance_past_exp() {
    let app = spawn_app_with(|s| s.leeway = secs(30)).await;
    let ada = app.sign_up("ada").await;

    app.advance(secs(15 * 60 + 29));
    app.me(&ada.access).await.expect_status(200);
    app.advance(secs(1));
    app.me(&ada.access).await.expect_bearer_refused("Token is expired");
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut c = app.claims_for("access", ada.id, secs(600));
    c["iat"] = json!(app.now_secs() + 60);

    app.me(&forge(&c)).await.expect_bearer_refused("Token is invalid");
}

#[tokio::test]
async fn lifetimes_are_settings() {
    let app = spawn_app_with(|s| {
        s.access_token_lifetime = secs(60);
        s.refresh_token_lifetime = secs(3600);
    })
    .await;
    let ada = app.sign_up("ada").await;
    let pair = app.obtain_pair("ada", PASSWORD).await;
    let now = app.now_secs();

    assert_eq!(crate::helpers::claims(&ada.access)["exp"], json!(now + 60));
    assert_eq!(crate::helpers::claims(&pair.field("refresh"))["exp"], json!(now + 3600));
    app.advance(secs(60));
    app.me(&ada.access).await.expect_bearer_refused("Token is expired");
}
