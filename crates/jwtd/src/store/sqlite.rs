//! The SQLite backend, in WAL mode: one writer thread owning the only write connection (SQLite
//! has a single writer anyway) and a reader connection per thread that reads.
//!
//! Writes are group-committed: the writer takes every write job waiting, runs each inside its
//! own SAVEPOINT of one transaction (so a failing job rolls back alone), commits once, and only
//! then answers each caller. Under load many rotations share one commit; alone, a write commits
//! at once. Reads run where they are awaited (see `Inner::readers`); in WAL mode no write blocks them.
//! Rotation only reads the rows [`decide_rotation`] needs and writes the rows it returns.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use async_trait::async_trait;
use std::cell::RefCell;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, Statement, ToSql, TransactionBehavior};
use thread_local::ThreadLocal;
use tokio::sync::oneshot;

use super::{
    database_id_type, decide_id_type, decide_rotation, decide_token_import, imported_row, plan_user_import, Holder,
    IdTypeCheck, ImportMode, ImportOutcome, ImportUser, LoginKey, NewUser, RefreshCheck, RefreshQuery, RefreshRecord,
    Revocation, RotateRequest, Rotation, RotationDecision, SessionListing, SessionRevocation, SessionScope, SignIn,
    SourceId, Store, StoreError, TokenImport, TokenRow, TokenStanding, User, UserGate, UserListing, UserWrite,
};
use super::{decide_redemption, password_fingerprint, AccountToken, Purpose, Redeemed, Redeemer, Redemption};
use crate::clock::Instant;
use crate::config::IdType;
use crate::store::{
    account_token_columns, columns_of, migrations, pending, profile_columns, token_columns, user_columns,
};
use serde_json::{Map, Value};

const MIGRATIONS: &[&str] = &migrations!("sqlite");
/// Most write jobs one transaction takes.
const MAX_BATCH: usize = 512;

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Sender<WriteJob>,
    /// One reader connection per thread that reads, opened on its first read: the runtime's
    /// workers, mostly. Reads are indexed lookups of a few microseconds, less than a hop to
    /// another thread and back, so they run where they are awaited; in WAL mode no writer
    /// ever blocks them.
    readers: ThreadLocal<RefCell<Connection>>,
}

/// A write job: run inside a savepoint with `Some(conn)` (or told it will never run with `None`);
/// says whether it succeeded, and how to answer its caller once the commit's outcome is known.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

struct Ran {
    ok: bool,
    answer: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

/// Runs one statement of the write loop, parsed once per connection (not at every job).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The writer thread: group commit of whatever jobs are waiting.
fn write_loop(conn: Connection, jobs: Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = exec(&conn, "BEGIN IMMEDIATE") {
            for job in batch {
                (job(None).answer)(Some(db_err_ref(&e)));
            }
            continue;
        }
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch {
            if exec(&conn, "SAVEPOINT job").is_err() {
                answers.push(job(None).answer);
                continue;
            }
            let ran = job(Some(&conn));
            if !ran.ok {
                let _ = exec(&conn, "ROLLBACK TO job");
            }
            let _ = exec(&conn, "RELEASE job");
            answers.push(ran.answer);
        }
        match exec(&conn, "COMMIT") {
            Ok(()) => answers.into_iter().for_each(|answer| answer(None)),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                answers.into_iter().for_each(|answer| answer(Some(db_err_ref(&e))));
            }
        }
    }
    let _ = conn.pragma_update(None, "optimize", "");
    drop(conn.close());
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Database(Box::new(e)),
    }
}

/// A fresh `StoreError` of the same kind, for every caller of a batch that failed as a whole.
fn db_err_ref(e: &rusqlite::Error) -> StoreError {
    let text = e.to_string();
    match e.sqlite_error_code() {
        Some(code) => db_err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code_number(code)), Some(text))),
        None => StoreError::Database(text.into()),
    }
}

fn code_number(code: ErrorCode) -> std::ffi::c_int {
    use rusqlite::ffi;
    match code {
        ErrorCode::DatabaseBusy => ffi::SQLITE_BUSY,
        ErrorCode::DatabaseLocked => ffi::SQLITE_LOCKED,
        ErrorCode::ReadOnly => ffi::SQLITE_READONLY,
        ErrorCode::DiskFull => ffi::SQLITE_FULL,
        ErrorCode::CannotOpen => ffi::SQLITE_CANTOPEN,
        ErrorCode::SystemIoFailure => ffi::SQLITE_IOERR,
        ErrorCode::OutOfMemory => ffi::SQLITE_NOMEM,
        _ => ffi::SQLITE_ERROR,
    }
}

