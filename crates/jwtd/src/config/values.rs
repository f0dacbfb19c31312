//! One parser per setting value type ([`Parse`], the reading a `settings!` row gets when it names
//! no parser; the narrower ones a row names, `parse_lifetime`, `parse_count`, …), and how
//! `jwtd config check` shows each type ([`Show`]). Parsers return the bare complaint; the caller
//! prefixes where the value came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::delivery::ResetRates;
use super::routes::Routes;
use super::users::{IdType, LoginField, TokenClaims};
use super::{KeyPem, Secret};
use crate::tokens::{Algorithm, TokenType};

/// How `jwtd config check` prints a setting's value, secrets masked.
pub trait Show {
    /// A flag of this type may be given bare (`--refresh-cookie` means `true`).
    const BARE_FLAG: bool = false;
    /// The text reaches the parser untrimmed (an HMAC secret is taken literally, as SimpleJWT does).
    const LITERAL: bool = false;
    /// `None`: unset.
    fn show(&self) -> Option<String>;
}

macro_rules! show_with_display {
    ($($ty:ty),*) => {$(
        impl Show for $ty {
            fn show(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
show_with_display!(SocketAddr, usize, String, Algorithm, LogFormat, Routes, SignUpPolicy);

impl Show for Option<SocketAddr> {
    fn show(&self) -> Option<String> {
        self.map(|a| a.to_string())
    }
}

impl Show for Option<DatabaseTls> {
    fn show(&self) -> Option<String> {
        self.map(|t| t.to_string())
    }
}

impl Show for bool {
    const BARE_FLAG: bool = true;
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl Show for Duration {
    fn show(&self) -> Option<String> {
        Some(format_duration(*self))
    }
}

impl Show for DatabaseUrl {
    fn show(&self) -> Option<String> {
        Some(self.masked())
    }
}

impl Show for Option<Rate> {
    fn show(&self) -> Option<String> {
        Some(self.map(|r| r.to_string()).unwrap_or_else(|| "off".into()))
    }
}

impl Show for Option<String> {
    fn show(&self) -> Option<String> {
        self.clone()
    }
}

impl Show for Option<PathBuf> {
    fn show(&self) -> Option<String> {
        self.as_ref().map(|p| p.display().to_string())
    }
}

impl Show for Option<Secret> {
    const LITERAL: bool = true;
    fn show(&self) -> Option<String> {
        self.as_ref().map(|_| "****".into())
    }
}

impl Show for Option<KeyPem> {
    fn show(&self) -> Option<String> {
        self.as_ref().map(KeyPem::origin)
    }
}

impl Show for Vec<KeyPem> {
    fn show(&self) -> Option<String> {
        Some(self.iter().map(KeyPem::origin).collect::<Vec<_>>().join(","))
    }
}

impl Show for Vec<Secret> {
    fn show(&self) -> Option<String> {
        Some(self.iter().map(|_| "****").collect::<Vec<_>>().join(","))
    }
}

impl Show for Vec<TokenType> {
    fn show(&self) -> Option<String> {
        Some(self.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","))
    }
}

impl Show for Vec<ipnet::IpNet> {
    fn show(&self) -> Option<String> {
        Some(self.iter().map(ipnet::IpNet::to_string).collect::<Vec<_>>().join(","))
    }
}

impl Show for Vec<String> {
    fn show(&self) -> Option<String> {
        Some(self.join(","))
    }
}

/// The reading of a setting type, for the `settings!` rows that name no parser of their own.
pub trait Parse: Sized {
    fn parse(s: &str) -> Result<Self, String>;
}

/// [`Parse`] by the type's own `parse`.
macro_rules! parse_with_own {
    ($($ty:ty),*) => {$(
        impl Parse for $ty {
            fn parse(s: &str) -> Result<Self, String> {
                <$ty>::parse(s)
            }
        }
    )*};
}
parse_with_own!(DatabaseUrl, DatabaseTls, LogFormat, SignUpPolicy, LoginField, IdType, TokenClaims, Routes, ResetRates);

impl Parse for bool {
    fn parse(s: &str) -> Result<Self, String> {
        parse_bool(s)
    }
}

impl Parse for Duration {
    fn parse(s: &str) -> Result<Self, String> {
        parse_duration(s)
    }
}

impl Parse for SocketAddr {
    fn parse(s: &str) -> Result<Self, String> {
        parse_addr(s)
    }
}

impl Parse for Algorithm {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl Parse for String {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
}

impl Parse for PathBuf {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(PathBuf::from(s))
    }
}

impl Parse for Secret {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(Secret::new(s))
    }
}

impl Parse for KeyPem {
    fn parse(s: &str) -> Result<Self, String> {
        parse_key(s)
    }
}

/// An optional setting: empty text is `None`.
impl<T: Parse> Parse for Option<T> {
    fn parse(s: &str) -> Result<Self, String> {
        optional(T::parse)(s)
    }
}

/// A rate, or `off` (`None`).
impl Parse for Option<Rate> {
    fn parse(s: &str) -> Result<Self, String> {
        Rate::parse(s)
    }
}

/// A parser for an optional setting: empty text (the default of an unset setting) is `None`.
pub fn optional<T>(parse: impl Fn(&str) -> Result<T, String>) -> impl Fn(&str) -> Result<Option<T>, String> {
    move |s| if s.trim().is_empty() { Ok(None) } else { parse(s).map(Some) }
}

pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("expected an address like 127.0.0.1:8000, got {s:?}"))
}

/// A duration longer than zero.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than 0s".into()),
        d => Ok(d),
    }
}

