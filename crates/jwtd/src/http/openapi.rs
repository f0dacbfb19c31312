//! The OpenAPI 3.1 document of the API (SPEC §1), served at `/api/schema/`. Operations come from
//! the handlers' `#[utoipa::path]` attributes and the bodies from jwtd-proto's `ToSchema` derives;
//! this module adds, once for every operation, what DRF does once for every view: the error
//! responses of SPEC §2, form and multipart bodies beside JSON, and the Bearer scheme. It also
//! names the links between operations (obtain → refresh/verify/blacklist) for stateful clients.
//! It must not describe behaviour the handlers don't have: a schema test and the CI fuzzer hold
//! the server to this document.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use jwtd_proto::messages::{
    BODY_TOO_LARGE, GIVEN_TOKEN_NOT_VALID, NOT_PROVIDED, NO_ACTIVE_ACCOUNT, TOKEN_BLACKLISTED, TOKEN_INVALID,
    TOKEN_NOT_VALID,
};
use jwtd_proto::{
    Credentials, ErrorDetail, Me, PasswordChange, RefreshRequest, SignUpRequest, SignUpResponse, Status, TokenBody,
    TokenMessage, TokenPair, UserSummary,
};
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use super::error::{SERVER_ERROR, UNAVAILABLE};

/// The transport limits' answers (`http/limits.rs`), on every route.
const BODY_TIMED_OUT: &str = "Timed out reading the request body.";
const HEADERS_TOO_LARGE: &str = "Request header fields too large.";
const REQUEST_TIMED_OUT: &str = "Request timed out, try again later.";
use super::{account, health, metrics, token};

/// The security scheme of the protected routes.
const BEARER: &str = "bearerAuth";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jwtd",
        description = "JWT authentication server, wire-compatible with Django REST Framework + SimpleJWT. \
            Every path also answers without its trailing slash. Request bodies are JSON, form-encoded or \
            multipart; text fields are DRF CharFields (a number is read as its text, the value is trimmed). \
            Any method a path does not list answers 405 with an `Allow` header \
            (`#/components/responses/MethodNotAllowed`); unknown paths answer 404."
    ),
    paths(
        account::sign_up,
        token::obtain_pair,
        token::refresh,
        token::verify,
        token::blacklist,
        token::obtain_sliding,
        token::refresh_sliding,
        account::me,
        account::change_password,
        account::logout_all,
        health::jwks,
        health::healthz,
        health::readyz,
        metrics::metrics,
        schema,
    ),
    components(schemas(
        Credentials,
        SignUpRequest,
        SignUpResponse,
        UserSummary,
        TokenPair,
        RefreshRequest,
        TokenBody,
        Me,
        PasswordChange,
        Status,
        ErrorDetail,
        TokenMessage,
        Empty,
        Jwks,
    )),
    modifiers(&Contract),
    tags(
        (name = "auth", description = "Sign-up and sign-in"),
        (name = "token", description = "SimpleJWT's token views"),
        (name = "account", description = "Routes of the signed-in user (Bearer access token)"),
        (name = "operations", description = "Health, keys, metrics and this document"),
    )
)]
struct ApiDoc;

/// The document as served: JSON, built once.
fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        camel_case_links(&mut doc);
        doc
    })
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/schema/",
    tag = "operations",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object))
)]
pub async fn schema() -> Response {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(document()).unwrap_or_default()).as_slice();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// utoipa 5 writes a Link's fields in snake case (`operation_id`, `request_body`); OpenAPI
/// names them in camel case.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(serde_json::Value::as_object_mut) else {
            continue;
        };
        for link in links.values_mut().filter_map(serde_json::Value::as_object_mut) {
            for (snake, camel) in
                [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
            {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.into(), value);
                }
            }
        }
    }
}

// --- Responses shared by many operations (SPEC §2), referenced from the handlers' attributes.

fn refs(entries: &[(&str, &str)]) -> BTreeMap<String, RefOr<ApiResponse>> {
    entries.iter().map(|(status, name)| (status.to_string(), RefOr::Ref(Ref::from_response_name(*name)))).collect()
}

/// 400, 413 and 415: what parsing a body can answer.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("400", "BadRequest"), ("413", "BodyTooLarge"), ("415", "UnsupportedMediaType")])
    }
}

/// 401 of the token views: a refused or blacklisted token.
pub struct TokenRefused;

impl IntoResponses for TokenRefused {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("401", "TokenNotValid")])
    }
}

/// 401 and 429 of the sign-in views.
pub struct CredentialsRefused;

