//! The request line, one per request: formatted straight into the log buffer, in the shape the
//! tracing formatter gives every other event (text or JSON), without its per-event field
//! visitors, span lookups and `fmt::Write` calls. Filtered by RUST_LOG like any `jwtd::app` event.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::sink::Sink;
use crate::config::LogFormat;

/// The target every request line is logged under, as if by `info!` in `jwtd::app`.
const TARGET: &str = "jwtd::app";

static DIRECT: OnceLock<Direct> = OnceLock::new();

struct Direct {
    sink: Arc<Sink>,
    format: LogFormat,
}

/// Request lines go straight to `sink` from now on (once per process; later calls are ignored).
pub(super) fn write_directly(sink: Arc<Sink>, format: LogFormat) {
    let _ = DIRECT.set(Direct { sink, format });
}

/// Logs one request at INFO: method, matched route (`-` when none), status and latency. Never
/// the query, a header or a body: those may carry tokens, passwords or cookies.
pub fn request(method: &str, route: &str, status: u16, latency_ms: f64) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    match DIRECT.get() {
        Some(direct) => direct.sink.append_with(|buf| match direct.format {
            LogFormat::Text => text_line(buf, method, route, status, latency_ms),
            LogFormat::Json => json_line(buf, method, route, status, latency_ms),
        }),
        // Not set up by `telemetry::init` (a library user's subscriber, or colours on a terminal).
        None => tracing::info!(target: TARGET, method, route, status, latency_ms, "request"),
    }
}

/// `2026-11-27T03:40:14.719445Z  INFO jwtd::app: request method=POST route="/api/token/" status=200 latency_ms=0.5`
fn text_line(buf: &mut Vec<u8>, method: &str, route: &str, status: u16, latency_ms: f64) {
    timestamp(buf);
    buf.extend_from_slice(b"  INFO ");
    buf.extend_from_slice(TARGET.as_bytes());
    buf.extend_from_slice(b": request method=");
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(b" route=");
    if plain(route) {
        quoted(buf, route);
    } else {
        buf.extend_from_slice(format!("{route:?}").as_bytes());
    }
    buf.extend_from_slice(b" status=");
    buf.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    buf.extend_from_slice(b" latency_ms=");
    buf.extend_from_slice(ryu::Buffer::new().format(latency_ms).as_bytes());
    buf.push(b'\n');
}

/// `{"timestamp":"…","level":"INFO","message":"request","method":"POST","route":"/api/token/","status":200,"latency_ms":0.5,"target":"jwtd::app"}`
fn json_line(buf: &mut Vec<u8>, method: &str, route: &str, status: u16, latency_ms: f64) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(buf);
    buf.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
    json_string(buf, method);
    buf.extend_from_slice(b",\"route\":");
    json_string(buf, route);
    buf.extend_from_slice(b",\"status\":");
    buf.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    buf.extend_from_slice(b",\"latency_ms\":");
    buf.extend_from_slice(ryu::Buffer::new().format(latency_ms).as_bytes());
    buf.extend_from_slice(b",\"target\":\"");
    buf.extend_from_slice(TARGET.as_bytes());
    buf.extend_from_slice(b"\"}\n");
}

/// Printable ASCII without quote or backslash: the same inside a Rust debug string and a JSON
/// string. Routes are the route table's own patterns, so always, in practice.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

fn quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

fn json_string(buf: &mut Vec<u8>, s: &str) {
    if plain(s) {
        quoted(buf, s);
    } else if serde_json::to_writer(&mut *buf, s).is_err() {
        buf.extend_from_slice(b"\"?\"");
    }
}

thread_local! {
    /// `YYYY-MM-DDTHH:MM:SS.` of the last second this thread logged in, and that second.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// RFC 3339 UTC with microseconds, as tracing-subscriber's default timer writes it. Like that
/// timer, it reads the system clock: a log line's time is when it was written, not a decision.
#[allow(clippy::disallowed_methods)]
fn timestamp(buf: &mut Vec<u8>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        prefix = second_prefix(secs);
        SECOND.set((secs, prefix));
    }
    buf.extend_from_slice(&prefix);
    let micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut rest = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    buf.extend_from_slice(&digits);
    buf.push(b'Z');
}

fn second_prefix(secs: u64) -> [u8; 20] {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut out = [0u8; 20];
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year().clamp(0, 9999),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    out.copy_from_slice(&text.as_bytes()[..20]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(format: LogFormat, route: &str, latency_ms: f64) -> String {
        let mut buf = Vec::new();
        match format {
            LogFormat::Text => text_line(&mut buf, "POST", route, 200, latency_ms),
            LogFormat::Json => json_line(&mut buf, "POST", route, 200, latency_ms),
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn text_lines_look_like_the_tracing_formatter() {
        let l = line(LogFormat::Text, "/api/token/", 0.5);
        let (ts, rest) = l.split_once("  ").unwrap();
        assert_eq!(rest, "INFO jwtd::app: request method=POST route=\"/api/token/\" status=200 latency_ms=0.5\n");
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(), "{ts}");
        let odd = line(LogFormat::Text, "a\"b", 12.0);
        assert!(odd.contains(r#"route="a\"b" status=200 latency_ms=12.0"#), "{odd}");
    }

    #[test]
    fn json_lines_are_json_with_the_tracing_formatters_fields() {
        for route in ["/api/me/", "-", "quote\" and \\ and \u{1}"] {
            let l = line(LogFormat::Json, route, 1.25);
            assert!(l.ends_with("}\n"));
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["level"], "INFO");
            assert_eq!(v["message"], "request");
            assert_eq!(v["target"], "jwtd::app");
            assert_eq!(v["method"], "POST");
            assert_eq!(v["route"], route);
            assert_eq!(v["status"], 200);
            assert_eq!(v["latency_ms"], 1.25);
            let ts = v["timestamp"].as_str().unwrap();
            assert!(time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok());
        }
    }

    #[test]
    fn the_second_prefix_is_utc() {
        assert_eq!(&second_prefix(0), b"1970-01-01T00:00:00.");
        assert_eq!(&second_prefix(1_795_751_999), b"2026-11-27T03:59:59.");
    }
}
