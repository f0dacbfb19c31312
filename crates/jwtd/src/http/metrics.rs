//! GET /metrics: the Prometheus text exposition of [`Metrics`](crate::telemetry::Metrics). With
//! METRICS_ADDR set it is served on that listener only ([`metrics_router`]); the API's listener
//! answers 404, since the counters help an attacker tune a brute force (security review L-8).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::endpoints::endpoints;
use super::{not_found, ApiError, AppState};

/// Marks a request that came in on METRICS_ADDR's listener.
#[derive(Debug, Clone, Copy)]
pub struct MetricsListener;

/// The router of METRICS_ADDR's listener: /metrics, and 404 for anything else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(Extension(MetricsListener))
        .with_state(state)
}

endpoints! {
    /// Prometheus metrics: request counts and latency per route, tokens issued, refreshed and rejected.
    get "/metrics" tag "operations"
    answers 200 String in "text/plain" "Prometheus text exposition format.";
    pub async fn metrics(metrics, settings, listener: Option<Extension<MetricsListener>>) -> Response {
        if settings.metrics_addr.is_some() && listener.is_none() {
            return ApiError::NotFound.into_response();
        }
        let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
        ([(header::CONTENT_TYPE, content_type)], metrics.render()).into_response()
    }
}
