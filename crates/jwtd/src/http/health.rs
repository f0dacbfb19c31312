//! Health, readiness and the JWKS document.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::Json;
use jwtd_proto::Status;
use serde_json::Value;

use super::ApiError;
use crate::service::{AuthService, Verifier};

/// How long verifiers may cache the JWKS. A verifier that meets an unknown `kid` fetches again
/// anyway, so a key rotation does not wait for this.
const JWKS_MAX_AGE: &str = "public, max-age=300";

fn ok() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

pub async fn healthz() -> Json<Status> {
    ok()
}

/// Ready when the database answers.
pub async fn readyz(State(auth): State<AuthService>) -> Result<Json<Status>, ApiError> {
    auth.store().ping().await.map_err(|_| ApiError::Unavailable)?;
    Ok(ok())
}

/// The public keys (current, then previous ones still verifying) as a JWK Set; HMAC keys are
/// secret, so the set is empty then.
pub async fn jwks(State(verifier): State<Verifier>) -> ([(header::HeaderName, HeaderValue); 1], Json<Value>) {
    ([(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE))], Json(verifier.jwks()))
}
