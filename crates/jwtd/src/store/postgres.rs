//! The PostgreSQL backend, for several jwtd instances sharing one database: a pool of
//! DATABASE_MAX_CONNECTIONS connections, embedded migrations, and row locks where SQLite relies
//! on its single writer. Losing the server is [`StoreError::Unavailable`] (a 503), never a
//! panic or a half-written row; the pool opens fresh connections once the server is back.
//!
//! Lock order, the same in every transaction so that none waits on another in a cycle: the
//! user's row first (`FOR UPDATE`, or the `UPDATE` itself), then refresh-token rows, then the
//! revocation-log advisory lock. Rotation locks and reads what [`decide_rotation`] needs, and
//! writes the rows it returns.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use futures_util::future::{join3, try_join3, FutureExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use tracing::{info, warn};

use super::pg_tls::{PgTls, TlsOr};
use super::{
    database_id_type, decide_id_type, decide_rotation, decide_token_import, imported_row, plan_user_import, Holder,
    IdTypeCheck, ImportMode, ImportOutcome, ImportUser, LoginKey, NewUser, RefreshCheck, RefreshQuery, RefreshRecord,
    Revocation, RotateRequest, Rotation, RotationDecision, SessionListing, SessionRevocation, SessionScope, SignIn,
    SourceId, Store, StoreError, TokenImport, TokenRow, TokenStanding, User, UserGate, UserListing, UserState,
    UserWrite,
};
use super::{decide_redemption, password_fingerprint, AccountToken, Purpose, Redeemed, Redeemer, Redemption};
use crate::clock::Instant;
use crate::config::IdType;
use crate::store::{
    account_token_columns, columns_of, migrations, pending, profile_columns, token_columns, user_columns,
};
use serde_json::{Map, Value};

type PgError = tokio_postgres::Error;
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

const MIGRATIONS: &[&str] = &migrations!("postgres");
/// Transaction-scoped advisory locks: "jwtd" in ASCII, then a number per purpose.
const MIGRATION_LOCK: i64 = 0x6a77_7464_0001;
const REVOCATION_LOCK: i64 = 0x6a77_7464_0002;
/// A connection attempt that gets no answer in this time counts as "database unavailable".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free pooled connection before answering 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Rotation is retried this often when PostgreSQL reports a deadlock or serialization failure,
/// or when the never-seen token it was about to record got recorded first.
const ROTATE_ATTEMPTS: usize = 3;

/// How to open a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections held at once (DATABASE_MAX_CONNECTIONS).
    pub max_connections: usize,
    /// How long [`PgStore::connect`] retries while the server does not answer.
    pub startup_wait: Duration,
    /// DATABASE_TLS and DATABASE_CA_CERT.
    pub tls: PgTls,
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The URL without its password, for messages.
    database: Arc<str>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("database", &self.database).finish_non_exhaustive()
    }
}

/// The server did not answer within the startup wait.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL at {database} did not answer within {waited_secs}s")]
struct NotReachable {
    database: String,
    waited_secs: u64,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

/// Whether an error means "the database is not there right now" (try again later) rather than
/// a fault in what was asked of it.
fn is_transient(e: &PgError) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 53: insufficient resources (too many connections, disk
        // full); 57P0x: shutdown, crash, starting up; 40001/40P01: serialization failure and
        // deadlock, which a retry resolves.
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == SqlState::T_R_SERIALIZATION_FAILURE.code()
            || code == SqlState::T_R_DEADLOCK_DETECTED.code();
    }
    // No server error: refused, reset or timed-out connections carry an I/O error.
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn pg_err(e: PgError) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Database(Box::new(e))
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_err(e),
        PoolError::Timeout(_) => StoreError::Unavailable(Box::new(e)),
        other => StoreError::Database(Box::new(other)),
    }
}

/// The error and its causes on one line, for log fields.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn opt<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Option<Row>, PgError> {
    let stmt = c.prepare_cached(sql).await?;
    c.query_opt(&stmt, params).await
}

async fn all<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>, PgError> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, params).await
}

async fn exec<C: GenericClient>(c: &C, sql: &str, params: Params<'_>) -> Result<u64, PgError> {
    let stmt = c.prepare_cached(sql).await?;
    c.execute(&stmt, params).await
}

const USER_COLUMNS: &str = user_columns!();
const ACCOUNT_TOKEN: &str = concat!("SELECT ", account_token_columns!(), " FROM account_tokens WHERE digest = $1");

/// The first key of the advisory locks that serialise sign-ups of one e-mail address (the second
/// is the address's hash): e-mail addresses are unique only in e-mail sign-in mode, so no index
/// can enforce it.
const EMAIL_LOCK: i32 = 0x6a77_7464;

impl PgStore {
    /// Inserts `user` (with `awaiting`: inactive and awaiting activation) in one transaction;
    /// with `unique_email`, under the e-mail's advisory lock, refused when the address is taken.
    async fn insert_user(&self, user: NewUser, awaiting: bool) -> Result<User, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if user.unique_email {
            exec(&tx, "SELECT pg_advisory_xact_lock($1, hashtext(lower($2)))", &[&EMAIL_LOCK, &user.email])
                .await
                .map_err(pg_err)?;
            let sql = "SELECT 1 FROM users WHERE lower(email) = lower($1) LIMIT 1";
            if opt(&tx, sql, &[&user.email]).await.map_err(pg_err)?.is_some() {
                return Err(StoreError::EmailTaken);
            }
        }
        let sql = format!(
            "INSERT INTO users (username, password, email, date_joined_ms, uuid, is_active)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        );
        let uuid = user.uuid.map(|u| u.hyphenated().to_string());
        let active = !awaiting;
        let inserted =
            opt(&tx, &sql, &[&user.username, &user.password_hash, &user.email, &user.now.millis(), &uuid, &active])
                .await;
        let inserted = match inserted {
            Ok(Some(row)) if awaiting => match user_from(&row) {
                Ok(u) => exec(&tx, "INSERT INTO pending_activations (user_id) VALUES ($1)", &[&u.id])
                    .await
                    .map(|_| Some(row)),
                Err(e) => Err(e),
            },
            other => other,
        };
        let inserted = match inserted {
            Ok(row) => tx.commit().await.map(|()| row),
            Err(e) => Err(e),
        };
        match inserted {
            Ok(Some(row)) => user_from(&row).map_err(pg_err),
            Ok(None) => Err(StoreError::Database("INSERT … RETURNING returned no row".into())),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::UsernameTaken),
            Err(e) => Err(pg_err(e)),
        }
    }
}

