//! Settings (SPEC §5): each declared once in `table` (name, type, default, parser, help), read
//! from one raw layer per source (`sources`), merged default < TOML < env < flags, parsed into
//! typed `Values`, then validated once into [`Settings`], where one setting is checked against
//! another. Errors name the setting and where it came from. Must not: read the environment
//! itself (`main` passes it in), parse keys (that is `tokens`).

mod delivery;
mod routes;
mod sources;
pub(crate) mod table;
mod users;
mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use delivery::{DeliverySettings, ResetRates, SmtpServer, SmtpTarget, SmtpTls, WebhookTarget};
pub use routes::{Route, Routes};
pub use sources::Sources;
pub(crate) use table::SettingsFlags;
pub use users::{IdType, LoginField, TokenClaim, TokenClaims};
pub use values::{DatabaseTls, DatabaseUrl, LogFormat, Rate, SignUpPolicy};

pub(crate) use users::REGISTERED_CLAIMS;
#[cfg(test)]
pub(crate) use values::parse_networks;
pub(crate) use values::{mask_url, sslmode};

use crate::tokens::{Algorithm, TokenType};
use table::Values;

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
    /// DATABASE_TLS; `None`: the URL's `sslmode` decides (see `store::pg_tls`).
    pub database_tls: Option<DatabaseTls>,
    /// DATABASE_CA_CERT: PEM file of the CA PostgreSQL's certificate must chain to.
    pub database_ca_cert: Option<PathBuf>,
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
    /// Earlier HMAC secrets, still accepted until their tokens expire; never used to sign.
    pub signing_key_fallbacks: Vec<Secret>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    pub leeway: Duration,
    pub user_id_claim: String,
    /// USERNAME_FIELD: the body field users sign in with.
    pub username_field: LoginField,
    /// USER_ID_TYPE: the id tokens carry.
    pub user_id_type: IdType,
    /// TOKEN_CLAIMS: user fields written into refresh and sliding tokens.
    pub token_claims: TokenClaims,
    pub auth_header_types: Vec<String>,
    /// Token types accepted as Bearer (AUTH_TOKEN_CLASSES), in the order tried; never empty.
    pub auth_token_classes: Vec<TokenType>,
    /// The routes served and their paths.
    pub routes: Routes,
    pub update_last_login: bool,
    pub check_user_is_active: bool,
    pub refresh_cookie: bool,
    pub cors_allowed_origins: Vec<String>,
    /// TLS_CERT and TLS_KEY; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Failed sign-ins allowed per username and per client address; `None`: unlimited.
    pub login_rate: Option<Rate>,
    /// SIGNUP: closed answers sign-up with 403.
    pub signup: SignUpPolicy,
    /// Sign-up requests allowed per client address; `None`: unlimited.
    pub signup_rate: Option<Rate>,
    /// REQUIRE_EMAIL_VERIFICATION: sign-up creates an inactive account awaiting activation.
    pub require_email_verification: bool,
    /// PASSWORD_RESET_TIMEOUT: how long reset and activation links work.
    pub password_reset_timeout: Duration,
    /// PASSWORD_RESET_RATE.
    pub reset_rates: ResetRates,
    /// Where mails and events go; with nothing set, the reset and activation routes are 404.
    pub delivery: DeliverySettings,
    /// Proxies whose `X-Forwarded-For` is believed (`http::ClientAddr`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// SERVICE_TOKENS: who may introspect and read the revocation feed; empty: nobody (404).
    pub service_tokens: Vec<Secret>,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// METRICS_ADDR: `/metrics` is served there alone; `None`: on ADDR.
    pub metrics_addr: Option<SocketAddr>,
    /// Connections served at once (MAX_CONNECTIONS).
    pub max_connections: usize,
    /// Requests handled at once (MAX_IN_FLIGHT).
    pub max_in_flight: usize,
    /// How long a request waits for its turn (QUEUE_TIMEOUT).
    pub queue_timeout: Duration,
    /// From request head to response head (REQUEST_TIMEOUT).
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight (DRAIN_TIMEOUT).
    pub drain_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        match Values::parse(&sources::Raw::default()).and_then(|v| Settings::from_values(&v)) {
            Ok(s) => s,
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }
}

