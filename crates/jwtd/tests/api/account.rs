//! POST /api/auth/password/ and /api/auth/logout-all/: revoke every refresh token of the user
//! and the access tokens issued before that second (SPEC §4). `iat` has whole seconds, so the
//! tests move the clock on by more than a second around the revoking call.

use jwtd::config::RotationPolicy;
use serde_json::json;

use crate::helpers::{
    forge, secs, spawn_app, spawn_app_with, DAY, NOT_PROVIDED, NO_ACTIVE_ACCOUNT, PASSWORD, TOKEN_BLACKLISTED,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn change(old: &str, new: &str) -> serde_json::Value {
    json!({"old_password": old, "new_password": new})
}

#[tokio::test]
async fn password_change_revokes_every_earlier_token_of_the_user() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let laptop = app.sign_in(&ada).await;
    let bob = app.sign_up("bob").await;
    app.advance(secs(2));

    app.change_password(&laptop.access, &change(PASSWORD, NEW_PASSWORD)).await.expect(200, "{}");
    app.advance(secs(2));

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&laptop.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.me(&ada.access).await.expect_bearer_refused("Token is blacklisted");
    app.me(&laptop.access).await.expect_bearer_refused("Token is blacklisted");
    // the old password is gone, the new one works and its tokens are good
    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    let fresh = app.obtain_pair("ada", NEW_PASSWORD).await;
    fresh.expect_status(200);
    app.refresh(&fresh.field("refresh")).await.expect_status(200);
    app.me(&fresh.field("access")).await.expect_status(200);
    // other users are untouched
    app.me(&bob.access).await.expect_status(200);
    app.refresh(&bob.refresh).await.expect_status(200);
}

#[tokio::test]
async fn sign_in_in_the_same_second_as_the_password_change_works() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(2));

    app.change_password(&ada.access, &change(PASSWORD, NEW_PASSWORD)).await.expect(200, "{}");

    let fresh = app.obtain_pair("ada", NEW_PASSWORD).await;
    fresh.expect_status(200);
    app.me(&fresh.field("access")).await.expect_status(200);
    app.refresh(&fresh.field("refresh")).await.expect_status(200);
}

#[tokio::test]
async fn password_change_with_a_wrong_old_password_changes_nothing() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(2));

    app.change_password(&ada.access, &change("not the password", NEW_PASSWORD))
        .await
        .expect(400, r#"{"old_password":["Wrong password."]}"#);

    app.advance(secs(2));
    app.refresh(&ada.refresh).await.expect_status(200);
    app.me(&ada.access).await.expect_status(200);
    app.sign_in(&ada).await;
    app.obtain_pair("ada", NEW_PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn password_change_refuses_a_short_new_password() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.change_password(&ada.access, &change(PASSWORD, "short"))
        .await
        .expect(400, r#"{"new_password":["Ensure this field has at least 8 characters."]}"#);
    app.sign_in(&ada).await;
}

#[tokio::test]
async fn password_change_needs_both_fields() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.change_password(&ada.access, &json!({}))
        .await
        .expect(400, r#"{"old_password":["This field is required."],"new_password":["This field is required."]}"#);
    app.change_password(&ada.access, &json!({"old_password": PASSWORD}))
        .await
        .expect(400, r#"{"new_password":["This field is required."]}"#);
    app.change_password(&ada.access, &json!({"old_password": "", "new_password": null})).await.expect(
        400,
        r#"{"old_password":["This field may not be blank."],"new_password":["This field may not be null."]}"#,
    );
}

#[tokio::test]
async fn password_change_needs_authentication() {
    let app = spawn_app().await;

    let reply = app.post_json("/api/auth/password/", &change(PASSWORD, NEW_PASSWORD)).await;

    reply.expect(401, NOT_PROVIDED);
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#));
}

#[tokio::test]
async fn password_change_with_a_revoked_token_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(2));
    app.change_password(&ada.access, &change(PASSWORD, NEW_PASSWORD)).await.expect(200, "{}");
    app.advance(secs(2));

    app.change_password(&ada.access, &change(NEW_PASSWORD, "a third passphrase"))
        .await
        .expect_bearer_refused("Token is blacklisted");
}

#[tokio::test]
async fn logout_all_revokes_every_refresh_token_and_earlier_access_token() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::on()).await;
    let ada = app.sign_up("ada").await;
    let laptop = app.sign_in(&ada).await;
    let rotated = app.refresh(&laptop.refresh).await;
    rotated.expect_status(200);
    let bob = app.sign_up("bob").await;
    app.advance(secs(2));

    app.logout_all(&laptop.access).await.expect(200, "{}");
    app.advance(secs(2));

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&rotated.field("refresh")).await.expect(401, TOKEN_BLACKLISTED);
    app.me(&ada.access).await.expect_bearer_refused("Token is blacklisted");
    app.me(&rotated.field("access")).await.expect_bearer_refused("Token is blacklisted");
    // other users are untouched
    app.me(&bob.access).await.expect_status(200);
    app.refresh(&bob.refresh).await.expect_status(200);
    // signing in again works
    let again = app.sign_in(&ada).await;
    app.refresh(&again.refresh).await.expect_status(200);
    app.me(&again.access).await.expect_status(200);
}

#[tokio::test]
async fn logout_all_needs_authentication() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    let reply = app.send(app.client.post(app.url("/api/auth/logout-all/"))).await;

    reply.expect(401, NOT_PROVIDED);
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#));
}

#[tokio::test]
async fn logout_all_refuses_a_refresh_token_as_bearer() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.logout_all(&ada.refresh).await.expect_bearer_refused("Token has wrong type");

    app.refresh(&ada.refresh).await.expect_status(200);
}

#[tokio::test]
async fn logout_all_revokes_refresh_tokens_without_iat_too() {
    // A token without iat cannot show it was issued after the revocation.
    for rotation in [RotationPolicy::Off, RotationPolicy::on()] {
        let app = spawn_app_with(|s| s.rotation = rotation).await;
        let ada = app.sign_up("ada").await;
        let mut c = app.claims_for("refresh", ada.id, DAY);
        c.as_object_mut().unwrap().remove("iat");
        let no_iat = forge(&c);
        app.advance(secs(2));

        app.logout_all(&ada.access).await.expect(200, "{}");
        app.advance(secs(2));

        let reply = app.refresh(&no_iat).await;
        assert_eq!((reply.status, reply.text.as_str()), (401, TOKEN_BLACKLISTED), "{rotation:?}");
        app.verify(&no_iat).await.expect(401, TOKEN_BLACKLISTED);
    }
}
