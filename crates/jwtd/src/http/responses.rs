//! The response vocabulary of the OpenAPI document: SPEC §2's error responses, built from the
//! texts the server answers with (`jwtd_proto::messages`, `error.rs`), and the marker types the
//! views' declarations (`endpoints!`) name them by (`BodyErrors`, `TokenRefused`, …), plus the
//! bodies that have no type of their own in jwtd-proto. It must not list a text, status or header
//! the server does not send: the CI fuzzer checks the server's answers against them.

use std::collections::BTreeMap;

use jwtd_proto::messages::*;
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use super::error::{BUSY_RETRY_AFTER_SECS, WWW_AUTHENTICATE};

// --- Responses shared by many operations (SPEC §2), referenced from the views' declarations.

/// The references to the components of `error_responses`, by status.
fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<ApiResponse>> {
    entries.iter().map(|(status, name)| (status.to_string(), RefOr::Ref(Ref::from_response_name(*name)))).collect()
}

/// Declares the refusal sets: each a marker type whose responses are the components named, by
/// status.
macro_rules! refusals {
    ($($(#[doc = $doc:literal])* $name:ident: $(($status:literal, $response:literal)),+;)+) => {$(
        $(#[doc = $doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
                refs(&[$(($status, $response)),+])
            }
        }
    )+};
}

refusals! {
    /// 400, 413 and 415: what parsing a body can answer.
    BodyErrors: ("400", "BadRequest"), ("413", "BodyTooLarge"), ("415", "UnsupportedMediaType");
    /// 401 of the token views: a refused or blacklisted token.
    TokenRefused: ("401", "TokenNotValid");
    /// 401 and 429 of the sign-in views.
    CredentialsRefused: ("401", "NoActiveAccount"), ("429", "Throttled");
    /// 403 and 429 of sign-up: SIGNUP closed, SIGNUP_RATE used up.
    SignUpRefused: ("403", "SignUpClosed"), ("429", "Throttled");
    /// 403 of activation: a link of a user who is active already (djoser's "Stale token").
    ActivationStale: ("403", "StaleToken");
    /// 429 of the password change: its old-password checks count against LOGIN_RATE.
    PasswordChecksThrottled: ("429", "Throttled");
    /// 401 of the Bearer-protected routes.
    BearerRefused: ("401", "NotAuthenticated");
    /// 404 of `DELETE /api/auth/sessions/{id}/`: no session of the caller's has that id.
    SessionNotFound: ("404", "NotFound");
    /// 401 of the routes for other services: no service token, or not one of SERVICE_TOKENS.
    ServiceTokenRefused: ("401", "ServiceTokenRefused");
    /// 403 in cookie mode (REFRESH_COOKIE): a browser request from an origin not allowed.
    CookieOriginRefused: ("403", "CrossOrigin");
    /// 500 and 503: faults of the server's own (SPEC §2), never caused by the request.
    ServerFaults: ("500", "ServerError"), ("503", "Unavailable");
}

/// `additionalProperties: false`.
const NO_OTHERS: AdditionalProperties<Schema> = AdditionalProperties::FreeForm(false);

// --- Bodies that have no type of their own in jwtd-proto.

/// `{}`: the answer of verify, blacklist, password change and logout-all.
pub struct Empty;

impl PartialSchema for Empty {
    fn schema() -> RefOr<Schema> {
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("`{}`"))
            .additional_properties(Some(NO_OTHERS));
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for Empty {}

/// The answer itself: `{}` as JSON, what the views that document `body = Empty` answer with.
impl axum::response::IntoResponse for Empty {
    fn into_response(self) -> axum::response::Response {
        axum::Json(json!({})).into_response()
    }
}

/// An introspection answer (RFC 7662): `active`, and for an active token its claims and `sub`.
pub struct Introspection;

impl PartialSchema for Introspection {
    fn schema() -> RefOr<Schema> {
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("active", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("active")
            .property("sub", ObjectBuilder::new().schema_type(Type::String))
            .property("token_type", ObjectBuilder::new().schema_type(Type::String))
            .property("exp", ObjectBuilder::new().schema_type(Type::Number))
            .property("iat", ObjectBuilder::new().schema_type(Type::Number))
            .property("jti", ObjectBuilder::new().schema_type(Type::String));
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for Introspection {}

/// A JSON Web Key Set (RFC 7517): `{"keys": [...]}`.
pub struct Jwks;

impl PartialSchema for Jwks {
    fn schema() -> RefOr<Schema> {
        let keys = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object));
        let object = ObjectBuilder::new().schema_type(Type::Object).property("keys", keys).required("keys");
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for Jwks {}

// --- Schemas of the error bodies.

fn text(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()))
}

fn text_matching(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))
}

