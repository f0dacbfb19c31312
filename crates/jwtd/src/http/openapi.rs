//! The OpenAPI 3.1 document of the API (SPEC §1), served at `/api/schema/`. Its paths come from
//! the route table (`http::api`, the views' `endpoints!` declarations) and the bodies from
//! jwtd-proto's `ToSchema` derives; this module assembles them and adds, once for every
//! operation, what DRF does once for every view: the error responses of SPEC §2 (from
//! `responses.rs`), form and multipart bodies beside JSON, and the Bearer scheme. It also
//! names the links between operations (obtain → refresh/verify/blacklist) for stateful clients.
//! It must not describe behaviour the handlers don't have: a schema test and the CI fuzzer hold
//! the server to this document.

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use jwtd_proto::{
    ActivationRequest, Credentials, EmailRequest, ErrorDetail, Me, PasswordChange, PasswordResetConfirm,
    RefreshRequest, SignUpPending, SignUpRequest, SignUpResponse, Status, TokenBody, TokenMessage, TokenPair,
    UserSummary,
};
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::endpoints::endpoints;
use super::responses::{error_responses, validation_errors, Empty, Jwks};
use crate::config::{LoginField, Settings};

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
    components(schemas(
        Credentials,
        SignUpRequest,
        SignUpResponse,
        SignUpPending,
        EmailRequest,
        PasswordResetConfirm,
        ActivationRequest,
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
    tags(
        (name = "auth", description = "Sign-up and sign-in"),
        (name = "token", description = "SimpleJWT's token views"),
        (name = "account", description = "Routes of the signed-in user (Bearer access token)"),
        (name = "operations", description = "Health, keys, metrics and this document"),
    )
)]
struct ApiDoc;

/// The document as served (JSON), built once at start from the configured route table (ROUTES)
/// and login field (USERNAME_FIELD names the field of the credential bodies).
pub(super) fn document(settings: &Settings) -> Bytes {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::api(settings).into_openapi());
    Contract.modify(&mut doc);
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    camel_case_links(&mut doc);
    if settings.username_field == LoginField::Email {
        email_credentials(&mut doc);
    }
    if settings.require_email_verification {
        sign_up_awaits_activation(&mut doc);
    }
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

endpoints! {
    /// The OpenAPI 3.1 document of this API.
    get "/api/schema/" tag "operations"
    answers 200 Object in "application/json" "This document.";
    pub async fn schema(state) -> Response {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], state.parts().schema.clone())
            .into_response()
    }
}

/// REQUIRE_EMAIL_VERIFICATION: sign-up requires `email` and answers with the user alone
/// (`SignUpPending`), who signs in once the activation link is followed.
fn sign_up_awaits_activation(doc: &mut serde_json::Value) {
    use serde_json::Value;
    if let Some(required) = doc.pointer_mut("/components/schemas/SignUpRequest/required").and_then(Value::as_array_mut)
    {
        if !required.contains(&json!("email")) {
            required.push(json!("email"));
        }
    }
    let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(created) = item.pointer_mut("/post/responses/201") else { continue };
        let Some(schema) = created.pointer_mut("/content/application~1json/schema") else { continue };
        if schema.get("$ref") == Some(&json!("#/components/schemas/SignUpResponse")) {
            *schema = json!({"$ref": "#/components/schemas/SignUpPending"});
            created["description"] = json!("The new user, inactive until the activation link is followed; no tokens.");
        }
    }
}

/// USERNAME_FIELD=email: sign-in bodies take `email` where they took `username`, and sign-up
/// requires `email` while `username` becomes optional (the reference's serializers).
fn email_credentials(doc: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(credentials) = schemas.get_mut("Credentials") {
        if let Some(props) = credentials.get_mut("properties").and_then(Value::as_object_mut) {
            let mut renamed = serde_json::Map::new();
            for (name, mut field) in std::mem::take(props) {
                if name == "username" {
                    field["description"] = json!("E-mail address, matched case-insensitively.");
                    renamed.insert("email".into(), field);
                } else {
                    renamed.insert(name, field);
                }
            }
            *props = renamed;
        }
        credentials["required"] = json!(["email", "password"]);
        credentials["example"] = json!({"email": "ada@example.com", "password": "correct horse battery"});
    }
    if let Some(sign_up) = schemas.get_mut("SignUpRequest") {
        sign_up["required"] = json!(["email", "password"]);
        if let Some(email) = sign_up.pointer_mut("/properties/email") {
            email["description"] = json!("E-mail address to sign in with; unique, compared case-insensitively.");
        }
        if let Some(username) = sign_up.pointer_mut("/properties/username") {
            username["description"] = json!("Optional username, at most 150 characters.");
        }
    }
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

// --- Additions to the generated document.

/// Links a stateful client follows: a token from one answer presented to the next operation.
/// (link name, target operation, field of the target's request body, its value)
const LINKS: &[(&str, &str, &str, &str)] = &[
    ("RefreshToken", "refresh", "refresh", "$response.body#/refresh"),
    ("BlacklistRefreshToken", "blacklist", "refresh", "$response.body#/refresh"),
    ("VerifyRefreshToken", "verify", "token", "$response.body#/refresh"),
    ("VerifyAccessToken", "verify", "token", "$response.body#/access"),
    ("RefreshSlidingToken", "refresh_sliding", "token", "$response.body#/token"),
    ("VerifySlidingToken", "verify", "token", "$response.body#/token"),
];

/// The [`LINKS`] each answer offers: (source operation, status, link names).
const LINKED: &[(&str, &str, &[&str])] = &[
    ("sign_up", "201", &["RefreshToken", "VerifyAccessToken", "BlacklistRefreshToken"]),
    ("obtain_pair", "200", &["RefreshToken", "VerifyAccessToken", "VerifyRefreshToken", "BlacklistRefreshToken"]),
    ("sign_in", "200", &["RefreshToken", "BlacklistRefreshToken"]),
    ("refresh", "200", &["VerifyAccessToken"]),
    ("obtain_sliding", "200", &["RefreshSlidingToken", "VerifySlidingToken"]),
    ("refresh_sliding", "200", &["VerifySlidingToken"]),
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
        let mut service = Http::new(HttpAuthScheme::Bearer);
        service.description = Some("A service token (SERVICE_TOKENS): `Authorization: Bearer <service token>`.".into());
        components.security_schemes.insert("serviceToken".into(), SecurityScheme::Http(service));

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
    [&mut item.get, &mut item.post, &mut item.delete].into_iter().filter_map(Option::as_mut)
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
    for &(source, status, names) in LINKED {
        for &(name, target, field, expression) in LINKS.iter().filter(|link| names.contains(&link.0)) {
            let link = LinkBuilder::new().operation_id(target).request_body(Some(json!({ field: expression }))).build();
            add_link(doc, source, status, name, link);
        }
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
