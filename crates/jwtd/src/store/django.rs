//! Reading a Django database for `jwtd import-django` (SPEC §6): the user table (`auth_user`
//! unless a custom user model names another) and SimpleJWT's `token_blacklist_outstandingtoken`
//! and `token_blacklist_blacklistedtoken`, from an SQLite file or a PostgreSQL server.
//!
//! Read-only, in one snapshot; knows Django's schema and nothing of jwtd's. Rows that cannot be
//! read (a NULL where Django never writes one, a date it cannot parse) come back as
//! [`BadRow`]s instead of failing the read; what to import is `service::import`'s decision.

use std::path::PathBuf;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::clock::Instant;

pub const DEFAULT_USER_TABLE: &str = "auth_user";
const OUTSTANDING: &str = "token_blacklist_outstandingtoken";
const BLACKLISTED: &str = "token_blacklist_blacklistedtoken";
const USER_COLUMNS: [&str; 7] = ["id", "username", "password", "email", "is_active", "date_joined", "last_login"];
const OUTSTANDING_COLUMNS: [&str; 5] = ["id", "jti", "user_id", "created_at", "expires_at"];
const BLACKLISTED_COLUMNS: [&str; 2] = ["token_id", "blacklisted_at"];
/// Tokens whose expiry is more than this before now are counted in SQL, not read. Wider than
/// any UTC offset, so that the coarse text comparison SQLite makes never leaves out a live one.
const EXPIRED_MARGIN_MS: i64 = 86_400_000;

/// Where the Django database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DjangoUrl {
    /// `sqlite:///absolute/path` or `sqlite://relative/path`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`; may hold a password, so there is no `Debug`.
    Postgres(String),
}

impl DjangoUrl {
    pub fn parse(s: &str) -> Result<DjangoUrl, String> {
        if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs the path of Django's database file, e.g. sqlite:///srv/app/db.sqlite3".into()
                );
            }
            return Ok(DjangoUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DjangoUrl::Postgres(s.to_string()));
        }
        Err("expected sqlite:///PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".into())
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The user model's table: `auth_user`, or a custom model's (`accounts_user`).
    pub user_table: String,
    /// Read users even when the token tables are absent (SimpleJWT's blacklist app not installed).
    pub users_only: bool,
    /// Tokens that expired before this are counted, not read.
    pub now: Instant,
    /// TLS to a PostgreSQL source: the URL's `sslmode`, DATABASE_CA_CERT.
    pub tls: super::pg_tls::PgTls,
}

/// A row of the user table. No `Debug`: it holds a password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct DjangoUser {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub email: String,
    pub is_active: bool,
    pub date_joined: Instant,
    pub last_login: Option<Instant>,
}

/// A row of `token_blacklist_outstandingtoken`, with its blacklisting if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoToken {
    /// The outstanding row's own id, for reports (never the token).
    pub row_id: i64,
    pub jti: String,
    /// NULL once Django deleted the user (`on_delete=SET_NULL`).
    pub user_id: Option<i64>,
    /// NULL in rows older than SimpleJWT 4.
    pub created_at: Option<Instant>,
    pub expires_at: Instant,
    pub blacklisted_at: Option<Instant>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub table: String,
    pub row_id: Option<i64>,
    pub reason: String,
}

/// The token tables' content.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DjangoTokens {
    /// Tokens not yet expired, oldest row first.
    pub live: Vec<DjangoToken>,
    /// Outstanding rows already expired (left out).
    pub expired: u64,
}

/// Everything read from a Django database.
#[derive(Default)]
pub struct DjangoData {
    /// Ordered by id.
    pub users: Vec<DjangoUser>,
    /// `None` when the token tables are absent and [`ReadOptions::users_only`] allowed that.
    pub tokens: Option<DjangoTokens>,
    pub bad_rows: Vec<BadRow>,
}

/// Why the Django database could not be read. Names tables and columns, never the URL.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Url(String),
    #[error("cannot open the Django database")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "table {0} not found: is this the Django project's database? (a custom user model has its own table: \
         pass it with --user-table)"
    )]
    NoUserTable(String),
    #[error(
        "tables {OUTSTANDING} and {BLACKLISTED} not found: the Django project does not use SimpleJWT's \
         token_blacklist app, or this is not its database; pass --users-only to import the users alone"
    )]
    NoTokenTables,
    #[error("table {table} lacks the column(s) {columns}")]
    MissingColumns { table: String, columns: String },
    #[error("reading the Django database failed")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn query_err(e: impl std::error::Error + Send + Sync + 'static) -> ReadError {
    ReadError::Query(Box::new(e))
}

