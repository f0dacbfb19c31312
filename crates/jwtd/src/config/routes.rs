//! ROUTES (SPEC §1, §5): jwtd's routes by name and the path each is served at. A value is a
//! comma list of route sets (`simplejwt`, the default, or `djoser`, which adds djoser's
//! `/auth/jwt/create|refresh|verify/`) and `name=path` overrides; names are SimpleJWT's and
//! djoser's URL names where they have one. Also where the refresh cookie's `Path` comes from.
//! Must not: know the handlers (`http::api` maps each route to its view).

use std::fmt;
use std::sync::Arc;

/// A route of jwtd, in the order of SPEC §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Signup,
    Signin,
    TokenObtainPair,
    TokenRefresh,
    TokenVerify,
    TokenBlacklist,
    TokenObtainSliding,
    TokenRefreshSliding,
    Me,
    PasswordChange,
    LogoutAll,
    Sessions,
    Session,
    LogoutOthers,
    Jwks,
    Healthz,
    Readyz,
    Metrics,
    Schema,
    TokenIntrospect,
    TokenRevocations,
    AuthCheck,
    JwtCreate,
    JwtRefresh,
    JwtVerify,
    PasswordReset,
    PasswordResetConfirm,
    Activation,
    ActivationResend,
    UsersResetPassword,
    UsersResetPasswordConfirm,
    UsersActivation,
    UsersResendActivation,
}

impl Route {
    /// Every route, in the order of SPEC §1 (djoser's last).
    pub const ALL: [Route; 33] = [
        Route::Signup,
        Route::Signin,
        Route::TokenObtainPair,
        Route::TokenRefresh,
        Route::TokenVerify,
        Route::TokenBlacklist,
        Route::TokenObtainSliding,
        Route::TokenRefreshSliding,
        Route::Me,
        Route::PasswordChange,
        Route::LogoutAll,
        Route::Sessions,
        Route::Session,
        Route::LogoutOthers,
        Route::Jwks,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::Schema,
        Route::TokenIntrospect,
        Route::TokenRevocations,
        Route::AuthCheck,
        Route::PasswordReset,
        Route::PasswordResetConfirm,
        Route::Activation,
        Route::ActivationResend,
        Route::JwtCreate,
        Route::JwtRefresh,
        Route::JwtVerify,
        Route::UsersResetPassword,
        Route::UsersResetPasswordConfirm,
        Route::UsersActivation,
        Route::UsersResendActivation,
    ];

