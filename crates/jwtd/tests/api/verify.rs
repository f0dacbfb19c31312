//! POST /api/token/verify/: any token type; blacklisted refresh tokens and revoked access
//! tokens are refused.

use jwtd::config::RotationPolicy;
use serde_json::json;

use crate::helpers::{
    bearer_refused, flip_signature, forge, forge_with, secs, spawn_app, spawn_app_with, token_with, unsigned, PASSWORD,
    SIGNING_KEY, TOKEN_BLACKLISTED, TOKEN_INVALID,
};

#[tokio::test]
async fn verify_accepts_every_token_type() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");

    app.verify(&ada.access).await.expect(200, "{}");
    app.verify(&ada.refresh).await.expect(200, "{}");
    app.verify(&sliding).await.expect(200, "{}");
}

#[tokio::test]
async fn verify_does_not_consume_a_refresh_token() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::on()).await;
    let ada = app.sign_up("ada").await;

    app.verify(&ada.refresh).await.expect(200, "{}");
    app.verify(&ada.refresh).await.expect(200, "{}");

    app.refresh(&ada.refresh).await.expect_status(200);
}

#[tokio::test]
async fn verify_refuses_a_blacklisted_refresh_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn verify_refuses_a_blacklisted_refresh_token_whatever_the_settings() {
    // SimpleJWT's verify skips its blacklist check when BLACKLIST_AFTER_ROTATION is off.
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: false, grace: secs(0) }).await;
    let ada = app.sign_up("ada").await;
    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn verify_refuses_a_rotated_refresh_token() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: secs(0) }).await;
    let ada = app.sign_up("ada").await;
    app.refresh(&ada.refresh).await.expect_status(200);

    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn verify_refuses_access_tokens_revoked_by_logout_all() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;
    app.advance(secs(2));

    app.logout_all(&ada.access).await.expect(200, "{}");

    app.verify(&ada.access).await.expect(401, TOKEN_BLACKLISTED);
    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.verify(&bob.access).await.expect(200, "{}");
}

#[tokio::test]
async fn verify_accepts_a_valid_token_it_never_issued() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.verify(&forge(&app.claims_for("access", ada.id, secs(60)))).await.expect(200, "{}");
    app.verify(&forge(&app.claims_for("refresh", ada.id, secs(60)))).await.expect(200, "{}");
}

#[tokio::test]
async fn verify_refuses_bad_tokens_with_one_body() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let now = app.now_secs();
    let mut expired = app.claims_for("access", ada.id, secs(60));
    expired["exp"] = json!(now - 1);
    let mut no_jti = app.claims_for("access", ada.id, secs(60));
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut no_exp = app.claims_for("access", ada.id, secs(60));
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases = [
        ("garbage", "garbage".to_string()),
        ("bad signature", flip_signature(&ada.access)),
        ("other key", forge_with(&app.claims_for("access", ada.id, secs(60)), "x".repeat(40).as_str())),
        ("alg none", unsigned(&app.claims_for("access", ada.id, secs(60)))),
        ("expired", forge(&expired)),
        ("no jti", forge(&no_jti)),
        ("no exp", forge(&no_exp)),
    ];

    for (case, token) in cases {
        let reply = app.verify(&token).await;
        assert_eq!((reply.status, reply.text.as_str()), (401, TOKEN_INVALID), "case: {case}");
    }
}

#[tokio::test]
async fn verify_needs_the_token_field() {
    let app = spawn_app().await;

    app.post_json("/api/token/verify/", &json!({})).await.expect(400, r#"{"token":["This field is required."]}"#);
    app.post_json("/api/token/verify/", &json!({"refresh": "x"}))
        .await
        .expect(400, r#"{"token":["This field is required."]}"#);
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_invalid_everywhere() {
    // RFC 7515 4.1.11: a recipient must refuse a token naming critical extensions it doesn't
    // implement (jwtd implements none), or a crit that is not a non-empty list of strings.
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let sign = |input: &[u8]| {
        let key = jsonwebtoken::EncodingKey::from_secret(SIGNING_KEY.as_bytes());
        jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
    };
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null), json!("exp"), json!([1])] {
        let header = json!({"alg": "HS256", "typ": "JWT", "crit": crit});
        let access = token_with(header.clone(), &app.claims_for("access", ada.id, secs(60)), sign);
        let refresh = token_with(header, &app.claims_for("refresh", ada.id, secs(60)), sign);

        app.verify(&access).await.expect(401, TOKEN_INVALID);
        app.me(&access).await.expect(401, &bearer_refused("Token is invalid"));
        app.refresh(&refresh).await.expect(401, TOKEN_INVALID);
        app.blacklist(&refresh).await.expect(401, TOKEN_INVALID);
    }
    // The same claims without crit are fine.
    let plain = token_with(json!({"alg": "HS256", "typ": "JWT"}), &app.claims_for("access", ada.id, secs(60)), sign);
    app.me(&plain).await.expect_status(200);
}
