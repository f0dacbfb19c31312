//! The client's errors. `SessionExpired` means exactly one thing, the server refused the
//! refresh token; a network failure or a server fault is never reported as it.

use std::sync::Arc;

use reqwest::StatusCode;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the refresh token (401 from `/api/token/refresh/`): it expired, was
    /// blacklisted (signed out, rotated away, revoked by a password change or logout-all), or
    /// the session reached its maximum lifetime. The tokens were forgotten; sign in again.
    #[error("the session has expired: sign in again")]
    SessionExpired,
    /// Refreshing the access token failed for another reason than a refused refresh token: the
    /// network failed or the server answered with an error (the cause says which). The session
    /// is kept; the next request tries again. Every request that waited for this refresh gets
    /// the same cause, so a failing refresh is not repeated by each of them in turn.
    #[error("refreshing the access token failed")]
    RefreshFailed(#[source] Arc<Error>),
    /// No session: sign in (or sign up) first, or the client signed out.
    #[error("not signed in")]
    NotSignedIn,
    /// The server answered a sign-up, sign-in, refresh or sign-out with an error status, e.g.
    /// 401 for bad credentials, 400 for a validation error, 429 when throttled, 5xx.
    #[error("the server answered {status}")]
    Rejected {
        /// The HTTP status.
        status: StatusCode,
        /// The response body (a DRF error body, SPEC §2).
        body: String,
    },
    /// The request could not be sent or its answer not read: connection refused, timeout, TLS,
    /// a body that is not the expected JSON.
    #[error("HTTP request failed")]
    Http(#[from] reqwest::Error),
    /// The base URL given to the client is not a valid URL.
    #[error("invalid base URL")]
    BaseUrl(#[from] url::ParseError),
    /// The path given to [`Client::request`](crate::Client::request) leads outside the base URL
    /// (another host, or `..` above its path); the access token is not sent there.
    #[error("{0:?} is not a path under the base URL")]
    PathOutsideBase(String),
    /// A JSON or form body could not be serialized.
    #[error("request body could not be serialized")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The token store could not load, save or clear the tokens.
    #[error("token store failed")]
    Store(#[source] std::io::Error),
    /// The server sent an access token that cannot go in an `Authorization` header.
    #[error("the server sent an access token that is not a valid header value")]
    MalformedToken,
}

impl Error {
    /// The HTTP status of a [`Error::Rejected`] answer (also inside [`Error::RefreshFailed`]),
    /// or of a reqwest error carrying one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Rejected { status, .. } => Some(*status),
            Error::Http(e) => e.status(),
            Error::RefreshFailed(cause) => cause.status(),
            _ => None,
        }
    }

    /// Worth trying again later: the network or the server failed, the credentials did not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http(_) => true,
            Error::Rejected { status, .. } => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            Error::RefreshFailed(cause) => cause.is_transient(),
            _ => false,
        }
    }
}
