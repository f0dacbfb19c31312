//! Reading a Django database for `jwtd import-django` (SPEC §6): the user table (`auth_user`
//! unless a custom user model names another), its groups (`auth_group` and the user model's
//! many-to-many table) and SimpleJWT's `token_blacklist_outstandingtoken` and
//! `token_blacklist_blacklistedtoken`, from an SQLite file or a PostgreSQL server.
//!
//! Read-only, in one snapshot (one read transaction from [`DjangoSource::open`] to
//! [`DjangoSource::close`]), in batches: users by keyset pagination on their id, each batch with
//! the tokens and group memberships of the ids it covers, so memory holds one batch, never the
//! table. Knows Django's schema and nothing of jwtd's: which user columns a custom model has is
//! detected, UUID keys (SQLite: 32 hex digits; PostgreSQL: `uuid`) come back as Django's
//! `str(uuid)`. Rows that cannot be read (a NULL where Django never writes one, a date it cannot
//! parse) come back as [`BadRow`]s instead of failing the read; what to import is
//! `service::import`'s decision.

use std::collections::HashMap;
use std::path::PathBuf;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::clock::Instant;
use crate::config::IdType;
use crate::store::{ImportUser, Profile, SourceId};

pub const DEFAULT_USER_TABLE: &str = "auth_user";
/// Users per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: u32 = 1000;
const OUTSTANDING: &str = "token_blacklist_outstandingtoken";
const BLACKLISTED: &str = "token_blacklist_blacklistedtoken";
const GROUPS: &str = "auth_group";
/// Django's own user model's many-to-many table to groups.
const AUTH_USER_GROUPS: &str = "auth_user_groups";
const OUTSTANDING_COLUMNS: [&str; 5] = ["id", "jti", "user_id", "created_at", "expires_at"];
const BLACKLISTED_COLUMNS: [&str; 2] = ["token_id", "blacklisted_at"];
/// Tokens whose expiry is more than this before now are counted in SQL, not read. Wider than
/// any UTC offset, so that the coarse text comparison SQLite makes never leaves out a live one.
const EXPIRED_MARGIN_MS: i64 = 86_400_000;

/// A column of the user table and what a model without it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserColumn {
    Username,
    Email,
    FirstName,
    LastName,
    IsActive,
    IsStaff,
    IsSuperuser,
    DateJoined,
    LastLogin,
}

impl UserColumn {
    /// Read in this order, after `id` and `password`.
    pub const ALL: [UserColumn; 9] = [
        UserColumn::Username,
        UserColumn::Email,
        UserColumn::FirstName,
        UserColumn::LastName,
        UserColumn::IsActive,
        UserColumn::IsStaff,
        UserColumn::IsSuperuser,
        UserColumn::DateJoined,
        UserColumn::LastLogin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UserColumn::Username => "username",
            UserColumn::Email => "email",
            UserColumn::FirstName => "first_name",
            UserColumn::LastName => "last_name",
            UserColumn::IsActive => "is_active",
            UserColumn::IsStaff => "is_staff",
            UserColumn::IsSuperuser => "is_superuser",
            UserColumn::DateJoined => "date_joined",
            UserColumn::LastLogin => "last_login",
        }
    }

    /// The value of a model without this column, as SQL: blank text, active (AbstractBaseUser's
    /// `is_active = True`), no staff flags, no dates.
    fn default_sql(self, postgres: bool) -> &'static str {
        match (self, postgres) {
            (UserColumn::Username | UserColumn::Email | UserColumn::FirstName | UserColumn::LastName, false) => "''",
            (UserColumn::Username | UserColumn::Email | UserColumn::FirstName | UserColumn::LastName, true) => {
                "''::text"
            }
            (UserColumn::IsActive, false) => "1",
            (UserColumn::IsActive, true) => "true",
            (UserColumn::IsStaff | UserColumn::IsSuperuser, false) => "0",
            (UserColumn::IsStaff | UserColumn::IsSuperuser, true) => "false",
            (UserColumn::DateJoined | UserColumn::LastLogin, false) => "NULL",
            (UserColumn::DateJoined | UserColumn::LastLogin, true) => "NULL::bigint",
        }
    }

    fn is_time(self) -> bool {
        matches!(self, UserColumn::DateJoined | UserColumn::LastLogin)
    }
}

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
    /// Users per batch (at least 1).
    pub batch_size: usize,
    /// TLS to a PostgreSQL source: the URL's `sslmode`, DATABASE_CA_CERT.
    pub tls: super::pg_tls::PgTls,
}

/// What the source is, found when it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub user_table: String,
    pub id_type: IdType,
    /// Optional user columns the table lacks (a custom model's), given their defaults.
    pub absent: Vec<UserColumn>,
    pub users: u64,
    /// Whether the token tables are read (not with `--users-only`).
    pub tokens: bool,
    /// Outstanding rows already expired (left out).
    pub expired_tokens: u64,
    /// Every group name of `auth_group`, when the project has groups.
    pub groups: Vec<String>,
    /// The many-to-many table memberships are read from.
    pub memberships_table: Option<String>,
}

/// A row of `token_blacklist_outstandingtoken`, with its blacklisting if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoToken {
    /// The outstanding row's own id, for reports (never the token).
    pub row_id: i64,
    pub jti: String,
    /// NULL once Django deleted the user (`on_delete=SET_NULL`).
    pub user_id: Option<SourceId>,
    /// NULL in rows older than SimpleJWT 4.
    pub created_at: Option<Instant>,
    pub expires_at: Instant,
    pub blacklisted_at: Option<Instant>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub table: String,
    /// The row's id as the table has it, when it could be read.
    pub row_id: Option<String>,
    pub reason: String,
}

