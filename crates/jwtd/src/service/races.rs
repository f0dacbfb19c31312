//! Issuance and revocation races, made deterministic: a store wrapper pauses a use case at a
//! chosen store call while the test commits a password change, logout-all or deactivation, and
//! a [`FakeClock`] stands for time (SPEC §4 "Revocation is exact in time"). On SQLite, or on a
//! fresh database of the PostgreSQL server JWTD_TEST_DATABASE_URL names when it is set.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AuthError, AuthService, PasswordPool, Verifier};
use crate::clock::{Clock, FakeClock, Instant, SharedClock};
use crate::config::{IdType, RotationPolicy, Settings};
use crate::password::Hasher;
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{
    IdTypeCheck, ImportMode, ImportOutcome, ImportUser, NewUser, RefreshCheck, RefreshQuery, RefreshRecord, Revocation,
    RotateRequest, Rotation, SessionListing, SessionRevocation, SignIn, Store, StoreError, TokenRow, User, UserListing,
};
use crate::tokens::{Algorithm, Codec, Policy};
use jwtd_proto::UserId;
use serde_json::{Map, Value};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "another passphrase entirely";
/// A Django hash of [`PASSWORD`] (upgraded to argon2id at the first sign-in).
const DJANGO_HASH: &str = "pbkdf2_sha256$1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=";

/// Store calls a test can stop a use case at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    RecordSignIn,
    UpdatePasswordHash,
    UserById,
}

struct Hook {
    point: Point,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// A [`Store`] that stops once at an armed [`Point`] until released, and can make a revocation
/// take so long that the clock crosses into the next second before it returns.
struct Pausing {
    inner: Arc<dyn Store>,
    hook: Mutex<Option<Hook>>,
    slow_revocation: AtomicBool,
    clock: FakeClock,
}

impl std::fmt::Debug for Pausing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pausing").finish_non_exhaustive()
    }
}

