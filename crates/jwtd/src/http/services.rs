//! What other services ask of jwtd: token introspection (RFC 7662) and the revocation feed, both
//! for holders of a service token (SERVICE_TOKENS, [`ServiceCaller`]); and forward-auth
//! (`GET /api/auth/check/`), which a proxy (nginx `auth_request`, Traefik ForwardAuth) asks with
//! the client's own `Authorization` header before it lets a request through.

use axum::extract::{FromRef, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwtd_proto::messages::INVALID_INTEGER;
use jwtd_proto::{RevocationFeed, TokenBody};
use serde_json::{json, Map, Value};

use super::endpoints::endpoints;
use super::responses::{BearerRefused, BodyErrors, Empty, Introspection, ServerFaults, ServiceTokenRefused};
use super::ApiError;
use crate::service::{BearerError, FieldErrors, ServiceTokens};

/// The most rows one page of the revocation feed holds.
pub const FEED_PAGE: u32 = 1000;

/// `X-Auth-User-Id`: the user of an accepted forward-auth request.
pub const X_AUTH_USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
/// `X-Auth-Claims`: the claims of an accepted forward-auth request, as base64url (no padding) JSON.
pub const X_AUTH_CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");

/// A request bearing one of the SERVICE_TOKENS (`Authorization: Bearer <service token>`).
/// Without an `Authorization: Bearer` header: 401 "not provided"; with another token: 401
/// `{"detail":"Invalid token."}` (DRF's TokenAuthentication), both with `WWW-Authenticate`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCaller;

impl<S> FromRequestParts<S> for ServiceCaller
where
    S: Send + Sync,
    ServiceTokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
        let token = match jwtd_verify::bearer(header, &["Bearer"]) {
            Ok(token) => token,
            // A header of another shape is a token no service holds.
            Err(BearerError::BadHeader) => "",
            Err(refusal) => return Err(ApiError::Bearer(refusal)),
        };
        if ServiceTokens::from_ref(state).admits(token) {
            Ok(ServiceCaller)
        } else {
            Err(ApiError::ServiceTokenRefused)
        }
    }
}

/// `?after=N` of the revocation feed.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct After {
    /// The `next` of the page before (0, or absent: from the start).
    #[param(value_type = Option<i64>)]
    after: Option<String>,
}

endpoints! {
    /// Token introspection (RFC 7662), for services holding a service token: the claims of a token
    /// jwtd would accept now (any type: signature, times, revocation, blacklist), else only
    /// `{"active": false}`, whatever the reason.
    post "/api/token/introspect/" tag "token" security "serviceToken" body TokenBody
    answers 200 Introspection
        "`{\"active\": true, \"sub\", …claims}` for a token jwtd accepts now; `{\"active\": false}` for any other."
    refuses BodyErrors, ServiceTokenRefused, ServerFaults;
    pub async fn introspect(_caller: ServiceCaller, auth, input) -> Result<Json<Value>, ApiError> {
        let [token] = input.required(["token"])?;
        let Some(claims) = auth.introspect(&token).await? else {
            return Ok(Json(json!({"active": false})));
        };
        let mut answer = Map::new();
        answer.insert("active".into(), true.into());
        if let Ok(Some(user_id)) = claims.user_id(auth.user_id_claim()) {
            answer.insert("sub".into(), user_id.to_string().into());
        }
        for (name, value) in claims.as_map() {
            answer.entry(name.clone()).or_insert_with(|| value.clone());
        }
        Ok(Json(Value::Object(answer)))
    }

    /// The revocation log after `after`, oldest first, for verifiers in other services (jwtd-verify
    /// polls it): each row revokes the tokens of `user_id` issued before `valid_after`, or those of
    /// one `session`. At most 1,000 rows a page; `next` is the `after` of the next request.
    get "/api/token/revocations/" tag "token" security "serviceToken" params (After)
    answers 200 RevocationFeed "A page of the revocation log."
    refuses BodyErrors, ServiceTokenRefused, ServerFaults;
    pub async fn revocations(
        _caller: ServiceCaller,
        auth,
        query: Result<Query<After>, axum::extract::rejection::QueryRejection>,
    ) -> Result<Json<RevocationFeed>, ApiError> {
        let invalid = || {
            let mut errors = FieldErrors::default();
            errors.add("after", INVALID_INTEGER);
            ApiError::Fields(errors)
        };
        let after = match query {
            Ok(Query(After { after: None })) => 0,
            Ok(Query(After { after: Some(text) })) => text.trim().parse::<i64>().map_err(|_| invalid())?,
            Err(_) => return Err(invalid()),
        };
        let (revocations, next) = auth.revocation_feed(after, FEED_PAGE).await?;
        Ok(Json(RevocationFeed { revocations, next }))
    }

    /// Forward-auth: 200 `{}` for a request whose Bearer token jwtd accepts, with its user in
    /// `X-Auth-User-Id` and its claims in `X-Auth-Claims` (base64url JSON) for the proxy to pass on;
    /// otherwise the 401 a protected route answers. No database round trip.
    get "/api/auth/check/" tag "auth" security "bearerAuth"
    answers 200 Empty "The token is accepted: `{}`." headers (
        ("X-Auth-User-Id" = String, description = "The user id the token carries."),
        ("X-Auth-Claims" = String, description = "The token's claims, JSON in base64url without padding."),
    )
    refuses BearerRefused, ServerFaults;
    pub async fn check(user) -> Response {
        let claims = serde_json::to_vec(user.claims.as_map()).unwrap_or_default();
        let mut response = Empty.into_response();
        let headers = response.headers_mut();
        if let Ok(id) = HeaderValue::from_str(&user.user_id.to_string()) {
            headers.insert(X_AUTH_USER_ID, id);
        }
        if let Ok(claims) = HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(claims)) {
            headers.insert(X_AUTH_CLAIMS, claims);
        }
        response
    }
}
