//! Prometheus metrics: requests and latency per route, tokens issued, refreshed and rejected,
//! and the process series (memory, open files, start time) read from /proc when rendered.
//!
//! Every series is an `AtomicU64` allocated at start, so recording is a few relaxed atomic
//! adds: no lock, no allocation, no map insert on the request path. The set of routes is fixed
//! when the application is built (the route table), status codes are an array of 100..=599, and
//! reasons are an enum, so memory does not grow with traffic however odd the requests.
//! Rendering (GET /metrics) walks the arrays and writes the text exposition format.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds. Sign-ins hash a password (tens of ms);
/// everything else should sit in the first buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
const FIRST_STATUS: usize = 100;
const STATUSES: usize = 500;
/// The route label of requests no route matched (404s, preflights of unknown paths).
const UNMATCHED: &str = "unmatched";

/// The kind of a token handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    Sliding,
}

impl TokenKind {
    const ALL: [TokenKind; 3] = [TokenKind::Access, TokenKind::Refresh, TokenKind::Sliding];
    fn label(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Sliding => "sliding",
        }
    }
}

/// Why a token, a sign-in or a cookie request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed, bad signature, wrong type or claims, unknown or inactive user.
    Invalid,
    Expired,
    /// A blacklisted or reused refresh token.
    Blacklisted,
    /// An access token issued before a password change or logout-all.
    Revoked,
    /// A protected route called without credentials.
    NotProvided,
    /// Wrong username or password, or an inactive account.
    BadCredentials,
    Throttled,
    /// A browser request in cookie mode from an origin that is not allowed.
    Origin,
}

impl Rejection {
    const ALL: [Rejection; 8] = [
        Rejection::Invalid,
        Rejection::Expired,
        Rejection::Blacklisted,
        Rejection::Revoked,
        Rejection::NotProvided,
        Rejection::BadCredentials,
        Rejection::Throttled,
        Rejection::Origin,
    ];
    fn label(self) -> &'static str {
        match self {
            Rejection::Invalid => "invalid",
            Rejection::Expired => "expired",
            Rejection::Blacklisted => "blacklisted",
            Rejection::Revoked => "revoked",
            Rejection::NotProvided => "not_provided",
            Rejection::BadCredentials => "bad_credentials",
            Rejection::Throttled => "throttled",
            Rejection::Origin => "origin",
        }
    }
}

struct RouteStats {
    by_status: Box<[AtomicU64]>,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            by_status: (0..STATUSES).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

/// The counters of one application.
pub struct Metrics {
    routes: Vec<Box<str>>,
    index: HashMap<Box<str>, usize>,
    stats: Box<[RouteStats]>,
    in_flight: AtomicI64,
    issued: [AtomicU64; TokenKind::ALL.len()],
    refreshed: [AtomicU64; TokenKind::ALL.len()],
    rejected: [AtomicU64; Rejection::ALL.len()],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("routes", &self.routes).finish_non_exhaustive()
    }
}