columns_of!(Row, PgError, try_get);

fn user_from(r: &Row) -> Result<User, PgError> {
    User::from_columns(r)
}

async fn groups_of<C: GenericClient>(c: &C, user_id: i64) -> Result<Vec<String>, PgError> {
    let rows = all(
        c,
        "SELECT g.name FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = $1",
        &[&user_id],
    )
    .await?;
    let mut names = rows.iter().map(|r| r.try_get::<_, String>(0)).collect::<Result<Vec<_>, _>>()?;
    // Python's sorted(): by code point, whatever the database's collation.
    names.sort();
    Ok(names)
}

fn token_from(r: &Row) -> Result<TokenRow, PgError> {
    TokenRow::from_columns(r)
}

const TOKEN: &str = concat!("SELECT ", token_columns!(), " FROM refresh_tokens WHERE jti = $1");
const LOCK_TOKEN: &str = concat!("SELECT ", token_columns!(), " FROM refresh_tokens WHERE jti = $1 FOR UPDATE");

async fn token_row<C: GenericClient>(c: &C, jti: &str, lock: bool) -> Result<Option<TokenRow>, PgError> {
    let sql = if lock { LOCK_TOKEN } else { TOKEN };
    opt(c, sql, &[&jti]).await?.as_ref().map(token_from).transpose()
}

/// The statement inserting a token row, then `$on_conflict`: what it does when the jti is there.
macro_rules! insert_token_then {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO refresh_tokens (jti, user_id, family, family_started, issued_at, expires_at, blacklisted_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ",
            $on_conflict
        )
    };
}

const INSERT_TOKEN: &str = insert_token_then!("ON CONFLICT (jti) DO NOTHING");

/// Inserts the row unless its jti is already there; returns whether it was inserted. Two
/// transactions inserting the same jti: the second waits for the first, then inserts nothing.
async fn insert_token<C: GenericClient>(c: &C, row: &TokenRow) -> Result<bool, PgError> {
    let n = write_token(c, INSERT_TOKEN, row).await?;
    Ok(n > 0)
}

/// Runs `sql`, an [`insert_token_then!`] statement, for `row`; returns how many rows it wrote.
async fn write_token<C: GenericClient>(c: &C, sql: &str, row: &TokenRow) -> Result<u64, PgError> {
    let stmt = c.prepare_cached(sql).await?;
    write_prepared(c, &stmt, row).await
}

/// Runs `stmt`, a prepared [`insert_token_then!`] statement, for `row`: sent when first polled.
async fn write_prepared<C: GenericClient>(c: &C, stmt: &Statement, row: &TokenRow) -> Result<u64, PgError> {
    let blacklisted = row.blacklisted.map(Instant::millis);
    let params: Params<'_> =
        &[&row.jti, &row.user_id, &row.family, &row.family_started, &row.issued_at, &row.expires_at, &blacklisted];
    c.execute(stmt, params).await
}

/// The statement deleting up to `$2` rows of `$table` (keyed by `$key`) that expired before `$1`
/// (seconds). SKIP LOCKED: rows a transaction holds (a rotation's) are left for the next pass
/// rather than waited on.
macro_rules! delete_expired_sql {
    ($table:literal, $key:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " IN (SELECT ",
            $key,
            " FROM ",
            $table,
            " WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
        )
    };
}

/// Runs `sql`, a [`delete_expired_sql!`] statement, for rows expired before `now`; returns how
/// many went.
async fn delete_expired(client: &Object, sql: &str, now: Instant, batch: u32) -> Result<u64, StoreError> {
    exec(client, sql, &[&now.secs(), &i64::from(batch)]).await.map_err(pg_err)
}

/// Revokes every token of the user. The caller's transaction holds (or now takes) the user's row.
async fn revoke_user<C: GenericClient>(c: &C, user_id: i64, now: Instant) -> Result<(), PgError> {
    let valid_after = super::valid_after_revocation(now);
    exec(
        c,
        "UPDATE users SET tokens_valid_after = GREATEST(tokens_valid_after, $2) WHERE id = $1",
        &[&user_id, &valid_after],
    )
    .await?;
    exec(
        c,
        "UPDATE refresh_tokens SET blacklisted_ms = $2 WHERE user_id = $1 AND blacklisted_ms IS NULL",
        &[&user_id, &now.millis()],
    )
    .await?;
    // Identity values are handed out in insert order but become visible in commit order; one
    // writer at a time keeps the two the same, so pollers reading "id > cursor" miss nothing.
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&REVOCATION_LOCK]).await?;
    exec(
        c,
        "INSERT INTO revocations (user_id, valid_after, created_ms) VALUES ($1, $2, $3)",
        &[&user_id, &valid_after, &now.millis()],
    )
    .await?;
    Ok(())
}