/// A use case stopped at a [`Point`]: `reached` resolves when it gets there, `release` lets it go on.
struct Stop {
    reached: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Pausing {
    fn arm(&self, point: Point) -> Stop {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.hook.lock().unwrap() = Some(Hook { point, reached: reached_tx, release: release_rx });
        Stop { reached, release }
    }

    async fn at(&self, point: Point) {
        let hook = {
            let mut hook = self.hook.lock().unwrap();
            if hook.as_ref().is_some_and(|h| h.point == point) {
                hook.take()
            } else {
                None
            }
        };
        if let Some(hook) = hook {
            let _ = hook.reached.send(());
            let _ = hook.release.await;
        }
    }

    fn after_revocation(&self) {
        if self.slow_revocation.swap(false, Ordering::SeqCst) {
            self.clock.advance(Duration::from_secs(1));
        }
    }
}

/// `impl Store for Pausing`: the methods given in full, then every other one passed on to the
/// store underneath.
macro_rules! pausing_store {
    ({ $($own:tt)* } $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[async_trait]
        impl Store for Pausing {
            $($own)*
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

pausing_store! {
    {
        async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
            self.at(Point::UserById).await;
            self.inner.user_by_id(id).await
        }
        async fn update_password_hash(&self, user_id: i64, old: &str, new: &str) -> Result<bool, StoreError> {
            self.at(Point::UpdatePasswordHash).await;
            self.inner.update_password_hash(user_id, old, new).await
        }
        async fn record_sign_in(&self, sign_in: SignIn<'_>) -> Result<bool, StoreError> {
            self.at(Point::RecordSignIn).await;
            self.inner.record_sign_in(sign_in).await
        }
        async fn change_password(&self, user_id: i64, hash: &str, now: Instant) -> Result<(), StoreError> {
            self.inner.change_password(user_id, hash, now).await?;
            self.after_revocation();
            Ok(())
        }
        async fn revoke_all(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
            self.inner.revoke_all(user_id, now).await?;
            self.after_revocation();
            Ok(())
        }
    }
    ping() -> ();
    secret_or_insert(name: &str, generate: Vec<u8>) -> Vec<u8>;
    create_user(user: NewUser) -> User;
    user_by_name(username: &str) -> Option<User>;
    user_by_email(email: &str) -> Option<User>;
    user_by_uuid(uuid: uuid::Uuid) -> Option<User>;
    fix_user_id_type(wanted: IdType) -> IdType;
    set_user_claims(user_id: i64, claims: &Map<String, Value>) -> bool;
    user_groups(user_id: i64) -> Vec<String>;
    change_groups(user_id: i64, add: &[String], remove: &[String]) -> Vec<String>;
    set_active(user_id: i64, active: bool, now: Instant) -> bool;
    delete_user(user_id: i64, now: Instant) -> bool;
    set_last_login(user_id: i64, now: Instant) -> ();
    revocations_since(cursor: i64, limit: u32) -> Vec<Revocation>;
    refresh_row(jti: &str) -> Option<TokenRow>;
    refresh_check(query: RefreshQuery<'_>) -> Option<RefreshCheck>;
    session_owner(session: &str) -> Option<i64>;
    sessions(user_id: i64, now: Instant) -> Vec<SessionListing>;
    revoke_sessions(revocation: SessionRevocation<'_>) -> Vec<String>;
    touch_sessions(used: &[(String, i64)]) -> ();
    blacklist(token: &RefreshRecord, family: &str, now: Instant) -> ();
    rotate(req: &RotateRequest) -> Rotation;
    import_user(user: &ImportUser, mode: ImportMode) -> ImportOutcome;
    import_id_type(incoming: IdType, mode: ImportMode) -> IdTypeCheck;
    import_groups(names: &[String], mode: ImportMode) -> u64;
    user_page(after: i64, limit: u32) -> Vec<UserListing>;
    flush_expired(now: Instant, batch: u32) -> u64;
    create_user_awaiting_activation(user: NewUser) -> User;
    awaits_activation(user_id: i64) -> bool;
    insert_account_token(token: &crate::store::AccountToken) -> ();
    account_token(digest: &str) -> Option<crate::store::AccountToken>;
    redeem(r: &crate::store::Redemption) -> crate::store::Redeemed;
}

/// One jwtd instance over a store, on a shared clock.
struct Instance {
    auth: AuthService,
    verifier: Verifier,
    store: Arc<Pausing>,
}

struct World {
    dir: tempfile::TempDir,
    /// The PostgreSQL database's URL, its server's admin connection and its name.
    postgres: Option<(String, tokio_postgres::Client, String)>,
    clock: FakeClock,
}

impl World {
    /// A clock at a whole second, so that tests can move within it.
    async fn new() -> Self {
        let postgres = match std::env::var("JWTD_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => {
                let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let name = format!("jwtd_test_{}", uuid::Uuid::new_v4().simple());
                admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
                let (base, _) = admin_url.rsplit_once('/').unwrap();
                Some((format!("{base}/{name}"), admin, name))
            }
            None => None,
        };
        World { dir: tempfile::tempdir().unwrap(), postgres, clock: FakeClock::at(Instant::from_secs(1_800_000_000)) }
    }

    async fn finish(self) {
        if let Some((_, admin, name)) = self.postgres {
            admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        }
    }

    /// An instance on the world's one database (several share it, as instances share PostgreSQL).
    async fn instance(&self, configure: impl FnOnce(&mut Settings)) -> Instance {
        let store: Arc<dyn Store> = match &self.postgres {
            Some((url, _, _)) => {
                let options =
                    PgOptions { max_connections: 8, startup_wait: Duration::from_secs(5), tls: Default::default() };
                Arc::new(PgStore::connect(url, options).await.unwrap())
            }
            None => Arc::new(SqliteStore::open(&self.dir.path().join("jwtd.db")).unwrap()),
        };
        let store = Arc::new(Pausing {
            inner: store,
            hook: Mutex::new(None),
            slow_revocation: AtomicBool::new(false),
            clock: self.clock.clone(),
        });
        let codec = Codec::from_secret(Algorithm::HS256, &[7u8; 32], Policy::default()).unwrap();
        let clock: SharedClock = Arc::new(self.clock.clone());
        let verifier = Verifier::new(&codec, clock.clone(), vec!["Bearer".into()], "user_id".into());
        let mut settings = Settings::default();
        configure(&mut settings);
        let passwords = PasswordPool::new(Hasher::with_params(8, 1, 1)).unwrap();
        let auth = AuthService::new(store.clone(), codec, verifier.clone(), clock, passwords, Arc::new(settings));
        Instance { auth, verifier, store }
    }

    fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    /// Returns once `count` tasks wait on the clock.
    async fn sleepers(&self, count: usize) {
        while self.clock.sleepers() < count {
            tokio::task::yield_now().await;
        }
    }
}

impl Instance {
    async fn sign_up(&self, name: &str) -> i64 {
        self.auth.sign_up(Some(name.into()), PASSWORD.into(), None, None, "").await.unwrap().user.id
    }

    async fn change_password(&self, user: i64) {
        self.auth.change_password(UserId::Int(user), PASSWORD.into(), NEW_PASSWORD.into(), None).await.unwrap();
    }

    /// Runs `use_case` on a task of its own, with this instance's service.
    fn spawn<T, F>(&self, use_case: impl FnOnce(AuthService) -> F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        tokio::spawn(use_case(self.auth.clone()))
    }

    /// Runs `use_case` as [`Instance::spawn`] does, and returns once it stops at `point`: it goes
    /// on when the returned sender is used.
    async fn stopped_at<T, F>(
        &self,
        point: Point,
        use_case: impl FnOnce(AuthService) -> F,
    ) -> (oneshot::Sender<()>, JoinHandle<T>)
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let stop = self.store.arm(point);
        let running = self.spawn(use_case);
        stop.reached.await.unwrap();
        (stop.release, running)
    }

    /// What another instance learns from the revocation log within a second.
    async fn poll(&self) {
        for r in self.store.revocations_since(0, 1000).await.unwrap() {
            match &r.session {
                Some(session) => self.verifier.revoke_session(session, r.valid_after),
                None => self.verifier.revoke_before(UserId::Int(r.user_id), r.valid_after),
            }
        }
    }
}

fn refused_sign_in<T: std::fmt::Debug>(outcome: Result<T, AuthError>) {
    assert!(matches!(outcome, Err(AuthError::NoActiveAccount)), "expected no active account, got {outcome:?}");
}

/// H-1: a sign-in whose password check saw the old password, paused before its refresh row is
/// written while the password change commits, hands out nothing; the new password works.
#[tokio::test]
async fn a_sign_in_that_checked_the_old_password_issues_nothing_after_a_password_change() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let ada = app.sign_up("ada").await;
    let (release, sign_in) = app
        .stopped_at(Point::RecordSignIn, |auth| async move { auth.obtain_pair("ada", PASSWORD.into(), None, "").await })
        .await;

    app.change_password(ada).await;
    release.send(()).unwrap();

    refused_sign_in(sign_in.await.unwrap());
    app.auth.obtain_pair("ada", NEW_PASSWORD.into(), None, "").await.unwrap();
    world.finish().await;
}

/// H-1 for logout-all and deactivation: the state the check saw moved, so nothing is issued.
#[tokio::test]
async fn a_sign_in_racing_logout_all_or_deactivation_issues_nothing() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let ada = app.sign_up("ada").await;
    for revoke in ["logout-all", "deactivate"] {
        let (release, sign_in) =
            app.stopped_at(Point::RecordSignIn, |auth| async move {
                auth.obtain_pair("ada", PASSWORD.into(), None, "").await
            })
            .await;
        match revoke {
            "logout-all" => app.auth.logout_all(UserId::Int(ada)).await.unwrap(),
            _ => {
                app.store.set_active(ada, false, world.clock.now()).await.unwrap();
            }
        }
        release.send(()).unwrap();
        refused_sign_in(sign_in.await.unwrap());
    }
    world.finish().await;
}

/// H-1's variant: the rehash of a Django hash after a successful check is a compare-and-swap,
/// so it never writes the old password back over a change that committed meanwhile.
#[tokio::test]
async fn the_rehash_of_a_sign_in_never_brings_the_old_password_back() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let new = NewUser {
        username: "ada".into(),
        password_hash: DJANGO_HASH.into(),
        email: String::new(),
        uuid: None,
        unique_email: false,
        now: world.clock.now(),
    };
    let ada = app.store.create_user(new).await.unwrap().id;
    let (release, sign_in) = app
        .stopped_at(Point::UpdatePasswordHash, |auth| async move {
            auth.obtain_pair("ada", PASSWORD.into(), None, "").await
        })
        .await;