impl IntoResponses for CredentialsRefused {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("401", "NoActiveAccount"), ("429", "Throttled")])
    }
}

/// 401 of the Bearer-protected routes.
pub struct BearerRefused;

impl IntoResponses for BearerRefused {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("401", "NotAuthenticated")])
    }
}

/// 403 in cookie mode (REFRESH_COOKIE): a browser request from an origin not allowed.
pub struct CookieOriginRefused;

impl IntoResponses for CookieOriginRefused {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("403", "CrossOrigin")])
    }
}

/// 500 and 503: faults of the server's own (SPEC §2), never caused by the request.
pub struct ServerFaults;

impl IntoResponses for ServerFaults {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        refs(&[("500", "ServerError"), ("503", "Unavailable")])
    }
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
fn validation_errors() -> Schema {
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
                    "Authorization header must contain two space-delimited values",
                    "Token contained no recognizable user identification",
                    "User not found",
                    "User is inactive",
                ]),
            )
            .required("detail")
            .property("code", text(&[TOKEN_NOT_VALID, "bad_authorization_header", "user_not_found", "user_inactive"]))
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
        .description(Some("`Bearer realm=\"api\"`"))
        .build();
    response.header("WWW-Authenticate", value)
}

/// The error responses of SPEC §2, by component name.
fn error_responses() -> Vec<(&'static str, ApiResponse)> {
    let bad_request = OneOfBuilder::new()
        .item(validation_errors())
        .item(detail(text_matching(r"^(JSON parse error - |Malformed request\.$)"), None))
        .build();
    let retry_after = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some("Seconds until a sign-in is allowed again."))
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
                json!({"refresh": ["This field is required."]}),
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
                detail(text_matching(r#"^Unsupported media type ".*" in request\.$"#), None),
                json!({"detail": "Unsupported media type \"text/plain\" in request."}),
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
                "Too many failed sign-ins for this username or client address (LOGIN_RATE).",
                detail(text_matching(r"^Request was throttled\. Expected available in [0-9]+ seconds?\.$"), None),
                json!({"detail": "Request was throttled. Expected available in 42 seconds."}),
            )
            .header("Retry-After", retry_after)
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
                    "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is expired"}],
                }),
            ))
            .build(),
        ),
        (
            "MethodNotAllowed",
            json_response(
                "A method the path does not serve.",
                detail(text_matching(r#"^Method ".*" not allowed\.$"#), None),
                json!({"detail": "Method \"GET\" not allowed."}),
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
                "The database is unavailable, too many sign-ins are waiting, or the answer took longer \
                 than the request timeout.",
                detail(text(&[UNAVAILABLE, REQUEST_TIMED_OUT]), None),
                json!({"detail": UNAVAILABLE}),
            )
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
                detail(text_matching(r"^CSRF Failed: Origin checking failed - .* does not match any trusted origins\.$"), None),
                json!({"detail": "CSRF Failed: Origin checking failed - https://evil.test does not match any trusted origins."}),
            )
            .build(),
        ),
    ]
}

// --- Additions to the generated document.

/// Links a stateful client follows: a token from one answer presented to the next operation.
/// (source operation, status, link name, target operation, request body of the target)
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("sign_up", "201", "RefreshToken", "refresh", "refresh", "$response.body#/refresh"),
    ("sign_up", "201", "VerifyAccessToken", "verify", "token", "$response.body#/access"),
    ("sign_up", "201", "BlacklistRefreshToken", "blacklist", "refresh", "$response.body#/refresh"),
    ("obtain_pair", "200", "RefreshToken", "refresh", "refresh", "$response.body#/refresh"),
    ("obtain_pair", "200", "VerifyAccessToken", "verify", "token", "$response.body#/access"),
    ("obtain_pair", "200", "VerifyRefreshToken", "verify", "token", "$response.body#/refresh"),
    ("obtain_pair", "200", "BlacklistRefreshToken", "blacklist", "refresh", "$response.body#/refresh"),
    ("sign_in", "200", "RefreshToken", "refresh", "refresh", "$response.body#/refresh"),
    ("sign_in", "200", "BlacklistRefreshToken", "blacklist", "refresh", "$response.body#/refresh"),
    ("refresh", "200", "VerifyAccessToken", "verify", "token", "$response.body#/access"),
    ("obtain_sliding", "200", "RefreshSlidingToken", "refresh_sliding", "token", "$response.body#/token"),
    ("obtain_sliding", "200", "VerifySlidingToken", "verify", "token", "$response.body#/token"),
    ("refresh_sliding", "200", "VerifySlidingToken", "verify", "token", "$response.body#/token"),
];

