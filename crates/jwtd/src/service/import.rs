//! `jwtd import-django` (SPEC §6): which rows of a Django database become jwtd users, group
//! memberships and refresh-token rows. Integer ids are kept, so the `user_id` claims of tokens
//! Django issued still match; UUID ids are kept beside a new jwtd id (`users.uuid`, the id tokens
//! carry with USER_ID_TYPE=uuid), and the database's id type is recorded (or checked: a database
//! holds one kind). Password hashes are kept as they are (sign-in verifies Django's forms and
//! upgrades them to argon2id). The source is read batch by batch; each user goes in with its
//! tokens and groups in one `Store::import_user` transaction, so a run never half-imports a user,
//! and a second run changes nothing. A dry run reads and decides the same way and writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use futures_util::stream::{self, StreamExt};
use tracing::debug;

use crate::clock::Instant;
use crate::config::IdType;
use crate::password::PasswordHash;
use crate::store::django::{Batch, DjangoSource, DjangoToken, ReadError};
use crate::store::{
    IdTypeCheck, ImportMode, ImportUser, SourceId, Store, StoreError, TokenImport, TokenRow, UserImport,
};

/// Django's `AbstractUser.username` has `max_length=150`; so does jwtd's sign-up.
pub const MAX_USERNAME_CHARS: usize = 150;
/// SimpleJWT's `OutstandingToken.jti` has `max_length=255`; jwtd refuses longer `jti` claims.
const MAX_JTI_CHARS: usize = 255;
const OUTSTANDING: &str = "token_blacklist_outstandingtoken";
/// Users whose import transactions run at once.
const IMPORTS_IN_FLIGHT: usize = 32;
/// At most this many skipped rows are listed one by one (the rest are counted).
const LISTED_SKIPS: usize = 20;

/// A row left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// `user id 7 ("ada")`, `token_blacklist_outstandingtoken id 12`.
    pub row: String,
    pub reason: String,
}

/// What an import did (or, in a dry run, would do), for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub dry_run: bool,
    /// The source's id type, now the database's.
    pub id_type: Option<IdType>,
    /// Whether this run recorded the id type in a database that had none.
    pub id_type_recorded: bool,
    pub users_new: u64,
    /// Users already here with the same id (or UUID) and login, left as they are.
    pub users_present: u64,
    pub users_skipped: u64,
    /// Of the new users, how many are staff or superusers.
    pub users_staff: u64,
    /// Groups created.
    pub groups_new: u64,
    /// Group memberships of new users.
    pub memberships: u64,
    /// `None` when the token tables were not read (`--users-only`).
    pub tokens: Option<TokenCounts>,
    /// The first [`LISTED_SKIPS`] rows left out.
    pub skipped: Vec<Skipped>,
    /// Every row left out, users and tokens.
    pub skipped_rows: u64,
    /// Newly imported users whose hash jwtd cannot verify, by algorithm (`scrypt`, `md5`, …).
    pub unverifiable: BTreeMap<String, u64>,
    /// Newly imported users with Django's unusable password (`!…`).
    pub unusable: u64,
    /// Optional user columns the source table lacks.
    pub absent_columns: Vec<String>,
}

/// Refresh-token rows of an import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenCounts {
    pub new: u64,
    /// Of the new rows, how many are blacklisted.
    pub new_blacklisted: u64,
    /// Rows already here that the import blacklisted (blacklisted in Django since a former run).
    pub blacklisted: u64,
    pub present: u64,
    /// Expired in Django: left out, as jwtd would refuse them anyway.
    pub expired: u64,
    pub skipped: u64,
}

impl ImportReport {
    /// Rows the import added or changed (users, groups, memberships, tokens, blacklistings; the
    /// id type recorded has its own line); 0 on a second run.
    pub fn changes(&self) -> u64 {
        self.users_new + self.groups_new + self.memberships + self.tokens.map_or(0, |t| t.new + t.blacklisted)
    }

    fn skip(&mut self, row: String, reason: String) {
        self.skipped_rows += 1;
        if self.skipped.len() < LISTED_SKIPS {
            self.skipped.push(Skipped { row, reason });
        }
    }
}

/// How far an import is, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// User rows read so far, and in the table.
    pub users_read: u64,
    pub users_total: u64,
    pub tokens_read: u64,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the Django database")]
    Read(#[from] ReadError),
    #[error("import failed")]
    Store(#[from] StoreError),
    /// The source's ids are of the other kind than the database's; nothing was written.
    #[error(
        "the Django users have {django} ids but jwtd's database is made for {database} ids (one database holds \
         one kind, USER_ID_TYPE): import into a new database (--database-url), nothing was changed"
    )]
    IdTypeMismatch { django: IdType, database: IdType },
}

