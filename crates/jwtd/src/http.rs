//! HTTP: the route table, request extractors, and the one mapping of errors to SPEC §2
//! responses. Handlers are thin: they parse, call a `service` use case, and shape the answer.

mod account;
mod body;
mod cookie;
mod error;
mod extract;
mod health;
pub mod limits;
mod metrics;
mod openapi;
mod responses;
#[cfg(test)]
mod store_down;
mod token;

use std::sync::Arc;

use axum::extract::{FromRef, Request};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use body::Input;
pub use cookie::{Https, COOKIE_NAME, COOKIE_PATH};
pub use error::{ApiError, LoggedError as LoggedErrorRef};
pub use extract::{AuthUser, ClientAddr};
pub use limits::Limits;

use crate::config::Settings;
use crate::service::{AuthService, Verifier};
use crate::telemetry::Metrics;

/// Everything the handlers need; each takes the narrowest part through `FromRef`. One `Arc`,
/// so the clone axum makes for every request is one reference count, not four.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

/// What an [`AppState`] holds.
#[derive(Debug)]
pub struct AppParts {
    pub auth: AuthService,
    pub verifier: Verifier,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(auth: AuthService, verifier: Verifier, settings: Arc<Settings>, metrics: Arc<Metrics>) -> Self {
        AppState(Arc::new(AppParts { auth, verifier, settings, metrics }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl FromRef<AppState> for AuthService {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// The route table of SPEC §1, each path without its trailing slash.
fn routes() -> [(&'static str, MethodRouter<AppState>); 16] {
    [
        ("/api/auth/signup", post_view(account::sign_up)),
        ("/api/auth/signin", post_view(token::obtain_pair)),
        ("/api/token", post_view(token::obtain_pair)),
        ("/api/token/refresh", post_view(token::refresh)),
        ("/api/token/verify", post_view(token::verify)),
        ("/api/token/blacklist", post_view(token::blacklist)),
        ("/api/token/sliding", post_view(token::obtain_sliding)),
        ("/api/token/sliding/refresh", post_view(token::refresh_sliding)),
        ("/api/me", get_view(account::me)),
        ("/api/auth/password", post_view(account::change_password)),
        ("/api/auth/logout-all", post_view(account::logout_all)),
        ("/.well-known/jwks.json", get_view(health::jwks)),
        ("/healthz", get_view(health::healthz)),
        ("/readyz", get_view(health::readyz)),
        ("/metrics", get_view(metrics::metrics)),
        ("/api/schema", get_view(openapi::schema)),
    ]
}

/// The paths of the route table (without their trailing slash), for per-route metrics.
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The jwtd API (SPEC §1), every path with and without its trailing slash, every answer with
/// the [`security_headers`].
pub fn router(state: AppState) -> Router {
    bare_router(state).layer(middleware::from_fn(security_headers))
}

/// [`router`] without the security-header layer, for a server that adds the headers at its edge
/// with [`secure`] (the application does, in the one layer it wraps around this router).
pub fn bare_router(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, method_router) in routes() {
        router = router.route(path, method_router.clone()).route(&format!("{path}/"), method_router);
    }
    router.fallback(not_found).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A POST view as DRF serves it; see [`other_method`].
fn post_view<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).fallback(|method: Method| other_method(method, "POST, OPTIONS"))
}

/// A GET (and HEAD) view as DRF serves it; see [`other_method`].
fn get_view<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    get(handler).fallback(|method: Method| other_method(method, "GET, HEAD, OPTIONS"))
}

/// Any other method on a view: OPTIONS gets the view's metadata, the rest DRF's 405 body; both
/// with DRF's `Allow`. (axum's own `Allow` is added outside every layer, too late for a
/// middleware to read, so each view states its methods here.)
async fn other_method(method: Method, allow: &'static str) -> Response {
    let mut response = if method == Method::OPTIONS {
        let metadata = serde_json::json!({
            "renders": ["application/json"],
            "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
        });
        (StatusCode::OK, axum::Json(metadata)).into_response()
    } else {
        ApiError::MethodNotAllowed(method).into_response()
    };
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Token answers must never be cached (RFC 6749 §5.1); nor sniffed as another type. Nothing
/// here is a page: no framing, no referrer, no loading of anything (OWASP REST security headers).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_head_or_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut response = next.run(req).await;
    secure(&mut response, is_head_or_get);
    response
}

/// Adds the headers of [`security_headers`] to an answer to a request of that method kind.
pub fn secure(response: &mut Response, is_head_or_get: bool) {
    let headers = response.headers_mut();
    headers.reserve(5);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    if !is_head_or_get || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
