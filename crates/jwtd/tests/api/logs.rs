//! LOG_FORMAT=json: one line per request with method, route, status and latency, and never a
//! token, password, key or cookie, whatever the request. Runs the real binary, stopped by
//! SIGTERM, and reads what it wrote.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{cookie_token, refresh_cookie, PASSWORD, SIGNING_KEY};

const NEW_PASSWORD: &str = "another secret phrase";

#[tokio::test]
async fn json_logs_have_a_line_per_request_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtd"))
        .arg("serve")
        .env_clear()
        .env("JWTD_ADDR", "127.0.0.1:0")
        .env("JWTD_DATABASE_URL", format!("sqlite://{}", dir.path().join("jwtd.db").display()))
        .env("JWTD_SIGNING_KEY", SIGNING_KEY)
        .env("JWTD_LOG_FORMAT", "json")
        .env("JWTD_ROTATE_REFRESH_TOKENS", "true")
        .env("JWTD_REFRESH_COOKIE", "true")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let base = banner.trim().strip_prefix("jwtd listening on ").expect(&banner).to_string();
    let c = reqwest::Client::new();
    let url = |p: &str| format!("{base}{p}");
    let mut secrets = vec![PASSWORD.to_string(), NEW_PASSWORD.to_string(), SIGNING_KEY.to_string()];
    let mut requests = 0;

    // A full scenario, in cookie mode with rotation, with tokens in bodies, headers, cookies,
    // query strings and paths.
    let r = c.post(url("/api/auth/signup/")).json(&json!({"username": "ada", "password": PASSWORD})).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 201);
    let first = cookie_token(&refresh_cookie(r.headers()).unwrap());
    let access = r.json::<Value>().await.unwrap()["access"].as_str().unwrap().to_string();
    let r = c.post(url("/api/token/")).form(&[("username", "ada"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let second = cookie_token(&refresh_cookie(r.headers()).unwrap());
    let r = c.post(url("/api/token/")).json(&json!({"username": "mallory-guessed", "password": "wrong password"}));
    assert_eq!(r.send().await.unwrap().status(), 401);
    let r = c.get(url("/api/me/")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(url("/api/token/refresh/")).header("Cookie", format!("__Secure-jwtd_refresh={first}")).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 200);
    let third = cookie_token(&refresh_cookie(r.headers()).unwrap());
    let r = c.post(url("/api/token/verify/")).json(&json!({"token": access})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(url("/api/token/sliding/")).json(&json!({"username": "ada", "password": PASSWORD})).send();
    let sliding = r.await.unwrap().json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let r = c.get(url(&format!("/api/me/?token={access}"))).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(url(&format!("/no/{second}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post(url("/api/token/blacklist/")).json(&json!({"refresh": second})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(url("/api/auth/password/"))
        .bearer_auth(&access)
        .json(&json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(url("/api/token/refresh/")).header("Cookie", format!("__Secure-jwtd_refresh={third}")).send().await;
    assert_eq!(r.unwrap().status(), 401);
    let r = c.post(url("/api/token/")).header("Origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
    requests += 13;
    secrets.extend([access, first, second, third, sliding]);

    // SIGTERM: the server stops on its own and exits 0.
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let waited = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut log = String::new();
        child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
        (status, log)
    });
    let (status, log) = tokio::time::timeout(Duration::from_secs(20), waited).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}\n{log}");

    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let request_lines: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(request_lines.len(), requests, "{log}");
    for line in &request_lines {
        assert_eq!(line["level"], "INFO");
        assert!(line["method"].is_string() && line["route"].is_string(), "{line}");
        assert!(line["status"].is_u64() && line["latency_ms"].is_number(), "{line}");
    }
    // A failed sign-in is a warning with the client's address and a digest of the username, never the name.
    let refused = lines.iter().find(|l| l["message"] == "sign-in refused").expect(&log);
    assert_eq!(refused["level"], "WARN");
    assert_eq!(refused["client"], "127.0.0.1");
    assert!(refused["username_hash"].as_str().is_some_and(|h| h.len() == 12), "{refused}");
    assert!(!log.contains("mallory-guessed"), "{log}");
    let statuses: Vec<u64> = request_lines.iter().map(|l| l["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 200, 401, 200, 200, 200, 200, 401, 404, 200, 200, 401, 403]);
    assert!(request_lines.iter().any(|l| l["route"] == "/api/token/refresh/" && l["method"] == "POST"));
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for expected in ["shutting down", "database closed", "stopped"] {
        assert!(messages.contains(&expected), "{expected}: {messages:?}");
    }

    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log holds a secret: {secret}\n{log}");
        // Nor any part of a token (its payload or signature alone).
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(!log.contains(part), "the log holds part of a token: {part}");
        }
    }
    let lower = log.to_ascii_lowercase();
    for word in ["bearer", "authorization", "cookie", "password\":", "jwtd_refresh"] {
        assert!(!lower.contains(word), "the log mentions {word}:\n{log}");
    }
}
