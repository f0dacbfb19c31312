//! Settings (SPEC §5): one raw layer per source, merged default < TOML < `JWTD_*` env < flags,
//! then validated once into typed [`Settings`]. Errors name the setting and where it came from.

mod values;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use values::{mask_url, parse_bool, parse_duration, DatabaseUrl, LogFormat, Rate};

use crate::tokens::Algorithm;

/// Declares every setting once: the clap flags struct and the list of names.
macro_rules! settings {
    ($($field:ident => $name:literal : $help:literal),* $(,)?) => {
        /// Every setting as an optional `--kebab-case` flag (highest priority).
        #[derive(Debug, Default, Clone, clap::Args)]
        pub struct SettingsFlags {
            $(
                #[doc = $help]
                #[arg(long, value_name = "VALUE", global = true)]
                pub $field: Option<String>,
            )*
        }

        impl SettingsFlags {
            fn pairs(&self) -> Vec<(&'static str, &'static str, Option<&String>)> {
                vec![$(($name, concat!("--", stringify!($field)), self.$field.as_ref())),*]
            }
        }

        /// The names of all settings, as in SPEC §5.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

settings! {
    addr => "ADDR": "address to listen on [default: 127.0.0.1:8000]",
    database_url => "DATABASE_URL": "sqlite://PATH or postgres://… [default: sqlite://jwtd.db]",
    database_max_connections => "DATABASE_MAX_CONNECTIONS": "PostgreSQL connections per instance [default: 10]",
    access_token_lifetime => "ACCESS_TOKEN_LIFETIME": "e.g. 90, 90s, 15m, 7d [default: 15m]",
    refresh_token_lifetime => "REFRESH_TOKEN_LIFETIME": "[default: 7d]",
    rotate_refresh_tokens => "ROTATE_REFRESH_TOKENS": "[default: false]",
    blacklist_after_rotation => "BLACKLIST_AFTER_ROTATION": "[default: true]",
    rotation_grace_period => "ROTATION_GRACE_PERIOD": "0 turns it off [default: 10s]",
    session_max_lifetime => "SESSION_MAX_LIFETIME": "[default: 30d]",
    sliding_token_lifetime => "SLIDING_TOKEN_LIFETIME": "[default: 5m]",
    sliding_token_refresh_lifetime => "SLIDING_TOKEN_REFRESH_LIFETIME": "[default: 1d]",
    algorithm => "ALGORITHM": "[default: HS256]",
    signing_key => "SIGNING_KEY": "HMAC secret, or PEM text or path of a private key [default: generated once, kept in the database]",
    verifying_key => "VERIFYING_KEY": "PEM text or path of the public key [default: derived from SIGNING_KEY]",
    previous_verifying_keys => "PREVIOUS_VERIFYING_KEYS": "comma list of PEM paths of earlier public keys that still verify tokens",
    audience => "AUDIENCE": "aud claim written and required",
    issuer => "ISSUER": "iss claim written and required",
    leeway => "LEEWAY": "clock skew allowed on exp/iat/nbf [default: 0s]",
    user_id_claim => "USER_ID_CLAIM": "[default: user_id]",
    auth_header_types => "AUTH_HEADER_TYPES": "comma list [default: Bearer]",
    update_last_login => "UPDATE_LAST_LOGIN": "[default: false]",
    check_user_is_active => "CHECK_USER_IS_ACTIVE": "[default: true]",
    refresh_cookie => "REFRESH_COOKIE": "[default: false]",
    cors_allowed_origins => "CORS_ALLOWED_ORIGINS": "comma list of exact origins",
    tls_cert => "TLS_CERT": "PEM certificate chain",
    tls_key => "TLS_KEY": "PEM private key",
    login_rate => "LOGIN_RATE": "failed sign-ins allowed: N/s, N/min, N/h or off [default: 10/min]",
    max_body_bytes => "MAX_BODY_BYTES": "[default: 65536]",
    log_format => "LOG_FORMAT": "text or json [default: text]",
}

/// A setting that could not be loaded; the message names it and its source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// A PEM key as configured: its text and, when it was read from a file, the file's path.
/// `Debug` shows the path only.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem {
    pub path: Option<PathBuf>,
    pub pem: String,
}

impl KeyPem {
    /// PEM text as given; `\n` escapes (a PEM squeezed onto one line) become line breaks.
    pub fn text(pem: &str) -> KeyPem {
        let pem = if pem.contains('\n') { pem.to_string() } else { pem.replace("\\n", "\n") };
        KeyPem { path: None, pem }
    }

    /// Where the key came from, for messages: its path, or "PEM text".
    pub fn origin(&self) -> String {
        self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "PEM text".into())
    }

    /// `value` is PEM text when it starts with `-----BEGIN`, else the path of a PEM file.
    fn load(value: &str) -> Result<KeyPem, String> {
        let value = value.trim();
        if value.starts_with("-----BEGIN") {
            return Ok(KeyPem::text(value));
        }
        let path = PathBuf::from(value);
        match std::fs::read_to_string(&path) {
            Ok(pem) => Ok(KeyPem { path: Some(path), pem }),
            Err(e) => Err(format!("is neither PEM text (-----BEGIN ...) nor the path of a readable PEM file ({e})")),
        }
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPem({})", self.origin())
    }
}