/// Reads the users and tokens of the Django database at `url`, in one read-only snapshot.
pub async fn read(url: &DjangoUrl, options: &ReadOptions) -> Result<DjangoData, ReadError> {
    if !is_identifier(&options.user_table) {
        return Err(ReadError::Url(format!(
            "--user-table: {:?} is not a table name (letters, digits and _ only)",
            options.user_table
        )));
    }
    match url {
        DjangoUrl::Sqlite(path) => {
            let (path, options) = (path.clone(), options.clone());
            tokio::task::spawn_blocking(move || sqlite::read(&path, &options)).await.map_err(query_err)?
        }
        DjangoUrl::Postgres(url) => postgres::read(url, options).await,
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// Which of the tables this read needs exist, and whether they have the columns it reads.
fn check_schema(
    options: &ReadOptions,
    columns_of: &mut dyn FnMut(&str) -> Result<Vec<String>, ReadError>,
) -> Result<bool, ReadError> {
    let user_columns = columns_of(&options.user_table)?;
    if user_columns.is_empty() {
        return Err(ReadError::NoUserTable(options.user_table.clone()));
    }
    require_columns(&options.user_table, &user_columns, &USER_COLUMNS)?;
    let outstanding = columns_of(OUTSTANDING)?;
    let blacklisted = columns_of(BLACKLISTED)?;
    match (outstanding.is_empty(), blacklisted.is_empty()) {
        (true, true) if options.users_only => return Ok(false),
        (true, _) | (_, true) => return Err(ReadError::NoTokenTables),
        _ => {}
    }
    require_columns(OUTSTANDING, &outstanding, &OUTSTANDING_COLUMNS)?;
    require_columns(BLACKLISTED, &blacklisted, &BLACKLISTED_COLUMNS)?;
    Ok(!options.users_only)
}

fn require_columns(table: &str, have: &[String], want: &[&str]) -> Result<(), ReadError> {
    let missing: Vec<&str> = want.iter().copied().filter(|w| !have.iter().any(|h| h == w)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ReadError::MissingColumns { table: table.to_string(), columns: missing.join(", ") })
}

/// A row's field, as the backend gave it.
enum Field {
    Null,
    Int(i64),
    /// Milliseconds since the epoch (PostgreSQL computes them).
    Millis(i64),
    Text(String),
    Other,
}

fn bad(table: &str, row_id: Option<i64>, reason: impl Into<String>) -> BadRow {
    BadRow { table: table.to_string(), row_id, reason: reason.into() }
}

/// One user row from its seven fields, in [`USER_COLUMNS`] order.
fn user_from(table: &str, f: [Field; 7]) -> Result<DjangoUser, BadRow> {
    let [id, username, password, email, is_active, date_joined, last_login] = f;
    let Some(id) = integer(&id) else {
        return Err(bad(table, None, "id is not an integer (jwtd's user ids are integers)"));
    };
    let text = |f: Field, name: &str| match f {
        Field::Text(s) => Ok(s),
        _ => Err(bad(table, Some(id), format!("{name} is not text"))),
    };
    let username = text(username, "username")?;
    let password = text(password, "password")?;
    let email = match email {
        Field::Null => String::new(),
        other => text(other, "email")?,
    };
    let is_active = match is_active {
        Field::Int(n) => n != 0,
        _ => return Err(bad(table, Some(id), "is_active is not a boolean")),
    };
    let date_joined = instant(date_joined).ok_or_else(|| bad(table, Some(id), "date_joined is not a date"))?;
    let last_login = match last_login {
        Field::Null => None,
        other => Some(instant(other).ok_or_else(|| bad(table, Some(id), "last_login is not a date"))?),
    };
    Ok(DjangoUser { id, username, password, email, is_active, date_joined, last_login })
}

/// One token row from its six fields: id, jti, user_id, created_at, expires_at, blacklisted_at.
fn token_from(f: [Field; 6]) -> Result<DjangoToken, BadRow> {
    let [row_id, jti, user_id, created_at, expires_at, blacklisted_at] = f;
    let Field::Int(row_id) = row_id else {
        return Err(bad(OUTSTANDING, None, "id is not an integer"));
    };
    let fail = |reason: &str| bad(OUTSTANDING, Some(row_id), reason);
    let jti = match jti {
        Field::Text(s) => s,
        _ => return Err(fail("jti is not text")),
    };
    let user_id = match user_id {
        Field::Null => None,
        other => Some(integer(&other).ok_or_else(|| fail("user_id is not an integer"))?),
    };
    let created_at = match created_at {
        Field::Null => None,
        other => Some(instant(other).ok_or_else(|| fail("created_at is not a date"))?),
    };
    let expires_at = instant(expires_at).ok_or_else(|| fail("expires_at is not a date"))?;
    // A row in the blacklist table means blacklisted, whatever its time says: leaving the token
    // out would let jwtd take it for one it never saw, and accept it.
    let blacklisted_at = match blacklisted_at {
        Field::Null => None,
        other => Some(instant(other).unwrap_or(Instant::from_millis(0))),
    };
    Ok(DjangoToken { row_id, jti, user_id, created_at, expires_at, blacklisted_at })
}

/// An integer, or text holding one (PostgreSQL's ids are read as text, so that a model with
/// UUID keys gives bad rows instead of a failed query).
fn integer(f: &Field) -> Option<i64> {
    match f {
        Field::Int(n) => Some(*n),
        Field::Text(s) => s.parse().ok(),
        _ => None,
    }
}

fn instant(f: Field) -> Option<Instant> {
    match f {
        Field::Millis(ms) => Some(Instant::from_millis(ms)),
        Field::Text(s) => parse_datetime(&s),
        _ => None,
    }
}

/// A DateTimeField as Django's SQLite backend stores it: `YYYY-MM-DD HH:MM:SS[.ffffff]`, in UTC
/// when USE_TZ is on (Django's default). A `T` separator and a `Z` or `±HH:MM` suffix are
/// accepted too.
pub fn parse_datetime(s: &str) -> Option<Instant> {
    let s = s.trim();
    let (date, time) = (s.get(..10)?, s.get(11..)?);
    if !matches!(s.as_bytes().get(10), Some(b' ' | b'T' | b't')) {
        return None;
    }
    let has_offset = time.ends_with(['Z', 'z']) || time.get(8..).is_some_and(|rest| rest.contains(['+', '-']));
    let normalised = format!("{date}T{time}{}", if has_offset { "" } else { "Z" });
    let at = OffsetDateTime::parse(&normalised, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok().map(Instant::from_millis)
}

/// The same instant as Django's SQLite backend writes it (UTC, no offset).
fn sqlite_text(at: Instant) -> String {
    let secs = at.secs();
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "0000-01-01 00:00:00".to_string(),
    }
}

mod sqlite {
    use super::*;

    pub(super) fn read(path: &std::path::Path, options: &ReadOptions) -> Result<DjangoData, ReadError> {
        if !path.is_file() {
            return Err(ReadError::Open(format!("no such file: {}", path.display()).into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| ReadError::Open(Box::new(e)))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(query_err)?;
        // One read transaction: users and tokens from the same snapshot.
        let tx = conn.transaction().map_err(query_err)?;
        let with_tokens = check_schema(options, &mut |table| columns(&tx, table))?;
        let mut data = DjangoData::default();
        read_users(&tx, &options.user_table, &mut data).map_err(query_err)?;
        if with_tokens {
            data.tokens = Some(read_tokens(&tx, options.now, &mut data.bad_rows).map_err(query_err)?);
        }
        Ok(data)
    }

    fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, ReadError> {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(query_err)?;
        let rows = stmt.query_map([table], |r| r.get::<_, String>(0)).map_err(query_err)?;
        rows.collect::<Result<_, _>>().map_err(query_err)
    }

    fn field(v: ValueRef<'_>) -> Field {
        match v {
            ValueRef::Null => Field::Null,
            ValueRef::Integer(n) => Field::Int(n),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => Field::Text(s.to_string()),
                Err(_) => Field::Other,
            },
            ValueRef::Real(_) | ValueRef::Blob(_) => Field::Other,
        }
    }

    fn read_users(conn: &Connection, table: &str, data: &mut DjangoData) -> rusqlite::Result<()> {
        let sql = format!(r#"SELECT {} FROM "{table}" ORDER BY id"#, USER_COLUMNS.join(", "));
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let f = [0, 1, 2, 3, 4, 5, 6].map(|i| r.get_ref(i).map(field).unwrap_or(Field::Other));
            match user_from(table, f) {
                Ok(user) => data.users.push(user),
                Err(bad) => data.bad_rows.push(bad),
            }
        }
        Ok(())
    }

    fn read_tokens(conn: &Connection, now: Instant, bad_rows: &mut Vec<BadRow>) -> rusqlite::Result<DjangoTokens> {
        // Expired rows can be most of the table: count them in SQL and read only the rest. The
        // text comparison is coarse (Django writes UTC without an offset), hence the margin.
        let cutoff = sqlite_text(Instant::from_millis(now.millis().saturating_sub(EXPIRED_MARGIN_MS)));
        // rusqlite reads no unsigned integers (they could overflow i64); a count is never negative.
        let expired: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {OUTSTANDING} WHERE expires_at <= ?1"), [&cutoff], |r| {
                r.get(0)
            })?;
        let mut expired = u64::try_from(expired).unwrap_or(0);
        let mut stmt = conn.prepare(&format!(
            "SELECT o.id, o.jti, o.user_id, o.created_at, o.expires_at,
                    (SELECT min(b.blacklisted_at) FROM {BLACKLISTED} b WHERE b.token_id = o.id)
             FROM {OUTSTANDING} o WHERE o.expires_at IS NULL OR NOT (o.expires_at <= ?1) ORDER BY o.id"
        ))?;
        let mut rows = stmt.query([&cutoff])?;
        let mut live = Vec::new();
        while let Some(r) = rows.next()? {
            let f = [0, 1, 2, 3, 4, 5].map(|i| r.get_ref(i).map(field).unwrap_or(Field::Other));
            match token_from(f) {
                Ok(t) if t.expires_at <= now => expired += 1,
                Ok(t) => live.push(t),
                Err(bad) => bad_rows.push(bad),
            }
        }
        Ok(DjangoTokens { live, expired })
    }
}

mod postgres {
    use tokio_postgres::types::Type;
    use tokio_postgres::{Client, Row};

    use super::*;
    use crate::store::pg_tls::TlsOr;

    pub(super) async fn read(url: &str, options: &ReadOptions) -> Result<DjangoData, ReadError> {
        let prepared = options.tls.prepare(url).map_err(|e| ReadError::Open(e.into()))?;
        let (mode, tls) = (prepared.mode, prepared.tls);
        let (mut client, connection) = prepared.config.connect(prepared.connector).await.map_err(|e| {
            ReadError::Open(match tls.explain(mode, Box::new(e)) {
                TlsOr::Tls(refused) => Box::new(refused),
                TlsOr::Other(e) => e,
            })
        })?;
        let driver = tokio::spawn(connection);
        let result = read_in_snapshot(&mut client, options).await;
        drop(client);
        let _ = driver.await;
        result
    }

    async fn read_in_snapshot(client: &mut Client, options: &ReadOptions) -> Result<DjangoData, ReadError> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(query_err)?;
        let mut columns = std::collections::HashMap::new();
        for table in [options.user_table.as_str(), OUTSTANDING, BLACKLISTED] {
            let rows = tx
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[&table],
                )
                .await
                .map_err(query_err)?;
            columns.insert(table.to_string(), rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>());
        }
        let with_tokens = check_schema(options, &mut |table| Ok(columns.get(table).cloned().unwrap_or_default()))?;

        let mut data = DjangoData::default();
        let table = &options.user_table;
        // Times as epoch milliseconds, computed by the server: no date types cross the wire.
        let sql = format!(
            r#"SELECT id::text, username::text, password::text, email::text, is_active::boolean,
                      {}, {} FROM "{table}" ORDER BY id"#,
            millis("date_joined"),
            millis("last_login")
        );
        for r in tx.query(&sql, &[]).await.map_err(query_err)? {
            let f = [0, 1, 2, 3, 4, 5, 6].map(|i| field(&r, i, i >= 5));
            match user_from(table, f) {
                Ok(user) => data.users.push(user),
                Err(bad) => data.bad_rows.push(bad),
            }
        }
        if with_tokens {
            let now_ms = options.now.millis();
            let expired: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM {OUTSTANDING} WHERE {} <= $1", millis("expires_at")),
                    &[&now_ms],
                )
                .await
                .map_err(query_err)?
                .get(0);
            let sql = format!(
                "SELECT o.id::bigint, o.jti::text, o.user_id::text, {}, {},
                        (SELECT min({}) FROM {BLACKLISTED} b WHERE b.token_id = o.id)
                 FROM {OUTSTANDING} o WHERE NOT ({} <= $1) ORDER BY o.id",
                millis("o.created_at"),
                millis("o.expires_at"),
                millis("b.blacklisted_at"),
                millis("o.expires_at"),
            );
            let mut live = Vec::new();
            for r in tx.query(&sql, &[&now_ms]).await.map_err(query_err)? {
                let f = [0, 1, 2, 3, 4, 5].map(|i| field(&r, i, i >= 3));
                match token_from(f) {
                    Ok(t) => live.push(t),
                    Err(bad) => data.bad_rows.push(bad),
                }
            }
            data.tokens = Some(DjangoTokens { live, expired: u64::try_from(expired).unwrap_or(0) });
        }
        tx.commit().await.map_err(query_err)?;
        Ok(data)
    }

    fn millis(column: &str) -> String {
        format!("(floor(extract(epoch from {column}) * 1000))::bigint")
    }

    /// Column `i` of `r`; `is_time` when the query turned a date into epoch milliseconds.
    fn field(r: &Row, i: usize, is_time: bool) -> Field {
        match r.columns().get(i).map(|c| c.type_().clone()) {
            Some(Type::INT8) => match r.try_get::<_, Option<i64>>(i) {
                Ok(Some(n)) if is_time => Field::Millis(n),
                Ok(Some(n)) => Field::Int(n),
                Ok(None) => Field::Null,
                Err(_) => Field::Other,
            },
            Some(Type::BOOL) => match r.try_get::<_, Option<bool>>(i) {
                Ok(Some(b)) => Field::Int(i64::from(b)),
                Ok(None) => Field::Null,
                Err(_) => Field::Other,
            },
            Some(Type::TEXT) => match r.try_get::<_, Option<String>>(i) {
                Ok(Some(s)) => Field::Text(s),
                Ok(None) => Field::Null,
                Err(_) => Field::Other,
            },
            _ => Field::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_sqlite_datetimes_parse_as_utc() {
        let at = |s| parse_datetime(s).map(Instant::millis);
        assert_eq!(at("2026-11-26 14:16:20.123456"), Some(1_795_702_580_123));
        assert_eq!(at("2026-11-26 14:16:20"), Some(1_795_702_580_000));
        assert_eq!(at("2026-11-26T14:16:20Z"), Some(1_795_702_580_000));
        assert_eq!(at("2026-11-26 16:16:20+02:00"), Some(1_795_702_580_000));
        assert_eq!(at("2026-11-26 12:16:20.5-02:00"), Some(1_795_702_580_500));
        for bad in ["", "2026-11-26", "yesterday", "2026-13-01 00:00:00", "2026-11-26 25:00:00"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
        assert_eq!(sqlite_text(Instant::from_millis(1_795_702_580_999)), "2026-11-26 14:16:20");
    }

    #[test]
    fn urls_and_table_names() {
        assert!(
            matches!(DjangoUrl::parse("sqlite:///srv/db.sqlite3"), Ok(DjangoUrl::Sqlite(p)) if p == std::path::Path::new("/srv/db.sqlite3"))
        );
        assert!(matches!(DjangoUrl::parse("postgresql://u:p@db/app"), Ok(DjangoUrl::Postgres(_))));
        let err = DjangoUrl::parse("mysql://root:hunter2@db/app").err().unwrap();
        assert!(!err.contains("hunter2"));
        assert!(DjangoUrl::parse("sqlite://").is_err());
        assert!(is_identifier("auth_user") && is_identifier("accounts_User2"));
        assert!(!is_identifier("") && !is_identifier("users; DROP TABLE x") && !is_identifier("a\"b"));
    }

    /// The tables as Django 5.2 and SimpleJWT 5.5 create them in PostgreSQL (`manage.py migrate`).
    const POSTGRES_SCHEMA: &str = r#"
        CREATE TABLE auth_user (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            password varchar(128) NOT NULL, last_login timestamp with time zone, is_superuser boolean NOT NULL,
            username varchar(150) NOT NULL UNIQUE, first_name varchar(150) NOT NULL,
            last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff boolean NOT NULL,
            is_active boolean NOT NULL, date_joined timestamp with time zone NOT NULL);
        CREATE TABLE token_blacklist_outstandingtoken (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            token text NOT NULL, created_at timestamp with time zone, expires_at timestamp with time zone NOT NULL,
            user_id integer REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
            jti varchar(255) NOT NULL UNIQUE);
        CREATE TABLE token_blacklist_blacklistedtoken (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            blacklisted_at timestamp with time zone NOT NULL,
            token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken (id)
            DEFERRABLE INITIALLY DEFERRED);
        INSERT INTO auth_user VALUES
            (4, 'pbkdf2_sha256$1000$salt$hash', NULL, false, 'ada', '', '', 'ada@example.com', false, true,
             '2026-11-01 09:30:00.25+00'),
            (9, '!unusable', '2026-11-26 14:00:00+00', false, 'bob', '', '', '', false, false,
             '2026-11-02 00:00:00+00');
        INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti) VALUES
            (1, 't', '2026-11-26 14:00:00.5+00', '2026-12-03 14:00:00+00', 4, 'aaaa'),
            (2, 't', '2026-11-26 14:00:00+00', '2026-12-03 14:00:00+00', 4, 'bbbb'),
            (3, 't', '2026-11-10 14:00:00+00', '2026-11-17 14:00:00+00', 4, 'cccc'),
            (4, 't', NULL, '2026-12-03 14:00:00+00', NULL, 'dddd');
        INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES ('2026-11-26 14:10:00+00', 2);
    "#;

    /// Runs when JWTD_TEST_DATABASE_URL names a PostgreSQL server (it creates and drops a
    /// database there); passes without running otherwise.
    #[tokio::test]
    async fn reads_a_django_postgres_database() {
        let Some(admin_url) = std::env::var("JWTD_TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) else {
            return;
        };
        let connect = |url: String| async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client
        };
        let admin = connect(admin_url.clone()).await;
        let name = format!("jwtd_django_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let base = admin_url.split('?').next().unwrap().rsplit_once('/').unwrap().0;
        let url = format!("{base}/{name}");
        connect(url.clone()).await.batch_execute(POSTGRES_SCHEMA).await.unwrap();

        let now = parse_datetime("2026-11-26 14:16:20").unwrap();
        let options =
            ReadOptions { user_table: DEFAULT_USER_TABLE.into(), users_only: false, now, tls: Default::default() };
        let data = read(&DjangoUrl::Postgres(url.clone()), &options).await;
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        let data = data.unwrap();

        assert!(data.bad_rows.is_empty());
        let users: Vec<_> =
            data.users.iter().map(|u| (u.id, u.username.as_str(), u.email.as_str(), u.is_active)).collect();
        assert_eq!(users, [(4, "ada", "ada@example.com", true), (9, "bob", "", false)]);
        assert_eq!(data.users[0].date_joined, parse_datetime("2026-11-01 09:30:00.25").unwrap());
        assert_eq!((data.users[0].last_login, data.users[1].last_login), (None, parse_datetime("2026-11-26 14:00:00")));
        let tokens = data.tokens.unwrap();
        assert_eq!(tokens.expired, 1);
        let live: Vec<_> = tokens.live.iter().map(|t| (t.row_id, t.jti.as_str(), t.user_id)).collect();
        assert_eq!(live, [(1, "aaaa", Some(4)), (2, "bbbb", Some(4)), (4, "dddd", None)]);
        assert_eq!(tokens.live[0].created_at, parse_datetime("2026-11-26 14:00:00.5"));
        assert_eq!(tokens.live[0].expires_at, parse_datetime("2026-12-03 14:00:00").unwrap());
        assert_eq!(tokens.live[0].blacklisted_at, None);
        assert_eq!(tokens.live[1].blacklisted_at, parse_datetime("2026-11-26 14:10:00"));
        assert_eq!(tokens.live[2].created_at, None);
    }
}
