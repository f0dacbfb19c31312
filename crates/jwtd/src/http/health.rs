//! Health, readiness and the JWKS document.

use axum::http::{header, HeaderValue};
use axum::Json;
use jwtd_proto::Status;
use serde_json::Value;

use super::endpoints::endpoints;
use super::responses::{Jwks, ServerFaults};
use super::ApiError;

/// How long verifiers may cache the JWKS. A verifier that meets an unknown `kid` fetches again
/// anyway, so a key rotation does not wait for this.
const JWKS_MAX_AGE: &str = "public, max-age=300";

fn ok() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

endpoints! {
    /// Liveness: the process serves requests.
    get "/healthz" tag "operations"
    answers 200 Status "The process serves requests.";
    pub async fn healthz() -> Json<Status> {
        ok()
    }

    /// Ready when the database answers.
    get "/readyz" tag "operations"
    answers 200 Status "The database answers."
    refuses ServerFaults;
    pub async fn readyz(auth) -> Result<Json<Status>, ApiError> {
        auth.store().ping().await.map_err(|_| ApiError::Unavailable)?;
        Ok(ok())
    }

    /// The public keys (current, then previous ones still verifying) as a JWK Set; HMAC keys are
    /// secret, so the set is empty then.
    get "/.well-known/jwks.json" tag "operations"
    answers 200 Jwks "A JSON Web Key Set (RFC 7517).";
    pub async fn jwks(verifier) -> ([(header::HeaderName, HeaderValue); 1], Json<Value>) {
        ([(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE))], Json(verifier.jwks()))
    }
}
