//! The declaration of every setting (SPEC §5), one entry each: name, field and Rust type, default
//! (as text, parsed like any given value), parser, and help. The TOML keys (the field name), the
//! environment variables (the name after the prefix), the flags (the field in kebab case),
//! `jwtd config check`'s lines and the typed [`Values`] that `Settings` is built from all come
//! from this table, so a misspelt setting does not compile. Must not: validate one setting
//! against another (that is `Settings::from_values`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::delivery::{parse_http_url, ResetRates};
use super::routes::Routes;
use super::sources::{Given, Raw};
use super::users::{IdType, LoginField, TokenClaims};
use super::values::{
    optional, parse_body_bytes, parse_claim_name, parse_connections, parse_count, parse_keys, parse_lifetime,
    parse_networks, parse_nonempty_list, parse_origins, parse_pem_path, parse_secrets, parse_service_tokens,
    parse_token_classes, DatabaseTls, DatabaseUrl, LogFormat, Parse, Rate, Show, SignUpPolicy,
};
use super::{ConfigError, KeyPem, Secret};
use crate::tokens::{Algorithm, TokenType};

/// The prefix of the environment variables, in one place for `concat!`.
macro_rules! env_prefix {
    () => {
        "JWTD_"
    };
}

/// What every setting's environment variable starts with.
pub const ENV_PREFIX: &str = env_prefix!();

/// Secrets that may instead be read from a file named by a second setting, `NAME_FILE`:
/// (the secret, its file setting). Giving both is an error.
pub const SECRET_FILES: &[(&Setting, &Setting)] =
    &[(&SIGNING_KEY, &SIGNING_KEY_FILE), (&DATABASE_URL, &DATABASE_URL_FILE)];

/// One setting as declared.
#[derive(Debug)]
pub struct Setting {
    /// As in SPEC §5 and SimpleJWT, e.g. `ACCESS_TOKEN_LIFETIME`.
    pub name: &'static str,
    /// The environment variable: the name after [`ENV_PREFIX`].
    pub env: &'static str,
    /// The TOML key (`access_token_lifetime`); its flag is the same in kebab case.
    pub key: &'static str,
    /// The value of a setting that no source gives, as text; empty: unset.
    pub default: &'static str,
    help: &'static str,
    /// What `jwtd config check` prints for the setting while it is unset.
    unset: &'static str,
    /// Its flag may be given bare, meaning `true`.
    bare_flag: bool,
    /// Its value reaches the parser untrimmed.
    pub(super) literal: bool,
}

impl Setting {
    /// `--access-token-lifetime`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// The help text, ending with the default when there is one.
    pub fn help(&self) -> String {
        let help = self.help.trim();
        if self.default.is_empty() {
            help.to_string()
        } else {
            format!("{help} [default: {}]", self.default)
        }
    }

    /// The setting's flag, global to the command it is added to, so that `jwtd user create ada
    /// --database-url …` reaches `user`'s flags.
    fn arg(&self) -> clap::Arg {
        let arg = clap::Arg::new(self.name).long(self.key.replace('_', "-")).help(self.help()).global(true);
        if self.bare_flag {
            arg.value_name("BOOL").num_args(0..=1).default_missing_value("true")
        } else {
            arg.value_name("VALUE")
        }
    }
}