/// Settings as loaded, with what `jwtd config check` prints of them.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub settings: Settings,
    /// Every setting as `(NAME, value)`, in declaration order, secrets masked.
    pub described: Vec<(&'static str, String)>,
}

/// Merges the sources and validates the result. Names that are no setting are added to
/// `warnings` (also when the settings are refused), for the caller to report once logging runs.
pub(crate) fn read(sources: &Sources<'_>, warnings: &mut Vec<String>) -> Result<Loaded, ConfigError> {
    let values = Values::parse(&sources::layers(sources, warnings)?)?;
    Ok(Loaded { settings: Settings::from_values(&values)?, described: values.describe() })
}

/// [`read`], logging the warnings.
pub fn load(sources: &Sources<'_>) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();
    let loaded = read(sources, &mut warnings);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded?.settings)
}

impl Settings {
    /// The settings of `v`, where one setting is checked against another.
    fn from_values(v: &Values) -> Result<Self, ConfigError> {
        let algorithm = v.algorithm.value;
        let signing_key = match &v.signing_key.value {
            // SimpleJWT takes an HMAC secret literally, whatever it looks like.
            Some(secret) if algorithm.is_hmac() => {
                if secret.expose().len() < 32 {
                    return Err(v
                        .signing_key
                        .error("an HMAC secret needs at least 32 bytes (RFC 7518 §3.2 asks for the hash size)"));
                }
                Some(secret.clone())
            }
            Some(value) => Some(Secret::new(KeyPem::load(value.expose()).map_err(|e| v.signing_key.error(e))?.pem)),
            None => None,
        };
        if algorithm.is_hmac() {
            // SimpleJWT verifies HMAC tokens with SIGNING_KEY; a public key here means a mistake.
            let only_asymmetric = |source: &str| {
                ConfigError(format!("{source}: only for asymmetric algorithms; {algorithm} verifies with SIGNING_KEY"))
            };
            if v.verifying_key.value.is_some() {
                return Err(only_asymmetric(&v.verifying_key.source));
            }
            if !v.previous_verifying_keys.value.is_empty() {
                return Err(only_asymmetric(&v.previous_verifying_keys.source));
            }
            if v.signing_key_fallbacks.value.iter().any(|secret| secret.expose().len() < 32) {
                return Err(v.signing_key_fallbacks.error(
                    "an HMAC secret needs at least 32 bytes (RFC 7518 §3.2 asks for the hash size); \
                     a shorter one lets anyone who guesses it sign tokens jwtd accepts",
                ));
            }
        } else if !v.signing_key_fallbacks.value.is_empty() {
            return Err(ConfigError(format!(
                "{}: only for HMAC algorithms; {algorithm} keeps earlier keys in PREVIOUS_VERIFYING_KEYS",
                v.signing_key_fallbacks.source
            )));
        }
        let tls = match (&v.tls_cert.value, &v.tls_key.value) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
            (Some(_), None) => return Err(v.tls_cert.error(format!("{} must be set too", v.tls_key.setting.name))),
            (None, Some(_)) => return Err(v.tls_key.error(format!("{} must be set too", v.tls_cert.setting.name))),
        };
        if let DatabaseUrl::Sqlite(_) = v.database_url.value {
            // A TLS setting meant for PostgreSQL must not pass silently against a local file.
            if v.database_tls.value.is_some() {
                return Err(v.database_tls.error("only for PostgreSQL; DATABASE_URL names an SQLite file"));
            }
            if v.database_ca_cert.value.is_some() {
                return Err(v.database_ca_cert.error("only for PostgreSQL; DATABASE_URL names an SQLite file"));
            }
        }
        if let Some(metrics_addr) = v.metrics_addr.value {
            if metrics_addr == v.addr.value && metrics_addr.port() != 0 {
                return Err(v.metrics_addr.error(format!("must differ from ADDR ({metrics_addr})")));
            }
        }
        let delivery = delivery_settings(v)?;
        if v.require_email_verification.value && !delivery.enabled() {
            return Err(v.require_email_verification.error(format!(
                "activation links need a way out: set {} or {}",
                v.webhook_url.setting.name, v.smtp_url.setting.name
            )));
        }
        let rotation = if v.rotate_refresh_tokens.value {
            RotationPolicy::On {
                blacklist_after: v.blacklist_after_rotation.value,
                grace: v.rotation_grace_period.value,
            }
        } else {
            RotationPolicy::Off
        };
        Ok(Settings {
            addr: v.addr.value,
            database_url: v.database_url.value.clone(),
            database_max_connections: v.database_max_connections.value,
            database_tls: v.database_tls.value,
            database_ca_cert: v.database_ca_cert.value.clone(),
            access_token_lifetime: v.access_token_lifetime.value,
            refresh_token_lifetime: v.refresh_token_lifetime.value,
            rotation,
            session_max_lifetime: v.session_max_lifetime.value,
            sliding_token_lifetime: v.sliding_token_lifetime.value,
            sliding_token_refresh_lifetime: v.sliding_token_refresh_lifetime.value,
            algorithm,
            signing_key,
            verifying_key: v.verifying_key.value.clone(),
            previous_verifying_keys: v.previous_verifying_keys.value.clone(),
            signing_key_fallbacks: v.signing_key_fallbacks.value.clone(),
            audience: v.audience.value.clone(),
            issuer: v.issuer.value.clone(),
            leeway: v.leeway.value,
            user_id_claim: v.user_id_claim.value.clone(),
            username_field: v.username_field.value,
            user_id_type: v.user_id_type.value,
            token_claims: v.token_claims.value.clone(),
            auth_header_types: v.auth_header_types.value.clone(),
            auth_token_classes: v.auth_token_classes.value.clone(),
            routes: v.routes.value.clone(),
            update_last_login: v.update_last_login.value,
            check_user_is_active: v.check_user_is_active.value,
            refresh_cookie: v.refresh_cookie.value,
            cors_allowed_origins: v.cors_allowed_origins.value.clone(),
            tls,
            login_rate: v.login_rate.value,
            signup: v.signup.value,
            signup_rate: v.signup_rate.value,
            require_email_verification: v.require_email_verification.value,
            password_reset_timeout: v.password_reset_timeout.value,
            reset_rates: v.password_reset_rate.value,
            delivery,
            trusted_proxies: v.trusted_proxies.value.clone(),
            service_tokens: v.service_tokens.value.clone(),
            max_body_bytes: v.max_body_bytes.value,
            log_format: v.log_format.value,
            metrics_addr: v.metrics_addr.value,
            max_connections: v.max_connections.value,
            max_in_flight: v.max_in_flight.value,
            queue_timeout: v.queue_timeout.value,
            request_timeout: v.request_timeout.value,
            drain_timeout: v.drain_timeout.value,
        })
    }
}

