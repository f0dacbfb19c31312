//! Health, readiness and the JWKS document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use jwtd_proto::Status;
use serde_json::{json, Value};

use super::openapi::{Jwks, ServerFaults};
use super::ApiError;
use crate::service::AuthService;

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

/// Public keys for asymmetric algorithms; HMAC keys are secret, so the set is empty.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    responses((status = 200, description = "A JSON Web Key Set (RFC 7517).", body = Jwks))
)]
pub async fn jwks() -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!({"keys": []})))
}