/// What rotation does on refresh (ROTATE_REFRESH_TOKENS and the settings that only matter with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationPolicy {
    Off,
    On { blacklist_after: bool, grace: Duration },
}

impl RotationPolicy {
    /// Rotation with blacklisting and the default 10 s grace period.
    pub fn on() -> Self {
        RotationPolicy::On { blacklist_after: true, grace: Duration::from_secs(10) }
    }
}

/// The PEM files of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub database_url: DatabaseUrl,
    /// PostgreSQL: most pooled connections of this instance (SQLite ignores it).
    pub database_max_connections: usize,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub rotation: RotationPolicy,
    pub session_max_lifetime: Duration,
    pub sliding_token_lifetime: Duration,
    pub sliding_token_refresh_lifetime: Duration,
    pub algorithm: Algorithm,
    /// The HMAC secret, or for asymmetric algorithms the private key's PEM text (read from its
    /// file at load); `None`: generated once and kept in the database.
    pub signing_key: Option<Secret>,
    /// The public key; `None`: derived from the signing key.
    pub verifying_key: Option<KeyPem>,
    /// Public keys of earlier signing keys, still accepted until their tokens expire.
    pub previous_verifying_keys: Vec<KeyPem>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub leeway: Duration,
    pub user_id_claim: String,
    pub auth_header_types: Vec<String>,
    pub update_last_login: bool,
    pub check_user_is_active: bool,
    pub refresh_cookie: bool,
    pub cors_allowed_origins: Vec<String>,
    /// TLS_CERT and TLS_KEY; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Failed sign-ins allowed per username and per client address; `None`: unlimited.
    pub login_rate: Option<Rate>,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        match Settings::from_raw(&Raw::default()) {
            Ok(s) => s,
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }
}

/// One value and where it came from, e.g. `JWTD_LEEWAY`.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    source: String,
}

#[derive(Debug, Default)]
struct Raw(HashMap<&'static str, Value>);

impl Raw {
    fn set(&mut self, name: &'static str, text: String, source: String) {
        self.0.insert(name, Value { text, source });
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.text.as_str()).filter(|s| !s.is_empty())
    }

    fn parse<T>(&self, name: &str, default: T, f: impl Fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        match self.0.get(name) {
            Some(v) if !v.text.trim().is_empty() => {
                f(v.text.trim()).map_err(|e| ConfigError(format!("{}: {e}", v.source)))
            }
            _ => Ok(default),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }

    fn source(&self, name: &str) -> String {
        self.0.get(name).map(|v| v.source.clone()).unwrap_or_else(|| name.to_string())
    }
}

/// Where settings come from, lowest priority first after the built-in defaults.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub config_file: Option<&'a Path>,
    pub env: HashMap<String, String>,
    pub flags: SettingsFlags,
}

/// Merges the sources and validates the result.
pub fn load(sources: &Sources<'_>) -> Result<Settings, ConfigError> {
    let mut raw = Raw::default();
    if let Some(path) = sources.config_file {
        read_toml(path, &mut raw)?;
    }
    for name in NAMES {
        if let Some(v) = sources.env.get(&format!("JWTD_{name}")) {
            raw.set(name, v.clone(), format!("JWTD_{name}"));
        }
    }
    for (name, flag, value) in sources.flags.pairs() {
        if let Some(v) = value {
            raw.set(name, v.clone(), flag.replace('_', "-"));
        }
    }
    Settings::from_raw(&raw)
}

