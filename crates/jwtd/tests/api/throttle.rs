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

#[tokio::test]
async fn concurrent_wrong_passwords_check_at_most_the_rate() {
    // SPEC §5: an attempt is reserved before the password is checked, so 120 wrong passwords
    // sent at once against 10/min get at most ten 401s; the rest are 429 without a check.
    let app = TestApp::builder().env(&[("LOGIN_RATE", "10/min")]).spawn().await;
    app.sign_up("ada").await;
    let attempts = (0..120).map(|_| app.obtain_pair("ada", "wrong password"));
    let replies = futures::future::join_all(attempts).await;
    let checked = replies.iter().filter(|r| r.status == 401).count();
    let throttled = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(checked + throttled, 120, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(checked <= 10, "{checked} of 120 concurrent wrong passwords were checked");
    assert_eq!(checked, 10, "the ten allowed attempts are all used");
}

#[tokio::test]
async fn a_success_in_flight_does_not_use_up_the_rate() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "2/min")]).spawn().await;
    app.sign_up("ada").await;
    let replies = futures::future::join_all((0..20).map(|_| app.obtain_pair("ada", PASSWORD))).await;
    // Reservations of concurrent attempts may refuse some, but successes release theirs.
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    for _ in 0..5 {
        app.obtain_pair("ada", PASSWORD).await.expect_status(200);
    }
}

fn change(old: &str) -> serde_json::Value {
    serde_json::json!({"old_password": old, "new_password": "another long password"})
}

#[tokio::test]
async fn wrong_old_passwords_of_a_password_change_are_throttled_per_user() {
    let app = limited(3).await;
    let ada = app.sign_up("ada").await;
    for _ in 0..3 {
        app.change_password(&ada.access, &change("guess")).await.expect_status(400);
    }

    let reply = app.change_password(&ada.access, &change(PASSWORD)).await;

    reply.expect(429, &throttled(60));
    assert_eq!(reply.header("retry-after"), Some("60"));
    // A stolen access token's guesses share the account's sign-in budget.
    app.obtain_pair("ada", PASSWORD).await.expect(429, &throttled(60));
    app.advance(secs(60));
    app.change_password(&ada.access, &change(PASSWORD)).await.expect(200, "{}");
}

#[tokio::test]
async fn concurrent_old_password_guesses_check_at_most_the_rate() {
    let app = limited(10).await;
    let ada = app.sign_up("ada").await;
    let guess = change("guess");
    let replies = futures::future::join_all((0..60).map(|_| app.change_password(&ada.access, &guess))).await;
    let checked = replies.iter().filter(|r| r.status == 400).count();
    assert!(checked <= 10, "{checked}");
    assert_eq!(replies.iter().filter(|r| r.status == 429).count(), 60 - checked);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "2/min"), ("TRUSTED_PROXIES", "127.0.0.1")]).spawn().await;
    app.sign_up("ada").await;
    let from = |client: &'static str, user: &'static str| {
        let body = serde_json::json!({"username": user, "password": "wrong password"});
        app.send(app.client.post(app.url("/api/token/")).header("x-forwarded-for", client).json(&body))
    };
    from("198.51.100.1", "ghost1").await.expect_status(401);
    from("198.51.100.1", "ghost2").await.expect_status(401);
    from("198.51.100.1", "ghost3").await.expect_status(429);
    // Another client behind the same proxy is not throttled; a forged leftmost entry is ignored.
    from("6.6.6.6, 198.51.100.2", "ghost4").await.expect_status(401);
    from("198.51.100.1, 198.51.100.2", "ghost5").await.expect_status(401);
    from("198.51.100.2", "ghost6").await.expect_status(429);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::builder().env(&[("LOGIN_RATE", "2/min")]).spawn().await;
    let from = |client: &'static str, user: &'static str| {
        let body = serde_json::json!({"username": user, "password": "wrong password"});
        app.send(app.client.post(app.url("/api/token/")).header("x-forwarded-for", client).json(&body))
    };
    from("198.51.100.1", "ghost1").await.expect_status(401);
    from("198.51.100.2", "ghost2").await.expect_status(401);
    from("198.51.100.3", "ghost3").await.expect_status(429);
}

#[tokio::test]
async fn with_e_mail_sign_in_password_change_guesses_count_against_that_account_only() {
    let env = [("LOGIN_RATE", "2/min"), ("USERNAME_FIELD", "email"), ("TRUSTED_PROXIES", "127.0.0.1")];
    let app = TestApp::builder().env(&env).spawn().await;
    for email in ["Ada@Example.com", "bob@example.com"] {
        let r = app.post_sign_up(&serde_json::json!({"email": email, "password": PASSWORD})).await;
        r.expect_status(201);
    }
    let ada =
        app.post_json("/api/token/", &serde_json::json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let access = ada.field("access");
    let guess = change("guess");
    for _ in 0..2 {
        let request = app.client.post(app.url("/api/auth/password/")).bearer_auth(&access).json(&guess);
        app.send(request.header("x-forwarded-for", "198.51.100.1")).await.expect_status(400);
    }
    // From another address: ada's budget is used up, bob's (no username either) is not.
    let sign_in = |email: &'static str| {
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        app.send(app.client.post(app.url("/api/token/")).header("x-forwarded-for", "198.51.100.2").json(&body))
    };
    sign_in("ADA@example.com").await.expect(429, &throttled(60));
    sign_in("bob@example.com").await.expect_status(200);
}
