//! GET /api/me/: the reference protected resource and the Bearer rules of SPEC §2.

use jwtd::clock::Clock;
use serde_json::json;

use crate::helpers::{
    bearer_refused, claims, flip_signature, forge, forge_with, secs, spawn_app, spawn_app_with, unsigned, with_payload,
    NOT_PROVIDED,
};

/// Django's isoformat of a whole second in UTC.
fn isoformat(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000000+00:00");
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap().format(format).unwrap()
}

#[tokio::test]
async fn me_answers_the_user_of_the_token() {
    let app = spawn_app().await;
    let joined = app.now_secs();
    let reply = app
        .post_sign_up(&json!({"username": "ada", "password": "correct horse battery", "email": "ada@example.com"}))
        .await;
    app.advance(secs(90));

    let me = app.me(&reply.field("access")).await;

    me.expect(
        200,
        &json!({
            "id": 1,
            "username": "ada",
            "email": "ada@example.com",
            "date_joined": isoformat(joined),
            "last_login": null,
        })
        .to_string(),
    );
}

#[tokio::test]
async fn me_identifies_each_tokens_user() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;

    assert_eq!(app.me(&ada.access).await.json()["username"], "ada");
    assert_eq!(app.me(&bob.access).await.json()["username"], "bob");
    let forged = forge(&app.claims_for("access", bob.id, secs(60)));
    assert_eq!(app.me(&forged).await.json()["username"], "bob");
}

#[tokio::test]
async fn me_without_credentials_is_401_with_a_challenge() {
    let app = spawn_app().await;
    let basic = app.send(app.client.get(app.url("/api/me/")).header("authorization", "Basic dXNlcjpwYXNz")).await;
    let empty = app.send(app.client.get(app.url("/api/me/")).header("authorization", "")).await;
    let other_scheme = app.send(app.client.get(app.url("/api/me/")).header("authorization", "JWT abc")).await;

    for reply in [app.get("/api/me/").await, basic, empty, other_scheme] {
        reply.expect(401, NOT_PROVIDED);
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    }
}

#[tokio::test]
async fn bearer_header_with_extra_parts_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    for value in ["Bearer", format!("Bearer {} extra", ada.access).as_str()] {
        let reply = app.send(app.client.get(app.url("/api/me/")).header("authorization", value)).await;
        reply.expect(
            401,
            r#"{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}"#,
        );
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    }
}

#[tokio::test]
async fn me_refuses_bad_tokens_with_the_reason() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let valid = app.claims_for("access", ada.id, secs(300));
    let mut expired = valid.clone();
    expired["exp"] = json!(app.now_secs() - 5);
    expired["iat"] = json!(app.now_secs() - 905);
    let mut no_jti = valid.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut no_type = valid.clone();
    no_type.as_object_mut().unwrap().remove("token_type");
    let mut tampered = claims(&ada.access);
    tampered["user_id"] = json!(ada.id + 1);
    let cases = [
        ("garbage", "garbage".to_string(), "Token is invalid"),
        ("bad signature", flip_signature(&ada.access), "Token is invalid"),
        ("tampered payload", with_payload(&ada.access, &tampered), "Token is invalid"),
        ("other key", forge_with(&valid, "another-secret-0123456789abcdef0123"), "Token is invalid"),
        ("alg none", unsigned(&valid), "Token is invalid"),
        ("expired", forge(&expired), "Token is expired"),
        ("refresh token", ada.refresh.clone(), "Token has wrong type"),
        ("no jti", forge(&no_jti), "Token has no id"),
        ("no type", forge(&no_type), "Token has no type"),
    ];

    for (case, token, message) in cases {
        let reply = app.me(&token).await;
        assert_eq!((reply.status, reply.text.clone()), (401, bearer_refused(message)), "case: {case}");
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#), "case: {case}");
    }
}

#[tokio::test]
async fn token_signed_with_another_hmac_size_is_refused() {
    // `alg` must equal the configured one (HS256), even with the right key.
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    let key = jsonwebtoken::EncodingKey::from_secret(crate::helpers::SIGNING_KEY.as_bytes());
    let token = jsonwebtoken::encode(&header, &app.claims_for("access", ada.id, secs(300)), &key).unwrap();

    app.me(&token).await.expect_bearer_refused("Token is invalid");
}

