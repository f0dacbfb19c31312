//! Limits of the HTTP transport: connections and requests at once, header size, time to send
//! the body, time to answer, and how long shutdown waits for requests in flight. Every refusal
//! is a JSON `{"detail": ...}` body.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::body::BodyDeadline;
use super::ApiError;
use crate::config::Settings;

/// Transport limits; the defaults suit an authentication API (small requests, quick answers).
/// The defaults of the five that are settings are stated again in `config/table.rs`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once: past it, new ones wait in the listen backlog until one
    /// closes. Default 10,000 (each costs a few KiB; file descriptors permitting).
    pub max_connections: usize,
    /// Requests handled at once, over all connections: past it, a request waits up to
    /// `queue_timeout` for its turn, then gets 503 with `Retry-After`. Default 1,024.
    pub max_in_flight: usize,
    /// How long a request waits for a turn when `max_in_flight` are being handled. Default 2 s.
    pub queue_timeout: Duration,
    /// Request line and headers, in bytes: above it, 431. Default 16 KiB.
    pub max_header_bytes: usize,
    /// From the request head until the whole body has arrived: after it, 408. Default 10 s.
    pub body_timeout: Duration,
    /// From the request head until the response head: after it, 503. Default 30 s.
    pub request_timeout: Duration,
    /// TLS handshake of a new connection: after it, the connection is closed. Default 10 s.
    pub handshake_timeout: Duration,
    /// On shutdown, how long requests in flight may still take. Default 10 s.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_in_flight: 1024,
            queue_timeout: Duration::from_secs(2),
            max_header_bytes: 16 * 1024,
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The limits the settings give (MAX_CONNECTIONS, MAX_IN_FLIGHT, QUEUE_TIMEOUT,
    /// REQUEST_TIMEOUT, DRAIN_TIMEOUT); the others at their defaults.
    pub fn from_settings(settings: &Settings) -> Self {
        Limits {
            max_connections: settings.max_connections,
            max_in_flight: settings.max_in_flight,
            queue_timeout: settings.queue_timeout,
            request_timeout: settings.request_timeout,
            drain_timeout: settings.drain_timeout,
            ..Limits::default()
        }
    }

    /// The read buffer of a connection: the hard cap hyper applies (its answer is an empty 431),
    /// well above `max_header_bytes`, which is checked here with a JSON answer.
    pub fn connection_buffer_bytes(&self) -> usize {
        (self.max_header_bytes * 4).max(64 * 1024)
    }
}

/// The limits and the turns of `max_in_flight`, shared by every connection.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: Limits,
    turns: Arc<Semaphore>,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission { limits, turns: Arc::new(Semaphore::new(limits.max_in_flight.max(1))) }
    }
}

/// Applies the in-flight limit, the header size limit, the body deadline and the request timeout,
/// for the middleware that does more around it (the application's edge layer).
pub async fn admit(admission: &Admission, mut req: Request, next: Next) -> Response {
    let limits = admission.limits;
    if header_bytes(&req) > limits.max_header_bytes {
        return ApiError::HeadersTooLarge.into_response();
    }
    let started = tokio::time::Instant::now();
    let _turn = match admission.turns.try_acquire() {
        Ok(turn) => turn,
        Err(_) => match tokio::time::timeout(limits.queue_timeout, admission.turns.acquire()).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(_)) | Err(_) => return ApiError::Busy.into_response(),
        },
    };
    req.extensions_mut().insert(BodyDeadline(started + limits.body_timeout));
    match tokio::time::timeout_at(started + limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Size of the request line and headers as sent (`name: value\r\n` each).
fn header_bytes(req: &Request) -> usize {
    let line = req.method().as_str().len() + req.uri().path_and_query().map_or(1, |p| p.as_str().len()) + 12;
    req.headers().iter().fold(line, |n, (name, value)| n + name.as_str().len() + value.len() + 4)
}