pub fn parse_connections(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| format!("expected a number of connections from 1 to 1000, got {s:?}"))
}

/// A positive count (connections, requests).
pub fn parse_count(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("expected a number of at least 1, got {s:?}"))
}

/// The path of a readable file holding at least one PEM certificate; read at start so that a
/// missing or wrong file stops the server there, naming the setting.
pub fn parse_pem_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s.trim());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(path)
}

pub fn parse_body_bytes(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1024)
        .ok_or_else(|| format!("expected a number of bytes of at least 1024, got {s:?}"))
}

/// A comma list; blanks around items and empty items are dropped.
pub fn parse_list(s: &str) -> Result<Vec<String>, String> {
    Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
}

/// A comma list of at least one item.
pub fn parse_nonempty_list(s: &str) -> Result<Vec<String>, String> {
    Some(parse_list(s)?).filter(|l| !l.is_empty()).ok_or_else(|| format!("expected a comma list, got {s:?}"))
}

/// A claim name that SimpleJWT does not write itself.
pub fn parse_claim_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || ["token_type", "exp", "iat", "nbf", "jti", "aud", "iss", "sid"].contains(&s) {
        return Err(format!("{s:?} is a reserved claim"));
    }
    Ok(s.to_string())
}

/// A comma list of secrets (blanks around each dropped); the complaint never quotes one.
pub fn parse_secrets(s: &str) -> Result<Vec<Secret>, String> {
    Ok(parse_list(s)?.into_iter().map(Secret::new).collect())
}

/// The shortest service token SERVICE_TOKENS takes (a 128-bit secret written in hex).
pub const MIN_SERVICE_TOKEN_CHARS: usize = 32;

/// SERVICE_TOKENS: a comma list of secrets, or the path of a file holding them (a value starting
/// with `/` or `./`; one or more per line, commas allowed, blank lines and `#` comments skipped).
/// Each has at least [`MIN_SERVICE_TOKEN_CHARS`] characters and no blank; the complaint never
/// quotes one.
pub fn parse_service_tokens(s: &str) -> Result<Vec<Secret>, String> {
    let s = s.trim();
    let (text, from) = if s.starts_with('/') || s.starts_with("./") {
        let text = std::fs::read_to_string(s).map_err(|e| format!("could not read the file {s:?}: {e}"))?;
        (text, format!(" in {s:?}"))
    } else {
        (s.to_string(), String::new())
    };
    let mut tokens = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        for token in line.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.chars().count() < MIN_SERVICE_TOKEN_CHARS || token.contains(char::is_whitespace) {
                return Err(format!(
                    "service token {}{from} is too short or holds a blank: each needs at least \
                     {MIN_SERVICE_TOKEN_CHARS} characters (openssl rand -hex 32)",
                    tokens.len() + 1
                ));
            }
            tokens.push(Secret::new(token));
        }
    }
    if !from.is_empty() && tokens.is_empty() {
        return Err(format!("the file {s:?} holds no service token"));
    }
    Ok(tokens)
}

/// AUTH_TOKEN_CLASSES: `access`, `sliding`, or SimpleJWT's class names for them
/// (`rest_framework_simplejwt.tokens.AccessToken`, `SlidingToken`), at least one, in the order
/// given (SimpleJWT tries them in that order and lists one message per class when all fail).
pub fn parse_token_classes(s: &str) -> Result<Vec<TokenType>, String> {
    let mut classes = Vec::new();
    for name in parse_nonempty_list(s)? {
        let class = name.strip_prefix("rest_framework_simplejwt.tokens.").unwrap_or(&name);
        let token_type = match class {
            "access" | "AccessToken" => TokenType::Access,
            "sliding" | "SlidingToken" => TokenType::Sliding,
            _ => return Err(format!("{name:?} is no token class accepted as Bearer: expected access or sliding")),
        };
        if !classes.contains(&token_type) {
            classes.push(token_type);
        }
    }
    Ok(classes)
}

