//! Start-up as a value: [`Application::build`] opens the store, loads the keys and the TLS
//! certificate, binds the listener (port 0 works) and METRICS_ADDR's, and starts the background
//! tasks (revocation poll, purge, TLS reload on SIGHUP); `run_until_stopped` serves until the
//! given shutdown future resolves, drains, and closes the store.

pub(crate) mod keys;
mod serve;
mod tls;

pub use tls::CertReloader;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{error, info, warn};

use crate::clock::SharedClock;
use crate::config::{DatabaseUrl, IdType, Settings};
use crate::http::{self, AppState, Limits};
use crate::password::Hasher;
use crate::service::{AuthService, Delivery, PasswordPool, Profiles, Verifier};
use crate::store::pg_tls::PgTls;
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};
use crate::telemetry::{Metrics, Rejection};

/// How often each instance reads the revocation log to keep its "valid after" map and its
/// revoked sessions in step: twice a second, so that a revocation made elsewhere is in force
/// within a second (SPEC §1, §4) with the poll's own read time to spare.
const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// How long past the longest lifetime of a token accepted without the database a revoked
/// session is kept: room for an access token issued by a refresh that raced the revocation.
const REVOKED_SESSION_MARGIN: Duration = Duration::from_secs(60);
/// How often `serve` purges expired token rows, and how many rows one statement deletes.
const FLUSH_EVERY: Duration = Duration::from_secs(600);
const FLUSH_BATCH: u32 = 1000;
/// How long start-up (and every command that opens the store) waits for PostgreSQL to answer,
/// e.g. while it starts beside jwtd, before giving up with a message naming the database.
pub const DATABASE_STARTUP_WAIT: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DATABASE_URL: cannot open the database")]
    Store(#[source] StoreError),
    #[error("ADDR: cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// A key setting is wrong; the message names the setting.
    #[error("{0}")]
    Key(String),
    #[error("password hashing could not be initialised")]
    Hashing,
    #[error("{0}")]
    Tls(String),
    #[error("METRICS_ADDR: cannot listen on {addr}")]
    BindMetrics { addr: SocketAddr, source: std::io::Error },
    /// WEBHOOK_URL, SMTP_URL or EMAIL_FROM could not be set up; the message names the setting.
    #[error("{0}")]
    Delivery(String),
    /// USER_ID_TYPE differs from the type the database was made for.
    #[error("USER_ID_TYPE: this database holds {stored} user ids (fixed at its first start), not {wanted}")]
    UserIdType { stored: IdType, wanted: IdType },
}

/// Fixes USER_ID_TYPE for the database at its first start and refuses any other type later
/// (the ids in tokens already issued could not name their users), changing nothing.
pub async fn check_user_id_type(store: &dyn Store, settings: &Settings) -> Result<(), StartError> {
    let wanted = settings.user_id_type;
    let stored = store.fix_user_id_type(wanted).await.map_err(StartError::Store)?;
    if stored == wanted {
        Ok(())
    } else {
        Err(StartError::UserIdType { stored, wanted })
    }
}

/// What the application runs on besides its settings; tests swap these.
#[derive(Debug, Clone)]
pub struct Deps {
    pub clock: SharedClock,
    pub hasher: Hasher,
    /// The clock the delivery worker waits on between retries; `None`: `clock`. Tests give it a
    /// clock of its own that they move, so a retry's wait does not move the server's time.
    pub delivery_clock: Option<SharedClock>,
}

impl Default for Deps {
    fn default() -> Self {
        Deps { clock: Arc::new(crate::clock::SystemClock), hasher: Hasher::owasp(), delivery_clock: None }
    }
}

/// Opens the store named by DATABASE_URL, creating and migrating it as needed. PostgreSQL is
/// waited for up to [`DATABASE_STARTUP_WAIT`] while it does not answer.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, StoreError> {
    match &settings.database_url {
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .map_err(|e| StoreError::Database(Box::new(e)))??;
            Ok(Arc::new(store))
        }
        DatabaseUrl::Postgres(url) => {
            let options = PgOptions {
                max_connections: settings.database_max_connections,
                startup_wait: DATABASE_STARTUP_WAIT,
                tls: PgTls { mode: settings.database_tls, ca_cert: settings.database_ca_cert.clone() },
            };
            Ok(Arc::new(PgStore::connect(url, options).await?))
        }
    }
}

/// The state of a built application, for mounting its router elsewhere (SPEC §7): the store
/// opened, the keys loaded, the revocation log read into the verifier, and the background tasks
/// `serve` runs started (the revocation poll twice a second, the purge of expired token rows, the write of sessions' last use). The
/// tasks stop when the last clone of the state is dropped.
pub async fn build_state(settings: Settings, deps: Deps) -> Result<AppState, StartError> {
    Ok(state_with_tasks(settings, deps).await?.0)
}