/// Imports the users, groups and tokens of `source` into `store`, batch by batch, calling
/// `progress` after each. Only a failure of either database, or an id type the database was not
/// made for, stops it; bad rows are reported and skipped.
pub async fn import_django(
    source: &mut DjangoSource,
    store: &dyn Store,
    now: Instant,
    mode: ImportMode,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImportReport, ImportError> {
    let info = source.info().clone();
    let mut report = ImportReport {
        dry_run: mode == ImportMode::DryRun,
        id_type: Some(info.id_type),
        absent_columns: info.absent.iter().map(|c| c.name().to_string()).collect(),
        ..ImportReport::default()
    };
    match store.import_id_type(info.id_type, mode).await? {
        IdTypeCheck::Mismatch { database } => {
            return Err(ImportError::IdTypeMismatch { django: info.id_type, database });
        }
        IdTypeCheck::Recorded => report.id_type_recorded = true,
        IdTypeCheck::Matches => {}
    }
    report.groups_new = store.import_groups(&info.groups, mode).await?;
    let mut counts = TokenCounts { expired: info.expired_tokens, ..TokenCounts::default() };
    let mut done = Progress { users_read: 0, users_total: info.users, tokens_read: 0 };
    while let Some(batch) = source.next_batch().await? {
        done.users_read +=
            (batch.users.len() + batch.bad_rows.iter().filter(|b| b.table == info.user_table).count()) as u64;
        done.tokens_read += batch.tokens.len() as u64;
        import_batch(batch, store, now, mode, &mut report, &mut counts).await?;
        progress(&done);
    }
    report.tokens = info.tokens.then_some(counts);
    debug!(
        users_new = report.users_new,
        users_skipped = report.users_skipped,
        tokens_new = counts.new,
        dry_run = report.dry_run,
        "django import done"
    );
    Ok(report)
}

async fn import_batch(
    batch: Batch,
    store: &dyn Store,
    now: Instant,
    mode: ImportMode,
    report: &mut ImportReport,
    counts: &mut TokenCounts,
) -> Result<(), StoreError> {
    for bad in batch.bad_rows {
        let row = match &bad.row_id {
            Some(id) => format!("{} id {id}", bad.table),
            None => bad.table.clone(),
        };
        report.skip(row, bad.reason);
        if bad.table.starts_with("token_blacklist") {
            counts.skipped += 1;
        } else {
            report.users_skipped += 1;
        }
    }
    let mut by_user: HashMap<SourceId, Vec<TokenRow>> = HashMap::new();
    for token in batch.tokens {
        let user = match &token.user_id {
            None => Err("its user was deleted in Django".to_string()),
            Some(id) if !batch.users.iter().any(|u| &u.id == id) => {
                Err(format!("no user {} in the user table", show_id(id)))
            }
            Some(id) => token_row(&token, now).map(|row| (id.clone(), row)).map_err(str::to_string),
        };
        match user {
            Ok((id, row)) => by_user.entry(id).or_default().push(row),
            Err(reason) => skip_token(report, counts, &token, reason),
        }
    }

    let mut work = Vec::with_capacity(batch.users.len());
    for mut user in batch.users {
        user.tokens = by_user.remove(&user.id).unwrap_or_default();
        let label = format!("user id {} ({:?})", show_id(&user.id), shorten(user.profile.login()));
        match check_user(&user) {
            Ok(()) => work.push((label, user)),
            Err(reason) => skip_user(report, counts, label, reason.to_string(), user.tokens.len()),
        }
    }
    // Several users in flight at once: SQLite's writer commits them together (each still in its
    // own savepoint), PostgreSQL spreads them over the pool. Results come back in order.
    let mut outcomes = stream::iter(work)
        .map(|(label, user)| async move {
            let outcome = store.import_user(&user, mode).await;
            (label, user, outcome)
        })
        .buffered(IMPORTS_IN_FLIGHT);
    while let Some((label, user, outcome)) = outcomes.next().await {
        let outcome = outcome?;
        let refused = match &outcome.user {
            UserImport::Inserted => {
                report.users_new += 1;
                report.users_staff += u64::from(user.profile.is_staff || user.profile.is_superuser);
                report.memberships += outcome.groups;
                note_password(report, &user.password);
                None
            }
            UserImport::Present => {
                report.users_present += 1;
                None
            }
            UserImport::IdTaken { username } => {
                Some(format!("id {} belongs to jwtd user {:?}", show_id(&user.id), shorten(username)))
            }
            UserImport::UsernameTaken { id } => Some(format!("username already belongs to jwtd user id {id}")),
            UserImport::EmailTaken { id } => Some(format!("e-mail address already belongs to jwtd user id {id}")),
        };
        if let Some(reason) = refused {
            skip_user(report, counts, label, reason, user.tokens.len());
            continue;
        }
        for (row, step) in user.tokens.iter().zip(&outcome.tokens) {
            match step {
                TokenImport::Insert => {
                    counts.new += 1;
                    counts.new_blacklisted += u64::from(row.blacklisted.is_some());
                }
                TokenImport::Blacklist => counts.blacklisted += 1,
                TokenImport::Present => counts.present += 1,
                TokenImport::Conflict => {
                    counts.skipped += 1;
                    report.skip(format!("refresh token of {label}"), "its jti is already here for another user".into());
                }
            }
        }
    }
    Ok(())
}

fn show_id(id: &SourceId) -> String {
    match id {
        SourceId::Int(n) => n.to_string(),
        SourceId::Uuid(u) => u.clone(),
    }
}

/// Rows jwtd cannot hold as they are.
fn check_user(user: &ImportUser) -> Result<(), &'static str> {
    if matches!(user.id, SourceId::Int(id) if id < 1) {
        return Err("id is not a positive integer");
    }
    let profile = &user.profile;
    if profile.username.is_empty() && profile.email.is_empty() {
        return Err("neither a username nor an e-mail address to sign in with");
    }
    if profile.username.chars().count() > MAX_USERNAME_CHARS {
        return Err("username longer than 150 characters");
    }
    Ok(())
}

