//! LOGIN_RATE (SPEC §5, default 10/min): failed sign-ins per username and per client address;
//! 429 with Retry-After while throttled; the window moves with the clock.

use jwtd::config::Rate;
use jwtd::Settings;

use crate::helpers::{secs, spawn_app_with, TestApp, NO_ACTIVE_ACCOUNT, PASSWORD};

async fn limited(count: u32) -> TestApp {
    spawn_app_with(|s| s.login_rate = Some(Rate { count, per: secs(60) })).await
}

fn throttled(seconds: u64) -> String {
    let unit = if seconds == 1 { "second" } else { "seconds" };
    format!(r#"{{"detail":"Request was throttled. Expected available in {seconds} {unit}."}}"#)
}

#[tokio::test]
async fn failed_sign_ins_past_the_rate_are_throttled_with_retry_after() {
    let app = limited(3).await;
    app.sign_up("ada").await;
    for _ in 0..3 {
        app.obtain_pair("ada", "wrong password").await.expect(401, NO_ACTIVE_ACCOUNT);
    }

    let reply = app.obtain_pair("ada", "wrong password").await;

    reply.expect(429, &throttled(60));
    assert_eq!(reply.header("retry-after"), Some("60"));
    // the right password is throttled too while the window lasts
    app.obtain_pair("ada", PASSWORD).await.expect(429, &throttled(60));
}

#[tokio::test]
async fn the_wait_shrinks_as_time_passes_and_ends_with_the_window() {
    let app = limited(3).await;
    app.sign_up("ada").await;
    for _ in 0..3 {
        app.obtain_pair("ada", "wrong password").await.expect_status(401);
    }

    app.advance(secs(45));
    let reply = app.obtain_pair("ada", PASSWORD).await;
    reply.expect(429, &throttled(15));
    assert_eq!(reply.header("retry-after"), Some("15"));
    app.advance(secs(14));
    app.obtain_pair("ada", PASSWORD).await.expect(429, &throttled(1));

    app.advance(secs(1));

    app.obtain_pair("ada", PASSWORD).await.expect_status(200);
}

#[tokio::test]
async fn successful_sign_ins_do_not_count() {
    let app = limited(2).await;
    let ada = app.sign_up("ada").await;
    for _ in 0..5 {
        app.sign_in(&ada).await;
    }
    app.obtain_pair("ada", "wrong password").await.expect(401, NO_ACTIVE_ACCOUNT);
    app.sign_in(&ada).await;
}

#[tokio::test]
async fn the_client_address_is_limited_across_usernames() {
    let app = limited(3).await;
    app.sign_up("ada").await;
    for name in ["ghost1", "ghost2", "ghost3"] {
        app.obtain_pair(name, "whatever").await.expect(401, NO_ACTIVE_ACCOUNT);
    }

    app.obtain_pair("ada", PASSWORD).await.expect(429, &throttled(60));
}

#[tokio::test]
async fn sliding_obtain_and_sign_in_share_the_limit() {
    let app = limited(2).await;
    app.sign_up("ada").await;
    app.obtain_sliding("ada", "wrong password").await.expect(401, NO_ACTIVE_ACCOUNT);
    app.post_json("/api/auth/signin/", &serde_json::json!({"username": "ada", "password": "nope"}))
        .await
        .expect(401, NO_ACTIVE_ACCOUNT);

    app.obtain_sliding("ada", PASSWORD).await.expect(429, &throttled(60));
    app.obtain_pair("ada", PASSWORD).await.expect(429, &throttled(60));
}

#[tokio::test]
async fn throttling_does_not_touch_refresh() {
    let app = limited(1).await;
    let ada = app.sign_up("ada").await;
    app.obtain_pair("ada", "wrong password").await.expect_status(401);
    app.obtain_pair("ada", PASSWORD).await.expect_status(429);

    app.refresh(&ada.refresh).await.expect_status(200);
    app.me(&ada.access).await.expect_status(200);
}

#[tokio::test]
async fn the_eleventh_wrong_sign_in_within_a_minute_is_throttled_and_a_right_one_after_the_window_works() {
    let app = spawn_app_with(|s| s.login_rate = Settings::default().login_rate).await;
    app.sign_up("ada").await;
    for attempt in 1..=10 {
        app.advance(secs(1));
        let r = app.obtain_pair("ada", "wrong password").await;
        assert_eq!((r.status, r.text.as_str()), (401, NO_ACTIVE_ACCOUNT), "attempt {attempt}");
    }
    let r = app.obtain_pair("ada", "wrong password").await;
    // The first failure was 9 s ago: it leaves the one-minute window in 51 s.
    r.expect(429, &throttled(51));
    assert_eq!(r.header("retry-after"), Some("51"));
    // Throttled means throttled: not even the right password is tried inside the window.
    app.obtain_pair("ada", PASSWORD).await.expect_status(429);
    app.obtain_sliding("ada", PASSWORD).await.expect_status(429);

    app.advance(secs(51));
    let r = app.obtain_pair("ada", PASSWORD).await;
    r.expect_status(200);
    let body = r.json();
    assert!(body["access"].is_string() && body["refresh"].is_string());
}

#[tokio::test]
async fn successful_sign_ins_at_a_rate_from_the_environment_do_not_count() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "3/min")]).spawn().await;
    app.sign_up("ada").await;
    for _ in 0..10 {
        app.obtain_pair("ada", PASSWORD).await.expect_status(200);
    }
}

#[tokio::test]
async fn one_address_trying_many_usernames_is_throttled_too() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "5/min")]).spawn().await;
    app.sign_up("ada").await;
    for i in 0..5 {
        app.obtain_pair(&format!("nobody{i}"), "wrong password").await.expect_status(401);
    }
    // Every request of this test comes from 127.0.0.1: a fresh username does not help.
    let r = app.obtain_pair("somebody-else", "wrong password").await;
    r.expect_status(429);
    assert_eq!(r.header("retry-after"), Some("60"));
    app.obtain_pair("ada", PASSWORD).await.expect_status(429);
    app.advance(secs(60));
    app.obtain_pair("ada", PASSWORD).await.expect_status(200);
}

#[tokio::test]
async fn login_rate_off_never_throttles() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "off")]).spawn().await;
    app.sign_up("ada").await;
    for _ in 0..15 {
        app.obtain_pair("ada", "wrong password").await.expect_status(401);
    }
}