/// Declares the settings: per entry, doc lines (the help), optionally `#[unset = "…"]` (what
/// `config check` prints while it is unset), and `NAME field: Type = "default"`, then `, parser`
/// when the setting takes a narrower reading than its type's [`Parse`] (`parse_lifetime`: a
/// `Duration` longer than zero). `parser` is any `Fn(&str) -> Result<Type, String>`; `Type` needs
/// a [`Show`] impl (`values.rs`). A new setting is one entry here, then its field in `Settings`
/// read from `Values` in `Settings::from_values`.
macro_rules! settings {
    ($(
        $(#[doc = $help:literal])+
        $(#[unset = $unset:literal])?
        $name:ident $field:ident: $ty:ty = $default:literal $(, $parse:expr)?;
    )*) => {
        $(
            pub const $name: Setting = Setting {
                name: stringify!($name),
                env: concat!(env_prefix!(), stringify!($name)),
                key: stringify!($field),
                default: $default,
                help: concat!($($help),+),
                unset: settings!(@unset $($unset)?),
                bare_flag: <$ty as Show>::BARE_FLAG,
                literal: <$ty as Show>::LITERAL,
            };
        )*

        /// Every setting, in the order `jwtd config check` prints them.
        pub const SETTINGS: &[Setting] = &[$($name),*];

        /// The position of each setting in [`SETTINGS`].
        #[allow(non_camel_case_types)]
        enum Index {
            $($field),*
        }

        /// Every setting as an optional `--kebab-case` flag (highest priority), given to the
        /// commands that read settings.
        #[derive(Debug, Default, Clone)]
        pub struct SettingsFlags {
            $(
                $(#[doc = $help])+
                pub $field: Option<String>,
            )*
        }

        impl SettingsFlags {
            /// The flags given, by position in [`SETTINGS`].
            pub(super) fn given(&self) -> Vec<Option<&String>> {
                vec![$(self.$field.as_ref()),*]
            }
        }

        impl clap::FromArgMatches for SettingsFlags {
            fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
                let mut flags = SettingsFlags::default();
                flags.update_from_arg_matches(matches)?;
                Ok(flags)
            }

            fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
                $(
                    if let Ok(Some(value)) = matches.try_get_one::<String>($name.name) {
                        self.$field = Some(value.clone());
                    }
                )*
                Ok(())
            }
        }

        impl clap::Args for SettingsFlags {
            fn augment_args(cmd: clap::Command) -> clap::Command {
                cmd.args(SETTINGS.iter().map(Setting::arg))
            }

            fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
                Self::augment_args(cmd)
            }
        }

        /// Every setting parsed, each with where its value came from.
        pub(super) struct Values {
            $(pub $field: Given<$ty>,)*
        }

        impl Values {
            pub(super) fn parse(raw: &Raw) -> Result<Values, ConfigError> {
                Ok(Values { $($field: raw.read(&$name, Index::$field as usize, settings!(@parse $ty $(, $parse)?))?,)* })
            }

            /// `NAME = value` lines for `jwtd config check`, secrets masked.
            pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
                vec![$(($name.name, self.$field.value.show().unwrap_or_else(|| $name.unset.to_string()))),*]
            }
        }
    };
    (@parse $ty:ty) => { <$ty as Parse>::parse };
    (@parse $ty:ty, $parse:expr) => { $parse };
    (@unset) => { "(unset)" };
    (@unset $unset:literal) => { $unset };
}