/// Links from a fresh sign-up to the sign-in views, with the new user's credentials.
const SIGN_IN_LINKS: &[(&str, &str)] =
    &[("ObtainPair", "obtain_pair"), ("SignIn", "sign_in"), ("ObtainSlidingToken", "obtain_sliding")];

/// Links from a fresh sign-up to the routes of the new user, authenticated with its access token.
const BEARER_LINKS: &[(&str, &str)] =
    &[("Me", "me"), ("ChangePassword", "change_password"), ("LogoutAll", "logout_all")];

struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Components::new);
        for (name, response) in error_responses() {
            components.responses.insert(name.to_string(), RefOr::T(response));
        }
        components.schemas.insert("ValidationErrors".into(), RefOr::T(validation_errors()));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some("An access token: `Authorization: Bearer <access>`.".into());
        components.security_schemes.insert(BEARER.into(), SecurityScheme::Http(bearer));

        add_sign_in(doc);
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                accept_forms(operation);
                transport_limits(operation);
            }
        }
        add_links(doc);
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.post].into_iter().filter_map(Option::as_mut)
}

/// /api/auth/signin/ is /api/token/ under another name (one handler serves both).
fn add_sign_in(doc: &mut Document) {
    let Some(mut item) = doc.paths.paths.get("/api/token/").cloned() else {
        return;
    };
    for operation in operations(&mut item) {
        operation.operation_id = Some("sign_in".into());
        operation.tags = Some(vec!["auth".into()]);
        operation.summary = Some("Sign in: the same view as /api/token/.".into());
    }
    // Keep SPEC §1's order: sign-up, sign-in, then the token views.
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, value) in paths {
        let after_sign_up = path == "/api/auth/signup/";
        doc.paths.paths.insert(path, value);
        if after_sign_up {
            doc.paths.paths.insert("/api/auth/signin/".into(), item.clone());
        }
    }
}

/// DRF's parsers serve every view: a JSON body may also come form-encoded or multipart. A
/// multipart field name travels in a part header, where control characters other than tab are
/// malformed (RFC 9110 field values), so there the names exclude them.
fn accept_forms(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else {
        return;
    };
    let Some(json) = body.content.get("application/json").cloned() else {
        return;
    };
    body.content.entry("application/x-www-form-urlencoded".into()).or_insert_with(|| json.clone());
    let Some(schema) = json.schema else {
        return;
    };
    let header_safe = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[^\x00-\x08\x0a-\x1f\x7f]*$"));
    let names = ObjectBuilder::new().property_names(Some(header_safe));
    let multipart = AllOfBuilder::new().item(schema).item(names).build();
    body.content
        .entry("multipart/form-data".into())
        .or_insert_with(|| ContentBuilder::new().schema(Some(Schema::AllOf(multipart))).build());
}

/// The transport limits hold for every route: headers too large (431), a body too slow (408), an
/// answer too slow (503).
fn transport_limits(operation: &mut Operation) {
    for (status, name) in [("408", "RequestTimeout"), ("431", "HeadersTooLarge"), ("503", "Unavailable")] {
        operation.responses.responses.entry(status.into()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

fn operation_mut<'a>(doc: &'a mut Document, id: &str) -> Option<&'a mut Operation> {
    doc.paths.paths.values_mut().flat_map(operations).find(|operation| operation.operation_id.as_deref() == Some(id))
}

fn add_links(doc: &mut Document) {
    for &(source, status, name, target, field, expression) in LINKS {
        let link = LinkBuilder::new().operation_id(target).request_body(Some(json!({ field: expression }))).build();
        add_link(doc, source, status, name, link);
    }
    for &(name, target) in SIGN_IN_LINKS {
        let credentials = json!({"username": "$request.body#/username", "password": "$request.body#/password"});
        let link = LinkBuilder::new().operation_id(target).request_body(Some(credentials)).build();
        add_link(doc, "sign_up", "201", name, link);
    }
    for &(name, target) in BEARER_LINKS {
        let mut link = LinkBuilder::new()
            .operation_id(target)
            .parameter("header.Authorization", "Bearer {$response.body#/access}");
        if target == "change_password" {
            link = link.request_body(Some(json!({"old_password": "$request.body#/password"})));
        }
        add_link(doc, "sign_up", "201", name, link.build());
    }
}

fn add_link(doc: &mut Document, source: &str, status: &str, name: &str, link: utoipa::openapi::link::Link) {
    let Some(operation) = operation_mut(doc, source) else {
        return;
    };
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) {
        response.links.insert(name.into(), RefOr::T(link));
    }
}