/// A comma list of exact origins (`https://app.example:3000`); `*` is refused.
pub fn parse_origins(s: &str) -> Result<Vec<String>, String> {
    let origins = parse_list(s)?;
    for origin in &origins {
        if origin == "*" {
            return Err("\"*\" is refused; list exact origins such as https://app.example".into());
        }
        if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
            return Err(format!("{origin:?} is not an origin like https://app.example:3000"));
        }
    }
    Ok(origins)
}

/// A PEM key: its text, or the path of a readable PEM file.
pub fn parse_key(s: &str) -> Result<KeyPem, String> {
    KeyPem::load(s).map_err(|e| format!("{:?} {e}", s.trim()))
}

/// A comma list of PEM keys (texts or paths).
pub fn parse_keys(s: &str) -> Result<Vec<KeyPem>, String> {
    parse_list(s)?.iter().map(|k| parse_key(k)).collect()
}

/// `90`, `90s`, `15m`, `2h`, `7d` (whole units; `0` allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("expected a duration like 90, 90s, 15m, 2h or 7d, got {s:?}");
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(err()),
    };
    n.checked_mul(mult).filter(|v| *v <= 100 * 365 * 86400).map(Duration::from_secs).ok_or_else(err)
}

/// The shortest of `7d`, `2h`, `15m`, `90s` that states `d` exactly.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

/// A number of events per period (`10/min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// `N/s`, `N/min`, `N/h` (also `N/sec`, `N/m`, `N/hour`, `N/d`, `N/day`), or `off`.
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let err = || format!("expected N/s, N/min, N/h or off, got {s:?}");
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (n, unit) = s.split_once('/').ok_or_else(err)?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86400,
            _ => return Err(err()),
        };
        if count == 0 {
            return Err(format!("{s:?} would refuse every sign-in; use a positive count or off"));
        }
        Ok(Some(Rate { count, per: Duration::from_secs(secs) }))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "d",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`); may hold a password.
    Postgres(String),
}

impl Default for DatabaseUrl {
    fn default() -> Self {
        DatabaseUrl::Sqlite(PathBuf::from("jwtd.db"))
    }
}

/// Never prints a password: settings are logged and printed with `{:?}`.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            DatabaseUrl::Postgres(url) => f.debug_tuple("Postgres").field(&mask_url(url)).finish(),
        }
    }
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<DatabaseUrl, String> {
        if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://jwtd.db".into());
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("postgres://").or_else(|| s.strip_prefix("postgresql://")) {
            if rest.is_empty() {
                return Err("postgres:// needs a server, e.g. postgres://jwtd@localhost/jwtd".into());
            }
            sslmode(s)?;
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        Err(format!("expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got {:?}", mask_url(s)))
    }

    /// For display: no password.
    pub fn masked(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => mask_url(url),
        }
    }
}

/// The `sslmode` of a `postgres://` URL's query, in libpq's words; `None`: not given.
pub fn sslmode(url: &str) -> Result<Option<DatabaseTls>, String> {
    let Some((_, query)) = url.split_once('?') else { return Ok(None) };
    match query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "sslmode") {
        Some((_, mode)) => DatabaseTls::parse(mode).map(Some).map_err(|e| format!("sslmode: {e}")),
        None => Ok(None),
    }
}

/// `url` with the password of its user part, and any `password=` query parameter, as `****`.
pub fn mask_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.find("://") {
        Some(s) => {
            let (scheme, rest) = head.split_at(s + 3);
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = authority.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, _)) => format!("{scheme}{user}:****{host}{path}"),
                        None => head.to_string(),
                    }
                }
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// TLS to PostgreSQL, in libpq's `sslmode` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseTls {
    /// Plain TCP.
    Disable,
    /// Encrypted, but any certificate is accepted: protects against eavesdropping only.
    Require,
    /// Encrypted, the certificate chains to DATABASE_CA_CERT (or a public root) and names the host.
    VerifyFull,
}

impl DatabaseTls {
    /// `disable`, `require` or `verify-full`; as in a URL's `sslmode`, libpq's `allow` and
    /// `prefer` are `disable` and `verify-ca` is refused (jwtd always checks the host name).
    pub fn parse(s: &str) -> Result<DatabaseTls, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disable" | "allow" | "prefer" => Ok(DatabaseTls::Disable),
            "require" => Ok(DatabaseTls::Require),
            "verify-full" => Ok(DatabaseTls::VerifyFull),
            "verify-ca" => Err("verify-ca is not supported: use verify-full (checks the host name too)".into()),
            _ => Err(format!("expected disable, require or verify-full, got {s:?}")),
        }
    }
}

