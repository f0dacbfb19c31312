//! GET /metrics: requests and latency per route, tokens issued, refreshed and rejected.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, PASSWORD};

fn sample(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    line.map_or(0.0, |l| l[series.len() + 1..].parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_and_tokens() {
    let app =
        TestApp::builder().env(&[("ROTATE_REFRESH_TOKENS", "true"), ("ACCESS_TOKEN_LIFETIME", "60")]).spawn().await;
    let pair = app.sign_up("ada").await;
    assert_eq!(app.obtain_pair("ada", PASSWORD).await.status, 200);
    assert_eq!(app.obtain_pair("ada", "wrong password").await.status, 401);
    assert_eq!(app.refresh(&pair.refresh).await.status, 200);
    assert_eq!(app.me(&pair.access).await.status, 200);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.me(&pair.access).await.status, 401);
    assert_eq!(app.get("/api/me").await.status, 401);
    assert_eq!(app.post_json("/api/token/verify/", &json!({"token": "nonsense"})).await.status, 401);
    assert_eq!(app.get("/nowhere").await.status, 404);

    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text;
    let n = |series: &str| sample(&text, series);
    assert_eq!(n(r#"jwtd_http_requests_total{route="/api/auth/signup",status="201"}"#), 1.0, "{text}");
    assert_eq!(n(r#"jwtd_http_requests_total{route="/api/token",status="200"}"#), 1.0);
    assert_eq!(n(r#"jwtd_http_requests_total{route="/api/token",status="401"}"#), 1.0);
    assert_eq!(n(r#"jwtd_http_requests_total{route="/api/me",status="401"}"#), 2.0);
    assert_eq!(n(r#"jwtd_http_requests_total{route="unmatched",status="404"}"#), 1.0);
    assert_eq!(n(r#"jwtd_http_request_duration_seconds_count{route="/api/me"}"#), 3.0);
    assert_eq!(n(r#"jwtd_http_request_duration_seconds_bucket{route="/api/me",le="+Inf"}"#), 3.0);
    assert!(n(r#"jwtd_http_request_duration_seconds_sum{route="/api/token"}"#) > 0.0);
    // sign-up, sign-in: a pair each; the rotating refresh: one of each.
    assert_eq!(n(r#"jwtd_tokens_issued_total{type="access"}"#), 3.0);
    assert_eq!(n(r#"jwtd_tokens_issued_total{type="refresh"}"#), 3.0);
    assert_eq!(n(r#"jwtd_tokens_refreshed_total{type="refresh"}"#), 1.0);
    assert_eq!(n(r#"jwtd_tokens_rejected_total{reason="bad_credentials"}"#), 1.0);
    assert_eq!(n(r#"jwtd_tokens_rejected_total{reason="expired"}"#), 1.0);
    assert_eq!(n(r#"jwtd_tokens_rejected_total{reason="not_provided"}"#), 1.0);
    assert_eq!(n(r#"jwtd_tokens_rejected_total{reason="invalid"}"#), 1.0);
    // Every sample line is `name{labels} value`, every family typed.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("jwtd_"), "{line}");
    }
    for family in ["jwtd_http_requests_total", "jwtd_http_request_duration_seconds", "jwtd_tokens_rejected_total"] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
}