impl Metrics {
    /// Counters for `routes` (paths without their trailing slash) plus one for unmatched requests.
    pub fn new(routes: &[impl AsRef<str>]) -> Self {
        let mut labels: Vec<Box<str>> = Vec::new();
        for r in routes {
            let r = route_label(r.as_ref());
            if !labels.iter().any(|l| &**l == r) {
                labels.push(r.into());
            }
        }
        labels.push(UNMATCHED.into());
        let index = labels.iter().enumerate().map(|(i, r)| (r.clone(), i)).collect();
        let stats = labels.iter().map(|_| RouteStats::new()).collect();
        Metrics {
            routes: labels,
            index,
            stats,
            in_flight: AtomicI64::new(0),
            issued: std::array::from_fn(|_| AtomicU64::new(0)),
            refreshed: std::array::from_fn(|_| AtomicU64::new(0)),
            rejected: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Counts one finished request; `route` is the matched path (either slash form), if any.
    pub fn request(&self, route: Option<&str>, status: u16, latency: Duration) {
        let i = route.and_then(|r| self.index.get(route_label(r)).copied()).unwrap_or(self.stats.len() - 1);
        let stats = &self.stats[i];
        let status = usize::from(status).saturating_sub(FIRST_STATUS).min(STATUSES - 1);
        stats.by_status[status].fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            stats.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
        stats.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn issued(&self, kind: TokenKind) {
        self.issued[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn refreshed(&self, kind: TokenKind) {
        self.refreshed[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: Rejection) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        out.push_str("# HELP jwtd_http_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE jwtd_http_requests_total counter\n");
        for (route, stats) in self.routes.iter().zip(self.stats.iter()) {
            for (i, n) in stats.by_status.iter().enumerate() {
                let n = load(n);
                if n > 0 {
                    let status = i + FIRST_STATUS;
                    let _ = writeln!(out, "jwtd_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
                }
            }
        }

        out.push_str("# HELP jwtd_http_requests_in_flight HTTP requests being answered, this one included.\n");
        out.push_str("# TYPE jwtd_http_requests_in_flight gauge\n");
        let _ = writeln!(out, "jwtd_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));

        out.push_str("# HELP jwtd_http_request_duration_seconds Time from request head to response head, by route.\n");
        out.push_str("# TYPE jwtd_http_request_duration_seconds histogram\n");
        for (route, stats) in self.routes.iter().zip(self.stats.iter()) {
            let count = load(&stats.count);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(stats.buckets.iter()) {
                cumulative += load(n);
                let _ = writeln!(
                    out,
                    "jwtd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "jwtd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
            let sum = load(&stats.sum_micros) as f64 / 1e6;
            let _ = writeln!(out, "jwtd_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "jwtd_http_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }

        out.push_str("# HELP jwtd_tokens_issued_total Tokens signed and handed out, by type.\n");
        out.push_str("# TYPE jwtd_tokens_issued_total counter\n");
        for kind in TokenKind::ALL {
            let n = load(&self.issued[kind as usize]);
            let _ = writeln!(out, "jwtd_tokens_issued_total{{type=\"{}\"}} {n}", kind.label());
        }
        out.push_str("# HELP jwtd_tokens_refreshed_total Successful refreshes, by the type of token presented.\n");
        out.push_str("# TYPE jwtd_tokens_refreshed_total counter\n");
        for kind in [TokenKind::Refresh, TokenKind::Sliding] {
            let n = load(&self.refreshed[kind as usize]);
            let _ = writeln!(out, "jwtd_tokens_refreshed_total{{type=\"{}\"}} {n}", kind.label());
        }
        out.push_str("# HELP jwtd_tokens_rejected_total Tokens, sign-ins and cookie requests refused, by reason.\n");
        out.push_str("# TYPE jwtd_tokens_rejected_total counter\n");
        for reason in Rejection::ALL {
            let n = load(&self.rejected[reason as usize]);
            let _ = writeln!(out, "jwtd_tokens_rejected_total{{reason=\"{}\"}} {n}", reason.label());
        }
        process_metrics(&mut out);
        out
    }
}

/// The process series of the Prometheus client libraries, read from /proc (Linux); a series
/// whose file cannot be read is left out rather than reported as 0.
fn process_metrics(out: &mut String) {
    if let Some(kib) = read_proc("/proc/self/status").as_deref().and_then(resident_kib) {
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {}", kib * 1024);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle being read is one of the entries.
        let open = fds.count().saturating_sub(1);
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n");
        out.push_str("# TYPE process_open_fds gauge\n");
        let _ = writeln!(out, "process_open_fds {open}");
    }
    let stat = read_proc("/proc/self/stat");
    let boot = read_proc("/proc/stat");
    if let (Some(stat), Some(boot)) = (stat, boot) {
        if let Some(start) = start_time_secs(&stat, &boot) {
            out.push_str("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n");
            out.push_str("# TYPE process_start_time_seconds gauge\n");
            let _ = writeln!(out, "process_start_time_seconds {start}");
        }
    }
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `VmRSS:   1234 kB` of /proc/self/status.
fn resident_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux architecture jwtd builds for.
const USER_HZ: f64 = 100.0;

/// The boot time (`btime` of /proc/stat) plus the process's start, in ticks after boot (field 22
/// of /proc/self/stat, counted after the parenthesised command name, which may hold spaces).
fn start_time_secs(stat: &str, proc_stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: f64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let btime: f64 = proc_stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(btime + ticks / USER_HZ)
}

/// Holds one request in the in-flight gauge.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `/api/token/` and `/api/token` are one route.
fn route_label(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_start_time_is_boot_time_plus_ticks_after_boot() {
        let stat = "42 (jwt d) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 9 0 12345 1000 10";
        let start = super::start_time_secs(stat, "cpu 1 2\nbtime 1700000000\n").unwrap();
        assert!((start - 1_700_000_123.45).abs() < 1e-3, "{start}");
        assert_eq!(super::resident_kib("Name: jwtd\nVmRSS:\t  2048 kB\n"), Some(2048));
    }

    use super::*;

    #[test]
    fn counts_by_route_status_and_bucket() {
        let m = Metrics::new(&["/api/token", "/api/token/"]);
        m.request(Some("/api/token/"), 200, Duration::from_millis(3));
        m.request(Some("/api/token"), 401, Duration::from_millis(30));
        m.request(None, 404, Duration::from_micros(10));
        m.request(Some("/nowhere"), 404, Duration::from_micros(10));
        m.issued(TokenKind::Access);
        m.rejected(Rejection::Expired);
        let text = m.render();
        assert!(text.contains("jwtd_http_requests_total{route=\"/api/token\",status=\"200\"} 1\n"), "{text}");
        assert!(text.contains("jwtd_http_requests_total{route=\"/api/token\",status=\"401\"} 1\n"), "{text}");
        assert!(text.contains("jwtd_http_requests_total{route=\"unmatched\",status=\"404\"} 2\n"), "{text}");
        assert!(text.contains("jwtd_http_request_duration_seconds_bucket{route=\"/api/token\",le=\"0.005\"} 1\n"));
        assert!(text.contains("jwtd_http_request_duration_seconds_bucket{route=\"/api/token\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("jwtd_http_request_duration_seconds_count{route=\"/api/token\"} 2\n"));
        assert!(text.contains("jwtd_tokens_issued_total{type=\"access\"} 1\n"));
        assert!(text.contains("jwtd_tokens_rejected_total{reason=\"expired\"} 1\n"));
    }

    #[test]
    fn odd_statuses_stay_in_bounds() {
        let m = Metrics::new(&[] as &[&str]);
        m.request(None, 0, Duration::ZERO);
        m.request(None, 999, Duration::from_secs(100));
        assert!(m.render().contains("jwtd_http_request_duration_seconds_count{route=\"unmatched\"} 2\n"));
    }
}