/// The jwtd row of a Django outstanding token (its `user_id` is the store's to fill). Django
/// keeps no token families: each token starts its own, named after its jti (so a second run
/// builds the same row): the session the jti names ([`jwtd_proto::session::session_of`], its
/// first 16 hex digits), or the whole jti when it is not a UUID in hex, and its session (SESSION_MAX_LIFETIME) counts from its `iat`, which
/// Django stores as `created_at`.
fn token_row(t: &DjangoToken, now: Instant) -> Result<TokenRow, &'static str> {
    if t.jti.is_empty() || t.jti.chars().count() > MAX_JTI_CHARS {
        return Err("jti is empty or longer than 255 characters");
    }
    let issued_at = t.created_at.unwrap_or(now).secs();
    Ok(TokenRow {
        jti: t.jti.clone(),
        user_id: 0,
        family: jwtd_proto::session::session_of(None, &t.jti).unwrap_or(&t.jti).to_string(),
        family_started: issued_at,
        issued_at,
        expires_at: t.expires_at.secs(),
        blacklisted: t.blacklisted_at,
        replaced_by: None,
        rotated: None,
    })
}

fn skip_user(report: &mut ImportReport, counts: &mut TokenCounts, row: String, reason: String, tokens: usize) {
    report.users_skipped += 1;
    let reason = match tokens {
        0 => reason,
        1 => format!("{reason}; its refresh token is left out too"),
        n => format!("{reason}; its {n} refresh tokens are left out too"),
    };
    counts.skipped += tokens as u64;
    report.skip(row, reason);
}

fn skip_token(report: &mut ImportReport, counts: &mut TokenCounts, token: &DjangoToken, reason: String) {
    counts.skipped += 1;
    report.skip(format!("{OUTSTANDING} id {}", token.row_id), reason);
}

fn note_password(report: &mut ImportReport, stored: &str) {
    match PasswordHash::parse(stored) {
        Ok(hash) if hash.is_usable() => {}
        Ok(_) => report.unusable += 1,
        Err(unknown) => {
            *report.unverifiable.entry(unknown.scheme.unwrap_or_else(|| "unrecognised".into())).or_default() += 1;
        }
    }
}

