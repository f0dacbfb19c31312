//! HTTP: the route table, request extractors, and the one mapping of errors to SPEC §2
//! responses. Handlers are thin: they parse, call a `service` use case, and shape the answer.
//! The route table ([`api`]) lists each handler once, through utoipa-axum's `routes!`: the
//! router and the OpenAPI document's paths both come from it.

mod account;
mod body;
mod cookie;
mod endpoints;
mod error;
mod extract;
mod health;
pub(crate) mod limits;
mod metrics;
mod openapi;
#[cfg(test)]
mod properties;
mod recovery;
mod responses;
mod services;
#[cfg(test)]
mod store_down;
mod token;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa::openapi::path::Paths;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use extract::AuthUser;
pub use limits::Limits;

pub(crate) use body::Input;
pub(crate) use cookie::Https;
pub(crate) use error::{bearer_rejection, ApiError, LoggedError as LoggedErrorRef};
pub(crate) use extract::{ClientAddr, TrustedProxies, UserAgent};
pub(crate) use metrics::metrics_router;

use crate::config::{Route, Routes, Settings};
use crate::service::{AuthService, ServiceTokens, Verifier};
use crate::telemetry::Metrics;

/// Everything the handlers need; each takes the narrowest part through `FromRef`. One `Arc`,
/// so the clone axum makes for every request is one reference count, not four.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

/// What an [`AppState`] holds.
#[derive(Debug)]
pub(crate) struct AppParts {
    pub(crate) auth: AuthService,
    pub(crate) verifier: Verifier,
    pub(crate) settings: Arc<Settings>,
    pub(crate) metrics: Arc<Metrics>,
    /// The OpenAPI document of the configured routes, as served (JSON), built once at start.
    pub(crate) schema: Bytes,
    /// TRUSTED_PROXIES, for [`ClientAddr`].
    pub(crate) proxies: TrustedProxies,
    /// SERVICE_TOKENS, for [`ServiceCaller`].
    pub(crate) service_tokens: ServiceTokens,
    /// The background tasks of the state (`app::build_state`: revocation poll, purge), stopped
    /// when the last clone of the state is dropped.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for AppParts {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

impl AppParts {
    /// Lets the state own `tasks`: they stop with it ([`AppParts::stop_tasks`], or its drop).
    pub(crate) fn adopt_tasks(&self, tasks: Vec<tokio::task::JoinHandle<()>>) {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(tasks);
    }

    /// Stops the state's background tasks.
    pub(crate) fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }
}

impl AppState {
    pub(crate) fn new(auth: AuthService, verifier: Verifier, settings: Arc<Settings>, metrics: Arc<Metrics>) -> Self {
        let schema = openapi::document(&settings);
        let proxies = TrustedProxies(Arc::new(settings.trusted_proxies.clone()));
        let service_tokens = ServiceTokens::new(&settings.service_tokens);
        let tasks = std::sync::Mutex::default();
        AppState(Arc::new(AppParts { auth, verifier, settings, metrics, schema, proxies, service_tokens, tasks }))
    }
}

impl FromRef<AppState> for ServiceTokens {
    fn from_ref(state: &AppState) -> Self {
        state.parts().service_tokens.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.parts().proxies.clone()
    }
}

impl AppState {
    pub(crate) fn parts(&self) -> &AppParts {
        &self.0
    }
}

impl FromRef<AppState> for AuthService {
    fn from_ref(state: &AppState) -> Self {
        state.parts().auth.clone()
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.parts().verifier.clone()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.parts().settings.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.parts().metrics.clone()
    }
}

/// The route table of SPEC §1 as configured (ROUTES): each served route's view at its path.
/// Each view is a handler whose declaration (`endpoints!`) gives its method and default path,
/// so this one list makes both the router ([`bare_router`]) and the paths of the OpenAPI
/// document (`openapi.rs`), which therefore describes the configured paths.
pub(crate) fn api(settings: &Settings) -> OpenApiRouter<AppState> {
    let routes = &settings.routes;
    served(settings).map(|(route, path)| at(route, path, routes)).fold(OpenApiRouter::default(), add_view)
}

/// The routes served with these settings, at their paths: ROUTES, less the routes for other
/// services while SERVICE_TOKENS is empty (then nobody could be let in), and the reset and
/// activation routes while neither WEBHOOK_URL nor SMTP_URL is set (no link could leave; SPEC
/// §8). Those answer 404, as any path no route serves.
fn served(settings: &Settings) -> impl Iterator<Item = (Route, &str)> {
    let services = !settings.service_tokens.is_empty();
    let links = settings.delivery.enabled();
    settings
        .routes
        .served()
        .filter(move |(route, _)| (services || !route.needs_service_token()) && (links || !route.sends_links()))
}

