//! Sessions (SPEC §1, §3): a session is a refresh-token family; its id, 16 hex digits, rides in
//! the jti of every token issued in it (`jwtd_proto::session`), which stays a UUID4 in hex.

use std::time::Duration;

use jwtd::config::RotationPolicy;

use crate::helpers::{jti, secs, spawn_app, spawn_app_with};

/// The session a jti names, after checking it is a UUID4 in lowercase hex.
fn session(jti: &str) -> String {
    let parsed = uuid::Uuid::try_parse(jti).unwrap_or_else(|e| panic!("{jti}: {e}"));
    assert_eq!(parsed.get_version_num(), 4, "{jti}");
    assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{jti}");
    assert_eq!(parsed.simple().to_string(), jti, "32 lowercase hex digits");
    jwtd_proto::session::session_of(None, jti).unwrap().to_string()
}

#[tokio::test]
async fn the_tokens_of_a_sign_in_share_its_session_and_rotation_keeps_it() {
    let app =
        spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO }).await;
    let ada = app.sign_up("ada").await;
    let signed_up = session(&jti(&ada.refresh));
    assert_eq!(session(&jti(&ada.access)), signed_up);
    assert_ne!(jti(&ada.access), jti(&ada.refresh));
    let row = app.store().await.refresh_row(&jti(&ada.refresh)).await.unwrap().unwrap();
    assert_eq!(row.family, signed_up, "the family is the session");

    app.advance(secs(5));
    let rotated = app.refresh(&ada.refresh).await;
    rotated.expect_status(200);
    assert_eq!(session(&jti(&rotated.field("refresh"))), signed_up);
    assert_eq!(session(&jti(&rotated.field("access"))), signed_up);

    let again = app.sign_in(&ada).await;
    let signed_in = session(&jti(&again.refresh));
    assert_ne!(signed_in, signed_up, "each sign-in is a session of its own");
    assert_eq!(session(&jti(&again.access)), signed_in);
}

#[tokio::test]
async fn access_tokens_refreshed_without_rotation_stay_in_the_session() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let reply = app.refresh(&ada.refresh).await;
    reply.expect_status(200);
    assert_eq!(session(&jti(&reply.field("access"))), session(&jti(&ada.refresh)));
}

#[tokio::test]
async fn each_sliding_sign_in_is_a_session_of_its_own() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let first = app.obtain_sliding("ada", &ada.password).await;
    let second = app.obtain_sliding("ada", &ada.password).await;
    let (a, b) = (jti(&first.field("token")), jti(&second.field("token")));
    assert_ne!(session(&a), session(&b));
    assert_ne!(session(&a), session(&jti(&ada.refresh)));
}
