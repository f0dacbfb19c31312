//! HTTP: the route table, request extractors, and the one mapping of errors to SPEC §2
//! responses. Handlers are thin: they parse, call a `service` use case, and shape the answer.

mod account;
mod body;
mod error;
mod extract;
mod health;
#[cfg(test)]
mod store_down;
mod token;

use std::sync::Arc;

use axum::extract::{FromRef, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use body::Input;
pub use error::{ApiError, LoggedError as LoggedErrorRef};
pub use extract::{AuthUser, ClientAddr};

use crate::config::Settings;
use crate::service::{AuthService, Verifier};

/// Everything the handlers need; each takes the narrowest part through `FromRef`.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub auth: AuthService,
    pub verifier: Verifier,
    pub settings: Arc<Settings>,
}

/// The jwtd API (SPEC §1), every path with and without its trailing slash.
pub fn router(state: AppState) -> Router {
    let routes: [(&str, MethodRouter<AppState>); 14] = [
        ("/api/auth/signup", post(account::sign_up)),
        ("/api/auth/signin", post(token::obtain_pair)),
        ("/api/token", post(token::obtain_pair)),
        ("/api/token/refresh", post(token::refresh)),
        ("/api/token/verify", post(token::verify)),
        ("/api/token/blacklist", post(token::blacklist)),
        ("/api/token/sliding", post(token::obtain_sliding)),
        ("/api/token/sliding/refresh", post(token::refresh_sliding)),
        ("/api/me", get(account::me)),
        ("/api/auth/password", post(account::change_password)),
        ("/api/auth/logout-all", post(account::logout_all)),
        ("/.well-known/jwks.json", get(health::jwks)),
        ("/healthz", get(health::healthz)),
        ("/readyz", get(health::readyz)),
    ];
    let mut router = Router::new();
    for (path, method_router) in routes {
        router = router.route(path, method_router.clone()).route(&format!("{path}/"), method_router);
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(drf_method_not_allowed))
        .layer(middleware::from_fn(no_store))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// axum answers a wrong method with an empty 405 and an `Allow` header; DRF adds a body, and
/// answers OPTIONS with the view's metadata.
async fn drf_method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let mut allowed: Vec<String> = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    allowed.push("OPTIONS".into());
    let allow = HeaderValue::from_str(&allowed.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"));
    let mut fresh = if method == Method::OPTIONS {
        let metadata = serde_json::json!({
            "renders": ["application/json"],
            "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
        });
        (StatusCode::OK, axum::Json(metadata)).into_response()
    } else {
        ApiError::MethodNotAllowed(method).into_response()
    };
    fresh.headers_mut().insert(header::ALLOW, allow);
    fresh
}

/// Token answers must never be cached (RFC 6749 §5.1); nor sniffed as another type.
async fn no_store(req: Request, next: Next) -> Response {
    let is_head_or_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !is_head_or_get || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
