//! Refresh with ROTATE_REFRESH_TOKENS (SPEC §4): new family members, blacklisting of the
//! rotated token, the grace period, reuse revoking the family, and SESSION_MAX_LIFETIME.

use std::time::Duration;

use jwtd::config::RotationPolicy;
use serde_json::json;

use crate::helpers::{claims, forge, jti, secs, spawn_app_with, TestApp, DAY, TOKEN_BLACKLISTED, TOKEN_INVALID};

/// Rotation with BLACKLIST_AFTER_ROTATION and the given grace period.
async fn rotating(grace: Duration) -> TestApp {
    spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace }).await
}

#[tokio::test]
async fn rotation_answers_a_new_refresh_token_of_the_same_user() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(30));

    let reply = app.refresh(&ada.refresh).await;

    reply.expect_status(200);
    let mut keys: Vec<String> = reply.json().as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["access", "refresh"]);
    let (old, new) = (claims(&ada.refresh), claims(&reply.field("refresh")));
    let now = app.now_secs();
    assert_ne!(new["jti"], old["jti"]);
    assert_eq!(new["token_type"], "refresh");
    assert_eq!(new["user_id"], json!(ada.id));
    assert_eq!(new["iat"], json!(now));
    assert_eq!(new["exp"], json!(now + 7 * 86400));
    app.me(&reply.field("access")).await.expect_status(200);
}

#[tokio::test]
async fn rotated_token_is_blacklisted() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;

    app.refresh(&ada.refresh).await.expect_status(200);

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn rotation_chain_gives_a_new_jti_each_time_and_refuses_every_rotated_token() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let mut token = ada.refresh.clone();
    let mut rotated = vec![];
    for _ in 0..4 {
        app.advance(secs(60));
        let reply = app.refresh(&token).await;
        reply.expect_status(200);
        let next = reply.field("refresh");
        assert!(!rotated.iter().any(|t: &String| jti(t) == jti(&next)) && jti(&next) != jti(&token));
        app.me(&reply.field("access")).await.expect_status(200);
        rotated.push(std::mem::replace(&mut token, next));
    }
    // Presenting a rotated token is reuse (no grace period), which revokes the family: so
    // only once the chain is done.
    for old in &rotated {
        app.refresh(old).await.expect(401, TOKEN_BLACKLISTED);
    }
}

#[tokio::test]
async fn reuse_of_a_rotated_token_revokes_the_whole_family() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.refresh(&successor).await.expect(401, TOKEN_BLACKLISTED);
    app.verify(&successor).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn reuse_leaves_other_families_alone() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let laptop = app.sign_in(&ada).await;
    let bob = app.sign_up("bob").await;
    app.refresh(&ada.refresh).await.expect_status(200);

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.refresh(&laptop.refresh).await.expect_status(200);
    app.refresh(&bob.refresh).await.expect_status(200);
}

#[tokio::test]
async fn logged_out_successor_cannot_be_refreshed() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.field("refresh");

    app.blacklist(&successor).await.expect(200, "{}");

    app.refresh(&successor).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn a_forged_unrecorded_refresh_token_is_rotated_and_then_blacklisted() {
    // A token issued elsewhere with the shared key (SimpleJWT) starts a family on first use.
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let token = forge(&app.claims_for("refresh", ada.id, DAY));

    let successor = app.refresh(&token).await.expect_status(200).field("refresh");

    app.refresh(&token).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&successor).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn an_unrecorded_refresh_token_of_jwtds_own_issue_is_refused_with_or_without_rotation() {
    // A refresh token without a row whose session (the first half of its jti, or a `sid`) is a
    // family of its user's is one jwtd issued, its row purged or restored away: it fails closed
    // instead of starting a family (review L-2). SimpleJWT's, whose session no row names, are
    // adopted.
    for app in [rotating(Duration::ZERO).await, crate::helpers::spawn_app().await] {
        let ada = app.sign_up("ada").await;
        let session = jti(&ada.refresh)[..16].to_string();
        let mut own = app.claims_for("refresh", ada.id, DAY);
        own["jti"] = json!(format!("{session}{}", &uuid::Uuid::new_v4().simple().to_string()[16..]));
        let mut with_sid = app.claims_for("refresh", ada.id, DAY);
        with_sid["sid"] = json!(session);

        for token in [forge(&own), forge(&with_sid)] {
            app.refresh(&token).await.expect(401, TOKEN_INVALID);
            app.verify(&token).await.expect(401, TOKEN_INVALID);
        }
        app.refresh(&forge(&app.claims_for("refresh", ada.id, DAY))).await.expect_status(200);
        let bob = app.sign_up("bob").await;
        let mut bobs = app.claims_for("refresh", bob.id, DAY);
        bobs["jti"] = own["jti"].clone();
        app.refresh(&forge(&bobs)).await.expect_status(200);
    }
}

// --- grace period ----------------------------------------------------------------------