    /// The name in ROUTES overrides: the URL name SimpleJWT's docs (`token_obtain_pair`, …) or
    /// djoser (`jwt-create`, …) give the view, else jwtd's own.
    pub fn name(self) -> &'static str {
        match self {
            Route::Signup => "signup",
            Route::Signin => "signin",
            Route::TokenObtainPair => "token_obtain_pair",
            Route::TokenRefresh => "token_refresh",
            Route::TokenVerify => "token_verify",
            Route::TokenBlacklist => "token_blacklist",
            Route::TokenObtainSliding => "token_obtain_sliding",
            Route::TokenRefreshSliding => "token_refresh_sliding",
            Route::Me => "me",
            Route::PasswordChange => "password_change",
            Route::LogoutAll => "logout_all",
            Route::Sessions => "sessions",
            Route::Session => "session",
            Route::LogoutOthers => "logout_others",
            Route::Jwks => "jwks",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Schema => "schema",
            Route::TokenIntrospect => "token_introspect",
            Route::TokenRevocations => "token_revocations",
            Route::AuthCheck => "auth_check",
            Route::JwtCreate => "jwt-create",
            Route::JwtRefresh => "jwt-refresh",
            Route::JwtVerify => "jwt-verify",
            Route::PasswordReset => "password_reset",
            Route::PasswordResetConfirm => "password_reset_confirm",
            Route::Activation => "activation",
            Route::ActivationResend => "activation_resend",
            Route::UsersResetPassword => "user-reset-password",
            Route::UsersResetPasswordConfirm => "user-reset-password-confirm",
            Route::UsersActivation => "user-activation",
            Route::UsersResendActivation => "user-resend-activation",
        }
    }

    /// The path of SPEC §1 (djoser's as djoser mounts them under `auth/`).
    pub fn default_path(self) -> &'static str {
        match self {
            Route::Signup => "/api/auth/signup/",
            Route::Signin => "/api/auth/signin/",
            Route::TokenObtainPair => "/api/token/",
            Route::TokenRefresh => "/api/token/refresh/",
            Route::TokenVerify => "/api/token/verify/",
            Route::TokenBlacklist => "/api/token/blacklist/",
            Route::TokenObtainSliding => "/api/token/sliding/",
            Route::TokenRefreshSliding => "/api/token/sliding/refresh/",
            Route::Me => "/api/me/",
            Route::PasswordChange => "/api/auth/password/",
            Route::LogoutAll => "/api/auth/logout-all/",
            Route::Sessions => "/api/auth/sessions/",
            // Its last segment is the session id; an override keeps `{id}` (`session=/x/{id}/`).
            Route::Session => "/api/auth/sessions/{id}/",
            Route::LogoutOthers => "/api/auth/logout-others/",
            Route::Jwks => "/.well-known/jwks.json",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Schema => "/api/schema/",
            Route::TokenIntrospect => "/api/token/introspect/",
            Route::TokenRevocations => "/api/token/revocations/",
            Route::AuthCheck => "/api/auth/check/",
            Route::JwtCreate => "/auth/jwt/create/",
            Route::JwtRefresh => "/auth/jwt/refresh/",
            Route::JwtVerify => "/auth/jwt/verify/",
            Route::PasswordReset => "/api/auth/password/reset/",
            Route::PasswordResetConfirm => "/api/auth/password/reset/confirm/",
            Route::Activation => "/api/auth/activation/",
            Route::ActivationResend => "/api/auth/activation/resend/",
            Route::UsersResetPassword => "/auth/users/reset_password/",
            Route::UsersResetPasswordConfirm => "/auth/users/reset_password_confirm/",
            Route::UsersActivation => "/auth/users/activation/",
            Route::UsersResendActivation => "/auth/users/resend_activation/",
        }
    }

    /// Served in the `simplejwt` set (every route but djoser's).
    fn in_simplejwt(self) -> bool {
        !matches!(
            self,
            Route::JwtCreate
                | Route::JwtRefresh
                | Route::JwtVerify
                | Route::UsersResetPassword
                | Route::UsersResetPasswordConfirm
                | Route::UsersActivation
                | Route::UsersResendActivation
        )
    }

    /// The password-reset and activation routes: served only when links can leave (WEBHOOK_URL
    /// or SMTP_URL set; SPEC §8).
    pub fn sends_links(self) -> bool {
        matches!(
            self,
            Route::PasswordReset
                | Route::PasswordResetConfirm
                | Route::Activation
                | Route::ActivationResend
                | Route::UsersResetPassword
                | Route::UsersResetPasswordConfirm
                | Route::UsersActivation
                | Route::UsersResendActivation
        )
    }

    /// Views that read the refresh cookie (REFRESH_COOKIE), whose paths its `Path` must cover.
    /// Routes for other services, answered only to a service token (SERVICE_TOKENS): with none
    /// configured they are not served.
    pub fn needs_service_token(self) -> bool {
        matches!(self, Route::TokenIntrospect | Route::TokenRevocations)
    }

    fn reads_refresh_cookie(self) -> bool {
        matches!(self, Route::TokenRefresh | Route::TokenBlacklist | Route::JwtRefresh)
    }

    fn named(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The routes served and their paths: ROUTES, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Served routes, in [`Route::ALL`]'s order, with their paths.
    served: Vec<(Route, String)>,
    /// The value as given, without blanks, for `jwtd config check`.
    text: String,
    cookie_path: Arc<str>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::with(false, &[])
    }
}