settings! {
    /// Address to listen on
    ADDR addr: SocketAddr = "127.0.0.1:8000";
    /// sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
    DATABASE_URL database_url: DatabaseUrl = "sqlite://jwtd.db";
    /// Path of a file holding DATABASE_URL (it carries a password), instead of the setting itself
    DATABASE_URL_FILE database_url_file: Option<PathBuf> = "";
    /// PostgreSQL connections per instance
    DATABASE_MAX_CONNECTIONS database_max_connections: usize = "10", parse_connections;
    /// PostgreSQL TLS: disable, require (encrypted, server unverified) or verify-full; unset: the
    /// URL's sslmode, or verify-full when DATABASE_CA_CERT is set, else disable
    #[unset = "(the URL's sslmode)"]
    DATABASE_TLS database_tls: Option<DatabaseTls> = "";
    /// PEM file of the CA that signed PostgreSQL's certificate; unset: the Mozilla root store
    DATABASE_CA_CERT database_ca_cert: Option<PathBuf> = "", optional(parse_pem_path);
    /// Lifetime of access tokens: 90, 90s, 15m, 2h, 7d
    ACCESS_TOKEN_LIFETIME access_token_lifetime: Duration = "15m", parse_lifetime;
    /// Lifetime of refresh tokens
    REFRESH_TOKEN_LIFETIME refresh_token_lifetime: Duration = "7d", parse_lifetime;
    /// Hand out a new refresh token on each refresh
    ROTATE_REFRESH_TOKENS rotate_refresh_tokens: bool = "false";
    /// Blacklist a refresh token once rotated
    BLACKLIST_AFTER_ROTATION blacklist_after_rotation: bool = "true";
    /// How long a rotated refresh token still gets its successor; 0 turns it off
    ROTATION_GRACE_PERIOD rotation_grace_period: Duration = "10s";
    /// Longest session, however often it is refreshed
    SESSION_MAX_LIFETIME session_max_lifetime: Duration = "30d", parse_lifetime;
    /// Lifetime of sliding tokens
    SLIDING_TOKEN_LIFETIME sliding_token_lifetime: Duration = "5m", parse_lifetime;
    /// How long a sliding token can be refreshed
    SLIDING_TOKEN_REFRESH_LIFETIME sliding_token_refresh_lifetime: Duration = "1d", parse_lifetime;
    /// HS256/384/512, RS256/384/512, PS256/384/512, ES256/384 or EdDSA
    ALGORITHM algorithm: Algorithm = "HS256";
    /// HMAC secret, or PEM text or path of a private key; unset: generated once, kept in the database
    #[unset = "(generated, kept in the database)"]
    SIGNING_KEY signing_key: Option<Secret> = "";
    /// Path of a file holding SIGNING_KEY (one trailing newline ignored), so it sits in neither argv nor the environment
    SIGNING_KEY_FILE signing_key_file: Option<PathBuf> = "";
    /// PEM text or path of the public key; unset: derived from SIGNING_KEY
    #[unset = "(derived from SIGNING_KEY)"]
    VERIFYING_KEY verifying_key: Option<KeyPem> = "";
    /// Comma list of PEM paths of earlier public keys that still verify tokens
    PREVIOUS_VERIFYING_KEYS previous_verifying_keys: Vec<KeyPem> = "", parse_keys;
    /// Comma list of earlier HMAC secrets that still verify tokens (Django's SECRET_KEY_FALLBACKS)
    SIGNING_KEY_FALLBACKS signing_key_fallbacks: Vec<Secret> = "", parse_secrets;
    /// aud claim written and required
    AUDIENCE audience: Option<String> = "";
    /// iss claim written and required
    ISSUER issuer: Option<String> = "";
    /// Clock skew allowed on exp/iat/nbf
    LEEWAY leeway: Duration = "0s";
    /// The claim holding the user's id
    USER_ID_CLAIM user_id_claim: String = "user_id", parse_claim_name;
    /// The field users sign in with: username or email (matched case-insensitively)
    USERNAME_FIELD username_field: LoginField = "username";
    /// The user id tokens carry: int or uuid; fixed for a database at its first start
    USER_ID_TYPE user_id_type: IdType = "int";
    /// Comma list of user fields written into tokens: username, email, first_name, last_name, is_staff, is_superuser, groups
    TOKEN_CLAIMS token_claims: TokenClaims = "";
    /// Comma list of Authorization header schemes
    AUTH_HEADER_TYPES auth_header_types: Vec<String> = "Bearer", parse_nonempty_list;
    /// Comma list of token types accepted as Bearer: access, sliding
    AUTH_TOKEN_CLASSES auth_token_classes: Vec<TokenType> = "access", parse_token_classes;
    /// Write last_login on sign-in
    UPDATE_LAST_LOGIN update_last_login: bool = "false";
    /// Refuse sign-in and refresh to inactive users
    CHECK_USER_IS_ACTIVE check_user_is_active: bool = "true";
    /// Route set (simplejwt or djoser) and name=path overrides, comma list
    ROUTES routes: Routes = "simplejwt";
    /// The refresh token travels in an HttpOnly cookie instead of the body
    REFRESH_COOKIE refresh_cookie: bool = "false";
    /// Comma list of exact origins allowed cross-origin requests
    CORS_ALLOWED_ORIGINS cors_allowed_origins: Vec<String> = "", parse_origins;
    /// PEM certificate chain; with TLS_KEY: serve HTTPS
    TLS_CERT tls_cert: Option<PathBuf> = "";
    /// PEM private key of TLS_CERT
    TLS_KEY tls_key: Option<PathBuf> = "";
    /// Failed sign-ins allowed per username and per client: N/s, N/min, N/h or off
    LOGIN_RATE login_rate: Option<Rate> = "10/min";
    /// open, or closed: sign-up answers 403 and only `jwtd user create` creates users
    SIGNUP signup: SignUpPolicy = "open";
    /// Sign-up requests allowed per client address: N/s, N/min, N/h or off
    SIGNUP_RATE signup_rate: Option<Rate> = "20/h";
    /// Comma list of proxy addresses or networks (10.0.0.0/8) whose X-Forwarded-For is believed
    TRUSTED_PROXIES trusted_proxies: Vec<ipnet::IpNet> = "", parse_networks;
    /// Sign-up creates an inactive account and sends an activation link (needs WEBHOOK_URL or SMTP_URL)
    REQUIRE_EMAIL_VERIFICATION require_email_verification: bool = "false";
    /// How long a password-reset or activation link works
    PASSWORD_RESET_TIMEOUT password_reset_timeout: Duration = "3d", parse_lifetime;
    /// Reset and activation-resend requests per account, then per client address: N/h,N/h (or one rate, or off)
    PASSWORD_RESET_RATE password_reset_rate: ResetRates = "5/h,20/h";
    /// Base URL of the pages that take the links: {FRONTEND_URL}/reset/{uid}/{token}, {FRONTEND_URL}/activate/{uid}/{token}
    FRONTEND_URL frontend_url: Option<String> = "", optional(parse_http_url);
    /// Where events and mails are POSTed as signed webhooks (Standard Webhooks)
    WEBHOOK_URL webhook_url: Option<String> = "", optional(parse_http_url);
    /// The webhooks' signing key: whsec_ followed by the base64 of 24 to 64 random bytes
    WEBHOOK_SECRET webhook_secret: Option<Secret> = "";
    /// smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS, required unless the host is a loopback address) or smtps://… (TLS)
    SMTP_URL smtp_url: Option<Secret> = "";
    /// The From address of mails
    EMAIL_FROM email_from: Option<String> = "", optional(|s| Ok(s.trim().to_string()));
    /// Secrets of the services allowed introspection and the revocation feed: comma list, or the path (/… or ./…) of a file holding them; empty: those routes are not served
    SERVICE_TOKENS service_tokens: Vec<Secret> = "", parse_service_tokens;
    /// Largest request body, in bytes
    MAX_BODY_BYTES max_body_bytes: usize = "65536", parse_body_bytes;
    /// Log lines as text or json
    LOG_FORMAT log_format: LogFormat = "text";
    /// Address of a listener serving /metrics alone; unset: /metrics on ADDR
    METRICS_ADDR metrics_addr: Option<SocketAddr> = "";
    /// Connections served at once; past it, newcomers wait in the listen backlog
    MAX_CONNECTIONS max_connections: usize = "10000", parse_count;
    /// Requests handled at once; past it, a request waits QUEUE_TIMEOUT, then gets 503
    MAX_IN_FLIGHT max_in_flight: usize = "1024", parse_count;
    /// How long a request waits for its turn under MAX_IN_FLIGHT
    QUEUE_TIMEOUT queue_timeout: Duration = "2s", parse_lifetime;
    /// From the request head until the response head; after it, 503
    REQUEST_TIMEOUT request_timeout: Duration = "30s", parse_lifetime;
    /// On shutdown, how long requests in flight may still take
    DRAIN_TIMEOUT drain_timeout: Duration = "10s";
}
