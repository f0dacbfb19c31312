//! GET /metrics: the Prometheus text exposition of [`Metrics`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::telemetry::Metrics;

/// Prometheus metrics: request counts and latency per route, tokens issued, refreshed and rejected.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], metrics.render()).into_response()
}