    app.change_password(ada).await;
    release.send(()).unwrap();

    refused_sign_in(sign_in.await.unwrap());
    refused_sign_in(app.auth.obtain_pair("ada", PASSWORD.into(), None, "").await);
    app.auth.obtain_pair("ada", NEW_PASSWORD.into(), None, "").await.unwrap();
    world.finish().await;
}

/// Sliding tokens have no row: the user is read again after the clock is read, and compared
/// with what the password check saw.
#[tokio::test]
async fn a_sliding_sign_in_racing_a_password_change_issues_nothing() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let ada = app.sign_up("ada").await;
    let (release, sign_in) = app
        .stopped_at(Point::UserById, |auth| async move { auth.obtain_sliding("ada", PASSWORD.into(), None).await })
        .await;

    app.change_password(ada).await;
    release.send(()).unwrap();

    refused_sign_in(sign_in.await.unwrap());
    world.finish().await;
}

/// M-1: every token dated in the revoking second is refused, whether issued before the call
/// (sign-in, refresh, sliding refresh) or during it; the revoking call answers once its second
/// is over, and a sign-in then needs no wait.
#[tokio::test]
async fn revocation_covers_its_whole_second_and_a_sign_in_right_after_is_at_once() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let ada = app.sign_up("ada").await;
    world.clock.hold_sleepers();
    let pair = app.auth.obtain_pair("ada", PASSWORD.into(), None, "").await.unwrap();
    world.advance_ms(200);
    let refresh = pair.refresh.as_ref().unwrap().token.clone();
    let refreshed = app.auth.refresh(&refresh).await.unwrap();
    let sliding = app.auth.obtain_sliding("ada", PASSWORD.into(), None).await.unwrap();
    let slid = app.auth.refresh_sliding(&sliding).await.unwrap();
    world.advance_ms(300);

    let logout = app.spawn(|auth| async move { auth.logout_all(UserId::Int(ada)).await });
    world.sleepers(1).await;
    assert!(!logout.is_finished(), "the call waits out its second");
    for access in [&pair.access, &refreshed.access] {
        assert!(app.verifier.access(access).is_err(), "revoked here at once, though of the same second");
    }
    // Another client signing in during the revoking second waits for the next one.
    let during = app.spawn(|auth| async move { auth.obtain_pair("ada", PASSWORD.into(), None, "").await });
    world.sleepers(2).await;
    world.advance_ms(500);
    logout.await.unwrap().unwrap();
    let during = during.await.unwrap().unwrap();

    assert!(matches!(app.auth.refresh(&refresh).await, Err(AuthError::Blacklisted)));
    assert!(matches!(app.auth.refresh_sliding(&slid).await, Err(AuthError::Blacklisted)));
    assert!(matches!(app.auth.refresh_sliding(&sliding).await, Err(AuthError::Blacklisted)));
    let after = app.auth.obtain_pair("ada", PASSWORD.into(), None, "").await.unwrap();
    assert_eq!(world.clock.sleepers(), 0, "the sign-in after the call did not wait");
    for pair in [&during, &after] {
        app.verifier.access(&pair.access).unwrap();
        app.auth.refresh(&pair.refresh.as_ref().unwrap().token).await.unwrap();
    }
    world.finish().await;
}