/// The view of `route`. Routes of one view (sign-in and djoser's paths are SimpleJWT's views
/// under other names) share the handler and get operations of their own ([`alias`]).
fn view(route: Route) -> UtoipaMethodRouter<AppState> {
    match route {
        Route::Signup => routes!(account::sign_up),
        Route::Signin | Route::TokenObtainPair | Route::JwtCreate => routes!(token::obtain_pair),
        Route::TokenRefresh | Route::JwtRefresh => routes!(token::refresh),
        Route::TokenVerify | Route::JwtVerify => routes!(token::verify),
        Route::TokenBlacklist => routes!(token::blacklist),
        Route::TokenObtainSliding => routes!(token::obtain_sliding),
        Route::TokenRefreshSliding => routes!(token::refresh_sliding),
        Route::Me => routes!(account::me),
        Route::PasswordChange => routes!(account::change_password),
        Route::LogoutAll => routes!(account::logout_all),
        Route::Sessions => routes!(account::sessions),
        Route::Session => routes!(account::revoke_session),
        Route::LogoutOthers => routes!(account::logout_others),
        Route::Jwks => routes!(health::jwks),
        Route::Healthz => routes!(health::healthz),
        Route::Readyz => routes!(health::readyz),
        Route::Metrics => routes!(metrics::metrics),
        Route::Schema => routes!(openapi::schema),
        Route::PasswordReset | Route::UsersResetPassword => routes!(recovery::password_reset),
        Route::PasswordResetConfirm | Route::UsersResetPasswordConfirm => routes!(recovery::password_reset_confirm),
        Route::Activation | Route::UsersActivation => routes!(recovery::activation),
        Route::ActivationResend | Route::UsersResendActivation => routes!(recovery::activation_resend),
        Route::TokenIntrospect => routes!(services::introspect),
        Route::TokenRevocations => routes!(services::revocations),
        Route::AuthCheck => routes!(services::check),
    }
}

/// A route serving another route's view: its operation id, tag and the route whose view it is.
fn alias(route: Route) -> Option<(&'static str, &'static str, Route)> {
    match route {
        Route::Signin => Some(("sign_in", "auth", Route::TokenObtainPair)),
        Route::JwtCreate => Some(("jwt_create", "token", Route::TokenObtainPair)),
        Route::JwtRefresh => Some(("jwt_refresh", "token", Route::TokenRefresh)),
        Route::JwtVerify => Some(("jwt_verify", "token", Route::TokenVerify)),
        Route::UsersResetPassword => Some(("users_reset_password", "account", Route::PasswordReset)),
        Route::UsersResetPasswordConfirm => {
            Some(("users_reset_password_confirm", "account", Route::PasswordResetConfirm))
        }
        Route::UsersActivation => Some(("users_activation", "account", Route::Activation)),
        Route::UsersResendActivation => Some(("users_resend_activation", "account", Route::ActivationResend)),
        _ => None,
    }
}

/// The view of `route` at `path`.
fn at(route: Route, path: &str, routes: &Routes) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = view(route);
    let mut moved = Paths::new();
    for (_, mut item) in paths.paths {
        if let Some((id, tag, original)) = alias(route) {
            let same_as = routes.path(original).unwrap_or(original.default_path());
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.operation_id = Some(id.into());
                operation.tags = Some(vec![tag.into()]);
                operation.summary = Some(format!("{}: the same view as {same_as}.", route.name()));
            }
        }
        moved.paths.insert(path.to_string(), item);
    }
    (schemas, moved, method_router)
}

/// Adds a view at its documented path and at the same path with (or without) the trailing slash,
/// answering other methods as DRF does (see [`other_method`]). Every jwtd view serves either GET
/// (and HEAD), POST or DELETE, which its documented operation says.
fn add_view(
    router: OpenApiRouter<AppState>,
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let mut twins = Vec::new();
    let mut allow = POST_ALLOW;
    for (path, item) in paths.paths.iter() {
        twins.push(match path.strip_suffix('/') {
            Some(bare) => bare.to_string(),
            None => format!("{path}/"),
        });
        if item.get.is_some() {
            allow = GET_ALLOW;
        } else if item.delete.is_some() {
            allow = DELETE_ALLOW;
        }
    }
    let method_router = method_router.fallback(move |method: Method| other_method(method, allow));
    let mut router = router.routes((schemas, paths, method_router.clone()));
    for twin in twins {
        router = router.route(&twin, method_router.clone());
    }
    router
}

/// The paths of the route table as configured, for per-route metrics (a fixed set of labels).
pub(crate) fn route_paths(settings: &Settings) -> Vec<String> {
    served(settings).map(|(_, path)| path.to_string()).collect()
}

/// The jwtd API (SPEC §1), every path with and without its trailing slash, every answer with
/// the [`security_headers`], to mount in a host application: with `Router::nest` (the refresh
/// cookie's `Path` then follows the prefix) or `Router::merge`. It has no fallback of its own, so
/// the host's stays the host's (a path no route serves reaches it); add [`not_found`] as the
/// host's fallback for DRF's 404 body.
pub fn router(state: AppState) -> Router {
    routes(state).layer(middleware::from_fn(security_headers))
}

/// jwtd's whole API as the application serves it: [`router`] without the security-header layer
/// (the application adds the headers at its edge with [`secure`]), and [`not_found`] for any
/// other path.
pub(crate) fn bare_router(state: AppState) -> Router {
    routes(state).fallback(not_found)
}

fn routes(state: AppState) -> Router {
    let (router, _) = api(&state.parts().settings).split_for_parts();
    router.with_state(state)
}

/// DRF's 404, `{"detail":"Not found."}`: the application's answer to a path no route serves.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// `Allow` of a POST view, as DRF writes it.
const POST_ALLOW: &str = "POST, OPTIONS";
/// `Allow` of a GET (and HEAD) view, as DRF writes it.
const GET_ALLOW: &str = "GET, HEAD, OPTIONS";
/// `Allow` of a DELETE view, as DRF writes it.
const DELETE_ALLOW: &str = "DELETE, OPTIONS";

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
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let is_head_or_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut response = next.run(req).await;
    secure(&mut response, is_head_or_get);
    response
}

/// Adds the headers of [`security_headers`] to an answer to a request of that method kind.
pub(crate) fn secure(response: &mut Response, is_head_or_get: bool) {
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
