//! Health, readiness and the JWKS document.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::Json;
use jwtd_proto::Status;
use serde_json::Value;

use super::responses::{Jwks, ServerFaults};
use super::ApiError;
use crate::service::{AuthService, Verifier};

/// How long verifiers may cache the JWKS. A verifier that meets an unknown `kid` fetches again
/// anyway, so a key rotation does not wait for this.
const JWKS_MAX_AGE: &str = "public, max-age=300";

fn ok() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

/// Liveness: the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process serves requests.", body = Status))
)]
pub async fn healthz() -> Json<Status> {
    ok()
}

/// Ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "The database answers.", body = Status), ServerFaults)
)]
pub async fn readyz(State(auth): State<AuthService>) -> Result<Json<Status>, ApiError> {
    auth.store().ping().await.map_err(|_| ApiError::Unavailable)?;
    Ok(ok())
}

/// The public keys (current, then previous ones still verifying) as a JWK Set; HMAC keys are
/// secret, so the set is empty then.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    responses((status = 200, description = "A JSON Web Key Set (RFC 7517).", body = Jwks))
)]
pub async fn jwks(State(verifier): State<Verifier>) -> ([(header::HeaderName, HeaderValue); 1], Json<Value>) {
    ([(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE))], Json(verifier.jwks()))
}
