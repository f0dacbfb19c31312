//! The database is away (any backend: the store answers `Unavailable` to everything). Routes
//! that need it answer 503 with a JSON `detail`; Bearer authentication — the library's
//! `AuthUser` and /api/token/verify/ of access tokens — goes on without it (SPEC §4, §7).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use tower::ServiceExt;

use super::{router, AppState, AuthUser};
use crate::clock::{Clock, FakeClock, Instant, SharedClock};
use crate::config::{IdType, Settings};
use crate::password::Hasher;
use crate::service::{AuthService, PasswordPool, Verifier};
use crate::store::{
    IdTypeCheck, ImportMode, ImportOutcome, ImportUser, NewUser, RefreshCheck, RefreshQuery, RefreshRecord, Revocation,
    RotateRequest, Rotation, SessionListing, SessionRevocation, SignIn, Store, StoreError, TokenRow, User, UserListing,
};
use crate::tokens::{Algorithm, Claims, Codec, Policy, TokenType};

#[derive(Debug)]
struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

#[async_trait]
impl Store for DownStore {
    async fn ping(&self) -> Result<(), StoreError> {
        down()
    }
    async fn secret_or_insert(&self, _: &str, _: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        down()
    }
    async fn create_user(&self, _: NewUser) -> Result<User, StoreError> {
        down()
    }
    async fn user_by_name(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn user_by_id(&self, _: i64) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn user_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn user_by_uuid(&self, _: uuid::Uuid) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn fix_user_id_type(&self, _: IdType) -> Result<IdType, StoreError> {
        down()
    }
    async fn set_user_claims(&self, _: i64, _: &Map<String, Value>) -> Result<bool, StoreError> {
        down()
    }
    async fn user_groups(&self, _: i64) -> Result<Vec<String>, StoreError> {
        down()
    }
    async fn change_groups(&self, _: i64, _: &[String], _: &[String]) -> Result<Vec<String>, StoreError> {
        down()
    }
    async fn set_active(&self, _: i64, _: bool, _: Instant) -> Result<bool, StoreError> {
        down()
    }
    async fn delete_user(&self, _: i64, _: Instant) -> Result<bool, StoreError> {
        down()
    }
    async fn set_last_login(&self, _: i64, _: Instant) -> Result<(), StoreError> {
        down()
    }
    async fn update_password_hash(&self, _: i64, _: &str, _: &str) -> Result<bool, StoreError> {
        down()
    }
    async fn change_password(&self, _: i64, _: &str, _: Instant) -> Result<(), StoreError> {
        down()
    }
    async fn revoke_all(&self, _: i64, _: Instant) -> Result<(), StoreError> {
        down()
    }
    async fn revocations_since(&self, _: i64, _: u32) -> Result<Vec<Revocation>, StoreError> {
        down()
    }
    async fn record_sign_in(&self, _: SignIn<'_>) -> Result<bool, StoreError> {
        down()
    }
    async fn refresh_row(&self, _: &str) -> Result<Option<TokenRow>, StoreError> {
        down()
    }
    async fn refresh_check(&self, _: RefreshQuery<'_>) -> Result<Option<RefreshCheck>, StoreError> {
        down()
    }
    async fn session_owner(&self, _: &str) -> Result<Option<i64>, StoreError> {
        down()
    }
    async fn sessions(&self, _: i64, _: Instant) -> Result<Vec<SessionListing>, StoreError> {
        down()
    }
    async fn revoke_sessions(&self, _: SessionRevocation<'_>) -> Result<Vec<String>, StoreError> {
        down()
    }
    async fn touch_sessions(&self, _: &[(String, i64)]) -> Result<(), StoreError> {
        down()
    }
    async fn blacklist(&self, _: &RefreshRecord, _: &str, _: Instant) -> Result<(), StoreError> {
        down()
    }
    async fn rotate(&self, _: &RotateRequest) -> Result<Rotation, StoreError> {
        down()
    }
    async fn import_user(&self, _: &ImportUser, _: ImportMode) -> Result<ImportOutcome, StoreError> {
        down()
    }
    async fn import_id_type(&self, _: IdType, _: ImportMode) -> Result<IdTypeCheck, StoreError> {
        down()
    }
    async fn import_groups(&self, _: &[String], _: ImportMode) -> Result<u64, StoreError> {
        down()
    }
    async fn user_page(&self, _: i64, _: u32) -> Result<Vec<UserListing>, StoreError> {
        down()
    }
    async fn flush_expired(&self, _: Instant, _: u32) -> Result<u64, StoreError> {
        down()
    }
    async fn create_user_awaiting_activation(&self, _: NewUser) -> Result<User, StoreError> {
        down()
    }
    async fn awaits_activation(&self, _: i64) -> Result<bool, StoreError> {
        down()
    }
    async fn insert_account_token(&self, _: &crate::store::AccountToken) -> Result<(), StoreError> {
        down()
    }
    async fn account_token(&self, _: &str) -> Result<Option<crate::store::AccountToken>, StoreError> {
        down()
    }
    async fn redeem(&self, _: &crate::store::Redemption) -> Result<crate::store::Redeemed, StoreError> {
        down()
    }
}

async fn hello(user: AuthUser) -> String {
    format!("hello, user {}", user.user_id)
}

struct Fixture {
    app: Router,
    access: String,
    refresh: String,
}

fn fixture() -> Fixture {
    let clock = FakeClock::new();
    let codec = Codec::from_secret(Algorithm::HS256, &[7u8; 32], Policy::default()).unwrap();
    let now = clock.now().secs();
    let sign = |t, life| {
        codec.encode(&Claims::new(
            t,
            "user_id",
            jwtd_proto::UserId::Int(42),
            now,
            life,
            uuid::Uuid::new_v4().simple().to_string(),
        ))
    };
    let access = sign(TokenType::Access, Duration::from_secs(300)).unwrap();
    let refresh = sign(TokenType::Refresh, Duration::from_secs(3600)).unwrap();
    let clock: SharedClock = Arc::new(clock);
    let verifier = Verifier::new(&codec, clock.clone(), vec!["Bearer".into()], "user_id".into());
    let settings = Arc::new(Settings::default());
    let passwords = PasswordPool::new(Hasher::with_params(8, 1, 1)).unwrap();
    let auth = AuthService::new(Arc::new(DownStore), codec, verifier.clone(), clock, passwords, settings.clone());
    let metrics = Arc::new(crate::telemetry::Metrics::new(&[] as &[&str]));
    let state = AppState::new(auth, verifier, settings, metrics);
    let app = Router::new().route("/hello", get(hello)).with_state(state.clone()).merge(router(state));
    Fixture { app, access, refresh }
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<Value>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match json {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

const UNAVAILABLE: &str = r#"{"detail":"Service temporarily unavailable, try again later."}"#;

#[tokio::test]
async fn bearer_authentication_needs_no_database() {
    let f = fixture();
    assert_eq!(send(&f.app, "GET", "/hello", Some(&f.access), None).await, (StatusCode::OK, "hello, user 42".into()));
    let (status, _) = send(&f.app, "GET", "/hello", Some("not.a.token"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let verify = send(&f.app, "POST", "/api/token/verify/", None, Some(serde_json::json!({"token": f.access}))).await;
    assert_eq!(verify, (StatusCode::OK, "{}".into()));
    assert_eq!(send(&f.app, "GET", "/healthz", None, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn routes_that_need_the_database_answer_503_json() {
    let f = fixture();
    let refresh = serde_json::json!({"refresh": f.refresh});
    let creds = serde_json::json!({"username": "ada", "password": "correct horse battery"});
    let cases = [
        send(&f.app, "GET", "/api/me/", Some(&f.access), None).await,
        send(&f.app, "POST", "/api/token/refresh/", None, Some(refresh.clone())).await,
        send(&f.app, "POST", "/api/token/blacklist/", None, Some(refresh)).await,
        send(&f.app, "POST", "/api/token/", None, Some(creds.clone())).await,
        send(&f.app, "POST", "/api/auth/signup/", None, Some(creds)).await,
        send(&f.app, "POST", "/api/auth/logout-all/", Some(&f.access), None).await,
        send(&f.app, "POST", "/api/token/verify/", None, Some(serde_json::json!({"token": f.refresh}))).await,
    ];
    for case in cases {
        assert_eq!(case, (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.into()));
    }
    let (status, body) = send(&f.app, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["detail"].is_string(), "{body}");
}
