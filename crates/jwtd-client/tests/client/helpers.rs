//! The real jwtd router on 127.0.0.1:0 with a SQLite file in a temporary directory and a
//! `FakeClock`, behind a layer that records every request's method, path and status (so tests
//! count refreshes at the server) and can answer refreshes with a 503 on demand.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jwtd::clock::{Clock as _, FakeClock, Instant, SystemClock};
use jwtd::config::{DatabaseUrl, Secret};
use jwtd::{Deps, Settings};
use jwtd_client::{Client, ClientBuilder};
use tempfile::TempDir;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

pub const ACCESS_LIFETIME: Duration = Duration::from_secs(2);
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Clone, Default)]
struct Layer {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail_refreshes: Arc<AtomicUsize>,
    /// Refreshes are answered only once this many requests got a 401.
    hold_refreshes_until: Arc<AtomicUsize>,
    progress: Arc<Notify>,
}

impl Layer {
    fn refused(&self) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| s.status == 401).count()
    }
}

async fn record(State(layer): State<Layer>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let refresh = path.starts_with("/api/token/refresh");
    if refresh {
        loop {
            let progress = layer.progress.notified();
            if layer.refused() >= layer.hold_refreshes_until.load(Ordering::SeqCst) {
                break;
            }
            progress.await;
        }
    }
    let injected =
        refresh && layer.fail_refreshes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let response = if injected {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"detail": "down for a moment"})))
            .into_response()
    } else {
        next.run(req).await
    };
    layer.seen.lock().unwrap().push(Seen { method, path, status: response.status().as_u16() });
    layer.progress.notify_waiters();
    response
}

pub struct TestServer {
    pub base_url: String,
    pub clock: FakeClock,
    layer: Layer,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

impl TestServer {
    pub async fn spawn() -> TestServer {
        TestServer::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: DatabaseUrl::Sqlite(dir.path().join("jwtd.db")),
            signing_key: Some(Secret::new("a test signing key of more than 32 characters")),
            login_rate: None,
            signup_rate: None,
            access_token_lifetime: ACCESS_LIFETIME,
            ..Settings::default()
        };
        configure(&mut settings);
        // On a whole second, so that `iat` is exactly the server's time at sign-in.
        let clock = FakeClock::at(Instant::from_secs(SystemClock.now().secs()));
        let deps =
            Deps { clock: Arc::new(clock.clone()), hasher: jwtd::Hasher::with_params(256, 1, 1), delivery_clock: None };
        let state = jwtd::build_state(settings, deps).await.unwrap();
        let layer = Layer::default();
        let app = jwtd::router(state).layer(middleware::from_fn_with_state(layer.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        TestServer { base_url, clock, layer, shutdown: Some(tx), server: Some(server), _dir: dir }
    }

    /// A client whose clock is the server's: it refreshes ahead of expiry.
    pub fn client(&self) -> ClientBuilder {
        let clock = self.clock.clone();
        Client::builder(&self.base_url).clock(move || unix(clock.now().millis()))
    }

    /// A client whose clock never moves and with no margin: it refreshes only on a 401.
    pub fn reactive_client(&self) -> ClientBuilder {
        let frozen = unix(self.clock.now().millis());
        Client::builder(&self.base_url).clock(move || frozen).refresh_margin(Duration::ZERO)
    }

    /// Moves the server's clock past the access token's expiry.
    pub fn expire_access(&self) {
        self.clock.advance(ACCESS_LIFETIME + Duration::from_secs(1));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.layer.seen.lock().unwrap().clone()
    }

    pub fn count(&self, path: &str, status: u16) -> usize {
        self.seen().iter().filter(|s| s.path == path && s.status == status).count()
    }

    /// Refresh requests that reached the server, whatever their answer.
    pub fn refreshes(&self) -> usize {
        self.seen().iter().filter(|s| s.path == "/api/token/refresh/").count()
    }

    /// The next `n` refreshes get a 503 without reaching jwtd.
    pub fn fail_refreshes(&self, n: usize) {
        self.layer.fail_refreshes.store(n, Ordering::SeqCst);
    }

    /// Refreshes wait until `n` requests in all have been answered 401.
    pub fn hold_refreshes_until_refused(&self, n: usize) {
        self.layer.hold_refreshes_until.store(n, Ordering::SeqCst);
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        reqwest::Client::new().post(format!("{}{path}", self.base_url)).json(&body).send().await.unwrap()
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

fn unix(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap())
}

/// Sends `n` GET /api/me/ at once through `client`; their statuses.
pub async fn concurrent_me(client: &Client, n: usize) -> Vec<StatusCode> {
    let tasks = (0..n).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.request(jwtd_client::Method::GET, "/api/me/").send().await.unwrap().status() })
    });
    futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}
