//! Start-up as a value: [`Application::build`] opens the store, loads the keys, binds the
//! listener (port 0 works) and starts the background tasks; `run_until_stopped` serves until
//! the given shutdown future resolves.

pub mod keys;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{debug, error, info, warn};

use crate::clock::SharedClock;
use crate::config::{DatabaseUrl, Settings};
use crate::http::{self, AppState};
use crate::password::Hasher;
use crate::service::{AuthService, PasswordPool, Verifier};
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// How often each instance reads the revocation log to keep its "valid after" map in step.
const REVOCATION_POLL: Duration = Duration::from_secs(1);
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
}

/// What the application runs on besides its settings; tests swap these.
#[derive(Debug, Clone)]
pub struct Deps {
    pub clock: SharedClock,
    pub hasher: Hasher,
}

impl Default for Deps {
    fn default() -> Self {
        Deps { clock: Arc::new(crate::clock::SystemClock), hasher: Hasher::owasp() }
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
            let options =
                PgOptions { max_connections: settings.database_max_connections, startup_wait: DATABASE_STARTUP_WAIT };
            Ok(Arc::new(PgStore::connect(url, options).await?))
        }
    }
}

/// The state of a built application, for mounting its router elsewhere (SPEC §7).
pub async fn build_state(settings: Settings, deps: Deps) -> Result<AppState, StartError> {
    let settings = Arc::new(settings);
    let store = open_store(&settings).await.map_err(StartError::Store)?;
    let codec = keys::codec(&settings, store.as_ref()).await?;
    let verifier =
        Verifier::new(codec, deps.clock.clone(), settings.auth_header_types.clone(), settings.user_id_claim.clone());
    let passwords = PasswordPool::new(deps.hasher).map_err(|_| StartError::Hashing)?;
    let auth = AuthService::new(store, verifier.clone(), passwords, settings.clone());
    Ok(AppState { auth, verifier, settings })
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings, deps: Deps) -> Result<Self, StartError> {
        let addr = settings.addr;
        let state = build_state(settings, deps).await?;
        let mut cursor = 0;
        sync_revocations(&state, &mut cursor).await.map_err(StartError::Store)?;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let tasks = vec![tokio::spawn(revocation_task(state.clone(), cursor)), tokio::spawn(flush_task(state.clone()))];
        let router = with_layers(http::router(state.clone()), &state.settings);
        Ok(Application { listener, router, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await;
        for task in self.tasks {
            task.abort();
        }
        result
    }
}

fn with_layers(router: Router, settings: &Settings) -> Router {
    let router = router.layer(middleware::from_fn(log_request));
    if settings.cors_allowed_origins.is_empty() {
        return router;
    }
    let origins: Vec<_> = settings.cors_allowed_origins.iter().filter_map(|o| o.parse().ok()).collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE])
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));
    router.layer(cors)
}

/// One debug line per request; server faults at error level with their cause chain.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    let route = path.as_deref().unwrap_or("-");
    if let Some(err) = response.extensions().get::<http::LoggedErrorRef>() {
        error!(%method, route, status, latency_us, error = %err.0, "request failed");
    } else {
        debug!(%method, route, status, latency_us, "request");
    }
    response
}

async fn sync_revocations(state: &AppState, cursor: &mut i64) -> Result<(), StoreError> {
    loop {
        let batch = state.auth.store().revocations_since(*cursor, 1000).await?;
        for r in &batch {
            state.verifier.revoke_before(r.user_id, r.valid_after);
            *cursor = r.cursor;
        }
        if batch.len() < 1000 {
            return Ok(());
        }
    }
}

async fn revocation_task(state: AppState, mut cursor: i64) {
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    loop {
        tick.tick().await;
        if let Err(e) = sync_revocations(&state, &mut cursor).await {
            warn!(error = %e, "could not read the revocation log");
        }
    }
}

async fn flush_task(state: AppState) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tick.tick().await;
        match flush_expired(state.auth.store().as_ref(), state.verifier.now()).await {
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