impl fmt::Display for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Routes {
    /// `simplejwt`, `djoser`, and `name=path` overrides, as a comma list (an override of a route
    /// outside the named sets serves it too). Unknown names, malformed paths, a route named
    /// twice and two routes at one path (either slash form) are refused.
    pub fn parse(s: &str) -> Result<Routes, String> {
        let mut djoser = false;
        let mut overrides: Vec<(Route, String)> = Vec::new();
        let mut text = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            text.push(item.to_string());
            match item.split_once('=') {
                None if item == "simplejwt" => {}
                None if item == "djoser" => djoser = true,
                None => return Err(format!("{item:?} is no route set: expected simplejwt, djoser or name=path")),
                Some((name, path)) => {
                    let (name, path) = (name.trim(), path.trim());
                    let route = Route::named(name).ok_or_else(|| {
                        let names: Vec<&str> = Route::ALL.iter().map(|r| r.name()).collect();
                        format!("{name:?} is no route; routes are {}", names.join(", "))
                    })?;
                    check_path(path, route == Route::Session).map_err(|e| format!("{name}={path}: {e}"))?;
                    if overrides.iter().any(|(r, _)| *r == route) {
                        return Err(format!("{name} is given twice"));
                    }
                    overrides.push((route, path.to_string()));
                }
            }
        }
        let routes = Routes::with(djoser, &overrides);
        for (i, (route, path)) in routes.served.iter().enumerate() {
            if let Some((other, _)) = routes.served[..i].iter().find(|(_, p)| same_path(p, path)) {
                return Err(format!("{} and {} are both at {path}", other.name(), route.name()));
            }
        }
        Ok(Routes { text: if text.is_empty() { "simplejwt".into() } else { text.join(",") }, ..routes })
    }

    fn with(djoser: bool, overrides: &[(Route, String)]) -> Routes {
        let served: Vec<(Route, String)> = Route::ALL
            .into_iter()
            .filter_map(|route| {
                let given = overrides.iter().find(|(r, _)| *r == route).map(|(_, p)| p.clone());
                let in_set = route.in_simplejwt() || djoser;
                match given {
                    Some(path) => Some((route, path)),
                    None if in_set => Some((route, route.default_path().to_string())),
                    None => None,
                }
            })
            .collect();
        let cookie_path = cookie_path(served.iter().filter(|(r, _)| r.reads_refresh_cookie()).map(|(_, p)| p.as_str()));
        let text = if djoser { "djoser" } else { "simplejwt" }.to_string();
        Routes { served, text, cookie_path: cookie_path.into() }
    }

    /// The path `route` is served at; `None` when it is not served.
    pub fn path(&self, route: Route) -> Option<&str> {
        self.served.iter().find(|(r, _)| *r == route).map(|(_, p)| p.as_str())
    }

    /// The served routes with their paths, in [`Route::ALL`]'s order.
    pub fn served(&self) -> impl Iterator<Item = (Route, &str)> {
        self.served.iter().map(|(r, p)| (*r, p.as_str()))
    }

    /// The refresh cookie's `Path`: the narrowest path that every served route reading the
    /// cookie (token_refresh, token_blacklist, and djoser's jwt-refresh) falls under, with and
    /// without its trailing slash, so the browser sends it there and nowhere it isn't needed.
    /// `/api/token/` by default; with `djoser`, whose refresh route is under `/auth/jwt/`, `/`.
    pub fn cookie_path(&self) -> &Arc<str> {
        &self.cookie_path
    }
}

/// A path a route can be served at: `/` then segments of URL-safe characters (letters, digits,
/// `-._~`), no empty, `.` or `..` segment, at most 200 bytes; a trailing slash is optional (the
/// other form is served too). The path of a route with an id (`session`) has `{id}` as its last
/// segment, and no other route's has it.
fn check_path(path: &str, takes_id: bool) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("a path starts with /".into());
    }
    if path.len() > 200 {
        return Err("a path has at most 200 characters".into());
    }
    let inner = path.strip_prefix('/').unwrap_or(path);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if inner.is_empty() {
        return Err("a route needs a path below /".into());
    }
    let (inner, id) = match inner.rsplit_once('/') {
        Some((before, "{id}")) => (before, true),
        _ => (inner, inner == "{id}"),
    };
    if id != takes_id {
        return Err(if takes_id { "the last segment is {id}".into() } else { "{id} is only in session's path".into() });
    }
    if inner.is_empty() && id {
        return Err("{id} needs a path before it".into());
    }
    for segment in inner.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("empty, . and .. segments are refused".into());
        }
        if let Some(c) = segment.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c))) {
            return Err(format!("{c:?} is refused: paths take letters, digits, -, ., _, ~ and /"));
        }
    }
    Ok(())
}

