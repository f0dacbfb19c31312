//! The answers of a refused request, as SimpleJWT's `JWTAuthentication` and DRF word them (SPEC
//! §2, texts from `jwtd_proto::messages`): the one mapping of [`BearerError`] to a status and a
//! body, which jwtd's own routes answer with too.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jwtd_proto::messages::*;
use jwtd_proto::{ErrorDetail, TokenMessage};

use crate::tokens::TokenType;
use crate::BearerError;

/// The `WWW-Authenticate` header of every 401 (DRF's, for the `api` realm).
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";
/// The `WWW-Authenticate` header of a claim guard's 403 (RFC 6750 §3.1).
pub const WWW_AUTHENTICATE_INSUFFICIENT_SCOPE: &str = "Bearer error=\"insufficient_scope\"";

fn detail(text: &str) -> ErrorDetail {
    ErrorDetail { detail: text.into(), code: None, messages: None }
}

fn coded(text: &str, code: &str) -> ErrorDetail {
    ErrorDetail { detail: text.into(), code: Some(code.into()), messages: None }
}

/// SimpleJWT's JWTAuthentication refusal: one message per accepted token class, in order, each
/// saying why the token is not a valid token of that class.
fn bearer_refused(classes: &[TokenType], message: impl Fn(TokenType) -> &'static str) -> ErrorDetail {
    let messages = classes
        .iter()
        .map(|&class| {
            let (token_class, token_type) = match class {
                TokenType::Access => (ACCESS_TOKEN_CLASS, ACCESS_TOKEN_TYPE),
                TokenType::Sliding => (SLIDING_TOKEN_CLASS, SLIDING_TOKEN_TYPE),
                TokenType::Refresh => (REFRESH_TOKEN_CLASS, REFRESH_TOKEN_TYPE),
            };
            TokenMessage {
                token_class: token_class.into(),
                token_type: token_type.into(),
                message: message(class).into(),
            }
        })
        .collect();
    ErrorDetail { detail: GIVEN_TOKEN_NOT_VALID.into(), code: Some(TOKEN_NOT_VALID.into()), messages: Some(messages) }
}

impl BearerError {
    /// The status and body of this refusal (SPEC §2). A 401 also carries [`WWW_AUTHENTICATE`].
    pub fn status_and_body(&self) -> (StatusCode, ErrorDetail) {
        match self {
            BearerError::NotProvided => (StatusCode::UNAUTHORIZED, detail(NOT_PROVIDED)),
            BearerError::BadHeader => {
                (StatusCode::UNAUTHORIZED, coded(BAD_AUTHORIZATION_HEADER, BAD_AUTHORIZATION_HEADER_CODE))
            }
            BearerError::Token(e, classes) => (StatusCode::UNAUTHORIZED, bearer_refused(classes, |_| e.message())),
            BearerError::Revoked(classes, of) => {
                let message = |class| if class == *of { TOKEN_BLACKLISTED } else { TOKEN_WRONG_TYPE };
                (StatusCode::UNAUTHORIZED, bearer_refused(classes, message))
            }
            BearerError::NoUserId => (StatusCode::UNAUTHORIZED, coded(NO_USER_ID, TOKEN_NOT_VALID)),
            BearerError::KeysUnavailable => (StatusCode::SERVICE_UNAVAILABLE, detail(UNAVAILABLE)),
            BearerError::InsufficientScope => (StatusCode::FORBIDDEN, detail(PERMISSION_DENIED)),
        }
    }
}

/// The refusal as an answer: its status, its JSON body, `WWW-Authenticate` on a 401 (and on a
/// guard's 403, with `error="insufficient_scope"`), and the error itself in the response's
/// extensions, where a logging or metrics layer finds why the request was refused.
impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = (status, Json(body)).into_response();
        let challenge = match self {
            BearerError::InsufficientScope => Some(WWW_AUTHENTICATE_INSUFFICIENT_SCOPE),
            _ if status == StatusCode::UNAUTHORIZED => Some(WWW_AUTHENTICATE),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response.extensions_mut().insert(self);
        response
    }
}