/// `text` as a regular expression matching exactly it.
fn literal(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.^$|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// A regular expression matching the texts of `template`, its part matching `part`.
fn template_matching(template: Template, part: &str) -> String {
    format!("^{}{part}{}$", literal(template.before), literal(template.after))
}

/// `{"detail": …}` (and `code`, when given), nothing else.
fn detail(detail: ObjectBuilder, code: Option<&[&str]>) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("detail", detail)
        .required("detail")
        .additional_properties(Some(NO_OTHERS));
    if let Some(codes) = code {
        object = object.property("code", text(codes)).required("code");
    }
    Schema::Object(object.build())
}

/// DRF's validation errors: each field (or `non_field_errors`) with its messages.
pub(super) fn validation_errors() -> Schema {
    let messages = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)).min_items(Some(1));
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Field name (as sent, or `non_field_errors`) → messages."))
            .additional_properties(Some(messages))
            .min_properties(Some(1))
            .build(),
    )
}

/// A refused Bearer token: SimpleJWT's JWTAuthentication bodies.
fn bearer_refusal() -> Schema {
    let messages = ArrayBuilder::new().items(RefOr::Ref(Ref::from_schema_name("TokenMessage")));
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "detail",
                text(&[
                    NOT_PROVIDED,
                    GIVEN_TOKEN_NOT_VALID,
                    BAD_AUTHORIZATION_HEADER,
                    NO_USER_ID,
                    USER_NOT_FOUND,
                    USER_INACTIVE,
                ]),
            )
            .required("detail")
            .property(
                "code",
                text(&[TOKEN_NOT_VALID, BAD_AUTHORIZATION_HEADER_CODE, USER_NOT_FOUND_CODE, USER_INACTIVE_CODE]),
            )
            .property("messages", messages)
            .additional_properties(Some(NO_OTHERS))
            .build(),
    )
}

fn json_response(description: &str, schema: Schema, example: serde_json::Value) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).example(Some(example)).build())
}

fn www_authenticate(response: ResponseBuilder) -> ResponseBuilder {
    let value = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(format!("`{WWW_AUTHENTICATE}`")))
        .build();
    response.header("WWW-Authenticate", value)
}