/// Creates a missing database file empty, readable by its owner only (0600), before SQLite opens
/// it: the file holds password hashes and, with SIGNING_KEY unset, the signing key, and SQLite
/// would create it under the process umask (0644 under the usual 022). SQLite's unix VFS gives
/// the `-wal` and `-shm` files it creates the database file's permissions, so they are 0600 from
/// their first byte too. An existing file keeps its permissions (an operator may have chosen
/// them), with a warning when others can read it.
fn create_private(path: &Path) -> Result<(), StoreError> {
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Ok(meta) = std::fs::metadata(path) {
                    if meta.permissions().mode() & 0o077 != 0 {
                        tracing::warn!(
                            path = %path.display(),
                            mode = format!("{:o}", meta.permissions().mode() & 0o777),
                            "the database file is readable by others; it holds password hashes (and the \
                             signing key when SIGNING_KEY is unset): chmod 600 it"
                        );
                    }
                }
            }
            Err(e) => return Err(StoreError::Unavailable(Box::new(e))),
        }
    }
    Ok(())
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// What every connection of the store runs with.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Room for every statement the store prepares, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL + synchronous=NORMAL keeps every committed transaction across a crash of the
    // process (not of the machine's power), at a fraction of FULL's fsync cost.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The query planner stability guarantee: plans never depend on bound values. Without it SQLite
    // marks a statement whose plan a parameter's value could change (an equality no index serves,
    // compared with a 0 or 1; a partial index's condition) to be prepared again whenever that
    // parameter is bound anew: every refresh of user 1 compiled its statement twice, more than the
    // rest of the request cost. The partial index on `username` still serves, as every query on it
    // states the index's condition itself (`username <> ''`).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// Applies the migrations this binary has and the file lacks; a file migrated by a newer jwtd
/// is [`super::SchemaTooNew`].
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    // A negative user_version is no version jwtd ever wrote: refused like a newer one.
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    let pending = pending(MIGRATIONS, version)?;
    apply(tx, pending).map_err(db_err)
}

fn apply<'a>(tx: rusqlite::Transaction<'_>, pending: impl Iterator<Item = (usize, &'a str)>) -> rusqlite::Result<()> {
    for (version, sql) in pending {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(version).unwrap_or(i64::MAX))?;
    }
    tx.commit()
}

const USER_COLUMNS: &str = user_columns!();
const ACCOUNT_TOKEN: &str = concat!("SELECT ", account_token_columns!(), " FROM account_tokens WHERE digest = ?1");
const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1");
// `username <> ''` lets the partial unique index (migration 0002) answer: without it SQLite scans
// users. A blank username never signs in.
const USER_BY_USERNAME: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE username = ?1 AND username <> ''");
const USER_BY_EMAIL: &str =
    concat!("SELECT ", user_columns!(), " FROM users WHERE lower(email) = lower(?1) ORDER BY id LIMIT 1");
const USER_BY_UUID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE uuid = ?1");

columns_of!(Row<'_>, rusqlite::Error, get);

fn user_from(r: &Row<'_>) -> rusqlite::Result<User> {
    User::from_columns(r)
}

fn groups_of(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?1",
    )?;
    let mut names = stmt.query_map([user_id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

const TOKEN_BY_JTI: &str = concat!("SELECT ", token_columns!(), " FROM refresh_tokens WHERE jti = ?1");

fn token_from(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    TokenRow::from_columns(r)
}

fn token_row(conn: &Connection, jti: &str) -> rusqlite::Result<Option<TokenRow>> {
    conn.prepare_cached(TOKEN_BY_JTI)?.query_row([jti], token_from).optional()
}

/// [`Store::refresh_check`]'s one statement: the user, the token's row when there is one, and
/// whether the token's session is a family of the user's.
/// `session_known` is looked up only when the token has no row (it decides nothing else); a NULL
/// session matches no family.
const REFRESH_CHECK: &str =
    "SELECT u.is_active, u.tokens_valid_after, t.blacklisted_ms IS NOT NULL, t.family_started, \
     CASE WHEN t.jti IS NULL THEN EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family = ?3 AND f.user_id = u.id) \
       OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = ?3 AND s.user_id = u.id) ELSE 0 END \
     FROM users u LEFT JOIN refresh_tokens t ON t.jti = ?2 WHERE u.id = ?1";

fn refresh_check_from(r: &Row<'_>) -> rusqlite::Result<RefreshCheck> {
    // family_started is NOT NULL in a row, so NULL here means no row.
    let token = match r.get::<_, Option<i64>>(3)? {
        Some(family_started) => Some(TokenStanding { blacklisted: r.get(2)?, family_started }),
        None => None,
    };
    let user = UserGate { is_active: r.get(0)?, tokens_valid_after: r.get(1)? };
    Ok(RefreshCheck { user, token, session_known: r.get(4)? })
}

/// The user whose family `session` is: by its token rows, else its session row.
fn session_owner(conn: &Connection, session: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT user_id FROM refresh_tokens WHERE family = ?1
         UNION ALL SELECT user_id FROM sessions WHERE id = ?1 LIMIT 1",
    )?
    .query_row([session], |r| r.get(0))
    .optional()
}

/// Blacklists the refresh tokens of the user's session `family` and logs its revocation.
fn revoke_family(conn: &Connection, user_id: i64, family: &str, now: Instant) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE refresh_tokens SET blacklisted_ms = ?3 WHERE family = ?2 AND user_id = ?1 AND blacklisted_ms IS NULL",
    )?
    .execute(params![user_id, family, now.millis()])?;
    conn.prepare_cached("INSERT INTO revocations (user_id, valid_after, created_ms, session) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![user_id, super::valid_after_revocation(now), now.millis(), family])?;
    Ok(())
}

/// The families of the user with a refresh token neither blacklisted nor expired at `now`.
const LIVE_FAMILIES: &str = "SELECT DISTINCT family FROM refresh_tokens
     WHERE user_id = ?1 AND blacklisted_ms IS NULL AND expires_at > ?2";

/// A statement inserting a token row, its values `$values`: ?1 to ?7 bound by [`bind_token`].
macro_rules! insert_token_with {
    ($values:literal) => {
        concat!(
            "INSERT INTO refresh_tokens (jti, user_id, family, family_started, issued_at, expires_at, blacklisted_ms) ",
            $values
        )
    };
}

/// Binds `row` to ?1 to ?7 of `stmt`, an [`insert_token_with!`] statement.
fn bind_token(stmt: &mut Statement<'_>, row: &TokenRow) -> rusqlite::Result<()> {
    let blacklisted = row.blacklisted.map(Instant::millis);
    let values: [&dyn ToSql; 7] =
        [&row.jti, &row.user_id, &row.family, &row.family_started, &row.issued_at, &row.expires_at, &blacklisted];
    for (i, value) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    Ok(())
}

fn insert_token(conn: &Connection, row: &TokenRow) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached(insert_token_with!("VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (jti) DO NOTHING"))?;
    bind_token(&mut stmt, row)?;
    stmt.raw_execute()?;
    Ok(())
}