/// The user whose family `session` is: by its token rows, else its session row.
async fn session_owner<C: GenericClient>(c: &C, session: &str) -> Result<Option<i64>, PgError> {
    let sql = "SELECT user_id FROM refresh_tokens WHERE family = $1
               UNION ALL SELECT user_id FROM sessions WHERE id = $1 LIMIT 1";
    opt(c, sql, &[&session]).await?.map(|r| r.try_get(0)).transpose()
}

/// Blacklists the refresh tokens of the user's session `family` and logs its revocation. The
/// caller's transaction holds the user's row (lock order: user, tokens, revocation log).
async fn revoke_family<C: GenericClient>(c: &C, user_id: i64, family: &str, now: Instant) -> Result<(), PgError> {
    exec(
        c,
        "UPDATE refresh_tokens SET blacklisted_ms = $3 WHERE family = $2 AND user_id = $1 AND blacklisted_ms IS NULL",
        &[&user_id, &family, &now.millis()],
    )
    .await?;
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&REVOCATION_LOCK]).await?;
    exec(
        c,
        "INSERT INTO revocations (user_id, valid_after, created_ms, session) VALUES ($1, $2, $3, $4)",
        &[&user_id, &super::valid_after_revocation(now), &now.millis(), &family],
    )
    .await?;
    Ok(())
}

/// Import is retried this often when a sign-up takes the id or username between the check and
/// the insert.
const IMPORT_ATTEMPTS: usize = 3;

/// Rotation's statements: the user's row, then the presented token's (LOCK_TOKEN); the successor
/// inserted (INSERT_TOKEN), then the presented token marked replaced by it.
const LOCK_USER: &str = "SELECT is_active, tokens_valid_after FROM users WHERE id = $1 FOR UPDATE";
const MARK_ROTATED: &str = "UPDATE refresh_tokens SET replaced_by = $2, rotated_ms = $3,
     blacklisted_ms = CASE WHEN $4 THEN coalesce(blacklisted_ms, $3) ELSE blacklisted_ms END
     WHERE jti = $1";

/// What one rotation attempt came to.
enum Attempt {
    Done(Rotation),
    /// The never-seen token was recorded meanwhile (rotations of one user take turns on the user's
    /// row, but a concurrent logout of the same token does not): decide again on its row.
    Raced,
}

impl PgStore {
    /// Connects to the server at `url` and brings the schema up to date, retrying for up to
    /// `options.startup_wait` while the server does not answer (it may still be starting).
    /// Wrong credentials, a missing database and other refusals fail at once.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let database: Arc<str> = crate::config::mask_url(url).into();
        let prepared = options.tls.prepare(url).map_err(|e| StoreError::Database(e.into()))?;
        let (mut config, tls_mode, tls) = (prepared.config, prepared.mode, prepared.tls);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("jwtd");
        }
        // A peer that vanished without closing the socket is noticed within about a minute.
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let manager =
            Manager::from_config(config, prepared.connector, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        let store = PgStore { pool, database };

        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            // A refused certificate or host name is final: waiting does not change it.
            let result = match store.migrate().await {
                Err(StoreError::Unavailable(e)) => match tls.explain(tls_mode, e) {
                    TlsOr::Tls(refused) => Err(StoreError::Database(Box::new(refused))),
                    TlsOr::Other(e) => Err(StoreError::Unavailable(e)),
                },
                Err(StoreError::Database(e)) => match tls.explain(tls_mode, e) {
                    TlsOr::Tls(refused) => Err(StoreError::Database(Box::new(refused))),
                    TlsOr::Other(e) => Err(StoreError::Database(e)),
                },
                other => other,
            };
            match result {
                Ok(()) => return Ok(store),
                Err(StoreError::Unavailable(e)) if started.elapsed() + delay < options.startup_wait => {
                    warn!(database = %store.database, error = %chain(e.as_ref()), "PostgreSQL does not answer yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(StoreError::Unavailable(source)) => {
                    return Err(StoreError::Unavailable(Box::new(NotReachable {
                        database: store.database.to_string(),
                        waited_secs: options.startup_wait.as_secs(),
                        source,
                    })))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes every pooled connection; later calls fail.
    pub fn close(&self) {
        self.pool.close();
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Applies the embedded migrations not applied yet, one instance at a time.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_err)?;
        // Not a NOTICE on every start that the table already exists.
        tx.batch_execute("SET LOCAL client_min_messages TO warning").await.map_err(pg_err)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS jwtd_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT)")
            .await
            .map_err(pg_err)?;
        let row = tx.query_one("SELECT coalesce(max(version), 0) FROM jwtd_migrations", &[]).await.map_err(pg_err)?;
        let applied: i32 = row.try_get(0).map_err(pg_err)?;
        let applied = usize::try_from(applied).unwrap_or(0);
        for (version, sql) in pending(MIGRATIONS, applied)? {
            tx.batch_execute(sql).await.map_err(pg_err)?;
            let version = i32::try_from(version).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO jwtd_migrations (version, applied_ms) VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint)",
                &[&version],
            )
            .await
            .map_err(pg_err)?;
            info!(version, "applied PostgreSQL migration");
        }
        tx.commit().await.map_err(pg_err)
    }

    /// One rotation transaction on `client`, in two round trips when it rotates: BEGIN and the
    /// locking reads in one flight, the writes and COMMIT in another (see [`Pipelined`]). The
    /// rarer steps (a successor's row, a session's owner, a never-seen token's row, reuse) take
    /// one round trip each, in the same transaction.
    async fn rotate_once(client: &Object, req: &RotateRequest) -> Result<Attempt, PgError> {
        let p = &req.presented;
        // Cached per connection: no round trip after a connection's first rotation.
        let lock_user = client.prepare_cached(LOCK_USER).await?;
        let lock_token = client.prepare_cached(LOCK_TOKEN).await?;
        let insert = client.prepare_cached(INSERT_TOKEN).await?;
        let mark = client.prepare_cached(MARK_ROTATED).await?;
        let mut tx = Pipelined::on(client);
        // The user's row first: rotations, revocations and deletions of one user take turns,
        // so a successor is never created beside a concurrent logout-all that misses it. The
        // token's row is read by the next statement, which PostgreSQL starts (with a snapshot
        // of its own) once the user's row is locked: the same order and the same view as one
        // round trip each.
        let ((), user, presented) = try_join3(
            tx.begin(),
            client.query_opt(&lock_user, &[&p.user_id]),
            client.query_opt(&lock_token, &[&p.jti]),
        )
        .await?;
        let user = user
            .map(|r| Ok::<_, PgError>(UserGate { is_active: r.try_get(0)?, tokens_valid_after: r.try_get(1)? }))
            .transpose()?;
        let presented = presented.as_ref().map(token_from).transpose()?;
        let successor = match presented.as_ref().and_then(|r| r.replaced_by.as_deref()) {
            Some(next) => token_row(client, next, false).await?,
            None => None,
        };
        let owner = match (&presented, &req.session) {
            (None, Some(session)) => session_owner(client, session).await?,
            _ => None,
        };
        let decision = decide_rotation(presented.as_ref(), successor.as_ref(), user, owner, req, super::new_family);
        let outcome = match decision {
            RotationDecision::Rotate { record_presented, successor } => {
                if let Some(first) = &record_presented {
                    if !insert_token(client, first).await? {
                        tx.rollback().await?;
                        return Ok(Attempt::Raced);
                    }
                }
                let (inserted, marked, committed) = join3(
                    write_prepared(client, &insert, &successor),
                    client.execute(&mark, &[&p.jti, &successor.jti, &req.now.millis(), &req.blacklist_after]),
                    tx.commit(),
                )
                .await;
                // An error before COMMIT left the transaction aborted, and COMMIT then ended it
                // as a rollback: the first error is the one to report.
                inserted?;
                marked?;
                committed?;
                return Ok(Attempt::Done(Rotation::Rotated(successor)));
            }
            RotationDecision::RevokeFamily { family } => {
                revoke_family(client, p.user_id, &family, req.now).await?;
                Rotation::Reused { family }
            }
            RotationDecision::Answer(outcome) => outcome,
        };
        tx.commit().await?;
        Ok(Attempt::Done(outcome))
    }
}

