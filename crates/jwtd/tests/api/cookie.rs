//! REFRESH_COOKIE: the refresh token travels in an HttpOnly cookie, and only allowed origins
//! may make the browser use it.

use serde_json::json;

use crate::helpers::{cookie_token, refresh_cookie, Reply, TestApp, PASSWORD, TOKEN_BLACKLISTED};

const APP: &str = "http://127.0.0.1:3000";
const FIELD_REQUIRED: &str = r#"{"refresh":["This field is required."]}"#;

async fn cookie_app(extra: &[(&str, &str)]) -> TestApp {
    let env = [("REFRESH_COOKIE", "true"), ("CORS_ALLOWED_ORIGINS", APP), ("REFRESH_TOKEN_LIFETIME", "1d")];
    TestApp::builder().env(&env).env(extra).spawn().await
}

/// POST `path` with an empty JSON body, the refresh cookie and `origin` (if any).
async fn with_cookie(app: &TestApp, path: &str, token: &str, origin: Option<&str>) -> Reply {
    let mut req =
        app.client.post(app.url(path)).json(&json!({})).header("Cookie", format!("__Secure-jwtd_refresh={token}"));
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    app.send(req).await
}

/// Signs ada in and returns the refresh token her cookie carries.
async fn cookie_of_sign_in(app: &TestApp) -> String {
    let r = app.obtain_pair("ada", PASSWORD).await;
    cookie_token(&refresh_cookie(&r.headers).unwrap())
}

#[tokio::test]
async fn sign_in_and_sign_up_set_the_cookie_and_leave_the_token_out_of_the_body() {
    let app = cookie_app(&[]).await;
    let r = app.post_sign_up(&json!({"username": "ada", "password": PASSWORD})).await;
    r.expect_status(201);
    let set = refresh_cookie(&r.headers).expect("sign-up sets the cookie");
    let body = r.json();
    assert!(body.get("refresh").is_none(), "{body}");
    assert!(body["access"].is_string() && body["user"]["username"] == "ada");
    let attributes: Vec<&str> = set.split("; ").skip(1).collect();
    assert_eq!(attributes, ["Path=/api/token/", "Max-Age=86400", "HttpOnly", "Secure", "SameSite=Strict"]);

    for path in ["/api/token/", "/api/auth/signin/", "/api/token"] {
        let r = app.post_json(path, &json!({"username": "ada", "password": PASSWORD})).await;
        assert_eq!(r.status, 200, "{path}");
        let set = refresh_cookie(&r.headers).expect("sign-in sets the cookie");
        assert!(set.ends_with("; Path=/api/token/; Max-Age=86400; HttpOnly; Secure; SameSite=Strict"));
        assert_eq!(r.headers["cache-control"], "no-store");
        let body = r.json();
        assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["access"]);
    }
}

#[tokio::test]
async fn refresh_reads_the_cookie_when_the_body_has_no_token() {
    let app = cookie_app(&[]).await;
    app.sign_up("ada").await;
    let token = cookie_of_sign_in(&app).await;
    let r = with_cookie(&app, "/api/token/refresh/", &token, Some(APP)).await;
    r.expect_status(200);
    assert!(refresh_cookie(&r.headers).is_none(), "no rotation: the cookie stays as it is");
    app.me(&r.field("access")).await.expect_status(200);

    // Form bodies, `null` and "" count as no token too; a token in the body wins over the cookie.
    let r = app
        .send(
            app.client
                .post(app.url("/api/token/refresh"))
                .header("Cookie", format!("other=1; __Secure-jwtd_refresh={token}"))
                .form(&[("refresh", "")]),
        )
        .await;
    r.expect_status(200);
    let r = app
        .send(
            app.client
                .post(app.url("/api/token/refresh/"))
                .header("Cookie", format!("__Secure-jwtd_refresh={token}"))
                .json(&json!({"refresh": "not-a-token"})),
        )
        .await;
    r.expect_status(401);
}

