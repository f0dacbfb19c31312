//! `ApiError`, the only `IntoResponse` error: SPEC §2 mapped once, by one exhaustive match. The
//! texts are `jwtd_proto::messages`; the OpenAPI document (`responses.rs`) lists the same.

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jwtd_proto::messages::*;
use jwtd_proto::ErrorDetail;
use serde_json::{Map, Value};

use crate::service::{AuthError, BearerError, FieldErrors};
use crate::store::StoreError;
use crate::telemetry::Rejection;
use crate::tokens::TokenError;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error("body is not valid JSON: {0}")]
    JsonParse(String),
    #[error("form body could not be parsed")]
    FormParse,
    #[error("body is JSON but not an object")]
    NotAnObject(&'static str),
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("body too large")]
    BodyTooLarge,
    #[error("body could not be read")]
    BodyRead,
    #[error("invalid fields")]
    Fields(FieldErrors),
    #[error("method not allowed")]
    MethodNotAllowed(Method),
    #[error("not found")]
    NotFound,
    #[error("database unavailable")]
    Unavailable,
    #[error("cookie request from origin {0:?}, which is not allowed")]
    CrossOrigin(String),
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("timed out reading the request body")]
    BodyTimeout,
    #[error("request took longer than the request timeout")]
    Timeout,
    #[error("too many requests in flight")]
    Busy,
    /// A request for other services (SERVICE_TOKENS) with a token that is none of them.
    #[error("not a service token")]
    ServiceTokenRefused,
    /// A handler panicked (caught at the edge): SPEC §2's JSON 500, the panic's text in the log.
    #[error("a handler panicked: {0}")]
    Panicked(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Auth(AuthError::Store(e))
    }
}

fn detail(text: impl Into<String>) -> ErrorDetail {
    ErrorDetail { detail: text.into(), code: None, messages: None }
}

fn coded(text: &str, code: &str) -> ErrorDetail {
    ErrorDetail { detail: text.into(), code: Some(code.into()), messages: None }
}

fn fields(errors: &FieldErrors) -> Value {
    let map: Map<String, Value> = errors.0.iter().map(|(f, msgs)| (f.clone(), Value::from(msgs.clone()))).collect();
    Value::Object(map)
}

/// The `WWW-Authenticate` header of every 401 (`jwtd-verify`'s, whose refusals these are too).
pub(super) const WWW_AUTHENTICATE: &str = jwtd_verify::WWW_AUTHENTICATE;
/// The `Retry-After` of [`ApiError::Busy`], in seconds.
pub(super) const BUSY_RETRY_AFTER_SECS: u16 = 1;

enum Body {
    Detail(ErrorDetail),
    Raw(Value),
}

