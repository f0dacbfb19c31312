//! REFRESH_COOKIE: the refresh token travels in an HttpOnly cookie instead of the JSON body,
//! and the origin check that keeps other sites from riding that cookie (CSRF). This is
//! transport only: the service never knows where a token came from.
//!
//! The cookie is `HttpOnly; Secure; SameSite=Strict`, its `Max-Age` the refresh token's
//! remaining lifetime, and its `Path` the narrowest path every route reading it falls under
//! (with or without their slash), `Routes::cookie_path`: by default `/api/token/`, which
//! covers `/api/token/refresh/` and `/api/token/blacklist/`, so it never goes to `/api/me/` or
//! any other route of the site; it follows those routes when ROUTES moves them. `Secure` is always set:
//! browsers accept and send Secure cookies for `http://localhost` (a secure context), so local
//! development works without TLS; anywhere else the API must be served over HTTPS.
//!
//! SameSite=Strict keeps the cookie off requests started by other sites, but not off requests
//! from other origins of the same site (another port or subdomain). So in cookie mode every
//! request that sets or reads the cookie and comes from a browser (it sends `Origin`, or
//! `Sec-Fetch-Site`) must come from an origin in CORS_ALLOWED_ORIGINS or from the server's own
//! origin; anything else gets 403, as Django's CSRF origin check answers. Clients that are not
//! browsers send neither header and hold their tokens themselves, so they are not affected.
//!
//! The cookie's name carries a prefix browsers enforce (RFC 6265bis §4.1.3): `__Host-` needs
//! `Path=/` and no `Domain`, so it fits only a cookie on `/`; at `/api/token/` the name is
//! `__Secure-jwtd_refresh`, which a browser accepts only with `Secure` from a secure origin, so
//! a plain-http page of the site cannot plant one. A sibling subdomain can still set a
//! `Domain=` cookie of the same name with a longer path, which the browser then sends first
//! (session swapping: the victim's app refreshes into the attacker's account). So a refresh or
//! blacklist request carrying the cookie more than once is refused, 401 `token_not_valid`
//! like any unusable refresh token (SPEC §2), rather than trusting either copy.
//!
//! `hand_out_pair` is where every view that issues a token pair (sign-up, obtain, refresh) hands
//! it out, in the body or in the cookie.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use jwtd_proto::TokenPair;

use super::{ApiError, Input};
use crate::config::Settings;
use crate::service::{AuthError, Issued, IssuedRefresh};
use crate::telemetry::{Metrics, TokenKind};
use crate::tokens::TokenError;

/// The cookie's name for a cookie at `path`: `__Host-` when the path allows it (`/`), else
/// `__Secure-` (see the module docs).
pub fn cookie_name(path: &str) -> &'static str {
    if path == "/" {
        "__Host-jwtd_refresh"
    } else {
        "__Secure-jwtd_refresh"
    }
}

/// Marks a request that arrived over TLS (set by the server), so that its own origin is `https://…`.
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// Cookie mode for one request: off (REFRESH_COOKIE=false), or on with the token the browser
/// presented in the cookie, if any. Extracting it in cookie mode runs the origin check.
#[derive(Debug, Clone)]
pub enum RefreshCookie {
    Off,
    On { presented: Presented, path: Arc<str> },
}

/// What a request carries of the refresh cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    None,
    One(String),
    /// More than one: a planted cookie beside ours, or two planted; none is trusted.
    Several,
}

impl<S> FromRequestParts<S> for RefreshCookie
where
    S: Send + Sync,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let settings = Arc::<Settings>::from_ref(state);
        if !settings.refresh_cookie {
            return Ok(RefreshCookie::Off);
        }
        let https = parts.extensions.get::<Https>().is_some();
        check_origin(&parts.headers, &parts.uri, https, &settings.cors_allowed_origins)?;
        let path = nested(settings.routes.cookie_path(), parts);
        Ok(RefreshCookie::On { presented: presented(&parts.headers, cookie_name(&path)), path })
    }
}

/// The cookie's `Path` for this request: the routes' own, under the prefix the router is nested
/// at in a host application (`Router::nest("/auth", jwtd::router(state))`: the request's original
/// path ends with the path the router sees, and what comes before is the prefix).
fn nested(path: &Arc<str>, parts: &Parts) -> Arc<str> {
    let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() else {
        return path.clone();
    };
    let prefix = original.path().strip_suffix(parts.uri.path()).unwrap_or("").trim_end_matches('/');
    if prefix.is_empty() {
        path.clone()
    } else {
        format!("{prefix}{path}").into()
    }
}