#[tokio::test]
async fn within_the_grace_period_a_rotated_token_gets_the_same_successor_back() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(1));
    let first = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    for _ in 0..3 {
        app.advance(secs(3)); // 3, 6, 9 s after the rotation
        let again = app.refresh(&ada.refresh).await;
        again.expect_status(200);
        assert_eq!(claims(&again.field("refresh")), claims(&first), "the same successor, re-signed");
        app.me(&again.field("access")).await.expect_status(200);
    }
    // the successor moves the family on
    app.refresh(&first).await.expect_status(200);
}

#[tokio::test]
async fn after_the_grace_period_a_rotated_token_is_reuse_and_revokes_the_family() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    let other_session = app.sign_in(&ada).await;
    let bob = app.sign_up("bob").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");
    app.advance(secs(5));
    let third = app.refresh(&successor).await.expect_status(200).field("refresh");

    app.advance(secs(10)); // 15 s after the first rotation, 10 s after the second

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&third).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&successor).await.expect(401, TOKEN_BLACKLISTED);
    // other families, of the same user and of others, are untouched
    app.refresh(&other_session.refresh).await.expect_status(200);
    app.refresh(&bob.refresh).await.expect_status(200);
}

#[tokio::test]
async fn grace_period_ends_exactly_when_it_has_lasted() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    app.refresh(&ada.refresh).await.expect_status(200);

    app.advance(Duration::from_millis(9_999));
    app.refresh(&ada.refresh).await.expect_status(200);
    app.advance(Duration::from_millis(1));
    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn in_grace_a_token_whose_successor_was_rotated_is_blacklisted_and_revokes_nothing() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(1));
    let first = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");
    app.advance(secs(1));
    let second = app.refresh(&first).await.expect_status(200).field("refresh");
    app.advance(secs(1));

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.refresh(&second).await.expect_status(200);
}

#[tokio::test]
async fn grace_period_does_not_resurrect_a_logged_out_token() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;

    app.blacklist(&ada.refresh).await.expect(200, "{}");

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn grace_period_does_not_hand_back_a_logged_out_successor() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.field("refresh");
    app.blacklist(&successor).await.expect(200, "{}");

    app.advance(secs(2));

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn verify_of_a_rotated_token_is_blacklisted_even_within_the_grace_period() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    app.refresh(&ada.refresh).await.expect_status(200);

    app.verify(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    // verify does not count as reuse: the grace period still hands back the successor
    app.refresh(&ada.refresh).await.expect_status(200);
}

// --- SESSION_MAX_LIFETIME ------------------------------------------------------------------

#[tokio::test]
async fn rotation_never_extends_a_session_past_session_max_lifetime() {
    // defaults: REFRESH_TOKEN_LIFETIME 7d, SESSION_MAX_LIFETIME 30d
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;
    let started = app.now_secs();
    let mut token = ada.refresh.clone();
    for day in [6, 12, 18, 24] {
        app.advance(6 * DAY);
        token = app.refresh(&token).await.expect_status(200).field("refresh");
        let exp = claims(&token)["exp"].as_i64().unwrap();
        assert_eq!(exp, (started + (day + 7) * 86400).min(started + 30 * 86400), "day {day}");
    }

    app.advance(6 * DAY); // day 30: the session is over

    app.refresh(&token).await.expect(401, TOKEN_INVALID);
    app.sign_in(&ada).await; // signing in again starts a new session
}

#[tokio::test]
async fn session_max_lifetime_caps_the_first_refresh_token_too() {
    let app = spawn_app_with(|s| {
        s.rotation = RotationPolicy::on();
        s.refresh_token_lifetime = Duration::from_secs(3600);
        s.session_max_lifetime = Duration::from_secs(60);
    })
    .await;
    let ada = app.sign_up("ada").await;
    let started = app.now_secs();
    assert_eq!(claims(&ada.refresh)["exp"], json!(started + 60));

    app.advance(secs(30));
    let token = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");
    assert_eq!(claims(&token)["exp"], json!(started + 60));

    app.advance(secs(30));
    app.refresh(&token).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn token_older_than_session_max_lifetime_is_refused_even_before_its_exp() {
    // A long-lived token from elsewhere (SimpleJWT) whose session began 31 days ago.
    for rotation in [RotationPolicy::Off, RotationPolicy::on()] {
        let app = spawn_app_with(|s| s.rotation = rotation).await;
        let ada = app.sign_up("ada").await;
        let mut old = app.claims_for("refresh", ada.id, DAY);
        old["iat"] = json!(app.now_secs() - 31 * 86400);

        app.refresh(&forge(&old)).await.expect(401, TOKEN_INVALID);
    }
}

// --- rotation without blacklisting ---------------------------------------------------------

#[tokio::test]
async fn rotation_without_blacklist_keeps_the_old_token_usable() {
    let app = spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: false, grace: secs(10) }).await;
    let ada = app.sign_up("ada").await;

    let first = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");
    app.advance(secs(60));
    let second = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");

    assert_ne!(jti(&first), jti(&second));
    assert_ne!(jti(&first), jti(&ada.refresh));
    app.refresh(&first).await.expect_status(200);
    app.refresh(&second).await.expect_status(200);
    app.verify(&ada.refresh).await.expect(200, "{}");
}
