//! POST /api/token/refresh/ without rotation (the default): a new access token, the refresh
//! token stays usable; every kind of bad token gets SPEC §2's one body.

use serde_json::{json, Value};

use crate::helpers::{
    claims, flip_signature, forge, forge_with, jti, secs, spawn_app, unsigned, with_payload, TestApp, TestUser, DAY,
    TOKEN_BLACKLISTED, TOKEN_INVALID,
};

#[tokio::test]
async fn refresh_answers_only_a_new_access_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(30));

    let reply = app.refresh(&ada.refresh).await;

    reply.expect_status(200);
    let body = reply.json();
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["access"]);
    let access = claims(&reply.field("access"));
    let now = app.now_secs();
    assert_eq!(access["token_type"], "access");
    assert_eq!(access["iat"], json!(now));
    assert_eq!(access["exp"], json!(now + 15 * 60));
    assert_eq!(access["user_id"], json!(ada.id));
    assert_ne!(access["jti"], claims(&ada.access)["jti"]);
    assert_ne!(access["jti"], claims(&ada.refresh)["jti"]);
    app.me(&reply.field("access")).await.expect_status(200);
}

#[tokio::test]
async fn refresh_token_is_reusable_without_rotation() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let mut seen = vec![jti(&ada.access)];
    for _ in 0..3 {
        app.advance(secs(60));
        let access = app.refresh(&ada.refresh).await.expect_status(200).field("access");
        assert!(!seen.contains(&jti(&access)));
        seen.push(jti(&access));
        app.me(&access).await.expect_status(200);
    }
}

#[tokio::test]
async fn access_token_copies_the_custom_claims_of_the_refresh_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut refresh = app.claims_for("refresh", ada.id, DAY);
    refresh["role"] = json!("admin");
    refresh["tenant"] = json!({"id": 7, "name": "acme"});
    app.advance(secs(5));

    let access = app.refresh(&forge(&refresh)).await.expect_status(200).field("access");

    let now = app.now_secs();
    let mut expected = refresh.clone();
    expected["token_type"] = json!("access");
    expected["iat"] = json!(now);
    expected["exp"] = json!(now + 15 * 60);
    expected["jti"] = claims(&access)["jti"].clone();
    assert_eq!(claims(&access), expected);
    assert_ne!(claims(&access)["jti"], refresh["jti"]);
    app.me(&access).await.expect_status(200);
}

#[tokio::test]
async fn user_id_as_a_decimal_string_is_accepted() {
    // SimpleJWT 5.5 writes user_id as a string.
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut refresh = app.claims_for("refresh", ada.id, DAY);
    refresh["user_id"] = json!(ada.id.to_string());

    let access = app.refresh(&forge(&refresh)).await.expect_status(200).field("access");

    assert_eq!(claims(&access)["user_id"], json!(ada.id.to_string()));
    assert_eq!(app.me(&access).await.json()["username"], "ada");
}

#[tokio::test]
async fn fractional_exp_and_iat_are_accepted() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let mut refresh = app.claims_for("refresh", ada.id, DAY);
    refresh["exp"] = json!(app.now_secs() as f64 + 600.5);
    refresh["iat"] = json!(app.now_secs() as f64 - 0.25);

    app.refresh(&forge(&refresh)).await.expect_status(200);
}

/// Every kind of bad refresh token the conformance suite knows, built for `user`.
fn bad_refresh_tokens(app: &TestApp, user: &TestUser) -> Vec<(&'static str, String)> {
    let fresh = || app.claims_for("refresh", user.id, DAY);
    let with = |name: &str, value: Value| {
        let mut c = fresh();
        c[name] = value;
        forge(&c)
    };
    let without = |name: &str| {
        let mut c = fresh();
        c.as_object_mut().unwrap().remove(name);
        forge(&c)
    };
    let now = app.now_secs();
    vec![
        ("garbage", "not-a-token".to_string()),
        ("empty parts", "..".to_string()),
        ("three dots", "a.b.c".to_string()),
        ("bad signature", flip_signature(&user.refresh)),
        ("tampered payload", with_payload(&user.refresh, &json!({"user_id": 999999}))),
        ("other key", forge_with(&fresh(), "some-other-secret-0123456789abcdef-xyz")),
        ("alg none", unsigned(&fresh())),
        ("expired", with("exp", json!(now - 30))),
        ("access token", user.access.clone()),
        ("sliding token", with("token_type", json!("sliding"))),
        ("unknown type", with("token_type", json!("bearer"))),
        ("no type", without("token_type")),
        ("no jti", without("jti")),
        ("no exp", without("exp")),
        ("exp as a string", with("exp", json!((now + 600).to_string()))),
        ("jti as a number", with("jti", json!(5))),
        ("user_id as an object", with("user_id", json!({"id": user.id}))),
        ("user_id as a float", with("user_id", json!(1.5))),
        ("user_id not decimal", with("user_id", json!("1x"))),
        ("unknown user", with("user_id", json!(999999))),
        ("no user_id", without("user_id")),
        ("iat in the future", with("iat", json!(now + 3600))),
    ]
}

#[tokio::test]
async fn bad_refresh_tokens_are_refused_with_one_body() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    for (case, token) in bad_refresh_tokens(&app, &ada) {
        let reply = app.refresh(&token).await;
        assert_eq!((reply.status, reply.text.as_str()), (401, TOKEN_INVALID), "case: {case}");
    }
}

#[tokio::test]
async fn bad_refresh_tokens_are_refused_by_blacklist_too() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    for (case, token) in bad_refresh_tokens(&app, &ada) {
        if case == "unknown user" {
            continue; // blacklisting looks no user up
        }
        let reply = app.blacklist(&token).await;
        assert_eq!((reply.status, reply.text.as_str()), (401, TOKEN_INVALID), "case: {case}");
    }
}

#[tokio::test]
async fn refresh_of_a_deleted_users_token_is_invalid() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    assert!(app.store().await.delete_user(ada.id).await.unwrap());

    app.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn blacklisted_token_cannot_be_refreshed() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn refresh_needs_no_authorization_header_and_ignores_a_bad_one() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let request =
        app.client.post(app.url("/api/token/refresh/")).bearer_auth("garbage").json(&json!({"refresh": ada.refresh}));
    app.send(request).await.expect_status(200);
}

#[tokio::test]
async fn refresh_token_without_iat_is_accepted() {
    // SimpleJWT before 5.3 wrote no iat; nothing was revoked, so nothing refuses it.
    for rotation in [jwtd::config::RotationPolicy::Off, jwtd::config::RotationPolicy::on()] {
        let app = crate::helpers::spawn_app_with(|s| s.rotation = rotation).await;
        let ada = app.sign_up("ada").await;
        let mut c = app.claims_for("refresh", ada.id, DAY);
        c.as_object_mut().unwrap().remove("iat");

        let reply = app.refresh(&forge(&c)).await;

        assert_eq!(reply.status, 200, "{rotation:?}: {}", reply.text);
    }
}

#[tokio::test]
async fn token_views_send_the_bearer_challenge_with_their_401() {
    // SimpleJWT's TokenViewBase answers its 401s with WWW-Authenticate, as a protected route.
    let app = spawn_app().await;
    app.sign_up("ada").await;

    for reply in [
        app.refresh("garbage").await,
        app.verify("garbage").await,
        app.blacklist("garbage").await,
        app.obtain_pair("ada", "wrong password").await,
    ] {
        reply.expect_status(401);
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#), "{}", reply.text);
    }
}
