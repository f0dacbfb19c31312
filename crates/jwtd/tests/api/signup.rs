//! POST /api/auth/signup/: 201 with the user and a pair; DRF validation errors.

use serde_json::json;

use crate::helpers::{claims, header, secs, spawn_app, TestApp, PASSWORD};

#[tokio::test]
async fn sign_up_answers_201_with_the_user_and_a_token_pair() {
    let app = spawn_app().await;

    let reply = app.post_sign_up(&json!({"username": "ada", "password": PASSWORD})).await;

    reply.expect_status(201);
    let body = reply.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["user", "refresh", "access"]);
    assert_eq!(body["user"], json!({"id": 1, "username": "ada"}));
    let (refresh, access) = (reply.field("refresh"), reply.field("access"));
    assert_eq!(header(&refresh), json!({"typ": "JWT", "alg": "HS256"}));
    let now = app.now_secs();
    let r = claims(&refresh);
    assert_eq!(r["token_type"], "refresh");
    assert_eq!(r["user_id"], json!(1));
    assert_eq!(r["iat"], json!(now));
    assert_eq!(r["exp"], json!(now + 7 * 86400));
    let a = claims(&access);
    assert_eq!(a["token_type"], "access");
    assert_eq!(a["user_id"], json!(1));
    assert_eq!(a["exp"], json!(now + 15 * 60));
    for c in [&r, &a] {
        let jti = c["jti"].as_str().unwrap();
        assert!(jti.len() == 32 && jti.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{jti}");
    }
    assert_ne!(r["jti"], a["jti"]);
}

#[tokio::test]
async fn signed_up_tokens_work_at_once() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.me(&ada.access).await.expect_status(200);
    app.refresh(&ada.refresh).await.expect_status(200);
    app.sign_in(&ada).await;
}

#[tokio::test]
async fn user_ids_count_up() {
    let app = spawn_app().await;
    assert_eq!(app.sign_up("ada").await.id, 1);
    assert_eq!(app.sign_up("bob").await.id, 2);
}

#[tokio::test]
async fn duplicate_username_is_a_400_on_the_username_field() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    let reply = app.post_sign_up(&json!({"username": "ada", "password": "another password"})).await;

    reply.expect(400, r#"{"username":["A user with that username already exists."]}"#);
}

#[tokio::test]
async fn usernames_differing_in_case_are_different_users() {
    let app = spawn_app().await;
    let lower = app.sign_up("ada").await;
    let upper = app.sign_up("Ada").await;
    assert_ne!(lower.id, upper.id);
}

#[tokio::test]
async fn short_password_is_refused() {
    let app = spawn_app().await;

    let reply = app.post_sign_up(&json!({"username": "ada", "password": "short"})).await;

    reply.expect(400, r#"{"password":["Ensure this field has at least 8 characters."]}"#);
    app.obtain_pair("ada", "short").await.expect(401, crate::helpers::NO_ACTIVE_ACCOUNT);
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app().await;
    let long_name = "a".repeat(151);

    let reply = app.post_sign_up(&json!({"username": long_name, "password": "short", "email": "not-an-email"})).await;

    reply.expect_json(
        400,
        json!({
            "username": ["Ensure this field has no more than 150 characters."],
            "password": ["Ensure this field has at least 8 characters."],
            "email": ["Enter a valid email address."],
        }),
    );
}

#[tokio::test]
async fn username_of_150_characters_is_accepted() {
    let app = spawn_app().await;
    let reply = app.post_sign_up(&json!({"username": "a".repeat(150), "password": PASSWORD})).await;
    reply.expect_status(201);
}

#[tokio::test]
async fn missing_fields_are_required() {
    let app = spawn_app().await;

    app.post_sign_up(&json!({}))
        .await
        .expect(400, r#"{"username":["This field is required."],"password":["This field is required."]}"#);
    app.post_sign_up(&json!({"username": "ada"})).await.expect(400, r#"{"password":["This field is required."]}"#);
}

#[tokio::test]
async fn email_is_kept_and_shown_by_me() {
    let app = spawn_app().await;

    let reply = app.post_sign_up(&json!({"username": "ada", "password": PASSWORD, "email": "ada@example.com"})).await;

    reply.expect_status(201);
    let me = app.me(&reply.field("access")).await;
    me.expect_status(200);
    assert_eq!(me.json()["email"], "ada@example.com");
}

#[tokio::test]
async fn email_is_optional_and_empty_when_absent() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    assert_eq!(app.me(&ada.access).await.json()["email"], "");
}

#[tokio::test]
async fn form_encoded_sign_up_works() {
    let app = spawn_app().await;

    let reply = app.post_form("/api/auth/signup", &[("username", "ada"), ("password", PASSWORD)]).await;

    reply.expect_status(201);
    assert_eq!(reply.json()["user"], json!({"id": 1, "username": "ada"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ups_of_one_name_create_one_user() {
    let app = spawn_app().await;
    let body = json!({"username": "ada", "password": PASSWORD});

    let replies = futures::future::join_all((0..10).map(|_| app.post_sign_up(&body))).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1);
    for r in replies.iter().filter(|r| r.status != 201) {
        r.expect(400, r#"{"username":["A user with that username already exists."]}"#);
    }
}

#[tokio::test]
async fn numbers_are_accepted_as_strings_like_drf_char_fields() {
    let app = spawn_app().await;

    let reply = app.post_sign_up(&json!({"username": 12345, "password": 123456789})).await;

    reply.expect_status(201);
    assert_eq!(reply.json()["user"]["username"], "12345");
    app.obtain_pair("12345", "123456789").await.expect_status(200);
}

#[tokio::test]
async fn surrounding_whitespace_is_trimmed_like_drf_char_fields() {
    let app = spawn_app().await;

    let reply = app.post_sign_up(&json!({"username": "  ada ", "password": PASSWORD})).await;

    reply.expect_status(201);
    assert_eq!(reply.json()["user"]["username"], "ada");
    app.obtain_pair(" ada", PASSWORD).await.expect_status(200);
}

#[tokio::test]
async fn closed_sign_up_answers_drf_permission_denied_before_reading_the_body() {
    let app = TestApp::builder().env(&[("SIGNUP", "closed")]).spawn().await;
    let denied = r#"{"detail":"You do not have permission to perform this action."}"#;

    app.post_sign_up(&json!({"username": "ada", "password": PASSWORD})).await.expect(403, denied);
    app.post_raw("/api/auth/signup/", Some("text/plain"), "x").await.expect(403, denied);

    app.obtain_pair("ada", PASSWORD).await.expect_status(401);
}

#[tokio::test]
async fn sign_ups_past_signup_rate_from_one_address_are_throttled() {
    let app = TestApp::builder().env(&[("SIGNUP_RATE", "3/h")]).spawn().await;
    for name in ["a1", "a2"] {
        app.post_sign_up(&json!({"username": name, "password": PASSWORD})).await.expect_status(201);
    }
    // Refused sign-ups count too, as DRF's view throttles count every request.
    app.post_sign_up(&json!({"username": "a3", "password": "short"})).await.expect_status(400);

    let reply = app.post_sign_up(&json!({"username": "a4", "password": PASSWORD})).await;

    reply.expect(429, r#"{"detail":"Request was throttled. Expected available in 3600 seconds."}"#);
    assert_eq!(reply.header("retry-after"), Some("3600"));
    app.advance(secs(3600));
    app.post_sign_up(&json!({"username": "a4", "password": PASSWORD})).await.expect_status(201);
}