/// A username as reports show it: at most 40 characters.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_string(),
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing is written; an import would do this")?;
        }
        if let Some(kind) = self.id_type {
            let recorded = if self.id_type_recorded { " (recorded as the database's id type)" } else { "" };
            writeln!(f, "user ids: {kind}{recorded}")?;
        }
        if !self.absent_columns.is_empty() {
            writeln!(f, "user table without: {} (defaults used)", self.absent_columns.join(", "))?;
        }
        writeln!(
            f,
            "users: {} new, {} already imported, {} skipped; {} of the new are staff or superusers",
            self.users_new, self.users_present, self.users_skipped, self.users_staff
        )?;
        writeln!(f, "groups: {} new, {} memberships", self.groups_new, self.memberships)?;
        match &self.tokens {
            Some(t) => writeln!(
                f,
                "refresh tokens: {} new ({} of them blacklisted), {} newly blacklisted, {} already imported, \
                 {} expired (left out), {} skipped",
                t.new, t.new_blacklisted, t.blacklisted, t.present, t.expired, t.skipped
            )?,
            None => writeln!(f, "refresh tokens: not read (--users-only)")?,
        }
        for s in &self.skipped {
            writeln!(f, "  skipped {}: {}", s.row, s.reason)?;
        }
        let unlisted = self.skipped_rows.saturating_sub(self.skipped.len() as u64);
        if unlisted > 0 {
            writeln!(f, "  … and {unlisted} more skipped rows")?;
        }
        if !self.unverifiable.is_empty() {
            let kinds: Vec<String> = self.unverifiable.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let total: u64 = self.unverifiable.values().sum();
            writeln!(
                f,
                "note: {total} imported user(s) have a password hash jwtd cannot verify ({}); they can sign in \
                 once given a password with `jwtd user set-password NAME`",
                kinds.join(", ")
            )?;
        }
        if self.unusable > 0 {
            writeln!(f, "note: {} imported user(s) have no usable password, as in Django", self.unusable)?;
        }
        if self.dry_run {
            write!(f, "dry run done: {} new (nothing written)", self.changes())
        } else {
            write!(f, "import done: {} new", self.changes())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use rusqlite::{params, Connection};

    use super::*;
    use crate::clock::{FakeClock, SharedClock};
    use crate::config::{DatabaseUrl, Settings};
    use crate::password::Hasher;
    use crate::service::{AuthError, AuthService, PasswordPool, Verifier};
    use crate::store::django::{self, DjangoSource, DjangoUrl, ReadError, ReadOptions};
    use crate::store::sqlite::SqliteStore;
    use crate::store::NewUser;
    use crate::store::User;
    use crate::tokens::{Algorithm, Claims, Codec, Policy, TokenType};

    /// The tables as Django 5.2 and SimpleJWT 5.5 create them in SQLite (`manage.py migrate`).
    const DJANGO_USERS: &str = r#"
        CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL,
            "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE,
            "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL, "is_staff" bool NOT NULL,
            "is_active" bool NOT NULL, "date_joined" datetime NOT NULL, "first_name" varchar(150) NOT NULL);"#;
    const DJANGO_TOKENS: &str = r#"
        CREATE TABLE "token_blacklist_outstandingtoken" ("token" text NOT NULL, "created_at" datetime NULL,
            "expires_at" datetime NOT NULL,
            "user_id" integer NULL REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED,
            "jti" varchar(255) NOT NULL UNIQUE, "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT);
        CREATE TABLE "token_blacklist_blacklistedtoken" ("blacklisted_at" datetime NOT NULL,
            "token_id" bigint NOT NULL UNIQUE REFERENCES "token_blacklist_outstandingtoken" ("id")
            DEFERRABLE INITIALLY DEFERRED, "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT);"#;

    const SECRET: &[u8] = b"django-insecure-test-secret-key";
    const PW: &str = "correct horse battery staple";
    /// Real Django hashes of PW (see password.rs for how they were made).
    const PBKDF2: &str = "pbkdf2_sha256$1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=";
    const ARGON2: &str =
        "argon2$argon2id$v=19$m=64,t=1,p=2$UXdhdEFpTTFmeFo4UGVXUkgwYXJ4Zw$dFYL/4azFCauUHVNyUiyBGg7IjvEGmR/oXTehpAQX+k";
    const BCRYPT_SHA256: &str = "bcrypt_sha256$$2b$04$uVomhOcdqMKGReverULvletIQcoYA3itokJNeZJO4.rE1NQYE0iBy";
    const SCRYPT: &str = "scrypt$16384$nIkLxiNRBByRED1KYFuRL7$8$5$kkZSOSFkWFsd2eecU0y0d0UkGfOgiqlgY+CDxi5ppUjn6XLJm+Cy6xC+7WuiN6zDvyeEVsUuzlb+0cih9Tpq0g==";

    /// 2026-11-26 14:16:20 UTC.
    const NOW_SECS: i64 = 1_795_702_580;
    const JOINED: &str = "2026-11-01 09:30:00.250000";
    const ISSUED: &str = "2026-11-26 14:00:00.123456";
    const ISSUED_SECS: i64 = 1_795_701_600;
    const EXPIRES: &str = "2026-12-03 14:00:00";
    const EXPIRES_SECS: i64 = 1_796_306_400;

    fn jti(n: u8) -> String {
        format!("{n:032x}")
    }

    fn django_db(dir: &Path) -> PathBuf {
        let path = dir.join("django.sqlite3");
        let c = Connection::open(&path).unwrap();
        // Off only so that row 7 can point at a user that never existed (edited outside Django).
        c.pragma_update(None, "foreign_keys", false).unwrap();
        c.execute_batch(DJANGO_USERS).unwrap();
        c.execute_batch(DJANGO_TOKENS).unwrap();
        let long_name = "x".repeat(151);
        let users: [(i64, &str, &str, bool); 8] = [
            (1, "zed", PBKDF2, true),
            (11, "ada", PBKDF2, true),
            (12, "bob", ARGON2, true),
            (13, "carol", BCRYPT_SHA256, false),
            (15, &long_name, PBKDF2, true),
            (17, "dave", "!Tq3dOdhM92yuIi430IKNbI97y5oq7HWGh29YN5O5", true),
            (18, "erin", SCRYPT, true),
            (19, "mallory", PBKDF2, true),
        ];
        for (id, name, hash, active) in users {
            c.execute(
                "INSERT INTO auth_user (id, password, last_login, is_superuser, username, last_name, email, is_staff,
                 is_active, date_joined, first_name) VALUES (?1, ?2, NULL, 0, ?3, '', ?4, 0, ?5, ?6, '')",
                params![id, hash, name, format!("{}@example.com", name.len()), active, JOINED],
            )
            .unwrap();
        }
        c.execute("UPDATE auth_user SET last_login = ?1 WHERE id = 11", [ISSUED]).unwrap();
        // (row id, jti, user, expires_at)
        let tokens: [(i64, String, Option<i64>, &str); 8] = [
            (1, jti(1), Some(11), EXPIRES),               // live
            (2, jti(2), Some(11), EXPIRES),               // blacklisted below
            (3, jti(3), Some(11), "2026-11-20 00:00:00"), // expired
            (4, jti(4), Some(12), EXPIRES),
            (5, jti(5), Some(15), EXPIRES), // its user is skipped
            (6, jti(6), None, EXPIRES),     // its user was deleted
            (7, jti(7), Some(99), EXPIRES), // no such user
            (8, jti(8), Some(12), "soon"),  // unreadable date
        ];
        for (id, jti, user, expires) in tokens {
            c.execute(
                "INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti)
                 VALUES (?1, 'header.payload.signature', ?2, ?3, ?4, ?5)",
                params![id, ISSUED, expires, user, jti],
            )
            .unwrap();
        }
        c.execute("INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (?1, 2)", [ISSUED])
            .unwrap();
        path
    }

    fn options() -> ReadOptions {
        ReadOptions {
            user_table: "auth_user".into(),
            users_only: false,
            now: Instant::from_secs(NOW_SECS),
            batch_size: 1000,
            tls: Default::default(),
        }
    }

    async fn read(path: &Path, options: &ReadOptions) -> Result<DjangoSource, ReadError> {
        DjangoSource::open(&DjangoUrl::Sqlite(path.to_path_buf()), options).await
    }

    async fn import_with(
        django: &Path,
        store: &dyn Store,
        options: &ReadOptions,
        mode: ImportMode,
    ) -> Result<ImportReport, ImportError> {
        let mut source = read(django, options).await.unwrap();
        let mut seen = Vec::new();
        let report =
            import_django(&mut source, store, Instant::from_secs(NOW_SECS), mode, &mut |p| seen.push(*p)).await;
        source.close().await;
        if let Ok(r) = &report {
            let last = seen.last().copied().unwrap();
            assert_eq!(last.users_read, last.users_total, "progress ends at the total");
            assert!(r.users_new + r.users_present + r.users_skipped <= last.users_total);
        }
        report
    }

    /// A user signed up in jwtd itself, with no usable password.
    fn own_user(username: &str) -> NewUser {
        NewUser {
            username: username.into(),
            password_hash: "!".into(),
            email: String::new(),
            uuid: None,
            unique_email: false,
            now: Instant::from_secs(NOW_SECS),
        }
    }

    /// A jwtd store that already holds one user of its own, "mallory" with id 1.
    async fn jwtd_store(dir: &Path) -> Arc<dyn Store> {
        let store = SqliteStore::open(&dir.join("jwtd.db")).unwrap();
        assert_eq!(store.create_user(own_user("mallory")).await.unwrap().id, 1);
        Arc::new(store)
    }

    /// Every user, as stored.
    async fn all_users(store: &dyn Store) -> Vec<User> {
        let mut users = Vec::new();
        for listed in store.user_page(0, 1000).await.unwrap() {
            users.push(store.user_by_id(listed.id).await.unwrap().unwrap());
        }
        users
    }

    async fn import(django: &Path, store: &dyn Store) -> ImportReport {
        import_with(django, store, &options(), ImportMode::Write).await.unwrap()
    }

    #[tokio::test]
    async fn import_keeps_ids_hashes_and_blacklist_and_skips_wrong_rows() {
        let dir = tempfile::tempdir().unwrap();
        let django = django_db(dir.path());
        let store = jwtd_store(dir.path()).await;

        let report = import(&django, store.as_ref()).await;

        assert_eq!((report.users_new, report.users_present, report.users_skipped), (5, 0, 3));
        let tokens = report.tokens.unwrap();
        assert_eq!((tokens.new, tokens.new_blacklisted, tokens.present, tokens.expired), (3, 1, 0, 1));
        assert_eq!(tokens.skipped, 4);
        assert_eq!(report.unverifiable, BTreeMap::from([("scrypt".to_string(), 1)]));
        assert_eq!(report.unusable, 1);
        let skipped: Vec<String> = report.skipped.iter().map(|s| format!("{}: {}", s.row, s.reason)).collect();
        assert_eq!(
            skipped,
            [
                "token_blacklist_outstandingtoken id 8: expires_at is not a date",
                "token_blacklist_outstandingtoken id 6: its user was deleted in Django",
                "token_blacklist_outstandingtoken id 7: no user 99 in the user table",
                r#"user id 15 ("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"): username longer than 150 characters; its refresh token is left out too"#,
                r#"user id 1 ("zed"): id 1 belongs to jwtd user "mallory""#,
                r#"user id 19 ("mallory"): username already belongs to jwtd user id 1"#,
            ]
        );

        let ada = store.user_by_id(11).await.unwrap().unwrap();
        assert_eq!(
            (ada.profile.username.as_str(), ada.password.as_str(), ada.profile.email.as_str()),
            ("ada", PBKDF2, "3@example.com")
        );
        assert_eq!(ada.profile.date_joined, django::parse_datetime(JOINED).unwrap());
        assert_eq!(ada.profile.last_login, django::parse_datetime(ISSUED));
        assert!(ada.profile.is_active);
        assert!(!store.user_by_id(13).await.unwrap().unwrap().profile.is_active, "carol was inactive in Django");
        assert_eq!(store.user_by_name("mallory").await.unwrap().unwrap().id, 1, "jwtd's own user is untouched");

        let live = store.refresh_row(&jti(1)).await.unwrap().unwrap();
        assert_eq!((live.user_id, live.issued_at, live.expires_at), (11, ISSUED_SECS, EXPIRES_SECS));
        assert_eq!((live.family.as_str(), live.family_started), (&jti(1)[..16], ISSUED_SECS), "the jti's session");
        assert_eq!(live.blacklisted, None);
        let blacklisted = store.refresh_row(&jti(2)).await.unwrap().unwrap();
        assert_eq!(blacklisted.blacklisted, django::parse_datetime(ISSUED));
        for left_out in [3, 5, 6, 7, 8] {
            assert_eq!(store.refresh_row(&jti(left_out)).await.unwrap(), None, "token {left_out}");
        }

        // Sign-ups continue after the imported ids (AUTOINCREMENT).
        assert_eq!(store.create_user(own_user("newbie")).await.unwrap().id, 19);
    }

    #[tokio::test]
    async fn a_second_import_changes_nothing_and_a_later_one_brings_new_blacklistings() {
        let dir = tempfile::tempdir().unwrap();
        let django = django_db(dir.path());
        let store = jwtd_store(dir.path()).await;
        let first = import(&django, store.as_ref()).await;
        assert_eq!(first.changes(), 5 + 3);
        let users_before = all_users(store.as_ref()).await;

        let second = import(&django, store.as_ref()).await;
        assert_eq!(second.changes(), 0);
        assert_eq!((second.users_new, second.users_present, second.users_skipped), (0, 5, 3));
        let tokens = second.tokens.unwrap();
        assert_eq!((tokens.new, tokens.blacklisted, tokens.present, tokens.expired, tokens.skipped), (0, 0, 3, 1, 4));
        assert!(second.to_string().ends_with("\nimport done: 0 new"), "{second}");
        assert_eq!(all_users(store.as_ref()).await, users_before);

        // Logged out in Django after the first run: the next run carries the blacklisting over.
        let c = Connection::open(&django).unwrap();
        c.execute("INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (?1, 1)", [EXPIRES])
            .unwrap();
        let third = import(&django, store.as_ref()).await;
        assert_eq!(third.tokens.unwrap().blacklisted, 1);
        assert_eq!(third.changes(), 1);
        assert!(store.refresh_row(&jti(1)).await.unwrap().unwrap().blacklisted.is_some());
    }

    #[tokio::test]
    async fn imported_users_sign_in_with_their_django_password_and_keep_their_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let django = django_db(dir.path());
        let store = jwtd_store(dir.path()).await;
        import(&django, store.as_ref()).await;

        let clock = FakeClock::at(Instant::from_secs(NOW_SECS));
        let settings =
            Settings { database_url: DatabaseUrl::Sqlite(dir.path().join("jwtd.db")), ..Settings::default() };
        let codec = Codec::from_secret(Algorithm::HS256, SECRET, Policy::default()).unwrap();
        let clock: SharedClock = Arc::new(clock);
        let verifier = Verifier::new(&codec, clock.clone(), vec!["Bearer".into()], "user_id".into());
        let passwords = PasswordPool::new(Hasher::with_params(64, 1, 1)).unwrap();
        let auth = AuthService::new(store.clone(), codec.clone(), verifier, clock, passwords, Arc::new(settings));

        for (id, name) in [(11, "ada"), (12, "bob")] {
            assert!(matches!(
                auth.obtain_pair(name, "wrong password".into(), None, "").await,
                Err(AuthError::NoActiveAccount)
            ));
            auth.obtain_pair(name, PW.into(), None, "").await.unwrap();
            let stored = store.user_by_id(id).await.unwrap().unwrap().password;
            assert!(stored.starts_with("$argon2id$"), "{name}'s hash is upgraded");
            auth.obtain_pair(name, PW.into(), None, "").await.unwrap();
        }
        // Inactive in Django, inactive here; unusable and unverifiable hashes never match.
        for name in ["carol", "dave", "erin"] {
            assert!(matches!(auth.obtain_pair(name, PW.into(), None, "").await, Err(AuthError::NoActiveAccount)));
        }

        // Refresh tokens Django issued, signed with its SECRET_KEY (here minted by our codec).
        let django_refresh = |jti: String| {
            let lifetime = Duration::from_secs((EXPIRES_SECS - ISSUED_SECS) as u64);
            codec
                .encode(&Claims::new(
                    TokenType::Refresh,
                    "user_id",
                    jwtd_proto::UserId::Int(11),
                    ISSUED_SECS,
                    lifetime,
                    jti,
                ))
                .unwrap()
        };
        auth.refresh(&django_refresh(jti(1))).await.unwrap();
        assert!(matches!(auth.refresh(&django_refresh(jti(2))).await, Err(AuthError::Blacklisted)));
    }

    #[tokio::test]
    async fn missing_tables_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read(&dir.path().join("nope.sqlite3"), &options()).await.err().unwrap();
        assert!(matches!(missing, ReadError::Open(_)), "{missing}");

        let empty = dir.path().join("empty.sqlite3");
        Connection::open(&empty).unwrap().execute_batch("CREATE TABLE unrelated (x)").unwrap();
        let err = read(&empty, &options()).await.err().unwrap();
        assert!(matches!(&err, ReadError::NoUserTable(t) if t == "auth_user"), "{err}");
        assert!(err.to_string().contains("--user-table"));

        let users_only = dir.path().join("users-only.sqlite3");
        let c = Connection::open(&users_only).unwrap();
        c.execute_batch(DJANGO_USERS).unwrap();
        let err = read(&users_only, &options()).await.err().unwrap();
        assert!(matches!(err, ReadError::NoTokenTables), "{err}");
        assert!(err.to_string().contains("--users-only"));
        let source = read(&users_only, &ReadOptions { users_only: true, ..options() }).await.unwrap();
        assert!(!source.info().tokens);
        source.close().await;

        c.execute_batch("CREATE TABLE token_blacklist_outstandingtoken (id integer, jti text)").unwrap();
        c.execute_batch("CREATE TABLE token_blacklist_blacklistedtoken (token_id integer, blacklisted_at text)")
            .unwrap();
        let err = read(&users_only, &options()).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "table token_blacklist_outstandingtoken lacks the column(s) user_id, created_at, expires_at"
        );
    }

    #[tokio::test]
    async fn a_custom_user_table_is_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.sqlite3");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&DJANGO_USERS.replace("auth_user", "accounts_user")).unwrap();
        c.execute(
            "INSERT INTO accounts_user (id, password, is_superuser, username, last_name, email, is_staff, is_active,
             date_joined, first_name) VALUES (7, ?1, 0, 'ada', '', '', 0, 1, ?2, '')",
            [PBKDF2, JOINED],
        )
        .unwrap();
        let opts = ReadOptions { user_table: "accounts_user".into(), users_only: true, ..options() };
        let mut source = read(&path, &opts).await.unwrap();
        let batch = source.next_batch().await.unwrap().unwrap();
        assert_eq!(batch.users.len(), 1);
        assert_eq!((&batch.users[0].id, batch.users[0].profile.username.as_str()), (&SourceId::Int(7), "ada"));
        assert!(source.next_batch().await.unwrap().is_none());
    }
    /// The reference's custom user model (`accounts.User`) as Django 5.2 creates it in SQLite:
    /// UUIDs as 32 hex digits, e-mail sign-in with a blank username, PermissionsMixin's groups.
    const CUSTOM: &str = r#"
        CREATE TABLE "accounts_user" ("password" varchar(128) NOT NULL, "last_login" datetime NULL,
            "is_superuser" bool NOT NULL, "id" char(32) NOT NULL PRIMARY KEY, "email" varchar(254) NOT NULL UNIQUE,
            "username" varchar(150) NOT NULL, "first_name" varchar(150) NOT NULL, "last_name" varchar(150) NOT NULL,
            "is_staff" bool NOT NULL, "is_active" bool NOT NULL, "date_joined" datetime NOT NULL);
        CREATE TABLE "auth_group" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "name" varchar(150) NOT NULL UNIQUE);
        CREATE TABLE "accounts_user_groups" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
            "user_id" char(32) NOT NULL, "group_id" integer NOT NULL);"#;
    const ADA: &str = "5f0c6d7e8a9b4c1d9e2f0a1b2c3d4e5f";
    const BOB: &str = "0f0c6d7e8a9b4c1d9e2f0a1b2c3d4e5f";

    fn custom_db(dir: &Path) -> PathBuf {
        let path = dir.join("custom.sqlite3");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(CUSTOM).unwrap();
        c.execute_batch(&DJANGO_TOKENS.replace(
            r#""user_id" integer NULL REFERENCES "auth_user""#,
            r#""user_id" char(32) NULL REFERENCES "accounts_user""#,
        ))
        .unwrap();
        for (id, email, staff) in
            [(ADA, "ada@EXAMPLE.com", false), (BOB, "bob@example.com", true), ("not-a-uuid", "eve@example.com", false)]
        {
            c.execute(
                "INSERT INTO accounts_user VALUES (?1, NULL, 0, ?2, ?3, '', 'First', 'Last', ?4, 1, ?5)",
                params![PBKDF2, id, email, staff, JOINED],
            )
            .unwrap();
        }
        c.execute_batch(&format!(
            "INSERT INTO auth_group (name) VALUES ('editors'), ('empty');
             INSERT INTO accounts_user_groups (user_id, group_id) VALUES ('{ADA}', 1);"
        ))
        .unwrap();
        for (row, user) in [(1, ADA), (2, ADA), (3, BOB)] {
            c.execute(
                "INSERT INTO token_blacklist_outstandingtoken (id, token, created_at, expires_at, user_id, jti)
                 VALUES (?1, 't', ?2, ?3, ?4, ?5)",
                params![row, ISSUED, EXPIRES, user, jti(row as u8)],
            )
            .unwrap();
        }
        c.execute("INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (?1, 2)", [ISSUED])
            .unwrap();
        path
    }

    fn custom_options() -> ReadOptions {
        ReadOptions { user_table: "accounts_user".into(), batch_size: 1, ..options() }
    }

    /// On SQLite, and on PostgreSQL when JWTD_TEST_DATABASE_URL is set.
    async fn each_store(test: impl AsyncFn(&dyn Store, &Path)) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("jwtd.db")).unwrap();
        test(&sqlite, dir.path()).await;
        if let Some(db) = crate::store::contract::TestDatabase::create().await {
            let dir = tempfile::tempdir().unwrap();
            test(&db.store, dir.path()).await;
            db.drop_database().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_custom_uuid_model_imports_with_its_groups_and_a_dry_run_writes_nothing() {
        each_store(async |store: &dyn Store, dir: &Path| {
            let django = custom_db(dir);
            let dry = import_with(&django, store, &custom_options(), ImportMode::DryRun).await.unwrap();
            assert!(store.user_page(0, 100).await.unwrap().is_empty(), "a dry run writes no user");
            assert_eq!(store.refresh_row(&jti(1)).await.unwrap(), None, "nor a token");
            assert_eq!(store.import_groups(&["editors".into()], ImportMode::DryRun).await.unwrap(), 1, "nor a group");
            assert_eq!(
                store.import_id_type(IdType::Int, ImportMode::DryRun).await.unwrap(),
                IdTypeCheck::Recorded,
                "nor the id type"
            );

            let report = import_with(&django, store, &custom_options(), ImportMode::Write).await.unwrap();
            assert_eq!(ImportReport { dry_run: true, ..report.clone() }, dry, "the dry run decided the same");
            assert_eq!((report.id_type, report.id_type_recorded), (Some(IdType::Uuid), true));
            assert_eq!((report.users_new, report.users_skipped, report.users_staff), (2, 1, 1));
            assert_eq!((report.groups_new, report.memberships), (2, 1));
            let tokens = report.tokens.unwrap();
            assert_eq!((tokens.new, tokens.new_blacklisted), (3, 1));
            assert_eq!(report.skipped[0].row, "accounts_user id not-a-uuid");
            assert_eq!(report.skipped[0].reason, "id is not a UUID");

            let users = store.user_page(0, 100).await.unwrap();
            let shown: Vec<_> = users
                .iter()
                .map(|u| (u.uuid.clone().unwrap(), u.profile.email.as_str(), u.profile.is_staff, u.groups.clone()))
                .collect();
            assert_eq!(
                shown,
                [
                    // Keyset order of the source: 0f… before 5f….
                    ("0f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".to_string(), "bob@example.com", true, vec![]),
                    (
                        "5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f".to_string(),
                        "ada@example.com",
                        false,
                        vec!["editors".to_string()]
                    ),
                ]
            );
            assert_eq!((users[0].profile.first_name.as_str(), users[0].profile.username.as_str()), ("First", ""));
            let ada = store.refresh_row(&jti(2)).await.unwrap().unwrap();
            assert_eq!(ada.user_id, users[1].id, "tokens belong to jwtd's id of the user");
            assert!(ada.blacklisted.is_some());

            let again = import_with(&django, store, &custom_options(), ImportMode::Write).await.unwrap();
            assert_eq!(again.changes(), 0, "{again}");
            assert_eq!(store.user_page(0, 100).await.unwrap(), users);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uuid_users_into_an_int_database_are_refused_before_anything_is_written() {
        each_store(async |store: &dyn Store, dir: &Path| {
            let django = custom_db(dir);
            store.create_user(own_user("mallory")).await.unwrap();
            let before = store.user_page(0, 100).await.unwrap();
            for mode in [ImportMode::DryRun, ImportMode::Write] {
                let err = import_with(&django, store, &custom_options(), mode).await.unwrap_err();
                assert!(
                    matches!(err, ImportError::IdTypeMismatch { django: IdType::Uuid, database: IdType::Int }),
                    "{err}"
                );
                assert!(err.to_string().contains("uuid ids") && err.to_string().contains("int ids"), "{err}");
            }
            assert_eq!(store.user_page(0, 100).await.unwrap(), before);
            assert_eq!(store.import_groups(&["editors".into()], ImportMode::DryRun).await.unwrap(), 1);
        })
        .await;
    }
}