/// A transaction driven by hand on a pooled connection, so that BEGIN and COMMIT travel in one
/// write with the statements beside them. tokio-postgres sends a request when its future is
/// first polled (statements prepared beforehand), the futures of one `join` are polled in the
/// order written, and PostgreSQL runs what arrives in that order, each statement after the one
/// before has finished (and taken its locks). A statement that fails aborts the transaction:
/// the next ones of its flight fail too, and a COMMIT among them ends it as a rollback.
///
/// Until COMMIT or ROLLBACK has been answered, the transaction may be open: dropped before that
/// (an error mid-flight, or the request dropped while waiting), it sends ROLLBACK on the same
/// connection without waiting for the answer, as tokio-postgres's own `Transaction` does, so
/// whoever takes the connection from the pool next is queued behind it.
struct Pipelined<'c> {
    client: &'c Object,
    open: bool,
}

impl<'c> Pipelined<'c> {
    fn on(client: &'c Object) -> Self {
        Pipelined { client, open: false }
    }

    fn begin(&mut self) -> impl std::future::Future<Output = Result<(), PgError>> + 'c {
        self.open = true;
        self.client.batch_execute("BEGIN")
    }

    /// COMMIT; however it is answered, the transaction is over.
    async fn commit(&mut self) -> Result<(), PgError> {
        self.end("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), PgError> {
        self.end("ROLLBACK").await
    }

    async fn end(&mut self, sql: &str) -> Result<(), PgError> {
        let answer = self.client.batch_execute(sql).await;
        self.open = false;
        answer
    }
}