/// WEBHOOK_URL/WEBHOOK_SECRET, SMTP_URL/EMAIL_FROM and FRONTEND_URL, each pair complete, and
/// FRONTEND_URL set whenever links can leave.
fn delivery_settings(v: &Values) -> Result<DeliverySettings, ConfigError> {
    let webhook = match (&v.webhook_url.value, &v.webhook_secret.value) {
        (None, None) => None,
        (Some(url), Some(secret)) => Some(WebhookTarget {
            url: url.clone(),
            key: delivery::webhook_key(secret).map_err(|e| v.webhook_secret.error(e))?,
        }),
        (Some(_), None) => {
            return Err(v
                .webhook_url
                .error(format!("{} must be set too (webhooks are signed)", v.webhook_secret.setting.name)))
        }
        (None, Some(_)) => return Err(v.webhook_secret.error(format!("only with {}", v.webhook_url.setting.name))),
    };
    let smtp = match (&v.smtp_url.value, &v.email_from.value) {
        (None, None) => None,
        (Some(url), Some(from)) => {
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(v.email_from.error(format!("{from:?} is not a mail address")));
            }
            Some(SmtpTarget { server: SmtpServer::parse(url).map_err(|e| v.smtp_url.error(e))?, from: from.clone() })
        }
        (Some(_), None) => return Err(v.smtp_url.error(format!("{} must be set too", v.email_from.setting.name))),
        (None, Some(_)) => return Err(v.email_from.error(format!("only with {}", v.smtp_url.setting.name))),
    };
    let delivery = DeliverySettings { frontend_url: v.frontend_url.value.clone(), webhook, smtp };
    if delivery.enabled() && delivery.frontend_url.is_none() {
        return Err(ConfigError(format!(
            "{}: must be set with {} or {}: the reset and activation links point there",
            v.frontend_url.setting.name, v.webhook_url.setting.name, v.smtp_url.setting.name
        )));
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::table::{ENV_PREFIX, SETTINGS};
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
            env: env(&[(table::ACCESS_TOKEN_LIFETIME.env, "2m"), (table::LEEWAY.env, "4")]),
            flags: SettingsFlags { access_token_lifetime: Some("3m".into()), ..Default::default() },
        };
        let s = load(&sources).unwrap();
        assert_eq!(s.access_token_lifetime, Duration::from_secs(180));
        assert_eq!(s.leeway, Duration::from_secs(4));
        assert!(matches!(s.rotation, RotationPolicy::On { .. }));
    }

    #[test]
    fn errors_name_the_setting_and_source() {
        let sources = Sources { env: env(&[(table::ACCESS_TOKEN_LIFETIME.env, "abc")]), ..Default::default() };
        let err = load(&sources).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", table::ACCESS_TOKEN_LIFETIME.env)), "{err}");
        let sources = Sources { env: env(&[(table::SIGNING_KEY.env, "short")]), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().starts_with(&format!("{}: ", table::SIGNING_KEY.env)));
        let sources = Sources { env: env(&[(table::CORS_ALLOWED_ORIGINS.env, "*")]), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().starts_with(&format!("{}: ", table::CORS_ALLOWED_ORIGINS.env)));
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
                (table::ALGORITHM.env, "EdDSA"),
                (table::SIGNING_KEY.env, &path(&private)),
                (table::PREVIOUS_VERIFYING_KEYS.env, &previous),
            ]),
            ..Default::default()
        };
        let s = load(&sources).unwrap();
        assert_eq!(s.signing_key.as_ref().unwrap().expose(), pem);
        assert_eq!(s.verifying_key, None);
        assert_eq!(s.previous_verifying_keys.len(), 2);
        assert_eq!(s.previous_verifying_keys[0].path.as_deref(), Some(old.as_path()));
        assert_eq!(s.previous_verifying_keys[1].pem, "-----BEGIN PUBLIC KEY-----\ninline\n-----END PUBLIC KEY-----");
        let described = format!("{:?} {:?}", s, read(&sources, &mut Vec::new()).unwrap().described);
        assert!(!described.contains("MC4CAQ") && !described.contains("inline"), "{described}");

        let inline = Sources {
            env: env(&[(table::ALGORITHM.env, "EdDSA"), (table::SIGNING_KEY.env, pem)]),
            ..Default::default()
        };
        assert_eq!(load(&inline).unwrap().signing_key.unwrap().expose(), pem.trim_end());
    }

    #[test]
    fn key_setting_errors_name_the_setting_and_never_echo_a_secret() {
        let secret = "an-hmac-secret-of-more-than-32-bytes-0123";
        let hmac_secret_with_rs256 = Sources {
            env: env(&[(table::ALGORITHM.env, "RS256"), (table::SIGNING_KEY.env, secret)]),
            ..Default::default()
        };
        let err = load(&hmac_secret_with_rs256).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: is neither PEM text", table::SIGNING_KEY.env)), "{err}");
        assert!(!err.contains(secret), "{err}");
        // An HMAC secret that happens to name a file is still the secret itself, as in SimpleJWT.
        let hmac = Sources {
            env: env(&[(table::SIGNING_KEY.env, "/etc/hostname-and-more-than-32-bytes")]),
            ..Default::default()
        };
        assert_eq!(load(&hmac).unwrap().signing_key.unwrap().expose(), "/etc/hostname-and-more-than-32-bytes");
        for name in [table::VERIFYING_KEY.env, table::PREVIOUS_VERIFYING_KEYS.env] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("public.pem");
            std::fs::write(&file, "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n").unwrap();
            let with_hmac = Sources { env: env(&[(name, file.to_str().unwrap())]), ..Default::default() };
            let err = load(&with_hmac).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{name}: only for asymmetric algorithms")), "{err}");
            let missing =
                Sources { env: env(&[(table::ALGORITHM.env, "ES256"), (name, "/no/such.pem")]), ..Default::default() };
            assert!(load(&missing).unwrap_err().to_string().starts_with(&format!("{name}: \"/no/such.pem\"")));
        }
    }

    fn warnings_of(sources: &Sources<'_>) -> Vec<String> {
        let mut warnings = Vec::new();
        read(sources, &mut warnings).unwrap();
        warnings
    }

    #[test]
    fn a_misspelt_toml_key_is_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwtd.toml");
        std::fs::write(&file, "acess_token_lifetime = \"1m\"\nleeway = 3\n").unwrap();
        let sources = Sources { config_file: Some(&file), ..Default::default() };
        assert_eq!(
            warnings_of(&sources),
            [format!("{}: acess_token_lifetime: not a setting of jwtd, ignored", file.display())]
        );
        let s = load(&sources).unwrap();
        assert_eq!((s.access_token_lifetime, s.leeway), (Duration::from_secs(900), Duration::from_secs(3)));
    }

    #[test]
    fn an_unknown_variable_with_the_prefix_is_a_warning_naming_it() {
        let misspelt = format!("{ENV_PREFIX}ACESS_TOKEN_LIFETIME");
        let sources = Sources { env: env(&[(&misspelt, "1m"), ("HOME", "/root")]), ..Default::default() };
        assert_eq!(warnings_of(&sources), [format!("{misspelt}: not a setting of jwtd, ignored")]);
    }

    #[test]
    fn the_environment_beats_the_file_and_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwtd.toml");
        std::fs::write(&file, "refresh_token_lifetime = \"1d\"\nlog_format = \"json\"\n").unwrap();
        let sources = Sources {
            config_file: Some(&file),
            env: env(&[(table::REFRESH_TOKEN_LIFETIME.env, "2d"), (table::LEEWAY.env, "5s")]),
            ..Default::default()
        };
        let s = load(&sources).unwrap();
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(2 * 86400));
        assert_eq!(s.leeway, Duration::from_secs(5));
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn every_setting_is_read_from_its_variable() {
        for setting in SETTINGS {
            assert_eq!(setting.env, format!("{ENV_PREFIX}{}", setting.name));
            assert_eq!(setting.key, setting.name.to_ascii_lowercase());
            let sources = Sources { env: env(&[(setting.env, "\u{1}not a value")]), ..Default::default() };
            if let Err(e) = load(&sources) {
                assert!(e.to_string().starts_with(&format!("{}: ", setting.env)), "{e}");
            }
        }
    }

    #[test]
    fn a_bool_flag_may_be_given_bare() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            flags: SettingsFlags,
        }
        let bare = Cmd::try_parse_from(["jwtd", "--refresh-cookie", "--addr", "127.0.0.1:9"]).unwrap().flags;
        assert_eq!(bare.refresh_cookie.as_deref(), Some("true"));
        let valued = Cmd::try_parse_from(["jwtd", "--refresh-cookie", "false"]).unwrap().flags;
        assert_eq!(valued.refresh_cookie.as_deref(), Some("false"));
        let s = load(&Sources { flags: bare, ..Default::default() }).unwrap();
        assert!(s.refresh_cookie);
        assert!(!load(&Sources { flags: valued, ..Default::default() }).unwrap().refresh_cookie);
        // Other settings take a value.
        assert!(Cmd::try_parse_from(["jwtd", "--addr"]).is_err());
    }

    #[test]
    fn config_check_lists_every_setting_with_secrets_masked() {
        let secret = "a-very-secret-signing-key-0123456789abcdef";
        let sources = Sources {
            env: env(&[(table::SIGNING_KEY.env, secret), (table::DATABASE_URL.env, "postgres://jwtd:hunter2@db/jwtd")]),
            ..Default::default()
        };
        let described = read(&sources, &mut Vec::new()).unwrap().described;
        let names: Vec<&str> = described.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>());
        let text = format!("{described:?}");
        assert!(!text.contains(secret) && !text.contains("hunter2"), "{text}");
        let value = |name: &str| described.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(value("SIGNING_KEY"), Some("****"));
        assert_eq!(value("DATABASE_URL"), Some("postgres://jwtd:****@db/jwtd"));
        assert_eq!(value("ACCESS_TOKEN_LIFETIME"), Some("15m"));
        assert_eq!(value("LOGIN_RATE"), Some("10/min"));
        assert_eq!(value("AUDIENCE"), Some("(unset)"));
    }

    #[test]
    fn secrets_are_read_from_their_file_setting_and_both_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let secret = "a-secret-read-from-a-file-0123456789abcdef";
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let path = file.to_str().unwrap();
        let sources = Sources { env: env(&[(table::SIGNING_KEY_FILE.env, path)]), ..Default::default() };
        assert_eq!(load(&sources).unwrap().signing_key.unwrap().expose(), secret);
        let described = format!("{:?}", read(&sources, &mut Vec::new()).unwrap().described);
        assert!(!described.contains(secret), "{described}");

        let both = Sources {
            env: env(&[(table::SIGNING_KEY_FILE.env, path), (table::SIGNING_KEY.env, secret)]),
            ..Default::default()
        };
        let err = load(&both).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: SIGNING_KEY is set too", table::SIGNING_KEY_FILE.env)), "{err}");
        assert!(!err.contains(secret), "{err}");

        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://jwtd:hunter2@db/jwtd").unwrap();
        let sources =
            Sources { env: env(&[(table::DATABASE_URL_FILE.env, url.to_str().unwrap())]), ..Default::default() };
        assert_eq!(
            load(&sources).unwrap().database_url,
            DatabaseUrl::Postgres("postgres://jwtd:hunter2@db/jwtd".into())
        );
        let missing = Sources { env: env(&[(table::SIGNING_KEY_FILE.env, "/no/such/key")]), ..Default::default() };
        assert!(load(&missing).unwrap_err().to_string().starts_with(table::SIGNING_KEY_FILE.env));
    }

    #[test]
    fn a_secret_given_as_a_flag_is_a_warning() {
        let flags =
            SettingsFlags { signing_key: Some("a-secret-on-the-command-line-0123456789".into()), ..Default::default() };
        let warnings = warnings_of(&Sources { flags, ..Default::default() });
        assert!(
            warnings.iter().any(|w| w.starts_with("--signing-key: ") && w.contains(table::SIGNING_KEY_FILE.env)),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_database_url_flag_is_a_warning_only_when_it_holds_a_password() {
        let warned = |url: &str| {
            let flags = SettingsFlags { database_url: Some(url.into()), ..Default::default() };
            warnings_of(&Sources { flags, ..Default::default() }).iter().any(|w| w.starts_with("--database-url: "))
        };
        assert!(warned("postgres://jwtd:secret@db.internal/jwtd"));
        assert!(!warned("postgres://jwtd@db.internal/jwtd"));
        assert!(!warned("sqlite:///var/lib/jwtd/jwtd.db"));
    }

    #[test]
    fn an_invalid_trusted_proxy_names_the_setting() {
        let sources = Sources { env: env(&[(table::TRUSTED_PROXIES.env, "10.0.0.0/8,nginx")]), ..Default::default() };
        assert!(load(&sources).unwrap_err().to_string().starts_with(table::TRUSTED_PROXIES.env));
        let sources = Sources { env: env(&[(table::SIGNUP.env, "closed")]), ..Default::default() };
        assert_eq!(load(&sources).unwrap().signup, SignUpPolicy::Closed);
        assert_eq!(Settings::default().signup_rate, Some(Rate { count: 20, per: Duration::from_secs(3600) }));
    }

    #[test]
    fn every_default_is_valid_and_stated_in_the_help() {
        for setting in SETTINGS {
            let sources = Sources { env: env(&[(setting.env, setting.default)]), ..Default::default() };
            assert!(load(&sources).is_ok(), "{}", setting.name);
            if !setting.default.is_empty() {
                assert!(setting.help().ends_with(&format!("[default: {}]", setting.default)), "{}", setting.name);
            }
        }
    }
}