/// Blacklists the row of `jti` at `at` unless it is blacklisted already.
fn blacklist_row(conn: &Connection, jti: &str, at: Option<Instant>) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET blacklisted_ms = ?2 WHERE jti = ?1 AND blacklisted_ms IS NULL")?
        .execute(params![jti, at.map(Instant::millis)])?;
    Ok(())
}

/// Inserts `user` unless its e-mail must be unique and is taken (`None`). The writer is the only
/// one: nothing comes between the check and the insert.
fn insert_user(c: &Connection, user: &NewUser) -> rusqlite::Result<Option<User>> {
    if user.unique_email && c.prepare_cached(USER_BY_EMAIL)?.query_row([&user.email], |_| Ok(())).optional()?.is_some()
    {
        return Ok(None);
    }
    c.prepare_cached(&format!(
        "INSERT INTO users (username, password, email, date_joined_ms, uuid) VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING {USER_COLUMNS}"
    ))?
    .query_row(
        params![
            user.username,
            user.password_hash,
            user.email,
            user.now.millis(),
            user.uuid.map(|u| u.hyphenated().to_string())
        ],
        user_from,
    )
    .map(Some)
}

/// The answer of a user insert: a taken e-mail or username as their errors.
fn created(result: Result<Option<User>, StoreError>) -> Result<User, StoreError> {
    match result.and_then(|user| user.ok_or(StoreError::EmailTaken)) {
        Err(StoreError::Database(e))
            if e.downcast_ref::<rusqlite::Error>().and_then(|e| e.sqlite_error_code())
                == Some(ErrorCode::ConstraintViolation) =>
        {
            Err(StoreError::UsernameTaken)
        }
        other => other,
    }
}

fn revoke_user(conn: &Connection, user_id: i64, now: Instant) -> rusqlite::Result<()> {
    let valid_after = super::valid_after_revocation(now);
    conn.execute(
        "UPDATE refresh_tokens SET blacklisted_ms = ?2 WHERE user_id = ?1 AND blacklisted_ms IS NULL",
        params![user_id, now.millis()],
    )?;
    conn.execute(
        "UPDATE users SET tokens_valid_after = max(tokens_valid_after, ?2) WHERE id = ?1",
        params![user_id, valid_after],
    )?;
    conn.execute(
        "INSERT INTO revocations (user_id, valid_after, created_ms) VALUES (?1, ?2, ?3)",
        params![user_id, valid_after, now.millis()],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                return Err(StoreError::Unavailable(format!("the folder {} does not exist", dir.display()).into()));
            }
        }
        create_private(path)?;
        let mut writer = connect(path).map_err(db_err)?;
        migrate(&mut writer)?;
        let (jobs, queue) = channel();
        std::thread::Builder::new()
            .name("jwtd-sqlite-writer".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner { path: path.to_path_buf(), writer: jobs, readers: ThreadLocal::new() }),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = &self.inner;
        let conn = inner.readers.get_or_try(|| connect(&inner.path).map(RefCell::new)).map_err(db_err)?;
        // `f` never reads again, so the connection is never borrowed twice.
        let conn = conn.try_borrow().map_err(|e| StoreError::Database(Box::new(e)))?;
        f(&conn).map_err(db_err)
    }

    /// Runs `f` atomically on the writer thread and answers once its transaction committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: WriteJob = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn).map_err(db_err),
                None => Err(StoreError::Unavailable("the write could not start".into())),
            };
            let ok = result.is_ok();
            let answer = Box::new(move |commit_failed: Option<StoreError>| {
                let _ = reply.send(match (result, commit_failed) {
                    (Ok(_), Some(e)) => Err(e),
                    (result, _) => result,
                });
            });
            Ran { ok, answer }
        });
        self.inner.writer.send(job).map_err(|_| StoreError::Database("the database writer stopped".into()))?;
        answer.await.map_err(|_| StoreError::Database("the database writer stopped".into()))?
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Database(Box::new(e)))?
}