impl Drop for Pipelined<'_> {
    fn drop(&mut self) {
        if self.open {
            // The first poll sends it; the answer is discarded by the connection's task.
            let _ = self.client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}

impl PgStore {
    /// One import transaction on `client`; `None` when a concurrent sign-up took the id or the
    /// login after the check (the caller decides again). A dry run reads and rolls back.
    async fn import_once(
        client: &mut Object,
        user: &ImportUser,
        mode: ImportMode,
    ) -> Result<Option<ImportOutcome>, PgError> {
        let write = mode == ImportMode::Write;
        let tx = client.transaction().await?;
        let holder = |r: Row| -> Result<Holder, PgError> {
            Ok(Holder { id: r.try_get(0)?, username: r.try_get(1)?, email: r.try_get(2)? })
        };
        // The user's row first (lock order), then its token rows.
        let same_id = match &user.id {
            SourceId::Int(id) => {
                opt(&tx, "SELECT id, username, email FROM users WHERE id = $1 FOR UPDATE", &[id]).await?
            }
            SourceId::Uuid(uuid) => {
                opt(&tx, "SELECT id, username, email FROM users WHERE uuid = $1 FOR UPDATE", &[uuid]).await?
            }
        }
        .map(holder)
        .transpose()?;
        let same_login = match user.profile.login_key() {
            // `username <> ''` lets the partial unique index answer (without it: a scan of users).
            Some(LoginKey::Username(name)) => {
                opt(&tx, "SELECT id, username, email FROM users WHERE username = $1 AND username <> ''", &[&name])
                    .await?
            }
            Some(LoginKey::Email(email)) => {
                opt(&tx, "SELECT id, username, email FROM users WHERE lower(email) = lower($1) LIMIT 1", &[&email])
                    .await?
            }
            None => None,
        }
        .map(holder)
        .transpose()?;
        let (decision, plan) = plan_user_import(user, same_id.as_ref(), same_login.as_ref(), mode);
        let (user_id, groups) = match plan {
            UserWrite::Refused => {
                tx.rollback().await?;
                return Ok(Some(ImportOutcome::refused(decision)));
            }
            UserWrite::Keep { user_id, groups } => (user_id, groups),
            UserWrite::Insert { id, uuid } => {
                let p = &user.profile;
                // NULL draws a new id from the identity sequence (a user with a UUID).
                let inserted = opt(
                    &tx,
                    concat!(
                        "INSERT INTO users (id, uuid, password, ",
                        profile_columns!(),
                        ") VALUES (COALESCE($1, nextval(pg_get_serial_sequence('users', 'id'))), $2, $3, $4, $5,
                                   $6, $7, $8, $9, $10, $11, $12)
                         ON CONFLICT DO NOTHING RETURNING id"
                    ),
                    &[
                        &id,
                        &uuid,
                        &user.password,
                        &p.username,
                        &p.email,
                        &p.first_name,
                        &p.last_name,
                        &p.is_active,
                        &p.is_staff,
                        &p.is_superuser,
                        &p.date_joined.millis(),
                        &p.last_login.map(Instant::millis),
                    ],
                )
                .await?;
                let Some(inserted) = inserted else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let new_id: i64 = inserted.try_get(0)?;
                if id.is_some() {
                    // Sign-ups draw ids from the identity sequence: move it past the imported
                    // id. The nextval is a value no one else holds, so the sequence never
                    // moves back below an id already handed out (setval is not transactional).
                    exec(
                        &tx,
                        "SELECT setval(pg_get_serial_sequence('users', 'id'),
                                       GREATEST($1::bigint, nextval(pg_get_serial_sequence('users', 'id'))))",
                        &[&new_id],
                    )
                    .await?;
                }
                let mut groups = 0;
                for name in &user.groups {
                    groups += exec(
                        &tx,
                        "INSERT INTO user_groups (user_id, group_id) SELECT $1, id FROM groups WHERE name = $2
                         ON CONFLICT DO NOTHING",
                        &[&new_id, name],
                    )
                    .await?;
                }
                (Some(new_id), groups)
            }
        };
        let mut outcomes = Vec::with_capacity(user.tokens.len());
        for row in &user.tokens {
            let row = imported_row(row, user_id);
            let step = decide_token_import(token_row(&tx, &row.jti, write).await?.as_ref(), &row);
            match step {
                // A row inserted meanwhile by a rotation or logout of the same token wins.
                TokenImport::Insert if write && !insert_token(&tx, &row).await? => {
                    outcomes.push(TokenImport::Present);
                    continue;
                }
                TokenImport::Blacklist if write => {
                    exec(
                        &tx,
                        "UPDATE refresh_tokens SET blacklisted_ms = $2 WHERE jti = $1 AND blacklisted_ms IS NULL",
                        &[&row.jti, &row.blacklisted.map(Instant::millis)],
                    )
                    .await?;
                }
                _ => {}
            }
            outcomes.push(step);
        }
        if write {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(Some(ImportOutcome { user: decision, user_id, tokens: outcomes, groups }))
    }
}

#[async_trait]
impl Store for PgStore {
    /// At shutdown: closes every pooled connection (the server ends each session cleanly).
    async fn close(&self) -> Result<(), StoreError> {
        PgStore::close(self);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }

