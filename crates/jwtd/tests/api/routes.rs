//! ROUTES: the `simplejwt` route set (SPEC §1's paths), `djoser` (also djoser's
//! `/auth/jwt/create|refresh|verify/`), `name=path` overrides; the OpenAPI document, the metrics
//! labels and the refresh cookie's `Path` follow the configured routes.

use serde_json::{json, Value};

use crate::helpers::{cookie_token, jwtd, refresh_cookie, TestApp, PASSWORD};

async fn app_with_routes(routes: &str) -> TestApp {
    TestApp::builder().env(&[("ROUTES", routes)]).spawn().await
}

fn credentials() -> Value {
    json!({"username": "ada", "password": PASSWORD})
}

#[tokio::test]
async fn djoser_paths_serve_simplejwt_views_in_both_slash_forms() {
    let app = app_with_routes("djoser").await;
    app.sign_up("ada").await;

    for create in ["/auth/jwt/create/", "/auth/jwt/create"] {
        let pair = app.post_json(create, &credentials()).await;
        pair.expect_status(200);
        let (refresh, access) = (pair.field("refresh"), pair.field("access"));
        for path in ["/auth/jwt/refresh/", "/auth/jwt/refresh"] {
            let r = app.post_json(path, &json!({"refresh": refresh})).await;
            r.expect_status(200);
            assert_eq!(r.json().as_object().unwrap().keys().collect::<Vec<_>>(), ["access"]);
        }
        for path in ["/auth/jwt/verify/", "/auth/jwt/verify"] {
            app.post_json(path, &json!({"token": access})).await.expect(200, "{}");
            app.post_json(path, &json!({"token": format!("{access}x")})).await.expect_status(401);
        }
    }
    // SimpleJWT's paths stay.
    app.post_json("/api/token/", &credentials()).await.expect_status(200);
    // A djoser view answers other methods as DRF does.
    let r = app.get("/auth/jwt/create/").await;
    r.expect(405, r#"{"detail":"Method \"GET\" not allowed."}"#);
    assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
}

#[tokio::test]
async fn the_default_route_set_has_no_djoser_paths() {
    let app = TestApp::builder().spawn().await;
    app.sign_up("ada").await;

    app.post_json("/auth/jwt/create/", &credentials()).await.expect(404, r#"{"detail":"Not found."}"#);
}

#[tokio::test]
async fn an_override_moves_a_route() {
    let app = app_with_routes("djoser,token_refresh=/api/v2/refresh/").await;
    let ada = app.sign_up("ada").await;

    for path in ["/api/v2/refresh/", "/api/v2/refresh"] {
        app.post_json(path, &json!({"refresh": ada.refresh})).await.expect_status(200);
    }
    app.post_json("/api/token/refresh/", &json!({"refresh": ada.refresh})).await.expect_status(404);
    app.post_json("/auth/jwt/refresh/", &json!({"refresh": ada.refresh})).await.expect_status(200);
}

#[tokio::test]
async fn an_override_of_a_djoser_route_serves_it_alone() {
    let app = app_with_routes("jwt-create=/login/,me=/api/users/me/").await;
    let ada = app.sign_up("ada").await;

    app.post_json("/login/", &credentials()).await.expect_status(200);
    app.post_json("/auth/jwt/refresh/", &json!({"refresh": ada.refresh})).await.expect_status(404);
    let me = app.get_with_token("/api/users/me", &ada.access).await;
    me.expect_status(200);
    assert_eq!(me.json()["username"], "ada");
    app.get_with_token("/api/me/", &ada.access).await.expect_status(404);
}

#[tokio::test]
async fn the_openapi_document_describes_the_configured_routes() {
    let app = app_with_routes("djoser,token_refresh=/api/v2/refresh/").await;

    let doc = app.get("/api/schema/").await.json();

    let paths = doc["paths"].as_object().unwrap();
    for (path, id) in [
        ("/api/v2/refresh/", "refresh"),
        ("/auth/jwt/create/", "jwt_create"),
        ("/auth/jwt/refresh/", "jwt_refresh"),
        ("/auth/jwt/verify/", "jwt_verify"),
        ("/api/token/", "obtain_pair"),
        ("/api/auth/signin/", "sign_in"),
    ] {
        assert_eq!(paths[path]["post"]["operationId"], id, "{path}");
    }
    assert!(!paths.contains_key("/api/token/refresh/"));
    assert_eq!(paths["/auth/jwt/refresh/"]["post"]["summary"], "jwt-refresh: the same view as /api/v2/refresh/.");
    // The document of the default routes has none of djoser's.
    let plain = TestApp::builder().spawn().await.get("/api/schema/").await.json();
    let plain: Vec<&String> = plain["paths"].as_object().unwrap().keys().collect();
    assert!(plain.iter().all(|p| !p.starts_with("/auth/jwt/")), "{plain:?}");
    assert!(plain.contains(&&"/api/token/refresh/".to_string()));
}

#[tokio::test]
async fn metrics_label_requests_by_configured_route_and_lump_the_rest() {
    let app = app_with_routes("djoser,token_verify=/check/").await;
    app.sign_up("ada").await;
    app.post_json("/auth/jwt/create", &credentials()).await.expect_status(200);
    app.post_json("/check", &json!({"token": "x"})).await.expect_status(401);
    for i in 0..5 {
        app.get(&format!("/nowhere/{i}")).await.expect_status(404);
    }
    app.post_json("/api/token/verify/", &json!({"token": "x"})).await.expect_status(404);

    let text = app.get("/metrics").await.text;

    assert!(text.contains("jwtd_http_requests_total{route=\"/auth/jwt/create\",status=\"200\"} 1\n"), "{text}");
    assert!(text.contains("jwtd_http_requests_total{route=\"/check\",status=\"401\"} 1\n"), "{text}");
    assert!(text.contains("jwtd_http_requests_total{route=\"unmatched\",status=\"404\"} 6\n"), "{text}");
    assert!(!text.contains("/nowhere") && !text.contains("route=\"/api/token/verify"), "{text}");
}

async fn cookie_path_of(routes: &str) -> (TestApp, String) {
    let env = [("REFRESH_COOKIE", "true"), ("ROUTES", routes)];
    let app = TestApp::builder().env(&env).spawn().await;
    let r = app.post_sign_up(&credentials()).await;
    r.expect_status(201);
    let set = refresh_cookie(&r.headers).expect("sign-up sets the cookie");
    let path = set.split("; ").find_map(|a| a.strip_prefix("Path=")).unwrap().to_string();
    (app, path)
}

#[tokio::test]
async fn the_refresh_cookie_path_is_the_narrowest_covering_the_routes_that_read_it() {
    for (routes, expected) in [
        ("simplejwt", "/api/token/"),
        ("token_refresh=/auth/session/refresh/,token_blacklist=/auth/session/logout/", "/auth/session/"),
        ("token_blacklist=/api/token/refresh/logout/", "/api/token/refresh"),
        // djoser's refresh route reads the cookie too, and shares only / with SimpleJWT's (where
        // the cookie's name takes the __Host- prefix).
        ("djoser", "/"),
    ] {
        let (_, path) = cookie_path_of(routes).await;
        assert_eq!(path, expected, "{routes}");
    }
}

#[tokio::test]
async fn the_cookie_is_read_at_a_moved_refresh_route_and_cleared_at_a_moved_blacklist_route() {
    let env = [
        ("REFRESH_COOKIE", "true"),
        ("ROUTES", "token_refresh=/auth/session/refresh/,token_blacklist=/auth/session/logout/"),
    ];
    let app = TestApp::builder().env(&env).spawn().await;
    let r = app.post_sign_up(&credentials()).await;
    let token = cookie_token(&refresh_cookie(&r.headers).unwrap());
    let with_cookie = |path: &'static str| {
        app.client.post(app.url(path)).json(&json!({})).header("Cookie", format!("__Secure-jwtd_refresh={token}"))
    };

    app.send(with_cookie("/auth/session/refresh/")).await.expect_status(200);
    let out = app.send(with_cookie("/auth/session/logout")).await;
    out.expect(200, "{}");
    let cleared = refresh_cookie(&out.headers).unwrap();
    assert_eq!(cleared, "__Secure-jwtd_refresh=; Path=/auth/session/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
}

#[tokio::test]
async fn bad_routes_stop_the_server_with_exit_code_2_naming_routes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jwtd.db").display());
    for (routes, complaint) in [
        ("flask", "\"flask\" is no route set"),
        ("token_refersh=/x/", "\"token_refersh\" is no route; routes are signup, signin, token_obtain_pair"),
        ("token_refresh=api/x/", "token_refresh=api/x/: a path starts with /"),
        ("token_refresh=/a/{id}/", "{id} is only in session's path"),
        ("session=/a/", "the last segment is {id}"),
        ("token_refresh=/api/token/verify", "token_refresh and token_verify are both at /api/token/verify/"),
    ] {
        let env = [("JWTD_DATABASE_URL", url.as_str()), ("JWTD_ADDR", "127.0.0.1:0"), ("JWTD_ROUTES", routes)];
        let run = jwtd(&["serve"], &env, None).await;
        assert_eq!(run.code, Some(2), "{routes}: {run:?}");
        assert!(run.stderr.starts_with("jwtd: invalid settings: JWTD_ROUTES: "), "{routes}: {}", run.stderr);
        assert!(run.stderr.contains(complaint), "{routes}: {}", run.stderr);
    }
    assert!(!dir.path().join("jwtd.db").exists());
    let run = jwtd(&["config", "check"], &[("JWTD_ROUTES", "djoser, me=/api/users/me/")], None).await;
    assert!(run.stdout.lines().any(|l| l == "ROUTES = djoser,me=/api/users/me/"), "{run:?}");
}