/// `/a/b/` and `/a/b` are one route.
fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The longest common run of whole segments of `paths`, as a cookie `Path` (RFC 6265 §5.1.4):
/// `/api/token/` when it is a proper prefix of every path, so the cookie never reaches
/// `/api/token` itself (token_obtain_pair); without the slash when it is one of the paths, so
/// that path matches in both slash forms.
fn cookie_path<'a>(paths: impl Iterator<Item = &'a str>) -> String {
    let mut common: Option<Vec<&str>> = None;
    let mut lists = Vec::new();
    for path in paths {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        common = Some(match common {
            None => segments.clone(),
            Some(c) => c.iter().zip(&segments).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
        });
        lists.push(segments);
    }
    let common = common.unwrap_or_default();
    if common.is_empty() {
        return "/".into();
    }
    let joined = format!("/{}", common.join("/"));
    if lists.iter().any(|l| l.len() == common.len()) {
        joined
    } else {
        format!("{joined}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_serves_spec_paths_and_no_djoser_route() {
        let routes = Routes::default();
        assert_eq!(routes, Routes::parse("simplejwt").unwrap());
        assert_eq!(routes.path(Route::TokenRefresh), Some("/api/token/refresh/"));
        assert_eq!(routes.path(Route::JwtCreate), None);
        assert_eq!(routes.served().count(), 26);
        assert_eq!(&**routes.cookie_path(), "/api/token/");
        assert_eq!(Routes::parse("").unwrap().to_string(), "simplejwt");
    }

    #[test]
    fn djoser_adds_its_jwt_paths() {
        let routes = Routes::parse("djoser").unwrap();
        assert_eq!(routes.path(Route::JwtCreate), Some("/auth/jwt/create/"));
        assert_eq!(routes.path(Route::JwtRefresh), Some("/auth/jwt/refresh/"));
        assert_eq!(routes.path(Route::JwtVerify), Some("/auth/jwt/verify/"));
        assert_eq!(routes.path(Route::TokenObtainPair), Some("/api/token/"));
        assert_eq!(&**routes.cookie_path(), "/");
    }

    #[test]
    fn overrides_move_a_route_and_its_cookie_path() {
        let routes = Routes::parse(" djoser , token_refresh=/api/v2/refresh/").unwrap();
        assert_eq!(routes.path(Route::TokenRefresh), Some("/api/v2/refresh/"));
        assert_eq!(routes.to_string(), "djoser,token_refresh=/api/v2/refresh/");
        let routes = Routes::parse("token_refresh=/auth/refresh,token_blacklist=/auth/logout/").unwrap();
        assert_eq!(&**routes.cookie_path(), "/auth/");
        let routes =
            Routes::parse("djoser,token_refresh=/auth/jwt/refresh-token/,token_blacklist=/auth/jwt/blacklist/")
                .unwrap();
        assert_eq!(&**routes.cookie_path(), "/auth/jwt/");
        let routes = Routes::parse("token_blacklist=/api/token/refresh/logout/").unwrap();
        assert_eq!(&**routes.cookie_path(), "/api/token/refresh");
        // An override of a djoser route serves it without the djoser set.
        let routes = Routes::parse("jwt-create=/login/").unwrap();
        assert_eq!(routes.path(Route::JwtCreate), Some("/login/"));
        assert_eq!(routes.path(Route::JwtVerify), None);
    }

    #[test]
    fn bad_names_paths_and_clashes_are_refused() {
        for (value, complaint) in [
            ("flask", "\"flask\" is no route set"),
            ("token_refersh=/x/", "\"token_refersh\" is no route; routes are signup, signin"),
            ("token_refresh=x/", "token_refresh=x/: a path starts with /"),
            ("token_refresh=/", "a route needs a path below /"),
            ("token_refresh=", "a path starts with /"),
            ("token_refresh=/a//b/", "empty, . and .. segments"),
            ("token_refresh=/a/../b/", "empty, . and .. segments"),
            ("token_refresh=/a/{id}/", "{id} is only in session's path"),
            ("token_refresh=/a/{x}/", "'{' is refused"),
            ("token_refresh=/a b/", "' ' is refused"),
            ("token_refresh=/a/*rest", "'*' is refused"),
            ("token_refresh=/a?x=1", "'?' is refused"),
            ("token_refresh=/x/,token_refresh=/y/", "token_refresh is given twice"),
            ("token_refresh=/api/token/verify", "token_refresh and token_verify are both at /api/token/verify"),
            ("djoser,token_verify=/auth/jwt/create", "token_verify and jwt-create are both at /auth/jwt/create/"),
        ] {
            let err = Routes::parse(value).unwrap_err();
            assert!(err.contains(complaint), "{value}: {err}");
        }
        assert!(Routes::parse(&format!("me=/{}", "a".repeat(200))).is_err());
    }

    #[test]
    fn every_route_has_a_distinct_name_and_path() {
        for (i, a) in Route::ALL.iter().enumerate() {
            for b in &Route::ALL[..i] {
                assert_ne!(a.name(), b.name());
                assert!(!same_path(a.default_path(), b.default_path()));
            }
            assert!(check_path(a.default_path(), *a == Route::Session).is_ok(), "{}", a.name());
        }
    }

    #[test]
    fn only_the_session_route_takes_an_id_and_as_its_last_segment() {
        let routes = Routes::parse("session=/devices/{id}/").unwrap();
        assert_eq!(routes.path(Route::Session), Some("/devices/{id}/"));
        assert!(Routes::parse("session=/devices/").is_err(), "no id");
        assert!(Routes::parse("session=/{id}/x/").is_err(), "not last");
        assert!(Routes::parse("session=/{id}").is_err(), "nothing before it");
        assert!(Routes::parse("me=/me/{id}/").is_err(), "another route");
    }
}