/// [`build_state`], with the handle on its periodic steps.
async fn state_with_tasks(settings: Settings, deps: Deps) -> Result<(AppState, Background), StartError> {
    let clock = deps.clock.clone();
    let state = state_without_tasks(settings, deps).await?;
    let parts = state.parts();
    let store = parts.auth.store().clone();
    let s = &parts.settings;
    let poll = RevocationPoll {
        store: store.clone(),
        verifier: parts.verifier.clone(),
        profiles: parts.auth.profiles().clone(),
        id_type: s.user_id_type,
        clock: clock.clone(),
        keep_sessions: s.access_token_lifetime.max(s.sliding_token_lifetime) + s.leeway + REVOKED_SESSION_MARGIN,
        cursor: Arc::default(),
    };
    poll.run().await.map_err(StartError::Store)?;
    let background = Background { poll, auth: parts.auth.clone() };
    parts.adopt_tasks(vec![
        tokio::spawn(revocation_task(background.clone())),
        tokio::spawn(flush_task(store, clock)),
        tokio::spawn(activity_task(background.clone())),
    ]);
    Ok((state, background))
}

/// The periodic steps of a running server (the revocation poll, the write of sessions'
/// `last_used_at`), each also callable at once: tests drive them rather than wait. Holds the
/// store, the verifier and the use cases, not the state: the state's last clone going away
/// stops its tasks.
#[derive(Clone)]
pub struct Background {
    poll: RevocationPoll,
    auth: AuthService,
}

impl Background {
    /// Reads the revocation log past the cursor into the verifier (what the poll does every
    /// 500 ms), then forgets the revoked sessions whose tokens have all expired.
    pub async fn poll_revocations(&self) -> Result<(), StoreError> {
        self.poll.run().await
    }

    /// Writes the `last_used_at` of the sessions refreshed since the last write; returns how many.
    pub async fn flush_session_activity(&self) -> Result<usize, StoreError> {
        self.auth.flush_session_activity().await.map_err(|e| match e {
            crate::service::AuthError::Store(e) => e,
            other => StoreError::Database(other.to_string().into()),
        })
    }
}

async fn state_without_tasks(settings: Settings, deps: Deps) -> Result<AppState, StartError> {
    let settings = Arc::new(settings);
    let store = open_store(&settings).await.map_err(StartError::Store)?;
    check_user_id_type(store.as_ref(), &settings).await?;
    let codec = keys::codec(&settings, store.as_ref()).await?;
    let verifier =
        Verifier::new(&codec, deps.clock.clone(), settings.auth_header_types.clone(), settings.user_id_claim.clone())
            .accepting(&settings.auth_token_classes);
    let passwords = PasswordPool::new(deps.hasher).map_err(|_| StartError::Hashing)?;
    let delivery_clock = deps.delivery_clock.clone().unwrap_or_else(|| deps.clock.clone());
    let delivery = Delivery::start(&settings.delivery, delivery_clock).map_err(StartError::Delivery)?;
    let auth = AuthService::new(store, codec, verifier.clone(), deps.clock, passwords, settings.clone())
        .with_delivery(delivery);
    let metrics = Arc::new(Metrics::new(&http::route_paths(&settings)));
    Ok(AppState::new(auth, verifier, settings, metrics))
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    tls: Option<TlsAcceptor>,
    reloader: Option<CertReloader>,
    limits: Limits,
    tasks: Vec<JoinHandle<()>>,
    background: Background,
}

impl Application {
    pub async fn build(settings: Settings, deps: Deps) -> Result<Self, StartError> {
        let addr = settings.addr;
        let (tls, reloader) = match &settings.tls {
            Some(files) => {
                let (acceptor, reloader) = tls::acceptor(&files.cert, &files.key).map_err(StartError::Tls)?;
                (Some(acceptor), Some(reloader))
            }
            None => (None, None),
        };
        let limits = Limits::from_settings(&settings);
        let metrics_addr = settings.metrics_addr;
        let (state, background) = state_with_tasks(settings, deps).await?;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let metrics_listener = match metrics_addr {
            Some(addr) => {
                Some(TcpListener::bind(addr).await.map_err(|source| StartError::BindMetrics { addr, source })?)
            }
            None => None,
        };
        let mut tasks = Vec::new();
        if let Some(reloader) = &reloader {
            tasks.push(tokio::spawn(reload_on_hangup(reloader.clone())));
        }
        Ok(Application { listener, metrics_listener, state, tls, reloader, limits, tasks, background })
    }