#[tokio::test]
async fn token_without_a_user_id_is_refused() {
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let mut c = app.claims_for("access", 1, secs(300));
    c.as_object_mut().unwrap().remove("user_id");

    let reply = app.me(&forge(&c)).await;

    reply.expect(401, r#"{"detail":"Token contained no recognizable user identification","code":"token_not_valid"}"#);
}

#[tokio::test]
async fn token_of_a_deleted_user_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    // Dated before the token, so that its revocation-log row (which the revocation poll may bring
    // in at any moment) does not cover it: the answer is the handler's, the user being gone.
    let earlier = jwtd::clock::Instant::from_millis(app.clock.now().millis() - 2_000);
    app.store().await.delete_user(ada.id, earlier).await.unwrap();

    let reply = app.me(&ada.access).await;

    reply.expect(401, r#"{"detail":"User not found","code":"user_not_found"}"#);
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="api""#));
}

#[tokio::test]
async fn token_of_an_inactive_user_is_refused() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.store().await.set_active(ada.id, false, app.clock.now()).await.unwrap();

    app.me(&ada.access).await.expect(401, r#"{"detail":"User is inactive","code":"user_inactive"}"#);
}

#[tokio::test]
async fn custom_auth_header_types_are_honoured() {
    let app = spawn_app_with(|s| s.auth_header_types = vec!["JWT".into(), "Bearer".into()]).await;
    let ada = app.sign_up("ada").await;

    for scheme in ["JWT", "Bearer"] {
        let value = format!("{scheme} {}", ada.access);
        let reply = app.send(app.client.get(app.url("/api/me/")).header("authorization", value)).await;
        reply.expect_status(200);
    }
}

#[tokio::test]
async fn post_on_me_is_405_with_allow() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let reply = app.send(app.client.post(app.url("/api/me/")).bearer_auth(&ada.access).json(&json!({}))).await;

    reply.expect(405, r#"{"detail":"Method \"POST\" not allowed."}"#);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[tokio::test]
async fn me_answers_are_not_cached() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    let reply = app.me(&ada.access).await;

    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn audience_and_issuer_are_written_and_required() {
    let app = spawn_app_with(|s| {
        s.audience = Some("jwtd-tests".into());
        s.issuer = Some("https://issuer.example".into());
    })
    .await;
    let ada = app.sign_up("ada").await;

    for token in [&ada.access, &ada.refresh] {
        assert_eq!(claims(token)["aud"], "jwtd-tests");
        assert_eq!(claims(token)["iss"], "https://issuer.example");
    }
    app.me(&ada.access).await.expect_status(200);
    let access = app.refresh(&ada.refresh).await.expect_status(200).field("access");
    app.me(&access).await.expect_status(200);

    let mut wrong = claims(&ada.access);
    wrong["aud"] = json!("someone-else");
    app.me(&forge(&wrong)).await.expect_bearer_refused("Token is invalid");
    let unmarked = app.claims_for("access", ada.id, secs(300));
    app.me(&forge(&unmarked)).await.expect_bearer_refused("Token is invalid");
}

#[tokio::test]
async fn user_id_claim_is_a_setting() {
    let app = spawn_app_with(|s| s.user_id_claim = "uid".into()).await;
    let ada = app.sign_up("ada").await;

    let c = claims(&ada.access);
    assert_eq!((c.get("uid"), c.get("user_id")), (Some(&json!(ada.id)), None));
    app.me(&ada.access).await.expect_status(200);
    let access = app.refresh(&ada.refresh).await.expect_status(200).field("access");
    assert_eq!(app.me(&access).await.json()["username"], "ada");
}

/// `/api/me/` answers from memory a profile read within the last second (`service/profiles.rs`).
/// A change another instance or the CLI makes shows once that second is over; one made through
/// this instance, or logged as a revocation, shows at once.
#[tokio::test]
async fn a_profile_changed_elsewhere_shows_within_a_second_and_at_once_after_this_instances_change() {
    let app = spawn_app_with(|s| s.update_last_login = true).await;
    let ada = app.sign_up("ada").await;
    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(null));

    // Another instance's sign-in: the profile read a moment ago is still answered…
    let elsewhere = app.now_secs();
    app.store().await.set_last_login(ada.id, app.clock.now()).await.unwrap();
    app.advance(std::time::Duration::from_millis(900));
    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(null));
    // …until it is a second old.
    app.advance(std::time::Duration::from_millis(100));
    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(isoformat(elsewhere)));

    // A sign-in through this instance shows at once.
    app.advance(secs(5));
    let here = app.now_secs();
    app.sign_in(&ada).await;
    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(isoformat(here)));
}

#[tokio::test]
async fn a_revocation_read_from_the_log_makes_the_profile_read_again() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let phone = app.sign_in(&ada).await;
    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(null));
    let at = app.now_secs();
    let store = app.store().await;
    store.set_last_login(ada.id, app.clock.now()).await.unwrap();
    // The phone's session is revoked; a revocation is logged, and the poll that reads it forgets
    // ada's profile here (as it does on every instance).
    let sessions = app.get_with_token("/api/auth/sessions/", &phone.access).await.json();
    let phone_session =
        sessions["sessions"].as_array().unwrap().iter().find(|s| s["current"] == json!(true)).unwrap()["id"].clone();
    let other = app
        .send(
            app.client
                .delete(app.url(&format!("/api/auth/sessions/{}/", phone_session.as_str().unwrap())))
                .bearer_auth(&ada.access),
        )
        .await;
    other.expect_status(200);
    app.background.poll_revocations().await.unwrap();

    assert_eq!(app.me(&ada.access).await.json()["last_login"], json!(isoformat(at)));
}
