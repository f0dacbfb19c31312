//! One parser per setting value type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