/// One batch of users, with the live tokens and group memberships of the ids it covers: those
/// above the previous batch's last id up to its own last id (the last batch: every id above, and
/// the tokens whose user Django deleted), so every token is in exactly one batch.
#[derive(Default)]
pub struct Batch {
    /// Ordered by id.
    pub users: Vec<ImportUser>,
    /// Live tokens, oldest row first.
    pub tokens: Vec<DjangoToken>,
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
    #[error("table {table} has neither a username nor an email column: jwtd signs users in by one of them")]
    NoLoginColumn { table: String },
    #[error("column {table}.id is {declared}: jwtd imports integer and UUID primary keys")]
    IdType { table: String, declared: String },
    #[error("reading the Django database failed")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn query_err(e: impl std::error::Error + Send + Sync + 'static) -> ReadError {
    ReadError::Query(Box::new(e))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// Django's `str(uuid)` of a UUID in any of the forms Django stores or prints: 32 hex digits
/// (its SQLite `char(32)`), hyphenated (PostgreSQL's `uuid`), upper or lower case, braced.
pub fn normalize_uuid(s: &str) -> Option<String> {
    uuid::Uuid::try_parse(s.trim()).ok().map(|u| u.hyphenated().to_string())
}

/// Django's `BaseUserManager.normalize_email`: surrounding blanks dropped, the domain lowercased.
pub fn normalize_email(s: &str) -> String {
    let s = s.trim();
    match s.rsplit_once('@') {
        Some((name, domain)) => format!("{name}@{}", domain.to_lowercase()),
        None => s.to_string(),
    }
}

/// The id type of a column Django declared as `declared` (SQLite's declared type, PostgreSQL's
/// `data_type`).
pub fn id_type_of(declared: &str) -> Option<IdType> {
    let d = declared.to_ascii_lowercase();
    if d.contains("int") || d == "serial" || d == "bigserial" {
        Some(IdType::Int)
    } else if d == "uuid" || d.replace(' ', "") == "char(32)" {
        Some(IdType::Uuid)
    } else {
        None
    }
}

/// A table's columns as (name, declared type); none for a table that is not there.
type Columns = Vec<(String, String)>;

/// The schema as detected: what to read, and how.
#[derive(Debug, Clone)]
struct Schema {
    user_table: String,
    id_type: IdType,
    present: Vec<UserColumn>,
    tokens: bool,
    /// `auth_group` exists.
    groups: bool,
    memberships: Option<String>,
}

impl Schema {
    /// From the columns of each table (`columns_of` gives (name, declared type) pairs, none for a
    /// table that is not there).
    fn detect(
        options: &ReadOptions,
        columns_of: &mut dyn FnMut(&str) -> Result<Columns, ReadError>,
    ) -> Result<Schema, ReadError> {
        let table = &options.user_table;
        let user_columns = columns_of(table)?;
        if user_columns.is_empty() {
            return Err(ReadError::NoUserTable(table.clone()));
        }
        let names: Vec<String> = user_columns.iter().map(|(n, _)| n.clone()).collect();
        require_columns(table, &names, &["id", "password"])?;
        let declared = user_columns.iter().find(|(n, _)| n == "id").map(|(_, t)| t.clone()).unwrap_or_default();
        let id_type = id_type_of(&declared)
            .ok_or_else(|| ReadError::IdType { table: table.clone(), declared: declared.clone() })?;
        let present: Vec<UserColumn> =
            UserColumn::ALL.into_iter().filter(|c| names.iter().any(|n| n == c.name())).collect();
        if !present.contains(&UserColumn::Username) && !present.contains(&UserColumn::Email) {
            return Err(ReadError::NoLoginColumn { table: table.clone() });
        }
        let outstanding = names_of(columns_of(OUTSTANDING)?);
        let blacklisted = names_of(columns_of(BLACKLISTED)?);
        let tokens = match (outstanding.is_empty(), blacklisted.is_empty()) {
            _ if options.users_only => false,
            (true, _) | (_, true) => return Err(ReadError::NoTokenTables),
            _ => {
                require_columns(OUTSTANDING, &outstanding, &OUTSTANDING_COLUMNS)?;
                require_columns(BLACKLISTED, &blacklisted, &BLACKLISTED_COLUMNS)?;
                true
            }
        };
        let groups = {
            let g = names_of(columns_of(GROUPS)?);
            g.iter().any(|c| c == "id") && g.iter().any(|c| c == "name")
        };
        // The user model's own m2m table (`<table>_groups`), else Django's own user model's.
        let mut memberships = None;
        if groups {
            for m2m in [format!("{table}_groups"), AUTH_USER_GROUPS.to_string()] {
                let cols = names_of(columns_of(&m2m)?);
                if cols.iter().any(|c| c == "user_id") && cols.iter().any(|c| c == "group_id") {
                    memberships = Some(m2m);
                    break;
                }
            }
        }
        Ok(Schema { user_table: table.clone(), id_type, present, tokens, groups, memberships })
    }

    fn absent(&self) -> Vec<UserColumn> {
        UserColumn::ALL.into_iter().filter(|c| !self.present.contains(c)).collect()
    }

