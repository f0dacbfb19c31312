//! GET /metrics: requests and latency per route, tokens issued, refreshed and rejected.

use std::time::Duration;

use serde_json::json;

use jwtd::clock::Clock as _;

use crate::helpers::{jwtd, TestApp, PASSWORD};

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
        assert!(name.starts_with("jwtd_") || name.starts_with("process_"), "{line}");
    }
    for family in ["jwtd_http_requests_total", "jwtd_http_request_duration_seconds", "jwtd_tokens_rejected_total"] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

#[tokio::test]
async fn process_metrics_are_beside_jwtds() {
    let app = TestApp::builder().spawn().await;
    let text = app.get("/metrics").await.text;
    assert!(sample(&text, "process_resident_memory_bytes") > 1_000_000.0, "{text}");
    assert!(sample(&text, "process_open_fds") >= 3.0, "{text}");
    // Started within the last day, by the wall clock (the test's own process).
    let start = sample(&text, "process_start_time_seconds");
    let now = jwtd::clock::SystemClock.now().secs() as f64;
    assert!(start <= now + 1.0 && start > now - 86_400.0, "{start} vs {now}");
    for family in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
        assert!(text.contains(&format!("# TYPE {family} gauge")), "{family}");
    }
}

#[tokio::test]
async fn with_metrics_addr_metrics_are_served_there_alone() {
    let app = TestApp::builder().env(&[("METRICS_ADDR", "127.0.0.1:0")]).spawn().await;
    app.get("/metrics").await.expect(404, r#"{"detail":"Not found."}"#);
    app.get("/metrics/").await.expect_status(404);
    let metrics_addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr, app.addr);
    let r = app.send(app.client.get(format!("http://{metrics_addr}/metrics"))).await;
    r.expect_status(200);
    assert!(r.text.contains("jwtd_http_requests_total{route=\"/metrics\",status=\"404\"} 2"), "{}", r.text);
    assert!(r.text.contains("process_open_fds"), "{}", r.text);
    // Nothing of the API on the metrics listener.
    let api = app.send(app.client.get(format!("http://{metrics_addr}/api/me"))).await;
    api.expect(404, r#"{"detail":"Not found."}"#);
}

#[tokio::test]
async fn metrics_addr_equal_to_addr_stops_the_start_with_exit_code_2() {
    let run =
        jwtd(&["config", "check"], &[("JWTD_ADDR", "127.0.0.1:8123"), ("JWTD_METRICS_ADDR", "127.0.0.1:8123")], None)
            .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("JWTD_METRICS_ADDR: must differ from ADDR (127.0.0.1:8123)"), "{}", run.stderr);
}
