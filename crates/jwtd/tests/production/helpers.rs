//! Starting a server in-process and speaking its API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use jwtd::clock::FakeClock;
use jwtd::config::{self, Sources};
use jwtd::http::Limits;
use jwtd::password::Hasher;
use jwtd::{Application, Deps};
use reqwest::{Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "production-test-secret-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: FakeClock,
    pub client: Client,
    pub db: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: TempDir,
}

/// Settings as the environment gives them (`JWTD_` prefix added), over a temporary database.
pub fn settings(dir: &TempDir, env: &[(&str, &str)]) -> jwtd::Settings {
    let db = dir.path().join("jwtd.db");
    let mut map: HashMap<String, String> = HashMap::from([
        ("JWTD_ADDR".into(), "127.0.0.1:0".into()),
        ("JWTD_DATABASE_URL".into(), format!("sqlite://{}", db.display())),
        ("JWTD_SIGNING_KEY".into(), SECRET.into()),
    ]);
    for (k, v) in env {
        map.insert(format!("JWTD_{k}"), v.to_string());
    }
    config::load(&Sources { env: map, ..Default::default() }).unwrap()
}

pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    spawn_app_with(env, Limits::default()).await
}

pub async fn spawn_app_with(env: &[(&str, &str)], limits: Limits) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&dir, env);
    let clock = FakeClock::new();
    let deps = Deps { clock: Arc::new(clock.clone()), hasher: Hasher::with_params(256, 1, 1) };
    let app = Application::build(settings, deps).await.unwrap().with_limits(limits);
    let addr = app.local_addr();
    let scheme = if app.is_https() { "https" } else { "http" };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("{scheme}://{addr}"),
        clock,
        client: Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        db: dir.path().join("jwtd.db"),
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client.post(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Signs `name` up with [`PASSWORD`]; the answer's JSON.
    pub async fn sign_up(&self, name: &str) -> Value {
        let r = self.post("/api/auth/signup/", json!({"username": name, "password": PASSWORD})).await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    pub async fn sign_in(&self, name: &str, password: &str) -> Response {
        self.post("/api/token/", json!({"username": name, "password": password})).await
    }

    pub async fn me(&self, access: &str) -> Response {
        self.client.get(self.url("/api/me/")).bearer_auth(access).send().await.unwrap()
    }

    /// Signals shutdown; the server's task then drains and ends.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown and waits for the server to finish.
    pub async fn stop_and_wait(&mut self) {
        self.stop();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// The value of a `Set-Cookie` header of `r` for the refresh cookie.
pub fn refresh_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{}=", jwtd::http::COOKIE_NAME)))
}

/// The token inside a `Set-Cookie` value.
pub fn cookie_token(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}