#[tokio::test]
async fn with_rotation_the_refresh_sets_the_successor_cookie() {
    let app = cookie_app(&[("ROTATE_REFRESH_TOKENS", "true"), ("ROTATION_GRACE_PERIOD", "0")]).await;
    app.sign_up("ada").await;
    let first = cookie_of_sign_in(&app).await;
    app.clock.advance(std::time::Duration::from_secs(3600));
    let r = with_cookie(&app, "/api/token/refresh/", &first, Some(APP)).await;
    r.expect_status(200);
    let set = refresh_cookie(&r.headers).expect("the rotated token comes back as a cookie");
    assert!(set.contains("; Max-Age=86400;"), "{set}");
    let body = r.json();
    assert!(body.get("refresh").is_none(), "{body}");
    let second = cookie_token(&set);
    assert_ne!(second, first);
    with_cookie(&app, "/api/token/refresh/", &second, Some(APP)).await.expect_status(200);
    let reuse = with_cookie(&app, "/api/token/refresh/", &first, Some(APP)).await;
    reuse.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn blacklist_reads_the_cookie_and_clears_it() {
    let app = cookie_app(&[]).await;
    app.sign_up("ada").await;
    let token = cookie_of_sign_in(&app).await;
    let r = with_cookie(&app, "/api/token/blacklist/", &token, Some(APP)).await;
    r.expect_status(200);
    assert_eq!(
        refresh_cookie(&r.headers).unwrap(),
        "__Secure-jwtd_refresh=; Path=/api/token/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
    );
    assert_eq!(r.text, "{}");
    let r = with_cookie(&app, "/api/token/refresh/", &token, Some(APP)).await;
    r.expect(401, TOKEN_BLACKLISTED);
    // A dead cookie is cleared as well.
    let r = with_cookie(&app, "/api/token/blacklist/", "garbage", Some(APP)).await;
    r.expect_status(401);
    assert!(refresh_cookie(&r.headers).unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn without_body_token_or_cookie_the_field_is_required() {
    let app = cookie_app(&[]).await;
    for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
        app.post_json(path, &json!({})).await.expect(400, FIELD_REQUIRED);
    }
}

#[tokio::test]
async fn cookie_requests_from_an_origin_not_allowed_are_refused() {
    let app = cookie_app(&[]).await;
    app.sign_up("ada").await;
    let token = cookie_of_sign_in(&app).await;
    // Another port of the same site: SameSite=Strict still sends the cookie, so the origin decides.
    let evil = "http://127.0.0.1:3001";
    for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
        let r = with_cookie(&app, path, &token, Some(evil)).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            r.text,
            r#"{"detail":"CSRF Failed: Origin checking failed - http://127.0.0.1:3001 does not match any trusted origins."}"#
        );
    }
    // Nor may it sign someone in (login CSRF) or up.
    let r = app
        .send(
            app.client
                .post(app.url("/api/token/"))
                .header("Origin", evil)
                .form(&[("username", "ada"), ("password", PASSWORD)]),
        )
        .await;
    r.expect_status(403);
    assert!(refresh_cookie(&r.headers).is_none());
    // A browser that sends no Origin but says the request is cross-site.
    let r = app
        .send(
            app.client
                .post(app.url("/api/token/refresh/"))
                .header("Cookie", format!("__Secure-jwtd_refresh={token}"))
                .header("Sec-Fetch-Site", "cross-site"),
        )
        .await;
    r.expect_status(403);
    // The token was not refused for itself: the allowed origin, the API's own origin and a
    // client that is no browser (no Origin) may all use it.
    let own = app.origin();
    for origin in [Some(APP), Some(own.as_str()), None] {
        assert_eq!(with_cookie(&app, "/api/token/refresh/", &token, origin).await.status, 200, "{origin:?}");
    }
}

#[tokio::test]
async fn json_mode_ignores_the_cookie_and_checks_no_origin() {
    let app = TestApp::builder().env(&[("CORS_ALLOWED_ORIGINS", APP)]).spawn().await;
    let signed_up = app.sign_up("ada").await;
    let token = signed_up.refresh.as_str();
    let r = app.obtain_pair("ada", PASSWORD).await;
    assert!(refresh_cookie(&r.headers).is_none());
    let r = with_cookie(&app, "/api/token/refresh/", token, Some(APP)).await;
    r.expect(400, FIELD_REQUIRED);
    let r = app
        .send(
            app.client
                .post(app.url("/api/token/refresh/"))
                .header("Origin", "http://elsewhere.example")
                .json(&json!({"refresh": token})),
        )
        .await;
    r.expect_status(200);
}

#[tokio::test]
async fn a_request_carrying_the_refresh_cookie_twice_is_refused_as_an_invalid_token() {
    // A sibling subdomain can plant a second cookie of the same name (Domain=, longer path),
    // which the browser sends first: neither copy is trusted.
    let app = cookie_app(&[]).await;
    app.sign_up("ada").await;
    let mine = cookie_of_sign_in(&app).await;
    let planted = cookie_of_sign_in(&app).await;
    for path in ["/api/token/refresh/", "/api/token/blacklist/"] {
        let cookies = format!("__Secure-jwtd_refresh={planted}; __Secure-jwtd_refresh={mine}");
        let reply = app.send(app.client.post(app.url(path)).json(&json!({})).header("Cookie", cookies)).await;
        reply.expect(401, crate::helpers::TOKEN_INVALID);
    }
    // The unprefixed name is not the cookie: only the prefixed one is read.
    let reply = app
        .send(
            app.client
                .post(app.url("/api/token/refresh/"))
                .json(&json!({}))
                .header("Cookie", format!("jwtd_refresh={mine}")),
        )
        .await;
    reply.expect(400, FIELD_REQUIRED);
    with_cookie(&app, "/api/token/refresh/", &mine, None).await.expect_status(200);
}