    /// The periodic steps (revocation poll, session activity), to run one now rather than wait
    /// for its tick (tests drive them this way).
    pub fn background(&self) -> Background {
        self.background.clone()
    }

    /// What reloads TLS_CERT and TLS_KEY (as SIGHUP does); `None` without TLS.
    pub fn tls_reloader(&self) -> Option<CertReloader> {
        self.reloader.clone()
    }

    /// The address of METRICS_ADDR's listener, when set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Replaces the transport limits (timeouts, header size, shutdown bound).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether the server speaks HTTPS (TLS_CERT and TLS_KEY set).
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests in flight finish
    /// within the limits' drain bound, stops the background tasks and closes the store.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application { listener, metrics_listener, state, tls, limits, mut tasks, background, .. } = self;
        if let Some(metrics_listener) = metrics_listener {
            let router = with_layers(http::metrics_router(state.clone()), &state, limits);
            let never = std::future::pending::<()>();
            tasks.push(tokio::spawn(serve::serve(metrics_listener, router, None, limits, never)));
        }
        let router = with_layers(http::bare_router(state.clone()), &state, limits);
        serve::serve(listener, router, tls, limits, shutdown).await;
        for task in tasks {
            task.abort();
        }
        // Mails and events queued by the last requests go out before the process ends, within
        // the drain bound; what a dead receiver still holds is logged as dropped.
        let left = state.parts().auth.delivery().settle(limits.drain_timeout).await;
        if left > 0 {
            warn!(dropped = left, "delivery: messages not sent before shutdown were dropped");
        }
        state.parts().stop_tasks();
        if let Err(e) = background.flush_session_activity().await {
            warn!(error = %e, "could not record when sessions were last used");
        }
        match state.parts().auth.store().close().await {
            Ok(()) => info!("database closed"),
            Err(e) => warn!(error = %e, "could not close the database cleanly"),
        }
        Ok(())
    }
}

/// The transport layers around the API: CORS (when origins are configured) inside one edge
/// middleware that does, outermost first, the security headers, the request log and metrics,
/// and the limits (header size, requests in flight, body deadline, request timeout). One layer
/// rather than three: each layer costs a clone of the service and a boxed future per request.
fn with_layers(router: Router, state: &AppState, limits: Limits) -> Router {
    let mut router = router;
    let settings = &state.parts().settings;
    if !settings.cors_allowed_origins.is_empty() {
        let origins: Vec<_> = settings.cors_allowed_origins.iter().filter_map(|o| o.parse().ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE])
            .expose_headers([axum::http::header::RETRY_AFTER])
            .allow_credentials(true)
            .max_age(Duration::from_secs(600));
        router = router.layer(cors);
    }
    // A panic in a handler is SPEC §2's JSON 500 (and logged by the edge), not a dropped connection.
    router = router.layer(CatchPanicLayer::custom(panic_response));
    let edge = Edge { admission: http::limits::Admission::new(limits), metrics: state.parts().metrics.clone() };
    router.layer(middleware::from_fn_with_state(Arc::new(edge), edge_layer))
}

struct Edge {
    admission: http::limits::Admission,
    metrics: Arc<Metrics>,
}

/// One info line per request (method, route, status, latency) and its metrics; server faults
/// at error level with their cause chain. Never the path's query, a header or a body: those
/// may carry tokens, passwords or cookies.
async fn edge_layer(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let is_head_or_get = matches!(method, axum::http::Method::GET | axum::http::Method::HEAD);
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = std::time::Instant::now();
    let in_flight = edge.metrics.in_flight();
    let https = req.extensions().get::<http::Https>().is_some();
    let mut response = http::limits::admit(&edge.admission, req, next).await;
    drop(in_flight);
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let route = route.as_ref().map(MatchedPath::as_str);
    edge.metrics.request(route, status, latency);
    if let Some(reason) = response.extensions().get::<Rejection>() {
        edge.metrics.rejected(*reason);
    } else if let Some(reason) =
        response.extensions().get::<crate::service::BearerError>().and_then(http::bearer_rejection)
    {
        edge.metrics.rejected(reason);
    }
    let route = route.unwrap_or("-");
    let latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3;
    if let Some(err) = response.extensions().get::<http::LoggedErrorRef>() {
        error!(%method, route, status, latency_ms, error = %err.0, "request failed");
    } else {
        crate::telemetry::request(method.as_str(), route, status, latency_ms);
    }
    http::secure(&mut response, is_head_or_get);
    if https {
        // Only over TLS (RFC 6797 §7.2): browsers ignore it on plain HTTP. No includeSubDomains:
        // jwtd cannot know what else is served under its domain.
        response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

/// `Strict-Transport-Security` over TLS: one year.
const HSTS: &str = "max-age=31536000";

/// The answer to a panicking handler: the panic's message goes to the log through the error.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "(no message)".to_string()
    };
    http::ApiError::Panicked(message).into_response()
}

