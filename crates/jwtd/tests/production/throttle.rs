//! LOGIN_RATE: failed sign-ins per username and per client address (SPEC §5, default 10/min).

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn the_eleventh_wrong_sign_in_within_a_minute_is_throttled_and_a_right_one_after_the_window_works() {
    let app = spawn_app(&[]).await;
    app.sign_up("ada").await;
    for attempt in 1..=10 {
        app.clock.advance(Duration::from_secs(1));
        let r = app.sign_in("ada", "wrong password").await;
        assert_eq!(r.status(), 401, "attempt {attempt}");
        assert_eq!(r.text().await.unwrap(), r#"{"detail":"No active account found with the given credentials"}"#);
    }
    let r = app.sign_in("ada", "wrong password").await;
    assert_eq!(r.status(), 429);
    // The first failure was 9 s ago: it leaves the one-minute window in 51 s.
    assert_eq!(r.headers()["retry-after"], "51");
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Request was throttled. Expected available in 51 seconds."}"#);
    // Throttled means throttled: not even the right password is tried inside the window.
    assert_eq!(app.sign_in("ada", PASSWORD).await.status(), 429);
    let r = app.post("/api/token/sliding/", serde_json::json!({"username": "ada", "password": PASSWORD})).await;
    assert_eq!(r.status(), 429);

    app.clock.advance(Duration::from_secs(51));
    let r = app.sign_in("ada", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["access"].is_string() && body["refresh"].is_string());
}

#[tokio::test]
async fn successful_sign_ins_do_not_count() {
    let app = spawn_app(&[("LOGIN_RATE", "3/min")]).await;
    app.sign_up("ada").await;
    for _ in 0..10 {
        assert_eq!(app.sign_in("ada", PASSWORD).await.status(), 200);
    }
}

#[tokio::test]
async fn one_address_trying_many_usernames_is_throttled_too() {
    let app = spawn_app(&[("LOGIN_RATE", "5/min")]).await;
    app.sign_up("ada").await;
    for i in 0..5 {
        assert_eq!(app.sign_in(&format!("nobody{i}"), "wrong password").await.status(), 401);
    }
    // Every request of this test comes from 127.0.0.1: a fresh username does not help.
    let r = app.sign_in("somebody-else", "wrong password").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(app.sign_in("ada", PASSWORD).await.status(), 429);
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.sign_in("ada", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn login_rate_off_never_throttles() {
    let app = spawn_app(&[("LOGIN_RATE", "off")]).await;
    app.sign_up("ada").await;
    for _ in 0..15 {
        assert_eq!(app.sign_in("ada", "wrong password").await.status(), 401);
    }
}
