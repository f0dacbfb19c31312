//! POST /api/token/ and /api/auth/signin/: credentials for a new pair.

use serde_json::json;

use crate::helpers::{claims, spawn_app, spawn_app_with, NO_ACTIVE_ACCOUNT, PASSWORD, TOKEN_INVALID};

#[tokio::test]
async fn obtain_pair_answers_refresh_and_access() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let reply = app.obtain_pair("ada", PASSWORD).await;

    reply.expect_status(200);
    let body = reply.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["refresh", "access"]);
    let (refresh, access) = (claims(&reply.field("refresh")), claims(&reply.field("access")));
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["user_id"], json!(ada.id));
    assert_eq!(access["user_id"], json!(ada.id));
    assert_ne!(reply.field("refresh"), ada.refresh, "each sign-in is a new token");
}

#[tokio::test]
async fn sign_in_is_the_same_view_as_obtain_pair() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let reply = app.post_json("/api/auth/signin/", &json!({"username": "ada", "password": PASSWORD})).await;

    reply.expect_status(200);
    assert_eq!(claims(&reply.field("access"))["user_id"], json!(ada.id));
    app.post_json("/api/auth/signin/", &json!({"username": "ada", "password": "wrong password"}))
        .await
        .expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    app.obtain_pair("ada", "correct horse batteryx").await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;

    app.obtain_pair("ghost", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn username_is_case_sensitive() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    app.obtain_pair("ADA", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.obtain_pair("Ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn password_is_checked_exactly() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    app.obtain_pair("ada", "CORRECT HORSE BATTERY").await.expect(401, NO_ACTIVE_ACCOUNT);
    app.obtain_pair("ada", "correct horse batter").await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn inactive_user_cannot_sign_in_until_activated_again() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let store = app.store().await;

    assert!(store.set_active(ada.id, false).await.unwrap());
    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.obtain_sliding("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);

    assert!(store.set_active(ada.id, true).await.unwrap());
    app.obtain_pair("ada", PASSWORD).await.expect_status(200);
    app.refresh(&ada.refresh).await.expect_status(200);
}

#[tokio::test]
async fn inactive_users_refresh_works_when_check_user_is_active_is_off() {
    let app = spawn_app_with(|s| s.check_user_is_active = false).await;
    let ada = app.sign_up("ada").await;
    app.store().await.set_active(ada.id, false).await.unwrap();

    app.refresh(&ada.refresh).await.expect_status(200);
    // Django's ModelBackend refuses inactive users whatever SimpleJWT's setting.
    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn form_encoded_and_multipart_credentials_work() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    app.post_form("/api/token/", &[("username", "ada"), ("password", PASSWORD)]).await.expect_status(200);

    let boundary = "jwtd-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nada\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PASSWORD}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    app.post_raw("/api/token/", Some(&content_type), body).await.expect_status(200);
}

#[tokio::test]
async fn last_login_is_recorded_only_with_update_last_login() {
    let off = spawn_app().await;
    off.sign_up("ada").await;
    let pair = off.obtain_pair("ada", PASSWORD).await;
    assert_eq!(off.me(&pair.field("access")).await.json()["last_login"], json!(null));

    let on = spawn_app_with(|s| s.update_last_login = true).await;
    on.sign_up("ada").await;
    on.advance(crate::helpers::secs(5));
    let pair = on.obtain_pair("ada", PASSWORD).await;
    let me = on.me(&pair.field("access")).await.json();
    let expected = time::OffsetDateTime::from_unix_timestamp(on.now_secs()).unwrap();
    let text = me["last_login"].as_str().expect("last_login set");
    assert_eq!(time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap(), expected);
    assert_ne!(me["last_login"], me["date_joined"]);
}