fn read_toml(path: &Path, raw: &mut Raw) -> Result<(), ConfigError> {
    let where_ = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("--config {where_}: cannot read: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError(format!("--config {where_}: not valid TOML: {e}")))?;
    for (key, value) in table {
        let Some(name) = NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(&key)) else {
            return Err(ConfigError(format!("{where_}: unknown setting {key:?}")));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => return Err(ConfigError(format!("{where_}: {key}: unsupported value {other}"))),
        };
        raw.set(name, text, format!("{where_}: {key}"));
    }
    Ok(())
}

impl Settings {
    fn from_raw(raw: &Raw) -> Result<Self, ConfigError> {
        let d = parse_duration;
        let addr = raw.parse("ADDR", ([127, 0, 0, 1], 8000).into(), |s| {
            s.parse::<SocketAddr>().map_err(|_| format!("expected an address like 127.0.0.1:8000, got {s:?}"))
        })?;
        let database_url = raw.parse("DATABASE_URL", DatabaseUrl::default(), DatabaseUrl::parse)?;
        let database_max_connections = raw.parse("DATABASE_MAX_CONNECTIONS", 10usize, |s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("expected a number of connections from 1 to 1000, got {s:?}"))
        })?;
        let access_token_lifetime = raw.parse("ACCESS_TOKEN_LIFETIME", Duration::from_secs(15 * 60), d)?;
        let refresh_token_lifetime = raw.parse("REFRESH_TOKEN_LIFETIME", Duration::from_secs(7 * 86400), d)?;
        let rotate = raw.parse("ROTATE_REFRESH_TOKENS", false, parse_bool)?;
        let blacklist_after = raw.parse("BLACKLIST_AFTER_ROTATION", true, parse_bool)?;
        let grace = raw.parse("ROTATION_GRACE_PERIOD", Duration::from_secs(10), d)?;
        let session_max_lifetime = raw.parse("SESSION_MAX_LIFETIME", Duration::from_secs(30 * 86400), d)?;
        let sliding_token_lifetime = raw.parse("SLIDING_TOKEN_LIFETIME", Duration::from_secs(5 * 60), d)?;
        let sliding_token_refresh_lifetime =
            raw.parse("SLIDING_TOKEN_REFRESH_LIFETIME", Duration::from_secs(86400), d)?;
        let algorithm = raw.parse("ALGORITHM", Algorithm::HS256, |s| s.parse())?;
        let signing_key = match raw.text("SIGNING_KEY") {
            // SimpleJWT takes an HMAC secret literally, whatever it looks like.
            Some(secret) if algorithm.is_hmac() => Some(Secret::new(secret)),
            Some(value) => Some(Secret::new(
                KeyPem::load(value).map_err(|e| ConfigError(format!("{}: {e}", raw.source("SIGNING_KEY"))))?.pem,
            )),
            None => None,
        };
        let verifying_key = raw
            .text("VERIFYING_KEY")
            .map(|v| KeyPem::load(v).map_err(|e| ConfigError(format!("{}: {v:?} {e}", raw.source("VERIFYING_KEY")))))
            .transpose()?;
        let previous_verifying_keys = raw
            .list("PREVIOUS_VERIFYING_KEYS")
            .iter()
            .map(|v| {
                KeyPem::load(v)
                    .map_err(|e| ConfigError(format!("{}: {v:?} {e}", raw.source("PREVIOUS_VERIFYING_KEYS"))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let audience = raw.text("AUDIENCE").map(String::from);
        let issuer = raw.text("ISSUER").map(String::from);
        let leeway = raw.parse("LEEWAY", Duration::ZERO, d)?;
        let user_id_claim = raw.text("USER_ID_CLAIM").unwrap_or("user_id").to_string();
        let mut auth_header_types = raw.list("AUTH_HEADER_TYPES");
        if auth_header_types.is_empty() {
            auth_header_types.push("Bearer".into());
        }
        let update_last_login = raw.parse("UPDATE_LAST_LOGIN", false, parse_bool)?;
        let check_user_is_active = raw.parse("CHECK_USER_IS_ACTIVE", true, parse_bool)?;
        let refresh_cookie = raw.parse("REFRESH_COOKIE", false, parse_bool)?;
        let cors_allowed_origins = raw.list("CORS_ALLOWED_ORIGINS");
        let tls = match (raw.text("TLS_CERT"), raw.text("TLS_KEY")) {
            (None, None) => None,
            (Some(c), Some(k)) => Some(TlsFiles { cert: PathBuf::from(c), key: PathBuf::from(k) }),
            (Some(_), None) => return Err(ConfigError(format!("{}: TLS_KEY must be set too", raw.source("TLS_CERT")))),
            (None, Some(_)) => return Err(ConfigError(format!("{}: TLS_CERT must be set too", raw.source("TLS_KEY")))),
        };
        let login_rate =
            raw.parse("LOGIN_RATE", Some(Rate { count: 10, per: Duration::from_secs(60) }), Rate::parse)?;
        let max_body_bytes = raw.parse("MAX_BODY_BYTES", 65536usize, |s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1024)
                .ok_or_else(|| format!("expected a number of bytes of at least 1024, got {s:?}"))
        })?;
        let log_format = raw.parse("LOG_FORMAT", LogFormat::Text, LogFormat::parse)?;

        let positive = |name: &str, v: Duration| {
            if v.is_zero() {
                Err(ConfigError(format!("{}: must be longer than 0s", raw.source(name))))
            } else {
                Ok(())
            }
        };
        positive("ACCESS_TOKEN_LIFETIME", access_token_lifetime)?;
        positive("REFRESH_TOKEN_LIFETIME", refresh_token_lifetime)?;
        positive("SESSION_MAX_LIFETIME", session_max_lifetime)?;
        positive("SLIDING_TOKEN_LIFETIME", sliding_token_lifetime)?;
        positive("SLIDING_TOKEN_REFRESH_LIFETIME", sliding_token_refresh_lifetime)?;
        if user_id_claim.is_empty()
            || ["token_type", "exp", "iat", "jti", "aud", "iss"].contains(&user_id_claim.as_str())
        {
            return Err(ConfigError(format!("{}: {user_id_claim:?} is a reserved claim", raw.source("USER_ID_CLAIM"))));
        }
        if let Some(key) = &signing_key {
            if algorithm.is_hmac() && key.expose().len() < 32 {
                return Err(ConfigError(format!(
                    "{}: an HMAC secret needs at least 32 bytes (RFC 7518 §3.2 asks for the hash size)",
                    raw.source("SIGNING_KEY")
                )));
            }
        }
        if algorithm.is_hmac() {
            // SimpleJWT verifies HMAC tokens with SIGNING_KEY; a public key here means a mistake.
            for name in ["VERIFYING_KEY", "PREVIOUS_VERIFYING_KEYS"] {
                if raw.text(name).is_some() {
                    return Err(ConfigError(format!(
                        "{}: only for asymmetric algorithms; {algorithm} verifies with SIGNING_KEY",
                        raw.source(name)
                    )));
                }
            }
        }
        for origin in &cors_allowed_origins {
            if origin == "*" {
                return Err(ConfigError(format!(
                    "{}: \"*\" is refused; list exact origins such as https://app.example",
                    raw.source("CORS_ALLOWED_ORIGINS")
                )));
            }
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                return Err(ConfigError(format!(
                    "{}: {origin:?} is not an origin like https://app.example:3000",
                    raw.source("CORS_ALLOWED_ORIGINS")
                )));
            }
        }

        Ok(Settings {
            addr,
            database_url,
            database_max_connections,
            access_token_lifetime,
            refresh_token_lifetime,
            rotation: if rotate { RotationPolicy::On { blacklist_after, grace } } else { RotationPolicy::Off },
            session_max_lifetime,
            sliding_token_lifetime,
            sliding_token_refresh_lifetime,
            algorithm,
            signing_key,
            verifying_key,
            previous_verifying_keys,
            audience,
            issuer,
            leeway,
            user_id_claim,
            auth_header_types,
            update_last_login,
            check_user_is_active,
            refresh_cookie,
            cors_allowed_origins,
            tls,
            login_rate,
            max_body_bytes,
            log_format,
        })
    }

    /// The effective settings as `NAME = value` lines, secrets masked (`jwtd config check`).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let dur = |d: Duration| values::format_duration(d);
        let (rotate, blacklist_after, grace) = match self.rotation {
            RotationPolicy::Off => (false, true, Duration::from_secs(10)),
            RotationPolicy::On { blacklist_after, grace } => (true, blacklist_after, grace),
        };
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(unset)".into());
        vec![
            ("ADDR", self.addr.to_string()),
            ("DATABASE_URL", self.database_url.masked()),
            ("DATABASE_MAX_CONNECTIONS", self.database_max_connections.to_string()),
            ("ACCESS_TOKEN_LIFETIME", dur(self.access_token_lifetime)),
            ("REFRESH_TOKEN_LIFETIME", dur(self.refresh_token_lifetime)),
            ("ROTATE_REFRESH_TOKENS", rotate.to_string()),
            ("BLACKLIST_AFTER_ROTATION", blacklist_after.to_string()),
            ("ROTATION_GRACE_PERIOD", dur(grace)),
            ("SESSION_MAX_LIFETIME", dur(self.session_max_lifetime)),
            ("SLIDING_TOKEN_LIFETIME", dur(self.sliding_token_lifetime)),
            ("SLIDING_TOKEN_REFRESH_LIFETIME", dur(self.sliding_token_refresh_lifetime)),
            ("ALGORITHM", self.algorithm.to_string()),
            (
                "SIGNING_KEY",
                if self.signing_key.is_some() { "****".into() } else { "(generated, kept in the database)".into() },
            ),
            (
                "VERIFYING_KEY",
                match &self.verifying_key {
                    Some(key) => key.origin(),
                    None if self.algorithm.is_hmac() => "(unset)".into(),
                    None => "(derived from SIGNING_KEY)".into(),
                },
            ),
            (
                "PREVIOUS_VERIFYING_KEYS",
                self.previous_verifying_keys.iter().map(KeyPem::origin).collect::<Vec<_>>().join(","),
            ),
            ("AUDIENCE", opt(&self.audience)),
            ("ISSUER", opt(&self.issuer)),
            ("LEEWAY", dur(self.leeway)),
            ("USER_ID_CLAIM", self.user_id_claim.clone()),
            ("AUTH_HEADER_TYPES", self.auth_header_types.join(",")),
            ("UPDATE_LAST_LOGIN", self.update_last_login.to_string()),
            ("CHECK_USER_IS_ACTIVE", self.check_user_is_active.to_string()),
            ("REFRESH_COOKIE", self.refresh_cookie.to_string()),
            ("CORS_ALLOWED_ORIGINS", self.cors_allowed_origins.join(",")),
            ("TLS_CERT", self.tls.as_ref().map(|t| t.cert.display().to_string()).unwrap_or_else(|| "(unset)".into())),
            ("TLS_KEY", self.tls.as_ref().map(|t| t.key.display().to_string()).unwrap_or_else(|| "(unset)".into())),
            ("LOGIN_RATE", self.login_rate.map(|r| r.to_string()).unwrap_or_else(|| "off".into())),
            ("MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("LOG_FORMAT", self.log_format.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = Settings::default();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8000");
        assert_eq!(s.access_token_lifetime, Duration::from_secs(900));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(7 * 86400));
        assert_eq!(s.rotation, RotationPolicy::Off);
        assert_eq!(s.login_rate, Some(Rate { count: 10, per: Duration::from_secs(60) }));
        assert_eq!(s.max_body_bytes, 65536);
        assert_eq!(s.database_max_connections, 10);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwtd.toml");
        std::fs::write(&file, "access_token_lifetime = \"1m\"\nleeway = 3\nrotate_refresh_tokens = true\n").unwrap();
        let sources = Sources {
            config_file: Some(&file),
            env: env(&[("JWTD_ACCESS_TOKEN_LIFETIME", "2m"), ("JWTD_LEEWAY", "4")]),
            flags: SettingsFlags { access_token_lifetime: Some("3m".into()), ..Default::default() },
        };
        let s = load(&sources).unwrap();
        assert_eq!(s.access_token_lifetime, Duration::from_secs(180));
        assert_eq!(s.leeway, Duration::from_secs(4));
        assert!(matches!(s.rotation, RotationPolicy::On { .. }));
    }

    #[test]
    fn errors_name_the_setting_and_source() {
        let sources = Sources { env: env(&[("JWTD_ACCESS_TOKEN_LIFETIME", "abc")]), ..Default::default() };
        let err = load(&sources).unwrap_err().to_string();
        assert!(err.starts_with("JWTD_ACCESS_TOKEN_LIFETIME: "), "{err}");
        let sources = Sources { env: env(&[("JWTD_SIGNING_KEY", "short")]), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().starts_with("JWTD_SIGNING_KEY: "));
        let sources = Sources { env: env(&[("JWTD_CORS_ALLOWED_ORIGINS", "*")]), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().starts_with("JWTD_CORS_ALLOWED_ORIGINS: "));
    }

    #[test]
    fn asymmetric_keys_are_read_from_files_or_taken_as_pem_text() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBwq\n-----END PRIVATE KEY-----\n";
        let private = dir.path().join("private.pem");
        let old = dir.path().join("old.pem");
        std::fs::write(&private, pem).unwrap();
        std::fs::write(&old, "-----BEGIN PUBLIC KEY-----\nold\n-----END PUBLIC KEY-----\n").unwrap();
        let path = |p: &Path| p.to_str().unwrap().to_string();
        let previous = format!("{}, -----BEGIN PUBLIC KEY-----\\ninline\\n-----END PUBLIC KEY-----", path(&old));
        let sources = Sources {
            env: env(&[
                ("JWTD_ALGORITHM", "EdDSA"),
                ("JWTD_SIGNING_KEY", &path(&private)),
                ("JWTD_PREVIOUS_VERIFYING_KEYS", &previous),
            ]),
            ..Default::default()
        };
        let s = load(&sources).unwrap();
        assert_eq!(s.signing_key.as_ref().unwrap().expose(), pem);
        assert_eq!(s.verifying_key, None);
        assert_eq!(s.previous_verifying_keys.len(), 2);
        assert_eq!(s.previous_verifying_keys[0].path.as_deref(), Some(old.as_path()));
        assert_eq!(s.previous_verifying_keys[1].pem, "-----BEGIN PUBLIC KEY-----\ninline\n-----END PUBLIC KEY-----");
        let described = format!("{:?} {:?}", s, s.describe());
        assert!(!described.contains("MC4CAQ") && !described.contains("inline"), "{described}");

        let inline =
            Sources { env: env(&[("JWTD_ALGORITHM", "EdDSA"), ("JWTD_SIGNING_KEY", pem)]), ..Default::default() };
        assert_eq!(load(&inline).unwrap().signing_key.unwrap().expose(), pem.trim_end());
    }

    #[test]
    fn key_setting_errors_name_the_setting_and_never_echo_a_secret() {
        let secret = "an-hmac-secret-of-more-than-32-bytes-0123";
        let hmac_secret_with_rs256 =
            Sources { env: env(&[("JWTD_ALGORITHM", "RS256"), ("JWTD_SIGNING_KEY", secret)]), ..Default::default() };
        let err = load(&hmac_secret_with_rs256).unwrap_err().to_string();
        assert!(err.starts_with("JWTD_SIGNING_KEY: is neither PEM text"), "{err}");
        assert!(!err.contains(secret), "{err}");
        // An HMAC secret that happens to name a file is still the secret itself, as in SimpleJWT.
        let hmac =
            Sources { env: env(&[("JWTD_SIGNING_KEY", "/etc/hostname-and-more-than-32-bytes")]), ..Default::default() };
        assert_eq!(load(&hmac).unwrap().signing_key.unwrap().expose(), "/etc/hostname-and-more-than-32-bytes");
        for name in ["JWTD_VERIFYING_KEY", "JWTD_PREVIOUS_VERIFYING_KEYS"] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("public.pem");
            std::fs::write(&file, "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n").unwrap();
            let with_hmac = Sources { env: env(&[(name, file.to_str().unwrap())]), ..Default::default() };
            let err = load(&with_hmac).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{name}: only for asymmetric algorithms")), "{err}");
            let missing =
                Sources { env: env(&[("JWTD_ALGORITHM", "ES256"), (name, "/no/such.pem")]), ..Default::default() };
            assert!(load(&missing).unwrap_err().to_string().starts_with(&format!("{name}: \"/no/such.pem\"")));
        }
    }

    #[test]
    fn unknown_toml_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwtd.toml");
        std::fs::write(&file, "acess_token_lifetime = \"1m\"\n").unwrap();
        let sources = Sources { config_file: Some(&file), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().contains("unknown setting"));
    }
}