impl RefreshCookie {
    /// The refresh token of a refresh or blacklist request: the body's `field` when it has a
    /// value, else the cookie's; with neither, the body's usual "This field is required.".
    pub fn token(&self, mut input: Input, field: &str) -> Result<String, ApiError> {
        if let RefreshCookie::On { presented, .. } = self {
            if !input.has_value(field) {
                match presented {
                    Presented::One(token) => return input.finish(Some(token.clone())),
                    Presented::Several => {
                        tracing::warn!("several refresh cookies in one request (cookie injection?); refused");
                        return Err(ApiError::Auth(AuthError::TokenInvalid(TokenError::Malformed)));
                    }
                    Presented::None => {}
                }
            }
        }
        let value = input.string(field);
        input.finish(value)
    }

    /// Hands out a refresh token: in cookie mode as a `Set-Cookie` header living as long as the
    /// token (and `None` for the JSON body), else unchanged for the body.
    pub fn hand_out(&self, refresh: Option<IssuedRefresh>) -> Result<(Option<HeaderValue>, Option<String>), ApiError> {
        match (self, refresh) {
            (RefreshCookie::On { path, .. }, Some(IssuedRefresh { token, max_age })) => {
                let value = format!("{}={token}; {}", cookie_name(path), attributes(path, max_age));
                let value = HeaderValue::try_from(value).map_err(|_| ApiError::Auth(AuthError::Signing))?;
                Ok((Some(value), None))
            }
            (_, refresh) => Ok((None, refresh.map(|r| r.token))),
        }
    }

    /// In cookie mode, the `Set-Cookie` header that deletes the cookie (logout).
    pub fn clear(&self) -> Option<HeaderValue> {
        match self {
            RefreshCookie::On { path, .. } => {
                HeaderValue::try_from(format!("{}=; {}", cookie_name(path), attributes(path, 0))).ok()
            }
            RefreshCookie::Off => None,
        }
    }
}

/// Counts the tokens of `issued` and answers with them, the refresh token in the body or, in
/// cookie mode, in a cookie.
pub(super) fn hand_out_pair(
    metrics: &Metrics,
    cookie: &RefreshCookie,
    issued: Issued,
) -> Result<(Option<HeaderValue>, TokenPair), ApiError> {
    metrics.issued(TokenKind::Access);
    if issued.refresh.is_some() {
        metrics.issued(TokenKind::Refresh);
    }
    let (set_cookie, refresh) = cookie.hand_out(issued.refresh)?;
    Ok((set_cookie, TokenPair { refresh, access: issued.access }))
}

/// The answer of a view that issues a token pair (obtain, refresh): the pair as JSON, in cookie
/// mode its refresh token in the cookie instead.
pub(super) fn answer_pair(metrics: &Metrics, cookie: &RefreshCookie, issued: Issued) -> Result<Response, ApiError> {
    let (set_cookie, pair) = hand_out_pair(metrics, cookie, issued)?;
    Ok(with_cookie(set_cookie, axum::Json(pair)))
}

fn attributes(path: &str, max_age: i64) -> String {
    format!("Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

/// `body` with a `Set-Cookie` header when there is one.
pub fn with_cookie(set_cookie: Option<HeaderValue>, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Some(value) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Our cookie in the request's `Cookie` headers: absent, once, or several times (an empty value
/// counts as absent, but as a copy when there are others).
fn presented(headers: &HeaderMap, name: &str) -> Presented {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().trim_matches('"'));
    match (values.next(), values.next()) {
        (None, _) => Presented::None,
        (Some(_), Some(_)) => Presented::Several,
        (Some(""), None) => Presented::None,
        (Some(value), None) => Presented::One(value.to_string()),
    }
}

/// The CSRF defence of cookie mode (see the module docs).
fn check_origin(headers: &HeaderMap, uri: &Uri, https: bool, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Every browser in use sends Origin on cross-origin requests and on POSTs; one that
        // does not but says where the request came from is refused unless it is same-origin.
        return match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
            None | Some(b"same-origin" | b"none") => Ok(()),
            Some(_) => Err(ApiError::CrossOrigin("null".into())),
        };
    };
    let origin = origin.to_str().unwrap_or("null");
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) || is_own_origin(origin, headers, uri, https) {
        return Ok(());
    }
    Err(ApiError::CrossOrigin(origin.chars().take(200).collect()))
}

