//! The cost of the verifier layer per request, in one run: a `/api/me/`-like handler (the user's
//! id and name as JSON) behind `VerifyLayer` with a valid HS256 access token, against the same
//! handler with no layer, in process (tower's `oneshot` on the router: no network, so the figures
//! are the layer's own). Run it optimised:
//!
//! ```text
//! cargo run --release -p jwtd-verify --example layer_bench [REQUESTS]
//! ```

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::routing::get;
use axum::{Json, Router};
use jwtd_verify::clock::{Clock, SystemClock};
use jwtd_verify::tokens::{Algorithm, Claims, Codec, Policy, TokenType};
use jwtd_verify::{AuthUser, UserId, Verifier, VerifyLayer};
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &[u8] = b"layer-bench-signing-key-0123456789abcdef";

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"id": user.user_id, "username": "ada"}))
}

async fn me_without_auth() -> Json<Value> {
    Json(json!({"id": 1, "username": "ada"}))
}

/// Sends `requests` requests one after another; returns the time per request.
async fn run(router: &Router, token: Option<&str>, requests: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..requests {
        let mut request = Request::get("/api/me/");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = router.clone().oneshot(request.body(Body::empty()).unwrap_or_default()).await;
        match response {
            Ok(r) if r.status().is_success() => {}
            other => panic!("the handler refused: {other:?}"),
        }
    }
    started.elapsed() / requests
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let requests: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let codec = Codec::from_secret(Algorithm::HS256, SECRET, Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    let now = SystemClock.now().secs();
    let claims = Claims::new(
        TokenType::Access,
        "user_id",
        UserId::Int(1),
        now,
        Duration::from_secs(3600),
        "0123456789abcdef0123456789abcdef".into(),
    );
    let token = codec.encode(&claims).unwrap_or_else(|e| panic!("{e}"));
    let verifier = Verifier::hmac(SECRET).unwrap_or_else(|e| panic!("{e}"));

    let bare = Router::new().route("/api/me/", get(me_without_auth));
    let layered =
        Router::new().route("/api/me/", get(me)).layer(VerifyLayer::new(verifier.clone())).with_state(verifier.clone());
    let extractor_only = Router::new().route("/api/me/", get(me)).with_state(verifier);

    // Warm up, then measure each in turn, twice, keeping the better of the two.
    for router in [&bare, &layered, &extractor_only] {
        run(router, Some(&token), requests / 10).await;
    }
    let mut best = [Duration::MAX; 3];
    for _ in 0..2 {
        for (i, router) in [&bare, &layered, &extractor_only].into_iter().enumerate() {
            best[i] = best[i].min(run(router, Some(&token), requests).await);
        }
    }
    let [bare, layered, extractor_only] = best.map(|d| d.as_nanos());
    println!("{requests} requests each, one at a time, in process (ns per request, best of 2 runs)");
    println!("no layer, no verification:         {bare:>6} ns");
    println!("VerifyLayer + AuthUser (HS256):     {layered:>6} ns  (+{} ns)", layered.saturating_sub(bare));
    println!(
        "AuthUser extractor alone (HS256):   {extractor_only:>6} ns  (+{} ns)",
        extractor_only.saturating_sub(bare)
    );
}