/// [`Store::import_user`] on `conn`: inside the writer's savepoint, or on a reader for a dry run.
fn import_in(conn: &Connection, user: &ImportUser, mode: ImportMode) -> rusqlite::Result<ImportOutcome> {
    let holder = |r: &Row<'_>| Ok(Holder { id: r.get(0)?, username: r.get(1)?, email: r.get(2)? });
    let same_id = match &user.id {
        SourceId::Int(id) => {
            conn.prepare_cached("SELECT id, username, email FROM users WHERE id = ?1")?.query_row([id], holder)
        }
        SourceId::Uuid(uuid) => {
            conn.prepare_cached("SELECT id, username, email FROM users WHERE uuid = ?1")?.query_row([uuid], holder)
        }
    }
    .optional()?;
    let same_login = match user.profile.login_key() {
        // `username <> ''` lets the partial unique index answer (without it: a scan of users).
        Some(LoginKey::Username(name)) => conn
            .prepare_cached("SELECT id, username, email FROM users WHERE username = ?1 AND username <> ''")?
            .query_row([name], holder)
            .optional()?,
        Some(LoginKey::Email(email)) => conn
            .prepare_cached("SELECT id, username, email FROM users WHERE lower(email) = lower(?1) LIMIT 1")?
            .query_row([email], holder)
            .optional()?,
        None => None,
    };
    let (decision, write) = plan_user_import(user, same_id.as_ref(), same_login.as_ref(), mode);
    let (user_id, groups) = match write {
        UserWrite::Refused => return Ok(ImportOutcome::refused(decision)),
        UserWrite::Keep { user_id, groups } => (user_id, groups),
        UserWrite::Insert { id, uuid } => {
            let p = &user.profile;
            // An explicit id above sqlite_sequence's value moves it up (AUTOINCREMENT), so
            // later sign-ups continue after the imported ids; NULL draws a new one.
            let id: i64 = conn.query_row(
                concat!(
                    "INSERT INTO users (id, uuid, password, ",
                    profile_columns!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id"
                ),
                params![
                    id,
                    uuid,
                    user.password,
                    p.username,
                    p.email,
                    p.first_name,
                    p.last_name,
                    p.is_active,
                    p.is_staff,
                    p.is_superuser,
                    p.date_joined.millis(),
                    p.last_login.map(Instant::millis)
                ],
                |r| r.get(0),
            )?;
            let mut groups = 0;
            for name in &user.groups {
                groups += conn
                    .prepare_cached(
                        "INSERT INTO user_groups (user_id, group_id) SELECT ?1, id FROM groups WHERE name = ?2
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, name])? as u64;
            }
            (Some(id), groups)
        }
    };
    let mut outcomes = Vec::with_capacity(user.tokens.len());
    for row in &user.tokens {
        let row = imported_row(row, user_id);
        let step = decide_token_import(token_row(conn, &row.jti)?.as_ref(), &row);
        match step {
            TokenImport::Insert if mode == ImportMode::Write => insert_token(conn, &row)?,
            TokenImport::Blacklist if mode == ImportMode::Write => blacklist_row(conn, &row.jti, row.blacklisted)?,
            _ => {}
        }
        outcomes.push(step);
    }
    Ok(ImportOutcome { user: decision, user_id, tokens: outcomes, groups })
}