/// Reloads the TLS certificate and key on each SIGHUP; a bad new pair is logged, the old kept.
async fn reload_on_hangup(reloader: CertReloader) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP; TLS_CERT will not be reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match reloader.reload() {
                Ok(()) => info!("TLS certificate reloaded"),
                Err(e) => error!(error = %e, "TLS certificate not reloaded; keeping the one in use"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
    }
}

/// The revocation poll: what it reads and where it applies it.
#[derive(Clone)]
struct RevocationPoll {
    store: Arc<dyn Store>,
    verifier: Verifier,
    /// Every user a row names is forgotten there: the profile may have changed with it.
    profiles: Arc<Profiles>,
    id_type: IdType,
    clock: SharedClock,
    /// How long a revoked session is kept after its revocation: the longest lifetime of a token
    /// accepted without the database, LEEWAY, and [`REVOKED_SESSION_MARGIN`].
    keep_sessions: Duration,
    /// The log's cursor, shared by the task and [`Background::poll_revocations`].
    cursor: Arc<tokio::sync::Mutex<i64>>,
}

impl RevocationPoll {
    /// Reads the log past the cursor into the verifier: a row with a session revokes that
    /// session, any other every token of its user issued before its `valid_after`. Then forgets
    /// the revoked sessions whose tokens have all expired.
    async fn run(&self) -> Result<(), StoreError> {
        let mut cursor = self.cursor.lock().await;
        loop {
            let batch = self.store.revocations_since(*cursor, 1000).await?;
            for r in &batch {
                let user_id = r.public_id(self.id_type);
                match (&r.session, user_id) {
                    (Some(session), _) => self.verifier.revoke_session(session, r.valid_after),
                    (None, Some(user_id)) => self.verifier.revoke_before(user_id, r.valid_after),
                    (None, None) => {}
                }
                if let Some(user_id) = user_id {
                    self.profiles.forget(user_id);
                }
                *cursor = r.cursor;
            }
            if batch.len() < 1000 {
                break;
            }
        }
        let horizon = self.clock.now().secs().saturating_sub(crate::tokens::secs_of(self.keep_sessions));
        self.verifier.forget_sessions_revoked_before(horizon);
        Ok(())
    }
}

/// Holds no state: the state's last clone going away stops it.
async fn revocation_task(background: Background) {
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    loop {
        tick.tick().await;
        if let Err(e) = background.poll_revocations().await {
            warn!(error = %e, "could not read the revocation log");
        }
    }
}

async fn activity_task(background: Background) {
    let mut tick = tokio::time::interval(crate::service::SessionActivity::FLUSH_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = background.flush_session_activity().await {
            warn!(error = %e, "could not record when sessions were last used");
        }
    }
}

async fn flush_task(store: Arc<dyn Store>, clock: SharedClock) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tick.tick().await;
        match flush_expired(store.as_ref(), clock.now()).await {
            Ok(n) if n > 0 => info!(rows = n, "purged expired token rows"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not purge expired token rows"),
        }
    }
}

/// Deletes every expired token row, `FLUSH_BATCH` rows per statement so no write blocks others long.
pub async fn flush_expired(store: &dyn Store, now: crate::clock::Instant) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = store.flush_expired(now, FLUSH_BATCH).await?;
        total += n;
        if n < u64::from(FLUSH_BATCH) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Secret;

    #[tokio::test]
    async fn a_panicking_handler_answers_the_json_500_and_is_logged_as_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            database_url: DatabaseUrl::Sqlite(dir.path().join("jwtd.db")),
            signing_key: Some(Secret::new("x".repeat(32))),
            ..Settings::default()
        };
        let deps = Deps { hasher: Hasher::with_params(256, 1, 1), ..Deps::default() };
        let state = build_state(settings, deps).await.unwrap();
        let boom = Router::new().route(
            "/boom",
            get(|| async {
                panic!("the handler broke");
                #[allow(unreachable_code)]
                ""
            }),
        );
        let app = with_layers(boom, &state, Limits::default());
        let request = Request::builder().uri("/boom").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let logged = response.extensions().get::<http::LoggedErrorRef>().map(|e| e.0.to_string());
        assert!(logged.is_some_and(|e| e.contains("a handler panicked: the handler broke")));
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"A server error occurred."}"#);
    }
}