    async fn secret_or_insert(&self, name: &str, generate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        // Two statements, each with a fresh snapshot: if another instance inserted first, the
        // INSERT waits for its commit, and the SELECT then sees its value.
        exec(
            &client,
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &generate],
        )
        .await
        .map_err(pg_err)?;
        let row = opt(&client, "SELECT value FROM secrets WHERE name = $1", &[&name]).await.map_err(pg_err)?;
        match row {
            Some(r) => r.try_get(0).map_err(pg_err),
            None => Err(StoreError::Database(format!("secret {name:?} vanished after insert").into())),
        }
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.insert_user(user, false).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        // `username <> ''` lets the partial unique index answer; a blank username never signs in.
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1 AND username <> ''");
        let row = opt(&client, &sql, &[&username]).await.map_err(pg_err)?;
        row.as_ref().map(user_from).transpose().map_err(pg_err)
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = opt(&client, &sql, &[&id]).await.map_err(pg_err)?;
        row.as_ref().map(user_from).transpose().map_err(pg_err)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1) ORDER BY id LIMIT 1");
        let row = opt(&client, &sql, &[&email]).await.map_err(pg_err)?;
        row.as_ref().map(user_from).transpose().map_err(pg_err)
    }

    async fn user_by_uuid(&self, uuid: uuid::Uuid) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE uuid = $1");
        let row = opt(&client, &sql, &[&uuid.hyphenated().to_string()]).await.map_err(pg_err)?;
        row.as_ref().map(user_from).transpose().map_err(pg_err)
    }

    async fn fix_user_id_type(&self, wanted: IdType) -> Result<IdType, StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            // Users without a UUID (from before the type was recorded) hold integer ids.
            "INSERT INTO meta (name, value)
             SELECT 'user_id_type', CASE WHEN EXISTS (SELECT 1 FROM users WHERE uuid IS NULL) THEN 'int' ELSE $1 END
             ON CONFLICT (name) DO NOTHING",
            &[&wanted.name()],
        )
        .await
        .map_err(pg_err)?;
        let row = opt(&client, "SELECT value FROM meta WHERE name = 'user_id_type'", &[]).await.map_err(pg_err)?;
        let stored: String = match row {
            Some(r) => r.try_get(0).map_err(pg_err)?,
            None => return Err(StoreError::Database("meta user_id_type vanished after insert".into())),
        };
        IdType::parse(&stored).map_err(|e| StoreError::Database(format!("meta user_id_type: {e}").into()))
    }

    async fn set_user_claims(&self, user_id: i64, claims: &Map<String, Value>) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let text = Value::Object(claims.clone()).to_string();
        let n =
            exec(&client, "UPDATE users SET claims = $2 WHERE id = $1", &[&user_id, &text]).await.map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn user_groups(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        groups_of(&client, user_id).await.map_err(pg_err)
    }

    async fn change_groups(&self, user_id: i64, add: &[String], remove: &[String]) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The user's row first, as every transaction locks.
        exec(&tx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await.map_err(pg_err)?;
        for name in add {
            exec(&tx, "INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[name])
                .await
                .map_err(pg_err)?;
            exec(
                &tx,
                "INSERT INTO user_groups (user_id, group_id) SELECT $1, id FROM groups WHERE name = $2
                 ON CONFLICT DO NOTHING",
                &[&user_id, name],
            )
            .await
            .map_err(pg_err)?;
        }
        for name in remove {
            exec(
                &tx,
                "DELETE FROM user_groups WHERE user_id = $1 AND group_id = (SELECT id FROM groups WHERE name = $2)",
                &[&user_id, name],
            )
            .await
            .map_err(pg_err)?;
        }
        let names = groups_of(&tx, user_id).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(names)
    }

    async fn set_active(&self, user_id: i64, active: bool, now: Instant) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The UPDATE takes the user's row first (lock order), then revoke_user the rest.
        let row = opt(&tx, "UPDATE users SET is_active = $2 WHERE id = $1 RETURNING id", &[&user_id, &active])
            .await
            .map_err(pg_err)?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.try_get(0).map_err(pg_err)?;
        // An operator's decision ends a wait for activation by e-mail.
        exec(&tx, "DELETE FROM pending_activations WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        if !active {
            revoke_user(&tx, id, now).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn delete_user(&self, user_id: i64, now: Instant) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = opt(&tx, "SELECT id FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await.map_err(pg_err)?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.try_get(0).map_err(pg_err)?;
        // Lock order: the user's row (above), its token rows, then the revocation log.
        exec(&tx, "DELETE FROM refresh_tokens WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        exec(&tx, "DELETE FROM sessions WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        revoke_user(&tx, id, now).await.map_err(pg_err)?;
        exec(&tx, "DELETE FROM user_groups WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        exec(&tx, "DELETE FROM account_tokens WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        exec(&tx, "DELETE FROM pending_activations WHERE user_id = $1", &[&id]).await.map_err(pg_err)?;
        exec(&tx, "DELETE FROM users WHERE id = $1", &[&id]).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn set_last_login(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(&client, "UPDATE users SET last_login_ms = $2 WHERE id = $1", &[&user_id, &now.millis()])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn update_password_hash(&self, user_id: i64, old: &str, new: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n =
            exec(&client, "UPDATE users SET password = $3 WHERE id = $1 AND password = $2", &[&user_id, &old, &new])
                .await
                .map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn change_password(&self, user_id: i64, hash: &str, now: Instant) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        exec(&tx, "UPDATE users SET password = $2 WHERE id = $1", &[&user_id, &hash]).await.map_err(pg_err)?;
        revoke_user(&tx, user_id, now).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn revoke_all(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        revoke_user(&tx, user_id, now).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn revocations_since(&self, cursor: i64, limit: u32) -> Result<Vec<Revocation>, StoreError> {
        let client = self.client().await?;
        let rows = all(
            &client,
            "SELECT r.id, r.user_id, r.valid_after, u.uuid, r.session FROM revocations r
             LEFT JOIN users u ON u.id = r.user_id WHERE r.id > $1 ORDER BY r.id LIMIT $2",
            &[&cursor, &i64::from(limit)],
        )
        .await
        .map_err(pg_err)?;
        rows.iter().map(Revocation::from_columns).collect::<Result<_, _>>().map_err(pg_err)
    }

    async fn record_sign_in(&self, sign_in: SignIn<'_>) -> Result<bool, StoreError> {
        let row = sign_in.row();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The user's row first (lock order): a password change, revocation or deactivation
        // either committed before (and the state differs) or waits for this insert, then
        // blacklists its row.
        let user = opt(
            &tx,
            "SELECT password, is_active, tokens_valid_after FROM users WHERE id = $1 FOR SHARE",
            &[&row.user_id],
        )
        .await
        .map_err(pg_err)?;
        let now = user
            .map(|r| {
                Ok::<_, PgError>(UserState {
                    password: r.try_get(0)?,
                    is_active: r.try_get(1)?,
                    tokens_valid_after: r.try_get(2)?,
                })
            })
            .transpose()
            .map_err(pg_err)?;
        if now.as_ref() != Some(sign_in.seen) {
            tx.rollback().await.map_err(pg_err)?;
            return Ok(false);
        }
        insert_token(&tx, &row).await.map_err(pg_err)?;
        exec(
            &tx,
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, user_agent, ip)
             VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[&row.family, &row.user_id, &row.issued_at, &sign_in.client.user_agent, &sign_in.client.ip],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn refresh_row(&self, jti: &str) -> Result<Option<TokenRow>, StoreError> {
        let client = self.client().await?;
        token_row(&client, jti, false).await.map_err(pg_err)
    }

    async fn refresh_check(&self, query: RefreshQuery<'_>) -> Result<Option<RefreshCheck>, StoreError> {
        let RefreshQuery { user_id, jti, session } = query;
        let client = self.client().await?;
        let sql = "SELECT u.is_active, u.tokens_valid_after, t.blacklisted_ms IS NOT NULL, t.family_started, \
                   CASE WHEN t.jti IS NULL THEN EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = $3::text AND f.user_id = $1) \
                     OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = $3 AND s.user_id = $1) ELSE false END \
                   FROM users u LEFT JOIN refresh_tokens t ON t.jti = $2 WHERE u.id = $1";
        let Some(row) = opt(&client, sql, &[&user_id, &jti, &session]).await.map_err(pg_err)? else {
            return Ok(None);
        };
        let read = || -> Result<RefreshCheck, PgError> {
            // family_started is NOT NULL in a row, so NULL here means no row.
            let token = match row.try_get::<_, Option<i64>>(3)? {
                Some(family_started) => Some(TokenStanding { blacklisted: row.try_get(2)?, family_started }),
                None => None,
            };
            let user = UserGate { is_active: row.try_get(0)?, tokens_valid_after: row.try_get(1)? };
            Ok(RefreshCheck { user, token, session_known: row.try_get(4)? })
        };
        read().map(Some).map_err(pg_err)
    }

    async fn session_owner(&self, session: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        session_owner(&client, session).await.map_err(pg_err)
    }

    async fn sessions(&self, user_id: i64, now: Instant) -> Result<Vec<SessionListing>, StoreError> {
        let client = self.client().await?;
        let rows = all(
            &client,
            "SELECT t.family, min(t.family_started), max(t.issued_at), max(s.last_used_at), max(s.user_agent), max(s.ip)
             FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.family
             WHERE t.user_id = $1 AND t.blacklisted_ms IS NULL AND t.expires_at > $2
             GROUP BY t.family ORDER BY 2 DESC, 3 DESC, t.family",
            &[&user_id, &now.secs()],
        )
        .await
        .map_err(pg_err)?;
        rows.iter().map(SessionListing::from_columns).collect::<Result<_, _>>().map_err(pg_err)
    }

    async fn revoke_sessions(&self, revocation: SessionRevocation<'_>) -> Result<Vec<String>, StoreError> {
        let SessionRevocation { user_id, scope, now } = revocation;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The user's row first (lock order): a rotation of one of these sessions either committed
        // before (its successor is blacklisted here) or waits, then finds its token blacklisted.
        opt(&tx, "SELECT id FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await.map_err(pg_err)?;
        let families: Vec<String> = match scope {
            SessionScope::One(id) => {
                let owner = session_owner(&tx, id).await.map_err(pg_err)?;
                owner.filter(|owner| *owner == user_id).map(|_| id.to_string()).into_iter().collect()
            }
            SessionScope::AllBut(keep) => {
                let rows = all(
                    &tx,
                    "SELECT DISTINCT family FROM refresh_tokens
                     WHERE user_id = $1 AND blacklisted_ms IS NULL AND expires_at > $2 ORDER BY family",
                    &[&user_id, &now.secs()],
                )
                .await
                .map_err(pg_err)?;
                let live = rows.iter().map(|r| r.try_get::<_, String>(0)).collect::<Result<Vec<_>, _>>();
                live.map_err(pg_err)?.into_iter().filter(|f| Some(f.as_str()) != keep).collect()
            }
        };
        for family in &families {
            revoke_family(&tx, user_id, family, now).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(families)
    }

    async fn touch_sessions(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        let (ids, times): (Vec<&str>, Vec<i64>) = used.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
        // One statement for the whole batch.
        exec(
            &client,
            "UPDATE sessions s SET last_used_at = GREATEST(s.last_used_at, u.at)
             FROM (SELECT id, max(at) AS at FROM unnest($1::text[], $2::bigint[]) AS x(id, at) GROUP BY id) u
             WHERE s.id = u.id",
            &[&ids, &times],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    async fn blacklist(&self, token: &RefreshRecord, family: &str, now: Instant) -> Result<(), StoreError> {
        let row = TokenRow::first_of_family(token, family.to_string()).blacklisted_at(now);
        let client = self.client().await?;
        // One statement: records a never-seen token already blacklisted, or blacklists the
        // recorded one, keeping the first blacklisting time.
        let sql = insert_token_then!(
            "ON CONFLICT (jti) DO UPDATE SET blacklisted_ms = coalesce(refresh_tokens.blacklisted_ms, EXCLUDED.blacklisted_ms)"
        );
        write_token(&client, sql, &row).await.map_err(pg_err)?;
        Ok(())
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        let client = self.client().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::rotate_once(&client, req).await {
                Ok(Attempt::Done(outcome)) => return Ok(outcome),
                Ok(Attempt::Raced) if attempt < ROTATE_ATTEMPTS => {}
                Ok(Attempt::Raced) => {
                    return Err(StoreError::Unavailable("rotation kept racing with another instance".into()))
                }
                Err(e)
                    if attempt < ROTATE_ATTEMPTS
                        && matches!(
                            e.code(),
                            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
                        ) =>
                {
                    warn!(attempt, error = %chain(&e), "rotation retried");
                }
                Err(e) => return Err(pg_err(e)),
            }
        }
    }

    async fn import_user(&self, user: &ImportUser, mode: ImportMode) -> Result<ImportOutcome, StoreError> {
        let mut client = self.client().await?;
        for _ in 0..IMPORT_ATTEMPTS {
            if let Some(outcome) = Self::import_once(&mut client, user, mode).await.map_err(pg_err)? {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable("importing a user kept racing with sign-ups".into()))
    }

    async fn import_id_type(&self, incoming: IdType, mode: ImportMode) -> Result<IdTypeCheck, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Two imports starting together take turns (the lock ends with the transaction).
        exec(&tx, "SELECT pg_advisory_xact_lock(hashtext('jwtd meta user_id_type'))", &[]).await.map_err(pg_err)?;
        let recorded: Option<String> = opt(&tx, "SELECT value FROM meta WHERE name = 'user_id_type'", &[])
            .await
            .map_err(pg_err)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(pg_err)?;
        let row = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE uuid IS NULL), EXISTS (SELECT 1 FROM users WHERE uuid IS NOT NULL)",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let (without_uuid, with_uuid): (bool, bool) =
            (row.try_get(0).map_err(pg_err)?, row.try_get(1).map_err(pg_err)?);
        let database = database_id_type(recorded.as_deref(), without_uuid, with_uuid);
        let decision = decide_id_type(database, recorded.is_some(), incoming);
        if decision == IdTypeCheck::Recorded && mode == ImportMode::Write {
            exec(
                &tx,
                "INSERT INTO meta (name, value) VALUES ('user_id_type', $1) ON CONFLICT (name) DO NOTHING",
                &[&incoming.name()],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(decision)
    }

    async fn import_groups(&self, names: &[String], mode: ImportMode) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let mut new = 0;
        for name in names {
            new += match mode {
                ImportMode::Write => {
                    exec(&client, "INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[name])
                        .await
                        .map_err(pg_err)?
                }
                ImportMode::DryRun => u64::from(
                    opt(&client, "SELECT 1 FROM groups WHERE name = $1", &[name]).await.map_err(pg_err)?.is_none(),
                ),
            };
        }
        Ok(new)
    }

    async fn user_page(&self, after: i64, limit: u32) -> Result<Vec<UserListing>, StoreError> {
        let client = self.client().await?;
        let rows = all(
            &client,
            concat!(
                "SELECT u.id, u.uuid, ",
                profile_columns!(),
                ", ARRAY(SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id
                         WHERE ug.user_id = u.id ORDER BY g.name)
                 FROM users u WHERE u.id > $1 ORDER BY u.id LIMIT $2"
            ),
            &[&after, &i64::from(limit)],
        )
        .await
        .map_err(pg_err)?;
        let listing = |r: &Row| UserListing::from_columns(r, r.try_get(11)?);
        rows.iter().map(listing).collect::<Result<_, _>>().map_err(pg_err)
    }

    async fn flush_expired(&self, now: Instant, batch: u32) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let links = delete_expired(&client, delete_expired_sql!("account_tokens", "digest"), now, batch).await?;
        let tokens = delete_expired(&client, delete_expired_sql!("refresh_tokens", "jti"), now, batch).await?;
        exec(
            &client,
            "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s
             WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family = s.id) LIMIT $1)",
            &[&i64::from(batch)],
        )
        .await
        .map_err(pg_err)?;
        Ok(tokens + links)
    }

    async fn create_user_awaiting_activation(&self, user: NewUser) -> Result<User, StoreError> {
        self.insert_user(user, true).await
    }

    async fn awaits_activation(&self, user_id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row =
            opt(&client, "SELECT 1 FROM pending_activations WHERE user_id = $1", &[&user_id]).await.map_err(pg_err)?;
        Ok(row.is_some())
    }

    async fn insert_account_token(&self, token: &AccountToken) -> Result<(), StoreError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO account_tokens (digest, user_id, purpose, bound, expires_at, used) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&token.digest, &token.user_id, &token.purpose.name(), &token.bound, &token.expires_at, &token.used],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    async fn account_token(&self, digest: &str) -> Result<Option<AccountToken>, StoreError> {
        let client = self.client().await?;
        let row = opt(&client, ACCOUNT_TOKEN, &[&digest]).await.map_err(pg_err)?;
        row.as_ref().map(AccountToken::from_columns).transpose().map_err(pg_err)
    }

    async fn redeem(&self, r: &Redemption) -> Result<Redeemed, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Lock order: the user's row first, then the token's, then (revoke_user) the rest.
        let user = opt(
            &tx,
            "SELECT password, is_active, EXISTS (SELECT 1 FROM pending_activations p WHERE p.user_id = users.id)
             FROM users WHERE id = $1 FOR UPDATE",
            &[&r.user_id],
        )
        .await
        .map_err(pg_err)?;
        let user = match user {
            Some(row) => Some(Redeemer {
                password_fingerprint: password_fingerprint(&row.try_get::<_, String>(0).map_err(pg_err)?),
                is_active: row.try_get(1).map_err(pg_err)?,
                awaiting_activation: row.try_get(2).map_err(pg_err)?,
            }),
            None => None,
        };
        let token = opt(&tx, &format!("{ACCOUNT_TOKEN} FOR UPDATE"), &[&r.digest]).await.map_err(pg_err)?;
        let token = token.as_ref().map(AccountToken::from_columns).transpose().map_err(pg_err)?;
        let decision = decide_redemption(token.as_ref(), user.as_ref(), r.purpose, r.user_id, r.now);
        if decision != Redeemed::Done {
            return Ok(decision);
        }
        match (r.purpose, &r.new_password) {
            (Purpose::PasswordReset, Some(hash)) => {
                exec(&tx, "UPDATE users SET password = $2 WHERE id = $1", &[&r.user_id, hash]).await.map_err(pg_err)?;
                exec(
                    &tx,
                    "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2",
                    &[&r.user_id, &Purpose::PasswordReset.name()],
                )
                .await
                .map_err(pg_err)?;
                revoke_user(&tx, r.user_id, r.now).await.map_err(pg_err)?;
            }
            (Purpose::PasswordReset, None) => return Ok(Redeemed::Invalid),
            (Purpose::Activation, _) => {
                exec(&tx, "UPDATE users SET is_active = TRUE WHERE id = $1", &[&r.user_id]).await.map_err(pg_err)?;
                exec(&tx, "DELETE FROM pending_activations WHERE user_id = $1", &[&r.user_id]).await.map_err(pg_err)?;
                exec(&tx, "UPDATE account_tokens SET used = TRUE WHERE digest = $1", &[&r.digest])
                    .await
                    .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(Redeemed::Done)
    }
}