#[async_trait]
impl Store for SqliteStore {
    /// Closes the idle reader connections and checkpoints the write-ahead log into the database
    /// file, truncating it: the file alone then holds every committed transaction. The writer
    /// thread and its connection end when the store is dropped.
    async fn close(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        run_blocking(move || {
            let conn = connect(&inner.path).map_err(db_err)?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(db_err)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT count(*) FROM secrets", [], |_| Ok(()))).await
    }

    async fn secret_or_insert(&self, name: &str, generate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let name = name.to_string();
        self.write(move |c| {
            c.execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, generate],
            )?;
            c.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| r.get(0))
        })
        .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        created(self.write(move |c| insert_user(c, &user)).await)
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_string();
        self.read(move |c| c.prepare_cached(USER_BY_USERNAME)?.query_row([username], user_from).optional()).await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read(move |c| c.prepare_cached(USER_BY_ID)?.query_row([id], user_from).optional()).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_string();
        self.read(move |c| c.prepare_cached(USER_BY_EMAIL)?.query_row([email], user_from).optional()).await
    }

    async fn user_by_uuid(&self, uuid: uuid::Uuid) -> Result<Option<User>, StoreError> {
        let uuid = uuid.hyphenated().to_string();
        self.read(move |c| c.prepare_cached(USER_BY_UUID)?.query_row([uuid], user_from).optional()).await
    }

    async fn fix_user_id_type(&self, wanted: IdType) -> Result<IdType, StoreError> {
        let stored: String = self
            .write(move |c| {
                // Users without a UUID (from before the type was recorded) hold integer ids.
                c.execute(
                    "INSERT INTO meta (name, value)
                     SELECT 'user_id_type', CASE WHEN EXISTS (SELECT 1 FROM users WHERE uuid IS NULL) THEN 'int' ELSE ?1 END
                     WHERE true ON CONFLICT (name) DO NOTHING",
                    [wanted.name()],
                )?;
                c.query_row("SELECT value FROM meta WHERE name = 'user_id_type'", [], |r| r.get(0))
            })
            .await?;
        IdType::parse(&stored).map_err(|e| StoreError::Database(format!("meta user_id_type: {e}").into()))
    }

    async fn set_user_claims(&self, user_id: i64, claims: &Map<String, Value>) -> Result<bool, StoreError> {
        let text = Value::Object(claims.clone()).to_string();
        self.write(move |c| Ok(c.execute("UPDATE users SET claims = ?2 WHERE id = ?1", params![user_id, text])? > 0))
            .await
    }

    async fn user_groups(&self, user_id: i64) -> Result<Vec<String>, StoreError> {
        self.read(move |c| groups_of(c, user_id)).await
    }

    async fn change_groups(&self, user_id: i64, add: &[String], remove: &[String]) -> Result<Vec<String>, StoreError> {
        let (add, remove) = (add.to_vec(), remove.to_vec());
        self.write(move |c| {
            for name in &add {
                c.execute("INSERT INTO groups (name) VALUES (?1) ON CONFLICT (name) DO NOTHING", [name])?;
                c.execute(
                    "INSERT INTO user_groups (user_id, group_id) SELECT ?1, id FROM groups WHERE name = ?2
                     ON CONFLICT DO NOTHING",
                    params![user_id, name],
                )?;
            }
            for name in &remove {
                c.execute(
                    "DELETE FROM user_groups WHERE user_id = ?1 AND group_id = (SELECT id FROM groups WHERE name = ?2)",
                    params![user_id, name],
                )?;
            }
            groups_of(c, user_id)
        })
        .await
    }

    async fn set_active(&self, user_id: i64, active: bool, now: Instant) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let found = tx.execute("UPDATE users SET is_active = ?2 WHERE id = ?1", params![user_id, active])? > 0;
            // An operator's decision ends a wait for activation by e-mail.
            tx.execute("DELETE FROM pending_activations WHERE user_id = ?1", [user_id])?;
            if found && !active {
                revoke_user(tx, user_id, now)?;
            }
            Ok(found)
        })
        .await
    }

    async fn delete_user(&self, user_id: i64, now: Instant) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let id: Option<i64> =
                tx.query_row("SELECT id FROM users WHERE id = ?1", [user_id], |r| r.get(0)).optional()?;
            let Some(id) = id else { return Ok(false) };
            revoke_user(tx, id, now)?;
            tx.execute("DELETE FROM refresh_tokens WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM user_groups WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM account_tokens WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM pending_activations WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(true)
        })
        .await
    }

    async fn set_last_login(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute("UPDATE users SET last_login_ms = ?2 WHERE id = ?1", params![user_id, now.millis()])?;
            Ok(())
        })
        .await
    }

    async fn update_password_hash(&self, user_id: i64, old: &str, new: &str) -> Result<bool, StoreError> {
        let (old, new) = (old.to_string(), new.to_string());
        self.write(move |c| {
            let n = c.execute(
                "UPDATE users SET password = ?3 WHERE id = ?1 AND password = ?2",
                params![user_id, old, new],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn change_password(&self, user_id: i64, hash: &str, now: Instant) -> Result<(), StoreError> {
        let hash = hash.to_string();
        self.write(move |tx| {
            tx.execute("UPDATE users SET password = ?2 WHERE id = ?1", params![user_id, hash])?;
            revoke_user(tx, user_id, now)
        })
        .await
    }

    async fn revoke_all(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        self.write(move |tx| revoke_user(tx, user_id, now)).await
    }

    async fn revocations_since(&self, cursor: i64, limit: u32) -> Result<Vec<Revocation>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT r.id, r.user_id, r.valid_after, u.uuid, r.session FROM revocations r
                 LEFT JOIN users u ON u.id = r.user_id WHERE r.id > ?1 ORDER BY r.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![cursor, limit], |r| Revocation::from_columns(r))?;
            rows.collect()
        })
        .await
    }

    async fn record_sign_in(&self, sign_in: SignIn<'_>) -> Result<bool, StoreError> {
        let row = sign_in.row();
        let seen = sign_in.seen.clone();
        let client = sign_in.client.clone();
        // One statement on the single writer: the row goes in only if the user is as checked.
        self.write(move |c| {
            let mut stmt = c.prepare_cached(insert_token_with!(
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2
                   AND password = ?8 AND is_active = ?9 AND tokens_valid_after = ?10)"
            ))?;
            bind_token(&mut stmt, &row)?;
            stmt.raw_bind_parameter(8, &seen.password)?;
            stmt.raw_bind_parameter(9, seen.is_active)?;
            stmt.raw_bind_parameter(10, seen.tokens_valid_after)?;
            let n = stmt.raw_execute()?;
            if n > 0 {
                c.prepare_cached(
                    "INSERT INTO sessions (id, user_id, created_at, last_used_at, user_agent, ip)
                     VALUES (?1, ?2, ?3, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![
                    row.family,
                    row.user_id,
                    row.issued_at,
                    client.user_agent,
                    client.ip
                ])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn refresh_row(&self, jti: &str) -> Result<Option<TokenRow>, StoreError> {
        let jti = jti.to_string();
        self.read(move |c| token_row(c, &jti)).await
    }

    async fn refresh_check(&self, query: RefreshQuery<'_>) -> Result<Option<RefreshCheck>, StoreError> {
        let RefreshQuery { user_id, jti, session } = query;
        let (jti, session) = (jti.to_string(), session.map(str::to_string));
        self.read(move |c| {
            c.prepare_cached(REFRESH_CHECK)?.query_row(params![user_id, jti, session], refresh_check_from).optional()
        })
        .await
    }

    async fn session_owner(&self, session: &str) -> Result<Option<i64>, StoreError> {
        let session = session.to_string();
        self.read(move |c| session_owner(c, &session)).await
    }

    async fn sessions(&self, user_id: i64, now: Instant) -> Result<Vec<SessionListing>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT t.family, min(t.family_started), max(t.issued_at), s.last_used_at, s.user_agent, s.ip
                 FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.family
                 WHERE t.user_id = ?1 AND t.blacklisted_ms IS NULL AND t.expires_at > ?2
                 GROUP BY t.family ORDER BY 2 DESC, 3 DESC, t.family",
            )?;
            let rows = stmt.query_map(params![user_id, now.secs()], |r| SessionListing::from_columns(r))?;
            rows.collect()
        })
        .await
    }

    async fn revoke_sessions(&self, revocation: SessionRevocation<'_>) -> Result<Vec<String>, StoreError> {
        let SessionRevocation { user_id, scope, now } = revocation;
        let (one, keep) = match scope {
            SessionScope::One(id) => (Some(id.to_string()), None),
            SessionScope::AllBut(keep) => (None, keep.map(str::to_string)),
        };
        self.write(move |tx| {
            let families: Vec<String> = match &one {
                Some(id) => {
                    session_owner(tx, id)?.filter(|owner| *owner == user_id).map(|_| id.clone()).into_iter().collect()
                }
                None => {
                    let mut stmt = tx.prepare_cached(LIVE_FAMILIES)?;
                    let live = stmt.query_map(params![user_id, now.secs()], |r| r.get::<_, String>(0))?;
                    live.filter(|f| f.as_ref().map_or(true, |f| Some(f) != keep.as_ref())).collect::<Result<_, _>>()?
                }
            };
            for family in &families {
                revoke_family(tx, user_id, family, now)?;
            }
            Ok(families)
        })
        .await
    }

    async fn touch_sessions(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        let used = used.to_vec();
        self.write(move |tx| {
            let mut stmt =
                tx.prepare_cached("UPDATE sessions SET last_used_at = max(last_used_at, ?2) WHERE id = ?1")?;
            for (id, at) in &used {
                stmt.execute(params![id, at])?;
            }
            Ok(())
        })
        .await
    }

    async fn blacklist(&self, token: &RefreshRecord, family: &str, now: Instant) -> Result<(), StoreError> {
        let row = TokenRow::first_of_family(token, family.to_string()).blacklisted_at(now);
        self.write(move |tx| {
            insert_token(tx, &row)?;
            blacklist_row(tx, &row.jti, Some(now))
        })
        .await
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        let req = req.clone();
        self.write(move |tx| {
            let p = &req.presented;
            let user = tx
                .prepare_cached("SELECT is_active, tokens_valid_after FROM users WHERE id = ?1")?
                .query_row([p.user_id], |r| Ok(UserGate { is_active: r.get(0)?, tokens_valid_after: r.get(1)? }))
                .optional()?;
            let presented = token_row(tx, &p.jti)?;
            let successor = match presented.as_ref().and_then(|r| r.replaced_by.as_deref()) {
                Some(next) => token_row(tx, next)?,
                None => None,
            };
            let owner = match (&presented, &req.session) {
                (None, Some(session)) => session_owner(tx, session)?,
                _ => None,
            };
            let decision =
                decide_rotation(presented.as_ref(), successor.as_ref(), user, owner, &req, super::new_family);
            let outcome = match decision {
                RotationDecision::Rotate { record_presented, successor } => {
                    if let Some(first) = &record_presented {
                        insert_token(tx, first)?;
                    }
                    insert_token(tx, &successor)?;
                    tx.prepare_cached(
                        "UPDATE refresh_tokens SET replaced_by = ?2, rotated_ms = ?3,
                         blacklisted_ms = CASE WHEN ?4 THEN coalesce(blacklisted_ms, ?3) ELSE blacklisted_ms END
                         WHERE jti = ?1",
                    )?
                    .execute(params![
                        p.jti,
                        successor.jti,
                        req.now.millis(),
                        req.blacklist_after
                    ])?;
                    Rotation::Rotated(successor)
                }
                RotationDecision::RevokeFamily { family } => {
                    revoke_family(tx, p.user_id, &family, req.now)?;
                    Rotation::Reused { family }
                }
                RotationDecision::Answer(outcome) => outcome,
            };
            Ok(outcome)
        })
        .await
    }

    async fn import_user(&self, user: &ImportUser, mode: ImportMode) -> Result<ImportOutcome, StoreError> {
        let user = user.clone();
        match mode {
            // One write job: the writer runs it atomically (in its own savepoint).
            ImportMode::Write => self.write(move |tx| import_in(tx, &user, mode)).await,
            // A dry run decides on a reader connection, away from the writer.
            ImportMode::DryRun => self.read(move |c| import_in(c, &user, mode)).await,
        }
    }

    async fn import_id_type(&self, incoming: IdType, mode: ImportMode) -> Result<IdTypeCheck, StoreError> {
        let check = move |c: &Connection| -> rusqlite::Result<IdTypeCheck> {
            let recorded: Option<String> =
                c.query_row("SELECT value FROM meta WHERE name = 'user_id_type'", [], |r| r.get(0)).optional()?;
            let (without_uuid, with_uuid): (bool, bool) = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE uuid IS NULL), EXISTS (SELECT 1 FROM users WHERE uuid IS NOT NULL)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let database = database_id_type(recorded.as_deref(), without_uuid, with_uuid);
            let decision = decide_id_type(database, recorded.is_some(), incoming);
            if decision == IdTypeCheck::Recorded && mode == ImportMode::Write {
                c.execute(
                    "INSERT INTO meta (name, value) VALUES ('user_id_type', ?1) ON CONFLICT (name) DO NOTHING",
                    [incoming.name()],
                )?;
            }
            Ok(decision)
        };
        match mode {
            ImportMode::Write => self.write(check).await,
            ImportMode::DryRun => self.read(check).await,
        }
    }

    async fn import_groups(&self, names: &[String], mode: ImportMode) -> Result<u64, StoreError> {
        let names = names.to_vec();
        let create = move |c: &Connection| -> rusqlite::Result<u64> {
            let mut new = 0;
            for name in &names {
                new += match mode {
                    ImportMode::Write => c
                        .prepare_cached("INSERT INTO groups (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?
                        .execute([name])? as u64,
                    ImportMode::DryRun => u64::from(
                        c.prepare_cached("SELECT 1 FROM groups WHERE name = ?1")?
                            .query_row([name], |_| Ok(()))
                            .optional()?
                            .is_none(),
                    ),
                };
            }
            Ok(new)
        };
        match mode {
            ImportMode::Write => self.write(create).await,
            ImportMode::DryRun => self.read(create).await,
        }
    }

    async fn user_page(&self, after: i64, limit: u32) -> Result<Vec<UserListing>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(concat!(
                "SELECT u.id, u.uuid, ",
                profile_columns!(),
                ", (SELECT json_group_array(name) FROM
                      (SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id
                       WHERE ug.user_id = u.id ORDER BY g.name))
                 FROM users u WHERE u.id > ?1 ORDER BY u.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit], |r| {
                let groups: String = r.get(11)?;
                UserListing::from_columns(r, serde_json::from_str(&groups).unwrap_or_default())
            })?;
            rows.collect()
        })
        .await
    }

    async fn flush_expired(&self, now: Instant, batch: u32) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let tokens = tx.execute(
                "DELETE FROM refresh_tokens WHERE rowid IN
                 (SELECT rowid FROM refresh_tokens WHERE expires_at < ?1 LIMIT ?2)",
                params![now.secs(), batch],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s
                 WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family = s.id) LIMIT ?1)",
                params![batch],
            )?;
            let links = tx.execute(
                "DELETE FROM account_tokens WHERE rowid IN
                 (SELECT rowid FROM account_tokens WHERE expires_at < ?1 LIMIT ?2)",
                params![now.secs(), batch],
            )?;
            Ok((tokens + links) as u64)
        })
        .await
    }

    async fn create_user_awaiting_activation(&self, user: NewUser) -> Result<User, StoreError> {
        created(
            self.write(move |c| {
                let Some(mut user) = insert_user(c, &user)? else { return Ok(None) };
                c.execute("UPDATE users SET is_active = 0 WHERE id = ?1", [user.id])?;
                c.execute("INSERT INTO pending_activations (user_id) VALUES (?1)", [user.id])?;
                user.profile.is_active = false;
                Ok(Some(user))
            })
            .await,
        )
    }

    async fn awaits_activation(&self, user_id: i64) -> Result<bool, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM pending_activations WHERE user_id = ?1")?
                .query_row([user_id], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
        })
        .await
    }

    async fn insert_account_token(&self, token: &AccountToken) -> Result<(), StoreError> {
        let t = token.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO account_tokens (digest, user_id, purpose, bound, expires_at, used) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.digest, t.user_id, t.purpose.name(), t.bound, t.expires_at, t.used],
            )?;
            Ok(())
        })
        .await
    }

    async fn account_token(&self, digest: &str) -> Result<Option<AccountToken>, StoreError> {
        let digest = digest.to_string();
        self.read(move |c| {
            c.prepare_cached(ACCOUNT_TOKEN)?.query_row([digest], |r| AccountToken::from_columns(r)).optional()
        })
        .await
    }

    async fn redeem(&self, redemption: &Redemption) -> Result<Redeemed, StoreError> {
        let r = redemption.clone();
        self.write(move |tx| {
            let token = tx
                .prepare_cached(ACCOUNT_TOKEN)?
                .query_row([&r.digest], |row| AccountToken::from_columns(row))
                .optional()?;
            let user = tx
                .query_row(
                    "SELECT password, is_active, EXISTS (SELECT 1 FROM pending_activations WHERE user_id = ?1)
                     FROM users WHERE id = ?1",
                    [r.user_id],
                    |row| {
                        Ok(Redeemer {
                            password_fingerprint: password_fingerprint(&row.get::<_, String>(0)?),
                            is_active: row.get(1)?,
                            awaiting_activation: row.get(2)?,
                        })
                    },
                )
                .optional()?;
            let decision = decide_redemption(token.as_ref(), user.as_ref(), r.purpose, r.user_id, r.now);
            if decision != Redeemed::Done {
                return Ok(decision);
            }
            match (r.purpose, &r.new_password) {
                (Purpose::PasswordReset, Some(hash)) => {
                    tx.execute("UPDATE users SET password = ?2 WHERE id = ?1", params![r.user_id, hash])?;
                    revoke_user(tx, r.user_id, r.now)?;
                    tx.execute(
                        "DELETE FROM account_tokens WHERE user_id = ?1 AND purpose = ?2",
                        params![r.user_id, Purpose::PasswordReset.name()],
                    )?;
                }
                (Purpose::PasswordReset, None) => return Ok(Redeemed::Invalid),
                (Purpose::Activation, _) => {
                    tx.execute("UPDATE users SET is_active = 1 WHERE id = ?1", [r.user_id])?;
                    tx.execute("DELETE FROM pending_activations WHERE user_id = ?1", [r.user_id])?;
                    tx.execute("UPDATE account_tokens SET used = 1 WHERE digest = ?1", [&r.digest])?;
                }
            }
            Ok(Redeemed::Done)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan, one detail line per step.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(["ada"], |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn sign_in_finds_the_username_through_its_partial_unique_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        migrate(&mut conn).unwrap();

        let sign_in = plan(&conn, USER_BY_USERNAME);
        let without_guard = plan(&conn, concat!("SELECT ", user_columns!(), " FROM users WHERE username = ?1"));

        assert_eq!(sign_in, ["SEARCH users USING INDEX users_username (username=?)"]);
        assert_eq!(without_guard, ["SCAN users"]);
    }

    #[test]
    fn the_refresh_check_is_compiled_once_whatever_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = connect(&dir.path().join("jwtd.db")).unwrap();
        migrate(&mut conn).unwrap();
        for user in [1, 0, 2, 1, 7, 1] {
            let mut stmt = conn.prepare_cached(REFRESH_CHECK).unwrap();
            stmt.query_row(params![user, "jti", "session"], refresh_check_from).optional().unwrap();
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "bound user {user}");
        }
    }

    #[test]
    fn version_3_shortens_the_families_of_earlier_versions_to_session_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..2] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 2).unwrap();
        for (jti, family) in [
            ("a1", "0123456789abcdef0123456789abcdef"),
            ("a2", "0123456789abcdef0123456789abcdef"),
            ("b1", "not-hex-0123456789abcdef01234567"),
            ("c1", "0123456789ABCDEF0123456789ABCDEF"),
            ("d1", "short"),
        ] {
            tx.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family, family_started, issued_at, expires_at)
                 VALUES (?1, 1, ?2, 0, 0, 0)",
                params![jti, family],
            )
            .unwrap();
        }
        tx.commit().unwrap();

        migrate(&mut conn).unwrap();

        let family = |jti: &str| -> String {
            conn.query_row("SELECT family FROM refresh_tokens WHERE jti = ?1", [jti], |r| r.get(0)).unwrap()
        };
        assert_eq!((family("a1"), family("a2")), ("0123456789abcdef".into(), "0123456789abcdef".into()));
        assert_eq!(family("b1"), "not-hex-0123456789abcdef01234567");
        assert_eq!(family("c1"), "0123456789ABCDEF0123456789ABCDEF", "not lowercase hex: no session id");
        assert_eq!(family("d1"), "short");
    }
}
