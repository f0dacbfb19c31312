//! A service of its own verifying jwtd's tokens with `jwtd-verify` alone: every route behind the
//! layer, `/api/me/` for any signed-in user, `/api/staff/` for tokens with `"is_staff": true`
//! (TOKEN_CLAIMS=is_staff), `/api/hello/` open to anonymous callers; revocations from jwtd's feed
//! every second.
//!
//! ```text
//! JWTD_SIGNING_KEY=… JWTD_URL=http://127.0.0.1:8000 JWTD_SERVICE_TOKEN=… \
//!     ADDR=127.0.0.1:9000 cargo run -p jwtd-verify --example service
//! ```
//!
//! Without JWTD_SERVICE_TOKEN it sees no revocations: tokens stay valid until they expire.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use jwtd_verify::feed::DEFAULT_POLL;
use jwtd_verify::{AuthClaims, AuthUser, RequireClaims, RevocationFeed, Verifier, VerifyLayer};
use serde::Deserialize;
use serde_json::{json, Value};

/// The claims `/api/staff/` reads, as a type of the service's own.
#[derive(Deserialize)]
struct Staff {
    user_id: Value,
    is_staff: bool,
}

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"id": user.user_id, "claims": user.claims.as_map()}))
}

async fn staff(AuthClaims(staff): AuthClaims<Staff>) -> Json<Value> {
    Json(json!({"id": staff.user_id, "is_staff": staff.is_staff}))
}

async fn hello(user: Option<AuthUser>) -> String {
    match user {
        Some(user) => format!("hello, user {}", user.user_id),
        None => "hello, stranger".into(),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = env("JWTD_SIGNING_KEY").ok_or("JWTD_SIGNING_KEY must be jwtd's HMAC signing key")?;
    let addr: SocketAddr = env("ADDR").unwrap_or_else(|| "127.0.0.1:9000".into()).parse()?;
    let verifier = Verifier::hmac(secret.as_bytes())?;
    if let Some(token) = env("JWTD_SERVICE_TOKEN") {
        let base = env("JWTD_URL").unwrap_or_else(|| "http://127.0.0.1:8000".into());
        let feed = RevocationFeed::new(format!("{base}/api/token/revocations/"), token, verifier.clone())?;
        // Start with the whole log, then follow it.
        feed.poll().await?;
        feed.spawn(DEFAULT_POLL);
    }
    let signed_in = Router::new()
        .route("/api/me/", get(me))
        .merge(Router::new().route("/api/staff/", get(staff)).layer(RequireClaims::equals("is_staff", true)))
        .layer(VerifyLayer::new(verifier.clone()));
    let open = Router::new().route("/api/hello/", get(hello)).layer(VerifyLayer::optional(verifier.clone()));
    // The extractors find the layer's verdict in the request; the state is where they would find
    // the verifier without a layer.
    let app = signed_in.merge(open).with_state(verifier);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