    /// The user columns' SELECT expressions, in [`UserColumn::ALL`] order after id and password.
    fn user_select(&self, postgres: bool) -> String {
        let mut parts = vec![
            if postgres { "id::text".to_string() } else { "id".to_string() },
            if postgres { "password::text".to_string() } else { "password".to_string() },
        ];
        for c in UserColumn::ALL {
            parts.push(match (self.present.contains(&c), postgres) {
                (false, _) => c.default_sql(postgres).to_string(),
                (true, false) => format!(r#""{}""#, c.name()),
                (true, true) if c.is_time() => millis(c.name()),
                (true, true) if matches!(c, UserColumn::IsActive | UserColumn::IsStaff | UserColumn::IsSuperuser) => {
                    format!("{}::boolean", c.name())
                }
                (true, true) => format!("{}::text", c.name()),
            });
        }
        parts.join(", ")
    }
}

fn names_of(columns: Vec<(String, String)>) -> Vec<String> {
    columns.into_iter().map(|(n, _)| n).collect()
}

fn require_columns(table: &str, have: &[String], want: &[&str]) -> Result<(), ReadError> {
    let missing: Vec<&str> = want.iter().copied().filter(|w| !have.iter().any(|h| h == w)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ReadError::MissingColumns { table: table.to_string(), columns: missing.join(", ") })
}

/// PostgreSQL: a time as epoch milliseconds, computed by the server (no date types cross the wire).
fn millis(column: &str) -> String {
    format!("(floor(extract(epoch from {column}) * 1000))::bigint")
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

fn bad(table: &str, row_id: Option<String>, reason: impl Into<String>) -> BadRow {
    BadRow { table: table.to_string(), row_id, reason: reason.into() }
}

/// An id of `id_type` as the column holds it (for a report when it cannot be read).
fn raw_id(f: &Field) -> Option<String> {
    match f {
        Field::Int(n) => Some(n.to_string()),
        Field::Text(s) => Some(s.chars().take(40).collect()),
        _ => None,
    }
}

fn source_id(id_type: IdType, f: &Field) -> Option<SourceId> {
    match id_type {
        IdType::Int => integer(f).map(SourceId::Int),
        IdType::Uuid => match f {
            Field::Text(s) => normalize_uuid(s).map(SourceId::Uuid),
            _ => None,
        },
    }
}

/// One user row from its eleven fields: id, password, then [`UserColumn::ALL`]; a model without
/// `date_joined` joined `now`.
fn user_from(table: &str, id_type: IdType, f: [Field; 11], now: Instant) -> Result<ImportUser, BadRow> {
    let [id, password, username, email, first_name, last_name, is_active, is_staff, is_superuser, date_joined, last_login] =
        f;
    let Some(source) = source_id(id_type, &id) else {
        let what = match id_type {
            IdType::Int => "an integer",
            IdType::Uuid => "a UUID",
        };
        return Err(bad(table, raw_id(&id), format!("id is not {what}")));
    };
    let row = Some(match &source {
        SourceId::Int(n) => n.to_string(),
        SourceId::Uuid(u) => u.clone(),
    });
    let fail = |reason: String| bad(table, row.clone(), reason);
    let text = |f: Field, name: &str| match f {
        Field::Text(s) => Ok(s),
        Field::Null => Ok(String::new()),
        _ => Err(fail(format!("{name} is not text"))),
    };
    let flag = |f: Field, name: &str| match f {
        Field::Int(n) => Ok(n != 0),
        _ => Err(fail(format!("{name} is not a boolean"))),
    };
    let password = match password {
        Field::Text(s) => s,
        _ => return Err(fail("password is not text".into())),
    };
    let date = |f: Field, name: &str| match f {
        Field::Null => Ok(None),
        other => instant(other).map(Some).ok_or_else(|| fail(format!("{name} is not a date"))),
    };
    let profile = Profile {
        username: text(username, "username")?,
        email: normalize_email(&text(email, "email")?),
        first_name: text(first_name, "first_name")?,
        last_name: text(last_name, "last_name")?,
        is_active: flag(is_active, "is_active")?,
        is_staff: flag(is_staff, "is_staff")?,
        is_superuser: flag(is_superuser, "is_superuser")?,
        date_joined: date(date_joined, "date_joined")?.unwrap_or(now),
        last_login: date(last_login, "last_login")?,
    };
    Ok(ImportUser { id: source, password, profile, groups: Vec::new(), tokens: Vec::new() })
}

/// One token row from its six fields: id, jti, user_id, created_at, expires_at, blacklisted_at.
fn token_from(id_type: IdType, f: [Field; 6]) -> Result<DjangoToken, BadRow> {
    let [row_id, jti, user_id, created_at, expires_at, blacklisted_at] = f;
    let Field::Int(row_id) = row_id else {
        return Err(bad(OUTSTANDING, raw_id(&row_id), "id is not an integer"));
    };
    let fail = |reason: &str| bad(OUTSTANDING, Some(row_id.to_string()), reason);
    let jti = match jti {
        Field::Text(s) => s,
        _ => return Err(fail("jti is not text")),
    };
    let user_id = match user_id {
        Field::Null => None,
        other => Some(source_id(id_type, &other).ok_or_else(|| fail("user_id is not a user id"))?),
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

/// An integer, or text holding one (PostgreSQL's ids are read as text).
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

/// Puts the memberships `(user id, group name)` of a batch on its users.
fn attach_groups(users: &mut [ImportUser], memberships: Vec<(SourceId, String)>) {
    let mut by_user: HashMap<SourceId, Vec<String>> = HashMap::new();
    for (id, name) in memberships {
        by_user.entry(id).or_default().push(name);
    }
    for user in users {
        if let Some(mut names) = by_user.remove(&user.id) {
            names.sort();
            names.dedup();
            user.groups = names;
        }
    }
}

/// Where the next batch starts: after the last id read, `K` as the driver holds it (SQLite: the
/// column's value; PostgreSQL: its text, cast back to the column's type).
enum Cursor<K> {
    Start,
    After(K),
    Done,
}

impl<K: Clone> Cursor<K> {
    /// The key the next batch starts after (`Some(None)`: the first batch); `None` once every
    /// batch was read.
    fn next(&self) -> Option<Option<K>> {
        match self {
            Cursor::Start => Some(None),
            Cursor::After(key) => Some(Some(key.clone())),
            Cursor::Done => None,
        }
    }

    /// The cursor after a batch that returned `more` (the key to continue after a full page).
    fn after(more: Option<K>) -> Cursor<K> {
        more.map_or(Cursor::Done, Cursor::After)
    }
}

/// One batch to read: up to `limit` users with ids above `after` (all from the first when
/// `None`), and what their id range holds.
struct Page<K> {
    schema: Schema,
    after: Option<K>,
    limit: usize,
    now: Instant,
}

impl<K> Page<K> {
    /// The key to continue after: the last id read when the page was full (a short one is the
    /// last, and its range runs to the end).
    fn upto(&self, read: usize, last: Option<K>) -> Option<K> {
        if read >= self.limit {
            last
        } else {
            None
        }
    }
}

impl Batch {
    /// Adds a user row from the fields of [`user_from`], or its [`BadRow`].
    fn add_user(&mut self, schema: &Schema, f: [Field; 11], now: Instant) {
        match user_from(&schema.user_table, schema.id_type, f, now) {
            Ok(user) => self.users.push(user),
            Err(bad) => self.bad_rows.push(bad),
        }
    }

    /// Adds a token row from the fields of [`token_from`] unless it expired by `now` (a row
    /// within the SQLite query's margin: read, then found expired here), or its [`BadRow`].
    fn add_token(&mut self, schema: &Schema, f: [Field; 6], now: Instant) {
        match token_from(schema.id_type, f) {
            Ok(t) if t.expires_at <= now => {}
            Ok(t) => self.tokens.push(t),
            Err(bad) => self.bad_rows.push(bad),
        }
    }

    /// Puts the memberships `(user id, group name)` read for the batch's id range on its users;
    /// a row whose user id or name cannot be read is passed over.
    fn add_memberships(&mut self, schema: &Schema, rows: Vec<(Field, Option<String>)>) {
        let memberships =
            rows.into_iter().filter_map(|(id, name)| Some((source_id(schema.id_type, &id)?, name?))).collect();
        attach_groups(&mut self.users, memberships);
    }
}

/// The bounds of a batch's token rows as SQL: its id range, and for the last batch (no `upto`)
/// the tokens whose user Django deleted too.
fn tokens_range_sql(after: bool, upto: bool, p: (&str, &str)) -> String {
    let in_range = range_sql("o.user_id", after, upto, p);
    if upto {
        in_range
    } else {
        format!("({in_range} OR o.user_id IS NULL)")
    }
}

/// An open Django database, read batch by batch inside one read transaction.
pub struct DjangoSource {
    info: SourceInfo,
    schema: Schema,
    backend: Backend,
    batch_size: usize,
    now: Instant,
}

enum Backend {
    Sqlite {
        /// `None` only while a batch is read on a blocking thread.
        conn: Option<Connection>,
        cursor: Cursor<Value>,
    },
    Postgres {
        client: tokio_postgres::Client,
        driver: tokio::task::JoinHandle<()>,
        cursor: Cursor<String>,
    },
}

impl DjangoSource {
    /// Opens the Django database at `url` read-only, starts its snapshot, and detects its schema.
    pub async fn open(url: &DjangoUrl, options: &ReadOptions) -> Result<DjangoSource, ReadError> {
        if !is_identifier(&options.user_table) {
            return Err(ReadError::Url(format!(
                "--user-table: {:?} is not a table name (letters, digits and _ only)",
                options.user_table
            )));
        }
        let batch_size = options.batch_size.max(1);
        let (backend, schema, info) = match url {
            DjangoUrl::Sqlite(path) => {
                let (path, options) = (path.clone(), options.clone());
                let (conn, schema, info) =
                    tokio::task::spawn_blocking(move || sqlite::open(&path, &options)).await.map_err(query_err)??;
                (Backend::Sqlite { conn: Some(conn), cursor: Cursor::Start }, schema, info)
            }
            DjangoUrl::Postgres(url) => {
                let (client, driver, schema, info) = postgres::open(url, options).await?;
                (Backend::Postgres { client, driver, cursor: Cursor::Start }, schema, info)
            }
        };
        Ok(DjangoSource { info, schema, backend, batch_size, now: options.now })
    }

    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// The next batch, or `None` once every user and token was read.
    pub async fn next_batch(&mut self) -> Result<Option<Batch>, ReadError> {
        let (schema, limit, now) = (&self.schema, self.batch_size, self.now);
        match &mut self.backend {
            Backend::Sqlite { conn: slot, cursor } => {
                let Some(after) = cursor.next() else { return Ok(None) };
                let page = Page { schema: schema.clone(), after, limit, now };
                let conn = slot.take().ok_or_else(|| ReadError::Query("the Django database is closed".into()))?;
                let (conn, result) = tokio::task::spawn_blocking(move || {
                    let result = sqlite::batch(&conn, &page);
                    (conn, result)
                })
                .await
                .map_err(query_err)?;
                *slot = Some(conn);
                let (batch, more) = result?;
                *cursor = Cursor::after(more);
                Ok(Some(batch))
            }
            Backend::Postgres { client, cursor, .. } => {
                let Some(after) = cursor.next() else { return Ok(None) };
                let page = Page { schema: schema.clone(), after, limit, now };
                let (batch, more) = postgres::batch(client, &page).await?;
                *cursor = Cursor::after(more);
                Ok(Some(batch))
            }
        }
    }

    /// Ends the snapshot.
    pub async fn close(self) {
        match self.backend {
            Backend::Sqlite { conn: Some(conn), .. } => {
                let _ = tokio::task::spawn_blocking(move || conn.execute_batch("COMMIT")).await;
            }
            Backend::Sqlite { conn: None, .. } => {}
            Backend::Postgres { client, driver, .. } => {
                let _ = client.batch_execute("COMMIT").await;
                drop(client);
                let _ = driver.await;
            }
        }
    }
}

/// The bounds of a batch's id range as SQL: `column > after` (none for the first batch) and
/// `column <= last` (none for the last); `p` names the parameters.
fn range_sql(column: &str, after: bool, upto: bool, p: (&str, &str)) -> String {
    let mut parts = Vec::new();
    if after {
        parts.push(format!("{column} > {}", p.0));
    }
    if upto {
        parts.push(format!("{column} <= {}", p.1));
    }
    if parts.is_empty() {
        "true".to_string()
    } else {
        parts.join(" AND ")
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
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(at.secs())
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "0000-01-01 00:00:00".to_string())
}

mod sqlite {
    use rusqlite::ToSql;

    use super::*;

    pub(super) fn open(
        path: &std::path::Path,
        options: &ReadOptions,
    ) -> Result<(Connection, Schema, SourceInfo), ReadError> {
        if !path.is_file() {
            return Err(ReadError::Open(format!("no such file: {}", path.display()).into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| ReadError::Open(Box::new(e)))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(query_err)?;
        // One read transaction until `close`: every batch from the same snapshot.
        conn.execute_batch("BEGIN").map_err(query_err)?;
        let schema = Schema::detect(options, &mut |table| columns(&conn, table))?;
        let info = info(&conn, &schema, options.now).map_err(query_err)?;
        Ok((conn, schema, info))
    }

    fn columns(conn: &Connection, table: &str) -> Result<Vec<(String, String)>, ReadError> {
        let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_info(?1)").map_err(query_err)?;
        let rows =
            stmt.query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(query_err)?;
        rows.collect::<Result<_, _>>().map_err(query_err)
    }

    fn cutoff(now: Instant) -> String {
        // The text comparison is coarse (Django writes UTC without an offset), hence the margin.
        sqlite_text(Instant::from_millis(now.millis().saturating_sub(EXPIRED_MARGIN_MS)))
    }

    fn info(conn: &Connection, schema: &Schema, now: Instant) -> rusqlite::Result<SourceInfo> {
        // rusqlite reads no unsigned integers (they could overflow i64); a count is never negative.
        let users: i64 =
            conn.query_row(&format!(r#"SELECT count(*) FROM "{}""#, schema.user_table), [], |r| r.get(0))?;
        let users = u64::try_from(users).unwrap_or(0);
        // Expired rows can be most of the table: count them in SQL and read only the rest.
        let expired_tokens: i64 = if schema.tokens {
            conn.query_row(&format!("SELECT count(*) FROM {OUTSTANDING} WHERE expires_at <= ?1"), [cutoff(now)], |r| {
                r.get(0)
            })?
        } else {
            0
        };
        let expired_tokens = u64::try_from(expired_tokens).unwrap_or(0);
        let groups = if schema.groups {
            let mut stmt = conn.prepare(&format!("SELECT name FROM {GROUPS} ORDER BY name"))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(SourceInfo {
            user_table: schema.user_table.clone(),
            id_type: schema.id_type,
            absent: schema.absent(),
            users,
            tokens: schema.tokens,
            expired_tokens,
            groups,
            memberships_table: schema.memberships.clone(),
        })
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

    /// The batch `page` asks for; the key to continue after when the page was full.
    pub(super) fn batch(conn: &Connection, page: &Page<Value>) -> Result<(Batch, Option<Value>), ReadError> {
        let Page { schema, after, now, .. } = page;
        let mut batch = Batch::default();
        let sql = format!(
            r#"SELECT {} FROM "{}" WHERE {} ORDER BY id LIMIT :limit"#,
            schema.user_select(false),
            schema.user_table,
            range_sql("id", after.is_some(), false, (":after", ""))
        );
        let limit_param = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit_param)];
        if let Some(a) = after {
            params.push((":after", a));
        }
        let mut stmt = conn.prepare(&sql).map_err(query_err)?;
        let mut rows = stmt.query(&*params).map_err(query_err)?;
        let (mut read, mut last) = (0, None);
        while let Some(r) = rows.next().map_err(query_err)? {
            read += 1;
            last = Some(r.get::<_, Value>(0).map_err(query_err)?);
            batch.add_user(schema, std::array::from_fn(|i| r.get_ref(i).map(field).unwrap_or(Field::Other)), *now);
        }
        drop(rows);
        let upto = page.upto(read, last);
        let mut range: Vec<(&str, &dyn ToSql)> = Vec::new();
        if let Some(a) = after {
            range.push((":after", a));
        }
        if let Some(u) = &upto {
            range.push((":upto", u));
        }
        if let Some(m2m) = &schema.memberships {
            let sql = format!(
                r#"SELECT ug.user_id, g.name FROM "{m2m}" ug JOIN {GROUPS} g ON g.id = ug.group_id WHERE {}"#,
                range_sql("ug.user_id", after.is_some(), upto.is_some(), (":after", ":upto"))
            );
            let mut stmt = conn.prepare(&sql).map_err(query_err)?;
            let mut rows = stmt.query(&*range).map_err(query_err)?;
            let mut memberships = Vec::new();
            while let Some(r) = rows.next().map_err(query_err)? {
                memberships.push((r.get_ref(0).map(field).unwrap_or(Field::Other), r.get::<_, String>(1).ok()));
            }
            batch.add_memberships(schema, memberships);
        }
        if schema.tokens {
            let cutoff = cutoff(*now);
            let in_range = tokens_range_sql(after.is_some(), upto.is_some(), (":after", ":upto"));
            let sql = format!(
                "SELECT o.id, o.jti, o.user_id, o.created_at, o.expires_at,
                        (SELECT min(b.blacklisted_at) FROM {BLACKLISTED} b WHERE b.token_id = o.id)
                 FROM {OUTSTANDING} o
                 WHERE (o.expires_at IS NULL OR NOT (o.expires_at <= :cutoff)) AND {in_range} ORDER BY o.id"
            );
            let mut params = range;
            params.push((":cutoff", &cutoff));
            let mut stmt = conn.prepare(&sql).map_err(query_err)?;
            let mut rows = stmt.query(&*params).map_err(query_err)?;
            while let Some(r) = rows.next().map_err(query_err)? {
                batch.add_token(schema, std::array::from_fn(|i| r.get_ref(i).map(field).unwrap_or(Field::Other)), *now);
            }
        }
        Ok((batch, upto))
    }
}

mod postgres {
    use tokio_postgres::types::{ToSql, Type};
    use tokio_postgres::{Client, Row};

    use super::*;
    use crate::store::pg_tls::TlsOr;

    type Opened = (Client, tokio::task::JoinHandle<()>, Schema, SourceInfo);

    pub(super) async fn open(url: &str, options: &ReadOptions) -> Result<Opened, ReadError> {
        let prepared = options.tls.prepare(url).map_err(|e| ReadError::Open(e.into()))?;
        let (mode, tls) = (prepared.mode, prepared.tls);
        let (client, connection) = prepared.config.connect(prepared.connector).await.map_err(|e| {
            ReadError::Open(match tls.explain(mode, Box::new(e)) {
                TlsOr::Tls(refused) => Box::new(refused),
                TlsOr::Other(e) => e,
            })
        })?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        match start(&client, options).await {
            Ok((schema, info)) => Ok((client, driver, schema, info)),
            Err(e) => {
                drop(client);
                let _ = driver.await;
                Err(e)
            }
        }
    }

    async fn start(client: &Client, options: &ReadOptions) -> Result<(Schema, SourceInfo), ReadError> {
        // One read-only snapshot until `close`: every batch sees the same database.
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(query_err)?;
        let mut columns = HashMap::new();
        let table = options.user_table.as_str();
        let m2m = format!("{table}_groups");
        for name in [table, OUTSTANDING, BLACKLISTED, GROUPS, m2m.as_str(), AUTH_USER_GROUPS] {
            let rows = client
                .query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1",
                    &[&name],
                )
                .await
                .map_err(query_err)?;
            columns.insert(
                name.to_string(),
                rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect::<Vec<_>>(),
            );
        }
        let schema = Schema::detect(options, &mut |t| Ok(columns.get(t).cloned().unwrap_or_default()))?;
        let users: i64 =
            client.query_one(&format!(r#"SELECT count(*) FROM "{table}""#), &[]).await.map_err(query_err)?.get(0);
        let expired_tokens: i64 = if schema.tokens {
            client
                .query_one(
                    &format!("SELECT count(*) FROM {OUTSTANDING} WHERE {} <= $1", millis("expires_at")),
                    &[&options.now.millis()],
                )
                .await
                .map_err(query_err)?
                .get(0)
        } else {
            0
        };
        let groups = if schema.groups {
            let rows = client
                .query(&format!("SELECT name::text FROM {GROUPS} ORDER BY name"), &[])
                .await
                .map_err(query_err)?;
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        } else {
            Vec::new()
        };
        let info = SourceInfo {
            user_table: schema.user_table.clone(),
            id_type: schema.id_type,
            absent: schema.absent(),
            users: u64::try_from(users).unwrap_or(0),
            tokens: schema.tokens,
            expired_tokens: u64::try_from(expired_tokens).unwrap_or(0),
            groups,
            memberships_table: schema.memberships.clone(),
        };
        Ok((schema, info))
    }

    /// A key as the id column's type.
    fn cast(schema: &Schema, param: &str) -> String {
        match schema.id_type {
            IdType::Int => format!("({param}::text)::bigint"),
            IdType::Uuid => format!("({param}::text)::uuid"),
        }
    }

    /// The batch `page` asks for; the key to continue after when the page was full.
    pub(super) async fn batch(client: &Client, page: &Page<String>) -> Result<(Batch, Option<String>), ReadError> {
        let Page { schema, after, now, .. } = page;
        let mut batch = Batch::default();
        let limit_param = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let sql = format!(
            r#"SELECT {} FROM "{}" WHERE {} ORDER BY id LIMIT $1"#,
            schema.user_select(true),
            schema.user_table,
            range_sql("id", after.is_some(), false, (&cast(schema, "$2"), ""))
        );
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&limit_param];
        if let Some(a) = after {
            params.push(a);
        }
        let rows = client.query(&sql, &params).await.map_err(query_err)?;
        let mut last = None;
        for r in &rows {
            last = r.try_get::<_, Option<String>>(0).ok().flatten();
            batch.add_user(schema, std::array::from_fn(|i| field(r, i, i >= 9)), *now);
        }
        let upto = page.upto(rows.len(), last);
        let mut range: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let (mut p_after, mut p_upto) = (String::new(), String::new());
        if let Some(a) = after {
            range.push(a);
            p_after = cast(schema, &format!("${}", range.len()));
        }
        if let Some(u) = &upto {
            range.push(u);
            p_upto = cast(schema, &format!("${}", range.len()));
        }
        if let Some(m2m) = &schema.memberships {
            let sql = format!(
                r#"SELECT ug.user_id::text, g.name::text FROM "{m2m}" ug JOIN {GROUPS} g ON g.id = ug.group_id
                   WHERE {}"#,
                range_sql("ug.user_id", after.is_some(), upto.is_some(), (&p_after, &p_upto))
            );
            let rows = client.query(&sql, &range).await.map_err(query_err)?;
            batch.add_memberships(schema, rows.iter().map(|r| (field(r, 0, false), r.try_get(1).ok())).collect());
        }
        if schema.tokens {
            let in_range = tokens_range_sql(after.is_some(), upto.is_some(), (&p_after, &p_upto));
            let now_ms = now.millis();
            let mut params = range;
            params.push(&now_ms);
            let sql = format!(
                "SELECT o.id::bigint, o.jti::text, o.user_id::text, {}, {},
                        (SELECT min({}) FROM {BLACKLISTED} b WHERE b.token_id = o.id)
                 FROM {OUTSTANDING} o WHERE NOT ({} <= ${}) AND {in_range} ORDER BY o.id",
                millis("o.created_at"),
                millis("o.expires_at"),
                millis("b.blacklisted_at"),
                millis("o.expires_at"),
                params.len(),
            );
            for r in client.query(&sql, &params).await.map_err(query_err)? {
                batch.add_token(schema, std::array::from_fn(|i| field(&r, i, i >= 3)), *now);
            }
        }
        Ok((batch, upto))
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

    /// Every batch of `url`, read with `options`.
    pub(crate) async fn read_all(
        url: &DjangoUrl,
        options: &ReadOptions,
    ) -> Result<(SourceInfo, Vec<Batch>), ReadError> {
        let mut source = DjangoSource::open(url, options).await?;
        let mut batches = Vec::new();
        while let Some(b) = source.next_batch().await? {
            batches.push(b);
        }
        let info = source.info().clone();
        source.close().await;
        Ok((info, batches))
    }

    fn all_users(batches: &[Batch]) -> Vec<&ImportUser> {
        batches.iter().flat_map(|b| &b.users).collect()
    }

    fn all_tokens(batches: &[Batch]) -> Vec<&DjangoToken> {
        batches.iter().flat_map(|b| &b.tokens).collect()
    }

    #[test]
    fn uuids_come_back_as_djangos_str_uuid() {
        let want = Some("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".to_string());
        assert_eq!(normalize_uuid("5f0c6d7e8a9b4c1d9e2f0a1b2c3d4e5f"), want, "Django's SQLite char(32)");
        assert_eq!(normalize_uuid("5F0C6D7E-8A9B-4C1D-9E2F-0A1B2C3D4E5F"), want);
        assert_eq!(normalize_uuid("{5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f}"), want);
        for bad in ["", "5f0c6d7e", "not-a-uuid-at-all-not-a-uuid-at-a", "5f0c6d7e8a9b4c1d9e2f0a1b2c3d4e5g"] {
            assert_eq!(normalize_uuid(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_email("  Ada.Lovelace@EXAMPLE.Com "), "Ada.Lovelace@example.com");
        assert_eq!(normalize_email("no-at-sign"), "no-at-sign");
        assert_eq!(normalize_email(""), "");
        for (declared, kind) in [
            ("integer", Some(IdType::Int)),
            ("bigint", Some(IdType::Int)),
            ("INTEGER", Some(IdType::Int)),
            ("char(32)", Some(IdType::Uuid)),
            ("uuid", Some(IdType::Uuid)),
            ("varchar(40)", None),
            ("text", None),
        ] {
            assert_eq!(id_type_of(declared), kind, "{declared}");
        }
    }

    fn columns(tables: &[(&str, &[(&str, &str)])]) -> impl FnMut(&str) -> Result<Vec<(String, String)>, ReadError> {
        let tables: HashMap<String, Vec<(String, String)>> = tables
            .iter()
            .map(|(t, cols)| (t.to_string(), cols.iter().map(|(n, d)| (n.to_string(), d.to_string())).collect()))
            .collect();
        move |t| Ok(tables.get(t).cloned().unwrap_or_default())
    }

    const TOKEN_TABLES: [(&str, &[(&str, &str)]); 2] = [
        (
            OUTSTANDING,
            &[
                ("id", "integer"),
                ("jti", "varchar"),
                ("user_id", "char(32)"),
                ("created_at", "datetime"),
                ("expires_at", "datetime"),
            ],
        ),
        (BLACKLISTED, &[("token_id", "bigint"), ("blacklisted_at", "datetime")]),
    ];

    #[test]
    fn the_columns_a_custom_user_model_has_are_detected() {
        let opts = ReadOptions {
            user_table: "accounts_user".into(),
            users_only: false,
            now: Instant::from_secs(0),
            batch_size: 10,
            tls: Default::default(),
        };
        // The reference's accounts.User: UUID key, e-mail sign-in, no username, no date_joined.
        let custom: &[(&str, &str)] = &[
            ("id", "char(32)"),
            ("password", "varchar(128)"),
            ("last_login", "datetime"),
            ("is_superuser", "bool"),
            ("email", "varchar(254)"),
            ("first_name", "varchar(150)"),
            ("last_name", "varchar(150)"),
            ("is_active", "bool"),
            ("is_staff", "bool"),
        ];
        let m2m: &[(&str, &str)] = &[("id", "integer"), ("user_id", "char(32)"), ("group_id", "integer")];
        let groups: &[(&str, &str)] = &[("id", "integer"), ("name", "varchar(150)")];
        let mut tables = vec![("accounts_user", custom), ("accounts_user_groups", m2m), (GROUPS, groups)];
        tables.extend(TOKEN_TABLES);
        let schema = Schema::detect(&opts, &mut columns(&tables)).unwrap();
        assert_eq!(schema.id_type, IdType::Uuid);
        assert_eq!(schema.absent(), [UserColumn::Username, UserColumn::DateJoined]);
        assert_eq!(schema.memberships.as_deref(), Some("accounts_user_groups"));
        assert!(schema.tokens && schema.groups);
        let select = schema.user_select(false);
        assert!(select.starts_with(r#"id, password, '', "email", "first_name""#), "{select}");
        assert!(schema.user_select(true).contains("''::text, email::text"), "{}", schema.user_select(true));

        // Memberships fall back to auth_user_groups; without auth_group there are none.
        let mut fallback = vec![("accounts_user", custom), (AUTH_USER_GROUPS, m2m), (GROUPS, groups)];
        fallback.extend(TOKEN_TABLES);
        assert_eq!(
            Schema::detect(&opts, &mut columns(&fallback)).unwrap().memberships.as_deref(),
            Some(AUTH_USER_GROUPS)
        );
        let mut no_groups = vec![("accounts_user", custom), ("accounts_user_groups", m2m)];
        no_groups.extend(TOKEN_TABLES);
        let schema = Schema::detect(&opts, &mut columns(&no_groups)).unwrap();
        assert!(!schema.groups && schema.memberships.is_none());

        let no_login: &[(&str, &str)] = &[("id", "integer"), ("password", "varchar(128)"), ("phone", "varchar(20)")];
        let err = Schema::detect(&opts, &mut columns(&[("accounts_user", no_login)])).unwrap_err();
        assert!(matches!(err, ReadError::NoLoginColumn { .. }), "{err}");
        let text_key: &[(&str, &str)] =
            &[("id", "varchar(40)"), ("password", "varchar(128)"), ("email", "varchar(254)")];
        let err = Schema::detect(&opts, &mut columns(&[("accounts_user", text_key)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column accounts_user.id is varchar(40): jwtd imports integer and UUID primary keys"
        );
        let no_password: &[(&str, &str)] = &[("id", "integer"), ("email", "varchar(254)")];
        let err = Schema::detect(&opts, &mut columns(&[("accounts_user", no_password)])).unwrap_err();
        assert_eq!(err.to_string(), "table accounts_user lacks the column(s) password");
    }

    /// An SQLite Django database of ids 1..=7 (int) with tokens in every gap and at both ends.
    fn batched_db(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("batches.sqlite3");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            r#"CREATE TABLE auth_user (id integer PRIMARY KEY, password varchar(128), username varchar(150),
                   email varchar(254), is_active bool, date_joined datetime, last_login datetime);
               CREATE TABLE auth_group (id integer PRIMARY KEY, name varchar(150));
               CREATE TABLE auth_user_groups (id integer PRIMARY KEY, user_id integer, group_id integer);
               CREATE TABLE token_blacklist_outstandingtoken (id integer PRIMARY KEY, jti varchar(255),
                   user_id integer, created_at datetime, expires_at datetime, token text);
               CREATE TABLE token_blacklist_blacklistedtoken (id integer PRIMARY KEY, token_id bigint,
                   blacklisted_at datetime);
               INSERT INTO auth_group VALUES (1, 'b-team'), (2, 'a-team');"#,
        )
        .unwrap();
        for id in [2, 3, 5, 6, 7, 9] {
            c.execute(
                "INSERT INTO auth_user VALUES (?1, 'pbkdf2_sha256$1$s$h', ?2, '', 1, '2026-11-01 00:00:00', NULL)",
                rusqlite::params![id, format!("u{id}")],
            )
            .unwrap();
        }
        c.execute_batch("INSERT INTO auth_user_groups (user_id, group_id) VALUES (3, 1), (3, 2), (7, 2), (9, 1)")
            .unwrap();
        // user 1 and 4 and 8 and 10 don't exist: tokens before, between and after the users.
        for (row, user) in [
            (1, Some(1)),
            (2, Some(2)),
            (3, Some(3)),
            (4, Some(4)),
            (5, Some(5)),
            (6, Some(8)),
            (7, Some(9)),
            (8, Some(10)),
            (9, None),
        ] {
            c.execute(
                "INSERT INTO token_blacklist_outstandingtoken (id, jti, user_id, created_at, expires_at, token)
                 VALUES (?1, ?2, ?3, '2026-11-26 14:00:00', '2026-12-03 14:00:00', 't')",
                rusqlite::params![row, format!("{row:032x}"), user],
            )
            .unwrap();
        }
        path
    }

    #[tokio::test]
    async fn batches_cover_every_user_and_token_once_whatever_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let url = DjangoUrl::Sqlite(batched_db(dir.path()));
        let now = parse_datetime("2026-11-26 14:16:20").unwrap();
        for size in [1, 2, 3, 5, 6, 7, 100] {
            let opts = ReadOptions {
                user_table: "auth_user".into(),
                users_only: false,
                now,
                batch_size: size,
                tls: Default::default(),
            };
            let (info, batches) = read_all(&url, &opts).await.unwrap();
            assert_eq!(info.users, 6);
            assert_eq!(info.absent.len(), 4, "first_name, last_name, is_staff, is_superuser absent");
            assert_eq!(info.groups, ["a-team", "b-team"]);
            assert!(batches.iter().all(|b| b.users.len() <= size), "size {size}");
            let ids: Vec<SourceId> = all_users(&batches).iter().map(|u| u.id.clone()).collect();
            assert_eq!(ids, [2, 3, 5, 6, 7, 9].map(SourceId::Int), "size {size}");
            let mut rows: Vec<i64> = all_tokens(&batches).iter().map(|t| t.row_id).collect();
            rows.sort();
            assert_eq!(rows, (1..=9).collect::<Vec<_>>(), "size {size}: every token once");
            // Each token comes with the batch whose id range holds its user: above the previous
            // batch's last id, up to its own (the last batch: everything above, and no user).
            let mut previous = i64::MIN;
            for (i, b) in batches.iter().enumerate() {
                let end = match b.users.last().map(|u| &u.id) {
                    Some(SourceId::Int(last)) if i + 1 < batches.len() => *last,
                    _ => i64::MAX,
                };
                for t in &b.tokens {
                    match t.user_id {
                        Some(SourceId::Int(u)) => assert!(previous < u && u <= end, "size {size}: {u} in batch {i}"),
                        _ => assert_eq!(i + 1, batches.len(), "size {size}: deleted users' tokens come last"),
                    }
                }
                previous = end;
            }
            let groups: Vec<(SourceId, Vec<String>)> = all_users(&batches)
                .iter()
                .filter(|u| !u.groups.is_empty())
                .map(|u| (u.id.clone(), u.groups.clone()))
                .collect();
            assert_eq!(
                groups,
                [
                    (SourceId::Int(3), vec!["a-team".to_string(), "b-team".to_string()]),
                    (SourceId::Int(7), vec!["a-team".to_string()]),
                    (SourceId::Int(9), vec!["b-team".to_string()]),
                ],
                "size {size}"
            );
        }
    }

    /// The tables of the reference's custom user model (UUID keys, e-mail sign-in, groups) as
    /// Django 5.2 creates them in PostgreSQL.
    const POSTGRES_CUSTOM: &str = r#"
        CREATE TABLE accounts_user (password varchar(128) NOT NULL, last_login timestamp with time zone,
            is_superuser boolean NOT NULL, id uuid NOT NULL PRIMARY KEY, email varchar(254) NOT NULL UNIQUE,
            first_name varchar(150) NOT NULL, last_name varchar(150) NOT NULL, is_staff boolean NOT NULL,
            is_active boolean NOT NULL, date_joined timestamp with time zone NOT NULL);
        CREATE TABLE auth_group (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name varchar(150) NOT NULL UNIQUE);
        CREATE TABLE accounts_user_groups (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            user_id uuid NOT NULL REFERENCES accounts_user (id), group_id integer NOT NULL REFERENCES auth_group (id));
        CREATE TABLE token_blacklist_outstandingtoken (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            token text NOT NULL, created_at timestamp with time zone, expires_at timestamp with time zone NOT NULL,
            user_id uuid REFERENCES accounts_user (id), jti varchar(255) NOT NULL UNIQUE);
        CREATE TABLE token_blacklist_blacklistedtoken (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            blacklisted_at timestamp with time zone NOT NULL,
            token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken (id));
        INSERT INTO accounts_user VALUES
            ('pbkdf2_sha256$1000$salt$hash', NULL, false, '5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f',
             'ada@example.com', 'Ada', '', true, true, '2026-11-01 09:30:00+00'),
            ('pbkdf2_sha256$1000$salt$hash', NULL, false, '0f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f',
             'bob@example.com', '', '', false, true, '2026-11-01 09:30:00+00');
        INSERT INTO auth_group (name) VALUES ('editors');
        INSERT INTO accounts_user_groups (user_id, group_id) VALUES ('5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f', 1);
        INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) VALUES
            ('t', '2026-11-26 14:00:00+00', '2026-12-03 14:00:00+00', '5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f', 'aaaa'),
            ('t', '2026-11-26 14:00:00+00', '2026-12-03 14:00:00+00', '0f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f', 'bbbb');
    "#;

    /// Every batch of a fresh PostgreSQL database holding `schema`, read one user at a time from
    /// its table `user_table` as at 2026-11-26 14:16:20, when JWTD_TEST_DATABASE_URL names a
    /// server (it creates the database there, and drops it after); `None` otherwise.
    async fn read_postgres(schema: &str, user_table: &str) -> Option<Result<(SourceInfo, Vec<Batch>), ReadError>> {
        let admin_url = std::env::var("JWTD_TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
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
        connect(url.clone()).await.batch_execute(schema).await.unwrap();
        let options = ReadOptions {
            user_table: user_table.into(),
            users_only: false,
            now: parse_datetime("2026-11-26 14:16:20").unwrap(),
            batch_size: 1,
            tls: Default::default(),
        };
        let data = read_all(&DjangoUrl::Postgres(url), &options).await;
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        Some(data)
    }

    /// Runs when JWTD_TEST_DATABASE_URL names a PostgreSQL server (it creates and drops a
    /// database there); passes without running otherwise.
    #[tokio::test]
    async fn reads_a_django_postgres_database() {
        let Some(data) = read_postgres(POSTGRES_SCHEMA, DEFAULT_USER_TABLE).await else {
            return;
        };
        let (info, batches) = data.unwrap();

        assert!(batches.iter().all(|b| b.bad_rows.is_empty()));
        assert_eq!((info.id_type, info.users, info.expired_tokens), (IdType::Int, 2, 1));
        let users: Vec<_> = all_users(&batches)
            .iter()
            .map(|u| (u.id.clone(), u.profile.username.clone(), u.profile.email.clone(), u.profile.is_active))
            .collect();
        assert_eq!(
            users,
            [
                (SourceId::Int(4), "ada".into(), "ada@example.com".into(), true),
                (SourceId::Int(9), "bob".into(), String::new(), false)
            ]
        );
        let ada = all_users(&batches)[0];
        assert_eq!(Some(ada.profile.date_joined), parse_datetime("2026-11-01 09:30:00.25"));
        assert_eq!(
            (ada.profile.last_login, all_users(&batches)[1].profile.last_login),
            (None, parse_datetime("2026-11-26 14:00:00"))
        );
        let tokens = all_tokens(&batches);
        let live: Vec<_> = tokens.iter().map(|t| (t.row_id, t.jti.as_str(), t.user_id.clone())).collect();
        assert_eq!(live, [(1, "aaaa", Some(SourceId::Int(4))), (2, "bbbb", Some(SourceId::Int(4))), (4, "dddd", None)]);
        assert_eq!(tokens[0].created_at, parse_datetime("2026-11-26 14:00:00.5"));
        assert_eq!(tokens[0].expires_at, parse_datetime("2026-12-03 14:00:00").unwrap());
        assert_eq!(tokens[0].blacklisted_at, None);
        assert_eq!(tokens[1].blacklisted_at, parse_datetime("2026-11-26 14:10:00"));
        assert_eq!(tokens[2].created_at, None);
    }

    #[tokio::test]
    async fn reads_a_custom_uuid_user_model_from_postgres() {
        let Some(data) = read_postgres(POSTGRES_CUSTOM, "accounts_user").await else {
            return;
        };
        let (info, batches) = data.unwrap();
        assert_eq!((info.id_type, info.absent.as_slice()), (IdType::Uuid, &[UserColumn::Username][..]));
        assert_eq!(info.memberships_table.as_deref(), Some("accounts_user_groups"));
        // uuid order: 0f… before 5f…
        let users: Vec<_> = all_users(&batches)
            .iter()
            .map(|u| (u.id.clone(), u.profile.email.clone(), u.profile.is_staff, u.groups.clone()))
            .collect();
        assert_eq!(
            users,
            [
                (
                    SourceId::Uuid("0f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into()),
                    "bob@example.com".into(),
                    false,
                    vec![]
                ),
                (
                    SourceId::Uuid("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into()),
                    "ada@example.com".into(),
                    true,
                    vec!["editors".to_string()]
                ),
            ]
        );
        let tokens: Vec<_> = all_tokens(&batches).iter().map(|t| (t.jti.clone(), t.user_id.clone())).collect();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.contains(&("aaaa".into(), Some(SourceId::Uuid("5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".into())))));
    }
}