/// Whether `origin` is the origin this request was sent to (scheme, host and port).
fn is_own_origin(origin: &str, headers: &HeaderMap, uri: &Uri, https: bool) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    let Some(host) = host else { return false };
    let scheme = if https { "https" } else { "http" };
    let own = format!("{scheme}://{host}");
    let without_default_port = match (https, host.rsplit_once(':')) {
        (true, Some((h, "443"))) | (false, Some((h, "80"))) => format!("{scheme}://{h}"),
        _ => own.clone(),
    };
    origin.eq_ignore_ascii_case(&own) || origin.eq_ignore_ascii_case(&without_default_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cookie's name at the default routes' path (`/api/token/`): [`cookie_name`] of that path.
    const COOKIE_NAME: &str = "__Secure-jwtd_refresh";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), ApiError> {
        let allowed = vec!["http://app.test:3000".to_string()];
        check_origin(&headers(pairs), &Uri::from_static("/api/token/refresh/"), false, &allowed)
    }

    #[test]
    fn allowed_and_own_origins_pass_others_are_refused() {
        assert!(check(&[("origin", "http://app.test:3000"), ("host", "api.test")]).is_ok());
        assert!(check(&[("origin", "http://api.test:8000"), ("host", "api.test:8000")]).is_ok());
        assert!(check(&[("origin", "http://api.test"), ("host", "api.test:80")]).is_ok());
        assert!(check(&[]).is_ok(), "no browser, no check");
        assert!(check(&[("sec-fetch-site", "same-origin")]).is_ok());
        let refused = check(&[("origin", "http://app.test:3001"), ("host", "api.test")]);
        assert!(matches!(refused, Err(ApiError::CrossOrigin(o)) if o == "http://app.test:3001"));
        assert!(matches!(check(&[("origin", "null"), ("host", "api.test")]), Err(ApiError::CrossOrigin(_))));
        assert!(matches!(check(&[("sec-fetch-site", "same-site")]), Err(ApiError::CrossOrigin(_))));
        let https_own = check_origin(
            &headers(&[("origin", "https://api.test"), ("host", "api.test")]),
            &Uri::from_static("/"),
            true,
            &[],
        );
        assert!(https_own.is_ok());
        let scheme_differs = check_origin(
            &headers(&[("origin", "http://api.test"), ("host", "api.test")]),
            &Uri::from_static("/"),
            true,
            &[],
        );
        assert!(scheme_differs.is_err());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_duplicates_are_noticed() {
        let h = headers(&[("cookie", "a=1; __Secure-jwtd_refresh=abc.def.ghi; b=2")]);
        assert_eq!(presented(&h, COOKIE_NAME), Presented::One("abc.def.ghi".into()));
        assert_eq!(presented(&headers(&[("cookie", "__Secure-jwtd_refresh=")]), COOKIE_NAME), Presented::None);
        assert_eq!(presented(&headers(&[("cookie", "x=__Secure-jwtd_refresh")]), COOKIE_NAME), Presented::None);
        // The unprefixed name, which any subdomain or plain-http page can set, is not ours.
        assert_eq!(presented(&headers(&[("cookie", "jwtd_refresh=a.b.c")]), COOKIE_NAME), Presented::None);
        let twice = headers(&[("cookie", "__Secure-jwtd_refresh=a.b.c; __Secure-jwtd_refresh=d.e.f")]);
        assert_eq!(presented(&twice, COOKIE_NAME), Presented::Several);
        let two_lines = headers(&[("cookie", "__Secure-jwtd_refresh=a.b.c"), ("cookie", "__Secure-jwtd_refresh=")]);
        assert_eq!(presented(&two_lines, COOKIE_NAME), Presented::Several);
    }

    #[test]
    fn the_prefix_is_host_only_for_a_cookie_on_the_root_path() {
        assert_eq!(cookie_name("/"), "__Host-jwtd_refresh");
        assert_eq!(cookie_name(crate::config::Routes::default().cookie_path()), COOKIE_NAME);
        assert!(COOKIE_NAME.starts_with("__Secure-"));
    }

    #[test]
    fn cookie_attributes() {
        let on = RefreshCookie::On {
            presented: Presented::None,
            path: crate::config::Routes::default().cookie_path().clone(),
        };
        let refresh = |token: &str| Some(IssuedRefresh { token: token.into(), max_age: 100 });
        let (set, body) = on.hand_out(refresh("t.o.k")).unwrap();
        assert_eq!(body, None);
        assert_eq!(
            set.unwrap().to_str().unwrap(),
            "__Secure-jwtd_refresh=t.o.k; Path=/api/token/; Max-Age=100; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            on.clear().unwrap().to_str().unwrap(),
            "__Secure-jwtd_refresh=; Path=/api/token/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
        );
        let (set, body) = RefreshCookie::Off.hand_out(refresh("t")).unwrap();
        assert!(set.is_none());
        assert_eq!(body.as_deref(), Some("t"));
    }
}
