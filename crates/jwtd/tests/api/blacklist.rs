//! POST /api/token/blacklist/: logout of one refresh token (SPEC §4). A token already
//! blacklisted, rotated or revoked answers "Token is blacklisted", as SimpleJWT 5.5.1 does.

use jwtd::config::RotationPolicy;
use serde_json::json;

use crate::helpers::{forge, secs, spawn_app, spawn_app_with, DAY, TOKEN_BLACKLISTED, TOKEN_INVALID};

#[tokio::test]
async fn blacklist_answers_an_empty_object_and_the_token_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklisting_twice_answers_token_is_blacklisted_the_second_time() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.blacklist(&ada.refresh).await.expect(200, "{}");
    app.blacklist(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklisting_a_rotated_token_answers_token_is_blacklisted() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::on()).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    app.blacklist(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    // Nothing was revoked: the successor still refreshes.
    app.refresh(&successor).await.expect_status(200);
}

#[tokio::test]
async fn without_blacklist_after_rotation_a_rotated_token_is_blacklisted_once() {
    // SimpleJWT 5.5.1 with BLACKLIST_AFTER_ROTATION=False answers the same (measured).
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: false, grace: secs(10) }).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    app.blacklist(&ada.refresh).await.expect(200, "{}");
    app.blacklist(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.refresh(&successor).await.expect_status(200);
}

#[tokio::test]
async fn blacklisting_a_token_revoked_by_logout_all_answers_token_is_blacklisted() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.clock.advance(secs(1));
    app.logout_all(&ada.access).await.expect(200, "{}");

    app.blacklist(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklist_revokes_only_the_presented_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let laptop = app.sign_in(&ada).await;

    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.refresh(&laptop.refresh).await.expect_status(200);
    // the access token lives on until it expires, as in SimpleJWT
    app.me(&ada.access).await.expect_status(200);
}

#[tokio::test]
async fn forged_unrecorded_refresh_token_can_be_blacklisted() {
    // e.g. issued by SimpleJWT with the shared key: jwtd has no row for it yet
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let token = forge(&app.claims_for("refresh", ada.id, DAY));

    app.blacklist(&token).await.expect(200, "{}");

    app.refresh(&token).await.expect(401, TOKEN_BLACKLISTED);
    app.verify(&token).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklist_after_rotation_logs_out_the_successor() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::on()).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    app.blacklist(&successor).await.expect(200, "{}");

    app.refresh(&successor).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklist_refuses_an_access_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.blacklist(&ada.access).await.expect(401, TOKEN_INVALID);

    app.refresh(&ada.refresh).await.expect_status(200);
}

#[tokio::test]
async fn blacklist_refuses_an_expired_refresh_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(7 * DAY);

    app.blacklist(&ada.refresh).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn blacklist_needs_the_refresh_field() {
    let app = spawn_app().await;

    app.post_json("/api/token/blacklist/", &json!({"token": "x"}))
        .await
        .expect(400, r#"{"refresh":["This field is required."]}"#);
}
