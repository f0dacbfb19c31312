//! The command line of SPEC §6. The commands that read settings (serve, user, token,
//! import-django, config) take every setting as a flag; `keys generate` takes only its own.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::app::{self, Application, Deps};
use crate::clock::{Clock, SystemClock};
use crate::config::{
    self, DatabaseUrl, IdType, Loaded, LoginField, Settings, SettingsFlags, Sources, REGISTERED_CLAIMS,
};
use crate::password::Hasher;
use crate::service::delivery::{Event, EventKind};
use crate::service::import::{import_django, ImportError, Progress};
use crate::service::{normalize_email, plausible_email, revocation, Delivery};
use crate::store::django::{self, DjangoSource, DjangoUrl, ReadOptions};
use crate::store::pg_tls::PgTls;
use crate::store::{
    IdTypeCheck, ImportMode, NewUser, Purpose, SessionRevocation, SessionScope, Store, User, UserListing,
};
use crate::tokens::{self, Algorithm};

#[derive(Debug, Parser)]
#[command(name = "jwtd", version, about = "JWT authentication server, wire-compatible with DRF + SimpleJWT")]
pub struct Cli {
    /// TOML file of settings (keys in lower case).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The setting flags given to the command (none for `keys generate`).
    pub fn flags(&self) -> SettingsFlags {
        match &self.command {
            Command::Serve(settings)
            | Command::User { settings, .. }
            | Command::Token { settings, .. }
            | Command::Session { settings, .. }
            | Command::ImportDjango { settings, .. }
            | Command::Config { settings, .. } => settings.clone(),
            Command::Keys(_) => SettingsFlags::default(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(SettingsFlags),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        settings: SettingsFlags,
    },
    /// List and revoke users' sessions (refresh-token families).
    Session {
        #[command(subcommand)]
        command: SessionCommand,
        #[command(flatten)]
        settings: SettingsFlags,
    },
    /// Manage token rows.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        settings: SettingsFlags,
    },
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import a Django project's users (with their password hashes) and SimpleJWT's outstanding
    /// and blacklisted tokens into jwtd's database, keeping user ids. Safe to run again.
    ImportDjango {
        /// The Django database: sqlite:///path/to/db.sqlite3 or postgres://user:pass@host/db.
        #[arg(long = "from", value_name = "URL")]
        from: String,
        /// The user model's table, for a custom AUTH_USER_MODEL (e.g. accounts_user).
        #[arg(long, value_name = "TABLE", default_value = django::DEFAULT_USER_TABLE)]
        user_table: String,
        /// Import the users alone, for a project without SimpleJWT's token_blacklist app.
        #[arg(long)]
        users_only: bool,
        /// Read and decide everything, write nothing, print the same report.
        #[arg(long)]
        dry_run: bool,
        /// Users read (and their tokens) per batch.
        #[arg(long, value_name = "N", default_value_t = django::DEFAULT_BATCH_SIZE,
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
        #[command(flatten)]
        settings: SettingsFlags,
    },
    /// Inspect settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
        #[command(flatten)]
        settings: SettingsFlags,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new key pair for --algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256,
    /// ES384 or EdDSA) to DIR: private.pem (PKCS#8, file mode 0600) and public.pem. Existing files
    /// are never overwritten.
    Generate {
        /// The key's algorithm [default: the ALGORITHM setting].
        #[arg(long, value_name = "ALG", value_parser = |s: &str| s.parse::<Algorithm>())]
        algorithm: Option<Algorithm>,
        /// The folder to write to; created if missing.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's password; revokes every token of theirs.
    SetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Send a user a password-reset link (by WEBHOOK_URL and/or SMTP_URL), as the reset form does.
    SendReset { name: String },
    /// Forbid sign-in and refresh for a user.
    Deactivate { name: String },
    /// Allow a deactivated user again.
    Activate { name: String },
    /// Delete a user and every token row of theirs.
    Delete { name: String },
    /// List users in id order, a page at a time with --limit and --after.
    List {
        /// At most this many users [default: all].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Only users with an id above this (the previous page's `next`).
        #[arg(long, value_name = "ID", default_value_t = 0)]
        after: i64,
        /// One JSON document: {"users": [...], "next": ID or null}.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's own claims, written into their tokens (a JSON object; '{}' clears them).
    SetClaims {
        name: String,
        /// A JSON object of at most 4 KiB, no registered claim name.
        json: String,
    },
    /// Add a user to groups or take them out, then print the user's groups.
    Groups {
        name: String,
        /// A group to add the user to (created as needed); repeatable.
        #[arg(long, value_name = "GROUP")]
        add: Vec<String>,
        /// A group to take the user out of; repeatable.
        #[arg(long, value_name = "GROUP")]
        remove: Vec<String>,
    },
}

/// A command-line argument jwtd refuses; `main` exits with code 2, as for invalid settings.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgument(pub String);

/// The largest JSON text `jwtd user set-claims` takes, in bytes.
const MAX_CLAIMS_BYTES: usize = 4096;

/// The user's own claims as `jwtd user set-claims` takes them: a JSON object of at most 4 KiB
/// whose names are not registered ([`REGISTERED_CLAIMS`], the USER_ID_CLAIM).
pub fn parse_user_claims(
    json: &str,
    user_id_claim: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, BadArgument> {
    if json.len() > MAX_CLAIMS_BYTES {
        return Err(BadArgument(format!("JSON: {} bytes; at most {MAX_CLAIMS_BYTES}", json.len())));
    }
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| BadArgument(format!("JSON: not valid JSON: {e}")))?;
    let serde_json::Value::Object(claims) = value else {
        return Err(BadArgument("JSON: expected an object such as '{\"role\": \"admin\"}'".into()));
    };
    if let Some(name) = claims.keys().find(|k| *k == user_id_claim || REGISTERED_CLAIMS.contains(&k.as_str())) {
        return Err(BadArgument(format!("JSON: {name:?} is a registered claim; jwtd sets it itself")));
    }
    Ok(claims)
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// The user's live sessions, newest first.
    List {
        /// The username (the e-mail address with USERNAME_FIELD=email).
        name: String,
    },
    /// Revoke a session: its refresh tokens at once, its access tokens on every serving
    /// instance within a second.
    Revoke {
        /// The session id, as `session list` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Delete expired outstanding and blacklisted token rows.
    FlushExpired,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings, secrets masked.
    Check,
}

/// Loads the settings of `cli` from its config file, `env` and flags; names that are no
/// setting go to `warnings`.
pub fn settings(cli: &Cli, env: HashMap<String, String>, warnings: &mut Vec<String>) -> Result<Loaded> {
    let sources = Sources { config_file: cli.config.as_deref(), env, flags: cli.flags() };
    Ok(config::read(&sources, warnings)?)
}

pub async fn run(cli: Cli, loaded: Loaded) -> Result<()> {
    let Loaded { settings, described } = loaded;
    match cli.command {
        Command::Serve(_) => serve(settings).await,
        Command::User { command, .. } => user(command, &settings).await,
        Command::Session { command, .. } => session(command, &settings).await,
        Command::Token { command: TokenCommand::FlushExpired, .. } => {
            let store = app::open_store(&settings).await.context("cannot open the database")?;
            let n = app::flush_expired(store.as_ref(), SystemClock.now()).await?;
            println!("deleted {n} expired token rows");
            Ok(())
        }
        Command::Keys(KeysCommand::Generate { algorithm, out }) => {
            generate_keys(algorithm.unwrap_or(settings.algorithm), &out)
        }
        Command::ImportDjango { from, user_table, users_only, dry_run, batch_size, .. } => {
            let mode = if dry_run { ImportMode::DryRun } else { ImportMode::Write };
            // DATABASE_TLS is DATABASE_URL's; the source's own sslmode decides, DATABASE_CA_CERT verifies.
            let tls = PgTls { mode: None, ca_cert: settings.database_ca_cert.clone() };
            import(
                &from,
                ReadOptions { user_table, users_only, now: SystemClock.now(), batch_size: batch_size as usize, tls },
                mode,
                &settings,
            )
            .await
        }
        Command::Config { command: ConfigCommand::Check, .. } => {
            let kid = app::keys::check(&settings)?;
            for (name, value) in described {
                println!("{name} = {value}");
            }
            if let Some(kid) = kid {
                println!("# kid of SIGNING_KEY: {kid}");
            }
            println!("ok");
            Ok(())
        }
    }
}

/// `jwtd import-django`: read the Django database in one snapshot, batch by batch, importing user
/// by user. The URL is never printed: it may hold a password.
async fn import(from: &str, options: ReadOptions, mode: ImportMode, settings: &Settings) -> Result<()> {
    let url = DjangoUrl::parse(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let now = options.now;
    let mut source = DjangoSource::open(&url, &options).await.context("cannot import from the Django database")?;
    // A dry run leaves no database behind: an SQLite file that is not there yet is decided
    // against as an empty one, made in the temporary folder and removed after.
    let scratch = match (&settings.database_url, mode) {
        (DatabaseUrl::Sqlite(path), ImportMode::DryRun) if !path.exists() => {
            Some(std::env::temp_dir().join(format!("jwtd-dry-run-{}.db", uuid::Uuid::new_v4().simple())))
        }
        _ => None,
    };
    let target = match &scratch {
        Some(path) => Settings { database_url: DatabaseUrl::Sqlite(path.clone()), ..settings.clone() },
        None => settings.clone(),
    };
    let store = app::open_store(&target).await.context("cannot open jwtd's database")?;
    let mut meter = ProgressMeter::new(std::io::stderr().is_terminal());
    let result = import_django(&mut source, store.as_ref(), now, mode, &mut |p| meter.show(p)).await;
    meter.finish();
    source.close().await;
    let _ = store.close().await;
    drop(store);
    if let Some(path) = scratch {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
    match result {
        Ok(report) => {
            println!("{report}");
            if let Some(kind) = report.id_type.filter(|kind| *kind != settings.user_id_type) {
                // On stderr: the report on stdout stays the same whatever the settings.
                eprintln!("note: these users have {kind} ids: serve this database with USER_ID_TYPE={kind}");
            }
            Ok(())
        }
        // A database made for the other id type: exit code 2, as for USER_ID_TYPE at `serve`.
        Err(e @ ImportError::IdTypeMismatch { .. }) => Err(BadArgument(e.to_string()).into()),
        Err(e) => Err(e).context("cannot import from the Django database"),
    }
}

/// Import progress on a terminal's stderr (counts and rate), redrawn at most five times a
/// second; silent when stderr is not a terminal.
struct ProgressMeter {
    on: bool,
    started: crate::clock::Instant,
    drawn: Option<crate::clock::Instant>,
    /// The users count last drawn.
    shown: Option<u64>,
}

impl ProgressMeter {
    fn new(on: bool) -> Self {
        ProgressMeter { on, started: SystemClock.now(), drawn: None, shown: None }
    }

    fn show(&mut self, p: &Progress) {
        if !self.on {
            return;
        }
        let now = SystemClock.now();
        let finished = p.users_read >= p.users_total;
        if self.shown == Some(p.users_read)
            || (self.drawn.is_some_and(|at| now.millis() - at.millis() < 200) && !finished)
        {
            return;
        }
        self.shown = Some(p.users_read);
        self.drawn = Some(now);
        let secs = (now.millis() - self.started.millis()).max(1) as f64 / 1000.0;
        let percent = (p.users_read * 100).checked_div(p.users_total).unwrap_or(100);
        eprint!(
            "\r\x1b[Kimport: {} of {} users ({percent}%), {} refresh tokens, {:.0} users/s",
            p.users_read,
            p.users_total,
            p.tokens_read,
            p.users_read as f64 / secs
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.on && self.drawn.is_some() {
            eprintln!();
        }
    }
}

async fn serve(settings: Settings) -> Result<()> {
    if settings.refresh_cookie && settings.tls.is_none() && !settings.addr.ip().is_loopback() {
        tracing::warn!(
            "REFRESH_COOKIE without TLS_CERT: browsers only keep its Secure cookie over HTTPS (or on localhost), \
             so serve HTTPS here or behind a proxy"
        );
    }
    let app = Application::build(settings, Deps::default()).await?;
    let addr = app.local_addr();
    let scheme = if app.is_https() { "https" } else { "http" };
    println!("jwtd listening on {scheme}://{addr}");
    println!("sign up:  curl -s -X POST {scheme}://{addr}/api/auth/signup/ -H 'Content-Type: application/json' \\");
    println!("            -d '{{\"username\": \"ada\", \"password\": \"correct horse battery\"}}'");
    app.run_until_stopped(shutdown_signal()).await.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `jwtd keys generate`: a new key pair in `dir`, the private key readable by its owner only.
fn generate_keys(alg: Algorithm, dir: &Path) -> Result<()> {
    if alg.is_hmac() {
        bail!("--algorithm {alg} takes a secret, not a key pair; choose RS256, ES256, EdDSA, ... (or set SIGNING_KEY to 32+ random bytes)");
    }
    let key = tokens::keys::generate(alg, &mut rand::rngs::OsRng)?;
    let kid = tokens::PrivateKey::from_pem(alg, key.private_pem.as_bytes())?.public().kid().to_string();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    for path in [&private, &public] {
        if path.exists() {
            bail!("{} exists already; choose another --out folder", path.display());
        }
    }
    write_new(&private, key.private_pem.as_bytes(), 0o600)?;
    write_new(&public, key.public_pem.as_bytes(), 0o644)?;
    println!("wrote {} (private, mode 0600) and {}", private.display(), public.display());
    println!("kid {kid}");
    println!(
        "use: {}={alg} {}={} jwtd serve",
        config::table::ALGORITHM.env,
        config::table::SIGNING_KEY.env,
        private.display()
    );
    Ok(())
}

/// Writes a file that must not exist yet, created with `mode` (on Unix) so it is never readable by others.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// After the revocation of `user_id`'s tokens at `now` committed: covers a second turned
/// meanwhile, then returns once the revoked second is over (serving instances pick the
/// revocation up from the log within a second).
async fn complete_revocation(store: &dyn Store, user_id: i64, now: crate::clock::Instant) -> Result<()> {
    let valid_after = revocation::settle(store, &SystemClock, user_id, now).await?;
    revocation::wait_out(&SystemClock, valid_after).await;
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password("Password: ").context("cannot read the password")?
    };
    if password.chars().count() < 8 {
        bail!("the password needs at least 8 characters");
    }
    Ok(password)
}

/// The user a NAME argument names: a username, or with USERNAME_FIELD=email an e-mail address
/// (compared case-insensitively).
async fn find_user(store: &dyn Store, settings: &Settings, name: &str) -> Result<User> {
    let user = match settings.username_field {
        LoginField::Username => store.user_by_name(name).await?,
        LoginField::Email => store.user_by_email(name).await?,
    };
    user.with_context(|| match settings.username_field {
        LoginField::Username => format!("no user named {name:?}"),
        LoginField::Email => format!("no user with the e-mail address {name:?}"),
    })
}

async fn user(cmd: UserCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await.context("cannot open the database")?;
    if let UserCommand::List { .. } = cmd {
        // Listing only reads: it refuses USER_ID_TYPE over a database of the other type, but
        // leaves an empty database's type for its first start or import to fix.
        let wanted = settings.user_id_type;
        if let IdTypeCheck::Mismatch { database } = store.import_id_type(wanted, ImportMode::DryRun).await? {
            return Err(app::StartError::UserIdType { stored: database, wanted }.into());
        }
    } else {
        app::check_user_id_type(store.as_ref(), settings).await?;
    }
    let hasher = Hasher::owasp();
    match cmd {
        UserCommand::Create { name, password_stdin, email } => {
            let by_email = settings.username_field == LoginField::Email;
            let (username, email) = match settings.username_field {
                LoginField::Username => match email {
                    Some(e) if !plausible_email(e.trim()) => {
                        return Err(BadArgument(format!("--email: {e:?} is not an e-mail address")).into())
                    }
                    e => (name, e.map(|e| e.trim().to_string()).unwrap_or_default()),
                },
                LoginField::Email if email.is_some() => {
                    return Err(
                        BadArgument("--email: with USERNAME_FIELD=email, NAME is the e-mail address".into()).into()
                    )
                }
                LoginField::Email if !plausible_email(&normalize_email(&name)) => {
                    return Err(BadArgument(format!("NAME: {name:?} is not an e-mail address")).into())
                }
                LoginField::Email => (String::new(), normalize_email(&name)),
            };
            let password = read_password(password_stdin)?;
            let password_hash =
                tokio::task::spawn_blocking(move || hasher.hash(&password, &mut crate::password::Scratch::default()))
                    .await?
                    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            let user = store
                .create_user(NewUser {
                    username,
                    password_hash,
                    email,
                    uuid: (settings.user_id_type == IdType::Uuid).then(uuid::Uuid::new_v4),
                    unique_email: by_email,
                    now: SystemClock.now(),
                })
                .await?;
            let login = if by_email { &user.profile.email } else { &user.profile.username };
            let id = user.public_id(settings.user_id_type).map(|id| id.to_string()).unwrap_or_default();
            println!("created user {login} (id {id})");
        }
        UserCommand::SetClaims { name, json } => {
            let claims = parse_user_claims(&json, &settings.user_id_claim)?;
            let user = find_user(store.as_ref(), settings, &name).await?;
            store.set_user_claims(user.id, &claims).await?;
            println!("claims of {name} set: {}", serde_json::Value::Object(claims));
        }
        UserCommand::Groups { name, add, remove } => {
            if let Some(blank) = add.iter().chain(&remove).find(|g| g.trim().is_empty()) {
                return Err(BadArgument(format!("--add/--remove: {blank:?} is not a group name")).into());
            }
            let user = find_user(store.as_ref(), settings, &name).await?;
            let groups = if add.is_empty() && remove.is_empty() {
                store.user_groups(user.id).await?
            } else {
                store.change_groups(user.id, &add, &remove).await?
            };
            for group in groups {
                println!("{group}");
            }
        }
        UserCommand::SetPassword { name, password_stdin } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            let password = read_password(password_stdin)?;
            let hash =
                tokio::task::spawn_blocking(move || hasher.hash(&password, &mut crate::password::Scratch::default()))
                    .await?
                    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            let now = SystemClock.now();
            store.change_password(user.id, &hash, now).await?;
            complete_revocation(store.as_ref(), user.id, now).await?;
            println!("password of {name} changed; every token of theirs is revoked");
        }
        UserCommand::SendReset { name } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            if user.profile.email.is_empty() {
                bail!("{name} has no e-mail address; set one first");
            }
            if !user.profile.is_active {
                bail!("{name} is inactive; activate them first");
            }
            let delivery = start_delivery(settings)?;
            if !delivery.enabled() {
                return Err(BadArgument(format!(
                    "no way to send the link: set {} or {}",
                    config::table::WEBHOOK_URL.name,
                    config::table::SMTP_URL.name
                ))
                .into());
            }
            crate::service::send_link(
                store.as_ref(),
                &delivery,
                settings,
                SystemClock.now(),
                &user,
                Purpose::PasswordReset,
            )
            .await?;
            let left = finish_delivery(delivery).await;
            if left > 0 {
                bail!("the link to {name} could not be delivered yet (see the log); nothing else changed");
            }
            println!("reset link sent to {name} ({})", user.profile.email);
        }
        UserCommand::Deactivate { name } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            let now = SystemClock.now();
            if !store.set_active(user.id, false, now).await? {
                bail!("no user named {name:?}");
            }
            complete_revocation(store.as_ref(), user.id, now).await?;
            println!("deactivated {name}");
            let delivery = start_delivery(settings)?;
            delivery.event(Event {
                kind: EventKind::Deactivated,
                user_id: user.public_id(settings.user_id_type).and_then(|id| serde_json::to_value(id).ok()),
                session: None,
                ip: None,
                at: now,
            });
            finish_delivery(delivery).await;
        }
        UserCommand::Activate { name } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            if !store.set_active(user.id, true, SystemClock.now()).await? {
                bail!("no user named {name:?}");
            }
            println!("activated {name}");
        }
        UserCommand::Delete { name } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            let now = SystemClock.now();
            if !store.delete_user(user.id, now).await? {
                bail!("no user named {name:?}");
            }
            complete_revocation(store.as_ref(), user.id, now).await?;
            println!("deleted {name} and every token row of theirs");
        }
        UserCommand::List { limit, after, json } => list_users(store.as_ref(), limit, after, json).await?,
    }
    Ok(())
}

async fn session(cmd: SessionCommand, settings: &Settings) -> Result<()> {
    let store = app::open_store(settings).await.context("cannot open the database")?;
    let now = SystemClock.now();
    match cmd {
        SessionCommand::List { name } => {
            let user = find_user(store.as_ref(), settings, &name).await?;
            let sessions = store.sessions(user.id, now).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<16}  {:<20}  {:<20}  {:<39}  user agent", "id", "created", "last used", "ip")?;
            for s in sessions {
                let ip = s.ip.as_deref().unwrap_or("-");
                let (created, used) = (utc(s.created_at), utc(s.last_used_at));
                writeln!(out, "{:<16}  {created:<20}  {used:<20}  {ip:<39}  {}", s.id, s.user_agent)?;
            }
        }
        SessionCommand::Revoke { id } => {
            let Some(owner) = store.session_owner(&id).await? else {
                return Err(BadArgument(format!("no session {id:?}")).into());
            };
            let revocation = SessionRevocation { user_id: owner, scope: SessionScope::One(&id), now };
            let revoked = store.revoke_sessions(revocation).await?;
            for session in &revoked {
                tracing::info!(
                    event = "session.revoked",
                    user_id = owner,
                    session,
                    reason = "operator",
                    "session revoked"
                );
            }
            println!("revoked session {id}; serving instances refuse its tokens within a second");
        }
    }
    Ok(())
}

/// Seconds as a UTC time for a table: `2026-12-05 09:37:44`.
fn utc(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

/// How long a command waits for its mails and events to be delivered before it exits.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// The delivery of WEBHOOK_URL / SMTP_URL for a command (disabled when neither is set).
fn start_delivery(settings: &Settings) -> Result<Delivery> {
    Ok(Delivery::start(&settings.delivery, std::sync::Arc::new(SystemClock)).map_err(app::StartError::Delivery)?)
}

/// Waits up to [`DELIVERY_WAIT`] for what a command queued; returns how many messages were left.
async fn finish_delivery(delivery: Delivery) -> usize {
    delivery.finish(DELIVERY_WAIT).await
}

/// `jwtd user list`: pages of the store, printed as they come (one JSON document with --json).
async fn list_users(store: &dyn Store, limit: Option<u32>, after: i64, json: bool) -> Result<()> {
    const PAGE: u32 = 1000;
    let mut out = std::io::stdout().lock();
    if json {
        write!(out, "{{\"users\":[")?;
    } else {
        writeln!(out, "{:>8}  {:<32} {:<8} email", "id", "username", "active")?;
    }
    let (mut cursor, mut left, mut first) = (after, limit, true);
    let next = loop {
        let want = left.map_or(PAGE, |l| l.min(PAGE));
        let page = store.user_page(cursor, want).await?;
        let full = page.len() as u32 == want;
        for u in &page {
            if json {
                let sep = if first { "" } else { "," };
                write!(out, "{sep}{}", user_json(u))?;
            } else {
                // Django's extra fields follow the e-mail address, only when set: JSON has them all.
                let p = &u.profile;
                let mut line = format!("{:>8}  {:<32} {:<8} {}", u.id, p.username, p.is_active, p.email);
                if let Some(uuid) = &u.uuid {
                    line.push_str(&format!("  uuid {uuid}"));
                }
                if p.is_staff {
                    line.push_str("  staff");
                }
                if p.is_superuser {
                    line.push_str("  superuser");
                }
                if !u.groups.is_empty() {
                    line.push_str(&format!("  groups {}", u.groups.join(",")));
                }
                writeln!(out, "{line}")?;
            }
            first = false;
            cursor = u.id;
        }
        left = left.map(|l| l - page.len() as u32);
        match (full, left) {
            (false, _) => break None,
            (true, Some(0)) => break Some(cursor),
            (true, _) => {}
        }
    };
    if json {
        writeln!(out, "],\"next\":{}}}", next.map_or("null".to_string(), |n| n.to_string()))?;
    } else if let Some(next) = next {
        writeln!(out, "# more: --after {next}")?;
    }
    Ok(())
}

fn user_json(u: &UserListing) -> serde_json::Value {
    let time = |at: crate::clock::Instant| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.millis()) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
    };
    let p = &u.profile;
    serde_json::json!({
        "id": u.id,
        "uuid": u.uuid,
        "username": p.username,
        "email": p.email,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "is_active": p.is_active,
        "is_staff": p.is_staff,
        "is_superuser": p.is_superuser,
        "date_joined": time(p.date_joined),
        "last_login": p.last_login.and_then(time),
        "groups": u.groups,
    })
}

/// The `jwtd` command: reads the arguments and the environment, starts logging, runs the command,
/// and turns a failure into a message and an exit code (2 for invalid settings). The binary's
/// `main` is this, with the allocator.
pub fn main() -> ExitCode {
    let args = Cli::parse();
    let env = std::env::vars().collect();
    let mut warnings = Vec::new();
    let loaded = match settings(&args, env, &mut warnings) {
        Ok(loaded) => loaded,
        Err(e) => {
            for warning in &warnings {
                eprintln!("jwtd: warning: {warning}");
            }
            eprintln!("jwtd: invalid settings: {e:#}");
            return ExitCode::from(2);
        }
    };
    let _log = crate::telemetry::init(loaded.settings.log_format);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jwtd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwtd: {e:#}");
            // A refused argument, USER_ID_TYPE over a database of the other type, or a database
            // migrated by a newer jwtd: as invalid settings.
            let usage = e.downcast_ref::<BadArgument>().is_some()
                || matches!(
                    e.downcast_ref::<crate::app::StartError>(),
                    Some(crate::app::StartError::UserIdType { .. } | crate::app::StartError::Delivery(_))
                )
                || e.chain().any(|cause| cause.is::<crate::store::SchemaTooNew>());
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
