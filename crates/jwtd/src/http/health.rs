//! Health, readiness and the JWKS document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use jwtd_proto::Status;
use serde_json::{json, Value};

use super::ApiError;
use crate::service::AuthService;

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

/// Public keys for asymmetric algorithms; HMAC keys are secret, so the set is empty.
pub async fn jwks() -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!({"keys": []})))
}