fn status_and_body(err: &ApiError) -> (StatusCode, Body) {
    use ApiError as A;
    use AuthError as E;
    use Body::{Detail as D, Raw};
    use StatusCode as S;
    match err {
        A::Auth(E::NoActiveAccount) => (S::UNAUTHORIZED, D(detail(NO_ACTIVE_ACCOUNT))),
        A::Auth(E::TokenInvalid(_)) => (S::UNAUTHORIZED, D(coded(TOKEN_INVALID, TOKEN_NOT_VALID))),
        A::Auth(E::Blacklisted) => (S::UNAUTHORIZED, D(coded(TOKEN_BLACKLISTED, TOKEN_NOT_VALID))),
        A::Auth(E::Validation(errors)) | A::Fields(errors) => (S::BAD_REQUEST, Raw(fields(errors))),
        A::Auth(E::Throttled(t)) => {
            let unit = if t.wait_secs == 1 { "second" } else { "seconds" };
            (S::TOO_MANY_REQUESTS, D(detail(THROTTLED.fill(format_args!("{} {unit}", t.wait_secs)))))
        }
        A::Auth(E::SignUpClosed) => (S::FORBIDDEN, D(detail(PERMISSION_DENIED))),
        A::Auth(E::StaleToken) => (S::FORBIDDEN, D(detail(STALE_TOKEN))),
        A::Auth(E::UserNotFound) => (S::UNAUTHORIZED, D(coded(USER_NOT_FOUND, USER_NOT_FOUND_CODE))),
        A::Auth(E::UserInactive) => (S::UNAUTHORIZED, D(coded(USER_INACTIVE, USER_INACTIVE_CODE))),
        A::Auth(E::Store(StoreError::UsernameTaken)) => {
            let mut errors = FieldErrors::default();
            errors.add("username", USERNAME_TAKEN);
            (S::BAD_REQUEST, Raw(fields(&errors)))
        }
        A::Auth(E::Store(StoreError::EmailTaken)) => {
            let mut errors = FieldErrors::default();
            errors.add("email", EMAIL_TAKEN);
            (S::BAD_REQUEST, Raw(fields(&errors)))
        }
        A::Auth(E::Store(StoreError::Unavailable(_)) | E::Overloaded) | A::Unavailable => {
            (S::SERVICE_UNAVAILABLE, D(detail(UNAVAILABLE)))
        }
        A::Auth(E::Store(StoreError::Database(_)) | E::Hashing | E::Signing) | A::Panicked(_) => {
            (S::INTERNAL_SERVER_ERROR, D(detail(SERVER_ERROR)))
        }
        // SimpleJWT's JWTAuthentication refusals, as `jwtd-verify` answers them.
        A::Bearer(e) => {
            let (status, body) = e.status_and_body();
            (status, D(body))
        }
        A::JsonParse(msg) => (S::BAD_REQUEST, D(detail(JSON_PARSE_ERROR.fill(msg)))),
        A::FormParse | A::BodyRead => (S::BAD_REQUEST, D(detail(MALFORMED_REQUEST))),
        A::NotAnObject(kind) => (S::BAD_REQUEST, Raw(serde_json::json!({"non_field_errors": [NOT_A_DICT.fill(kind)]}))),
        A::UnsupportedMediaType(t) => (S::UNSUPPORTED_MEDIA_TYPE, D(detail(UNSUPPORTED_MEDIA_TYPE.fill(t)))),
        A::BodyTooLarge => (S::PAYLOAD_TOO_LARGE, D(detail(BODY_TOO_LARGE))),
        A::MethodNotAllowed(m) => (S::METHOD_NOT_ALLOWED, D(detail(METHOD_NOT_ALLOWED.fill(m)))),
        A::NotFound | A::Auth(E::SessionNotFound) => (S::NOT_FOUND, D(detail(NOT_FOUND))),
        // Django's CSRF failure as DRF words it (`CSRF Failed: ` + Django's REASON_BAD_ORIGIN).
        A::CrossOrigin(origin) => (S::FORBIDDEN, D(detail(CSRF_FAILED.fill(origin)))),
        A::HeadersTooLarge => (S::REQUEST_HEADER_FIELDS_TOO_LARGE, D(detail(HEADERS_TOO_LARGE))),
        A::BodyTimeout => (S::REQUEST_TIMEOUT, D(detail(BODY_TIMED_OUT))),
        A::Timeout => (S::SERVICE_UNAVAILABLE, D(detail(REQUEST_TIMED_OUT))),
        A::Busy => (S::SERVICE_UNAVAILABLE, D(detail(BUSY))),
        A::ServiceTokenRefused => (S::UNAUTHORIZED, D(detail(INVALID_SERVICE_TOKEN))),
    }
}

/// The reason a refused Bearer token counts under in `jwtd_tokens_rejected_total`: for the
/// refusals of `jwtd-verify`'s extractor, which leaves its [`BearerError`] in the response.
pub fn bearer_rejection(e: &BearerError) -> Option<Rejection> {
    rejection(&ApiError::Bearer(e.clone()))
}

/// The reason a refusal counts under in `jwtd_tokens_rejected_total`, if it is one.
fn rejection(err: &ApiError) -> Option<Rejection> {
    let token = |e: &TokenError| match e {
        TokenError::Expired => Rejection::Expired,
        _ => Rejection::Invalid,
    };
    match err {
        ApiError::Auth(AuthError::NoActiveAccount) => Some(Rejection::BadCredentials),
        ApiError::Auth(AuthError::TokenInvalid(e)) | ApiError::Bearer(BearerError::Token(e, _)) => Some(token(e)),
        ApiError::Auth(AuthError::Blacklisted) => Some(Rejection::Blacklisted),
        ApiError::Auth(AuthError::Throttled(_)) => Some(Rejection::Throttled),
        ApiError::Auth(AuthError::UserNotFound | AuthError::UserInactive)
        | ApiError::Bearer(BearerError::BadHeader | BearerError::NoUserId)
        | ApiError::ServiceTokenRefused => Some(Rejection::Invalid),
        ApiError::Bearer(BearerError::Revoked(..)) => Some(Rejection::Revoked),
        ApiError::Bearer(BearerError::NotProvided) => Some(Rejection::NotProvided),
        ApiError::CrossOrigin(_) => Some(Rejection::Origin),
        _ => None,
    }
}

/// The error of a failed request, left in the response's extensions for the logging layer.
#[derive(Debug, Clone)]
pub struct LoggedError(pub std::sync::Arc<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = status_and_body(&self);
        let mut response = match body {
            Body::Detail(d) => (status, Json(d)).into_response(),
            Body::Raw(v) => (status, Json(v)).into_response(),
        };
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE));
        }
        if let ApiError::Auth(AuthError::Throttled(t)) = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(t.wait_secs));
        }
        if let ApiError::Busy = &self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECS));
        }
        if let Some(reason) = rejection(&self) {
            response.extensions_mut().insert(reason);
        }
        if status.is_server_error() {
            let mut chain = self.to_string();
            let mut source = std::error::Error::source(&self);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            response.extensions_mut().insert(LoggedError(std::sync::Arc::new(chain)));
        }
        response
    }
}