/// With rotation, a successor created in the revoking second is blacklisted and its access
/// token refused.
#[tokio::test]
async fn a_rotation_in_the_revoking_second_is_revoked() {
    let world = World::new().await;
    let app =
        world.instance(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO }).await;
    let ada = app.sign_up("ada").await;
    let pair = app.auth.obtain_pair("ada", PASSWORD.into(), None, "").await.unwrap();
    world.advance_ms(1_000);
    let rotated = app.auth.refresh(&pair.refresh.unwrap().token).await.unwrap();
    world.advance_ms(999);

    app.auth.logout_all(UserId::Int(ada)).await.unwrap();

    assert!(app.verifier.access(&rotated.access).is_err());
    assert!(matches!(app.auth.refresh(&rotated.refresh.unwrap().token).await, Err(AuthError::Blacklisted)));
    world.finish().await;
}

/// A revocation whose commit ends in a later second than the one it read revokes that second
/// too: an issuance that read the user before the commit may have dated its tokens in it.
#[tokio::test]
async fn a_revocation_that_crosses_a_second_revokes_the_later_second_too() {
    let world = World::new().await;
    let app = world.instance(|_| {}).await;
    let ada = app.sign_up("ada").await;
    let start = world.clock.now().secs();
    let before = app.store.revocations_since(0, 100).await.unwrap().len();
    app.store.slow_revocation.store(true, Ordering::SeqCst);

    app.auth.logout_all(UserId::Int(ada)).await.unwrap();

    let log: Vec<i64> = app.store.revocations_since(0, 100).await.unwrap().iter().map(|r| r.valid_after).collect();
    assert_eq!(log[before..], [start + 1, start + 2]);
    assert_eq!(app.verifier.valid_after(UserId::Int(ada)), start + 2);
    assert_eq!(world.clock.now().secs(), start + 2, "answered once the revoked seconds were over");
    world.finish().await;
}

/// Across instances sharing a database: a sign-in on another instance in the revoking second
/// waits for the next one (it reads the user's "valid after"), and that instance's verifier
/// refuses the revoked access tokens once it has read the log.
#[tokio::test]
async fn another_instance_waits_in_the_revoking_second_and_refuses_after_its_poll() {
    let world = World::new().await;
    let one = world.instance(|_| {}).await;
    let two = world.instance(|_| {}).await;
    let ada = one.sign_up("ada").await;
    let old = two.auth.obtain_pair("ada", PASSWORD.into(), None, "").await.unwrap();
    world.clock.hold_sleepers();
    world.advance_ms(400);

    let logout = one.spawn(|auth| async move { auth.logout_all(UserId::Int(ada)).await });
    world.sleepers(1).await;
    let elsewhere = two.spawn(|auth| async move { auth.obtain_pair("ada", PASSWORD.into(), None, "").await });
    world.sleepers(2).await;
    world.advance_ms(600);
    logout.await.unwrap().unwrap();
    let new = elsewhere.await.unwrap().unwrap();

    two.poll().await;
    assert!(two.verifier.access(&old.access).is_err());
    two.verifier.access(&new.access).unwrap();
    one.verifier.access(&new.access).unwrap();
    assert!(matches!(one.auth.refresh(&old.refresh.unwrap().token).await, Err(AuthError::Blacklisted)));
    world.finish().await;
}