impl fmt::Display for DatabaseTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseTls::Disable => "disable",
            DatabaseTls::Require => "require",
            DatabaseTls::VerifyFull => "verify-full",
        })
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {s:?}")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
    }

    #[test]
    fn token_classes() {
        assert_eq!(parse_token_classes("access"), Ok(vec![TokenType::Access]));
        assert_eq!(
            parse_token_classes("sliding, rest_framework_simplejwt.tokens.AccessToken,access"),
            Ok(vec![TokenType::Sliding, TokenType::Access])
        );
        assert!(parse_token_classes("refresh").is_err());
        assert!(parse_token_classes("").is_err());
        assert!(parse_token_classes("Access").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("10/min"), Ok(Some(Rate { count: 10, per: Duration::from_secs(60) })));
        assert_eq!(Rate::parse("off"), Ok(None));
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("0/min").is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(DatabaseUrl::parse("sqlite://jwtd.db"), Ok(DatabaseUrl::Sqlite("jwtd.db".into())));
        assert_eq!(DatabaseUrl::parse("sqlite:///tmp/x.db"), Ok(DatabaseUrl::Sqlite("/tmp/x.db".into())));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        let pg = DatabaseUrl::parse("postgres://jwtd:s3cret@db:5432/jwtd").unwrap();
        assert_eq!(pg, DatabaseUrl::Postgres("postgres://jwtd:s3cret@db:5432/jwtd".into()));
        assert!(DatabaseUrl::parse("postgresql://db/jwtd").is_ok());
        assert!(DatabaseUrl::parse("postgres://").is_err());
    }

    #[test]
    fn database_urls_never_show_a_password() {
        let pg = DatabaseUrl::parse("postgres://jwtd:s3cret@db:5432/jwtd?sslmode=disable&password=other").unwrap();
        assert_eq!(pg.masked(), "postgres://jwtd:****@db:5432/jwtd?sslmode=disable&password=****");
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!(!format!("{pg:?}").contains("other"));
        assert_eq!(mask_url("postgres://jwtd@db/jwtd"), "postgres://jwtd@db/jwtd");
        assert_eq!(mask_url("postgres://u:p@ss@db/x"), "postgres://u:****@db/x");
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// SIGNUP: whether `POST /api/auth/signup/` creates accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpPolicy {
    /// Anyone may sign up (SPEC §1's default).
    Open,
    /// Sign-up answers DRF's 403 PermissionDenied; only `jwtd user create` creates users.
    Closed,
}

impl SignUpPolicy {
    pub fn parse(s: &str) -> Result<SignUpPolicy, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(SignUpPolicy::Open),
            "closed" => Ok(SignUpPolicy::Closed),
            _ => Err(format!("expected open or closed, got {s:?}")),
        }
    }
}

impl fmt::Display for SignUpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignUpPolicy::Open => "open",
            SignUpPolicy::Closed => "closed",
        })
    }
}

/// TRUSTED_PROXIES: a comma list of addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
pub fn parse_networks(s: &str) -> Result<Vec<ipnet::IpNet>, String> {
    parse_list(s)?
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("{entry:?} is neither an address nor a network like 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod security_tests {
    use super::*;

    #[test]
    fn service_tokens_come_as_a_list_or_from_a_file_and_are_never_quoted() {
        let (a, b) = ("a".repeat(32), "b".repeat(64));
        let tokens = parse_service_tokens(&format!(" {a} , {b} ")).unwrap();
        assert_eq!(tokens.iter().map(Secret::expose).collect::<Vec<_>>(), [a.as_str(), b.as_str()]);
        assert!(parse_service_tokens("").unwrap().is_empty());
        let short = parse_service_tokens(&format!("{a},tooshort-secret")).unwrap_err();
        assert!(short.starts_with("service token 2 is too short") && !short.contains("tooshort"), "{short}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, format!("# the reporting service\n{a}\n\n{b}\n")).unwrap();
        assert_eq!(parse_service_tokens(file.to_str().unwrap()).unwrap().len(), 2);
        std::fs::write(&file, "# none yet\n").unwrap();
        assert!(parse_service_tokens(file.to_str().unwrap()).unwrap_err().contains("holds no service token"));
        let missing = dir.path().join("missing");
        assert!(parse_service_tokens(missing.to_str().unwrap()).unwrap_err().starts_with("could not read the file"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_and_refuse_the_rest() {
        let nets = parse_networks("10.0.0.1, 192.168.0.0/16,::1, fd00::/8").unwrap();
        assert_eq!(Show::show(&nets).unwrap(), "10.0.0.1/32,192.168.0.0/16,::1/128,fd00::/8");
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("proxy.local").unwrap_err().contains("proxy.local"));
        assert_eq!(parse_networks("").unwrap(), []);
    }

    #[test]
    fn sign_up_is_open_or_closed() {
        assert_eq!(SignUpPolicy::parse("Closed"), Ok(SignUpPolicy::Closed));
        assert!(SignUpPolicy::parse("off").is_err());
    }
}