/// The error responses of SPEC §2, by component name.
pub(super) fn error_responses() -> Vec<(&'static str, ApiResponse)> {
    let bad_request = OneOfBuilder::new()
        .item(validation_errors())
        .item(detail(
            text_matching(&format!("^({}|{}$)", literal(JSON_PARSE_ERROR.before), literal(MALFORMED_REQUEST))),
            None,
        ))
        .build();
    let throttled_retry_after = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some("Seconds until a sign-in is allowed again."))
        .build();
    let busy_retry_after = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some(format!("`{BUSY_RETRY_AFTER_SECS}`, when the server is busy; absent otherwise.")))
        .build();
    let allow = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("The methods of the path, e.g. `POST, OPTIONS`."))
        .build();
    vec![
        (
            "BadRequest",
            json_response(
                "A field is missing, blank, null or not text, a value is refused, or the body is not a JSON \
                 object (DRF's shapes).",
                Schema::OneOf(bad_request),
                json!({"refresh": [REQUIRED]}),
            )
            .build(),
        ),
        (
            "BodyTooLarge",
            json_response(
                "The body is over MAX_BODY_BYTES.",
                detail(text(&[BODY_TOO_LARGE]), None),
                json!({"detail": BODY_TOO_LARGE}),
            )
            .build(),
        ),
        (
            "UnsupportedMediaType",
            json_response(
                "The body is neither JSON, form-encoded nor multipart.",
                detail(text_matching(&template_matching(UNSUPPORTED_MEDIA_TYPE, ".*")), None),
                json!({"detail": UNSUPPORTED_MEDIA_TYPE.fill("text/plain")}),
            )
            .build(),
        ),
        (
            "TokenNotValid",
            www_authenticate(json_response(
                "The token is invalid, malformed, expired, of the wrong type or its user is gone; or it is \
                 blacklisted.",
                detail(text(&[TOKEN_INVALID, TOKEN_BLACKLISTED]), Some(&[TOKEN_NOT_VALID])),
                json!({"detail": TOKEN_INVALID, "code": TOKEN_NOT_VALID}),
            ))
            .build(),
        ),
        (
            "NoActiveAccount",
            www_authenticate(json_response(
                "Wrong username or password, or an inactive user.",
                detail(text(&[NO_ACTIVE_ACCOUNT]), None),
                json!({"detail": NO_ACTIVE_ACCOUNT}),
            ))
            .build(),
        ),
        (
            "Throttled",
            json_response(
                "Too many failed sign-ins or old-password checks for this username or client address \
                 (LOGIN_RATE), or too many sign-ups from this client address (SIGNUP_RATE).",
                detail(text_matching(&template_matching(THROTTLED, "[0-9]+ seconds?")), None),
                json!({"detail": THROTTLED.fill("42 seconds")}),
            )
            .header("Retry-After", throttled_retry_after)
            .build(),
        ),
        (
            "SignUpClosed",
            json_response(
                "SIGNUP is closed: only `jwtd user create` creates users (DRF's PermissionDenied).",
                detail(text(&[PERMISSION_DENIED]), None),
                json!({"detail": PERMISSION_DENIED}),
            )
            .build(),
        ),
        (
            "StaleToken",
            json_response(
                "The link's user is active already (djoser's PermissionDenied).",
                detail(text(&[STALE_TOKEN]), None),
                json!({"detail": STALE_TOKEN}),
            )
            .build(),
        ),
        (
            "NotAuthenticated",
            www_authenticate(json_response(
                "No credentials, or a refused access token.",
                bearer_refusal(),
                json!({
                    "detail": GIVEN_TOKEN_NOT_VALID,
                    "code": TOKEN_NOT_VALID,
                    "messages": [{"token_class": ACCESS_TOKEN_CLASS, "token_type": ACCESS_TOKEN_TYPE, "message": TOKEN_EXPIRED}],
                }),
            ))
            .build(),
        ),
        (
            "ServiceTokenRefused",
            www_authenticate(json_response(
                "No `Authorization: Bearer` service token, or one that is not among SERVICE_TOKENS.",
                detail(text(&[NOT_PROVIDED, INVALID_SERVICE_TOKEN]), None),
                json!({"detail": INVALID_SERVICE_TOKEN}),
            ))
            .build(),
        ),
        (
            "NotFound",
            json_response(
                "Nothing here: no session of the caller's has this id (another user's, or none).",
                detail(text(&[NOT_FOUND]), None),
                json!({"detail": NOT_FOUND}),
            )
            .build(),
        ),
        (
            "MethodNotAllowed",
            json_response(
                "A method the path does not serve.",
                detail(text_matching(&template_matching(METHOD_NOT_ALLOWED, ".*")), None),
                json!({"detail": METHOD_NOT_ALLOWED.fill("GET")}),
            )
            .header("Allow", allow)
            .build(),
        ),
        (
            "ServerError",
            json_response(
                "A fault of the server's own; the cause is logged, never sent.",
                detail(text(&[SERVER_ERROR]), None),
                json!({"detail": SERVER_ERROR}),
            )
            .build(),
        ),
        (
            "Unavailable",
            json_response(
                "The database is unavailable, too many sign-ins are waiting, the answer took longer than \
                 the request timeout, or too many requests are in flight (then with `Retry-After`).",
                detail(text(&[UNAVAILABLE, REQUEST_TIMED_OUT, BUSY]), None),
                json!({"detail": UNAVAILABLE}),
            )
            .header("Retry-After", busy_retry_after)
            .build(),
        ),
        (
            "RequestTimeout",
            json_response(
                "The body did not arrive within the body deadline.",
                detail(text(&[BODY_TIMED_OUT]), None),
                json!({"detail": BODY_TIMED_OUT}),
            )
            .build(),
        ),
        (
            "HeadersTooLarge",
            json_response(
                "The request line and headers are over the header size limit.",
                detail(text(&[HEADERS_TOO_LARGE]), None),
                json!({"detail": HEADERS_TOO_LARGE}),
            )
            .build(),
        ),
        (
            "CrossOrigin",
            json_response(
                "Cookie mode: a browser request from an origin that is neither the server's own nor in \
                 CORS_ALLOWED_ORIGINS (Django's CSRF origin check).",
                detail(text_matching(&template_matching(CSRF_FAILED, ".*")), None),
                json!({"detail": CSRF_FAILED.fill("https://evil.test")}),
            )
            .build(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde_json::Value;

    use super::*;
    use crate::http::ApiError;
    use crate::service::{AuthError, BearerError};
    use crate::tokens::{TokenError, TokenType};

    /// The server's answer to `err`: status, headers other than the content type, body.
    fn answer(err: ApiError) -> (StatusCode, Vec<String>, Value) {
        let response = err.into_response();
        let status = response.status();
        let headers = response.headers().keys().filter(|h| *h != "content-type").map(|h| h.to_string()).collect();
        let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn every_fixed_answer_is_one_its_response_documents() {
        let documented: BTreeMap<&str, Value> =
            error_responses().into_iter().map(|(name, r)| (name, serde_json::to_value(r).unwrap())).collect();
        let cases = [
            (ApiError::Busy, "Unavailable"),
            (ApiError::Timeout, "Unavailable"),
            (ApiError::Unavailable, "Unavailable"),
            (ApiError::Auth(AuthError::Overloaded), "Unavailable"),
            (ApiError::Auth(AuthError::Hashing), "ServerError"),
            (ApiError::HeadersTooLarge, "HeadersTooLarge"),
            (ApiError::BodyTimeout, "RequestTimeout"),
            (ApiError::BodyTooLarge, "BodyTooLarge"),
            (ApiError::Auth(AuthError::NoActiveAccount), "NoActiveAccount"),
            (ApiError::Auth(AuthError::SignUpClosed), "SignUpClosed"),
            (ApiError::Auth(AuthError::StaleToken), "StaleToken"),
            (ApiError::Auth(AuthError::Blacklisted), "TokenNotValid"),
            (ApiError::Auth(AuthError::TokenInvalid(TokenError::Expired)), "TokenNotValid"),
            (ApiError::Auth(AuthError::UserNotFound), "NotAuthenticated"),
            (ApiError::Auth(AuthError::SessionNotFound), "NotFound"),
            (ApiError::Auth(AuthError::UserInactive), "NotAuthenticated"),
            (ApiError::Bearer(BearerError::NotProvided), "NotAuthenticated"),
            (ApiError::Bearer(BearerError::BadHeader), "NotAuthenticated"),
            (ApiError::Bearer(BearerError::NoUserId), "NotAuthenticated"),
            (ApiError::Bearer(BearerError::Revoked(&[TokenType::Access], TokenType::Access)), "NotAuthenticated"),
            (
                ApiError::Bearer(BearerError::Token(TokenError::WrongType, &[TokenType::Access, TokenType::Sliding])),
                "NotAuthenticated",
            ),
        ];
        for (err, name) in cases {
            let label = format!("{err:?} as {name}");
            let (_, headers, body) = answer(err);
            let response = &documented[name];
            let schema = &response["content"]["application/json"]["schema"]["properties"];
            for field in ["detail", "code"] {
                if let Some(value) = body.get(field) {
                    let allowed = schema[field]["enum"].as_array().unwrap_or_else(|| panic!("{label}: {field}"));
                    assert!(allowed.contains(value), "{label}: {value} not in {allowed:?}");
                }
            }
            for header in headers {
                let documented = response["headers"].as_object().into_iter().flat_map(|h| h.keys());
                assert!(documented.map(|h| h.to_ascii_lowercase()).any(|h| h == header), "{label}: {header}");
            }
        }
    }

    #[test]
    fn templates_become_the_documented_patterns() {
        let pattern = template_matching(METHOD_NOT_ALLOWED, ".*");
        assert_eq!(pattern, r#"^Method ".*" not allowed\.$"#);
        assert_eq!(
            template_matching(THROTTLED, "[0-9]+ seconds?"),
            r"^Request was throttled\. Expected available in [0-9]+ seconds?\.$"
        );
        let (status, headers, _) = answer(ApiError::MethodNotAllowed(axum::http::Method::PUT));
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(headers.is_empty(), "the view's fallback adds Allow, not the error");
    }
}
