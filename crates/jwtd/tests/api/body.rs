//! Request bodies as DRF parses them (SPEC §1–§2): field rules, non-objects, bad JSON, media
//! types, methods, the size limit, form and multipart bodies, the optional trailing slash.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, PASSWORD};

/// Every POST endpoint with a body and its required fields, in the order DRF reports them.
const POST_ENDPOINTS: [(&str, &[&str]); 8] = [
    ("/api/auth/signup/", &["username", "password"]),
    ("/api/auth/signin/", &["username", "password"]),
    ("/api/token/", &["username", "password"]),
    ("/api/token/refresh/", &["refresh"]),
    ("/api/token/verify/", &["token"]),
    ("/api/token/blacklist/", &["refresh"]),
    ("/api/token/sliding/", &["username", "password"]),
    ("/api/token/sliding/refresh/", &["token"]),
];

fn errors(fields: &[&str], message: &str) -> String {
    let map: serde_json::Map<String, Value> = fields.iter().map(|f| (f.to_string(), json!([message]))).collect();
    Value::Object(map).to_string()
}

#[tokio::test]
async fn missing_fields_are_each_required() {
    let app = spawn_app().await;
    for (path, fields) in POST_ENDPOINTS {
        let reply = app.post_json(path, &json!({})).await;
        assert_eq!((reply.status, reply.text.clone()), (400, errors(fields, "This field is required.")), "{path}");
    }
}

#[tokio::test]
async fn an_empty_body_is_an_empty_dictionary() {
    let app = spawn_app().await;
    for (path, fields) in POST_ENDPOINTS {
        for content_type in [None, Some("application/json")] {
            let reply = app.post_raw(path, content_type, "").await;
            let expected = errors(fields, "This field is required.");
            assert_eq!((reply.status, reply.text.clone()), (400, expected), "{path} {content_type:?}");
        }
    }
}

#[tokio::test]
async fn one_missing_field_is_reported_alone() {
    let app = spawn_app().await;
    let reply = app.post_json("/api/token/", &json!({"username": "ada"})).await;
    reply.expect(400, r#"{"password":["This field is required."]}"#);
    let reply = app.post_json("/api/token/", &json!({"password": "x"})).await;
    reply.expect(400, r#"{"username":["This field is required."]}"#);
}

#[tokio::test]
async fn blank_null_and_non_string_fields_are_refused() {
    let app = spawn_app().await;
    let cases = [
        (json!(""), "This field may not be blank."),
        (json!("   "), "This field may not be blank."),
        (json!(null), "This field may not be null."),
        (json!([]), "Not a valid string."),
        (json!({}), "Not a valid string."),
        (json!(true), "Not a valid string."),
    ];
    for (path, fields) in POST_ENDPOINTS {
        for (value, message) in &cases {
            let mut body: serde_json::Map<String, Value> =
                fields.iter().map(|f| (f.to_string(), json!(format!("value-{f}")))).collect();
            body.insert(fields[0].to_string(), value.clone());
            let reply = app.post_json(path, &Value::Object(body)).await;
            let expected = errors(&fields[..1], message);
            assert_eq!((reply.status, reply.text.clone()), (400, expected), "{path} {value}");
        }
    }
}

#[tokio::test]
async fn several_field_errors_are_reported_together() {
    let app = spawn_app().await;
    let reply = app.post_json("/api/token/", &json!({"username": "", "password": null})).await;
    reply.expect(400, r#"{"username":["This field may not be blank."],"password":["This field may not be null."]}"#);
}

#[tokio::test]
async fn json_that_is_not_an_object_is_refused() {
    let app = spawn_app().await;
    let cases =
        [("[]", "list"), ("[1, 2]", "list"), ("\"x\"", "str"), ("3", "int"), ("3.5", "float"), ("true", "bool")];
    for (path, _) in POST_ENDPOINTS {
        for (body, kind) in cases {
            let reply = app.post_raw(path, Some("application/json"), body).await;
            let expected =
                format!(r#"{{"non_field_errors":["Invalid data. Expected a dictionary, but got {kind}."]}}"#);
            assert_eq!((reply.status, reply.text.clone()), (400, expected), "{path} {body}");
        }
    }
}

#[tokio::test]
async fn invalid_json_is_a_parse_error() {
    let app = spawn_app().await;
    for (path, _) in POST_ENDPOINTS {
        for body in [r#"{"refresh": "#, "{", "not json", r#"{"a": 1,}"#, "\u{0}"] {
            let reply = app.post_raw(path, Some("application/json"), body).await;
            assert_eq!(reply.status, 400, "{path} {body:?}: {}", reply.text);
            let got = reply.json();
            let detail = got["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with("JSON parse error - ") && detail.len() > 19, "{path}: {got}");
            assert_eq!(got.as_object().unwrap().len(), 1, "{got}");
        }
    }
}

#[tokio::test]
async fn invalid_utf8_in_json_is_a_400() {
    let app = spawn_app().await;
    let reply =
        app.post_raw("/api/token/refresh/", Some("application/json"), b"{\"refresh\": \"\xff\"}".to_vec()).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.json()["detail"].as_str().unwrap().starts_with("JSON parse error - "));
}

#[tokio::test]
async fn unsupported_media_type_is_415() {
    let app = spawn_app().await;
    for (path, _) in POST_ENDPOINTS {
        let reply = app.post_raw(path, Some("text/plain"), r#"{"refresh": "x"}"#).await;
        reply.expect(415, r#"{"detail":"Unsupported media type \"text/plain\" in request."}"#);
    }
    let reply = app.post_raw("/api/token/", Some("application/xml"), "<a/>").await;
    reply.expect(415, r#"{"detail":"Unsupported media type \"application/xml\" in request."}"#);
}

#[tokio::test]
async fn content_type_parameters_and_case_are_ignored() {
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let body = json!({"username": "ada", "password": PASSWORD}).to_string();
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        app.post_raw("/api/token/", Some(content_type), body.clone()).await.expect_status(200);
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    for (path, _) in POST_ENDPOINTS {
        let reply = app.get(path).await;
        reply.expect(405, r#"{"detail":"Method \"GET\" not allowed."}"#);
        assert_eq!(reply.header("allow"), Some("POST, OPTIONS"), "{path}");
    }
    for method in ["PUT", "PATCH", "DELETE"] {
        let request = app.client.request(method.parse().unwrap(), app.url("/api/token/")).json(&json!({}));
        let reply = app.send(request).await;
        reply.expect(405, &format!(r#"{{"detail":"Method \"{method}\" not allowed."}}"#));
        assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
    }
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json"] {
        let reply = app.post_json(path, &json!({})).await;
        reply.expect(405, r#"{"detail":"Method \"POST\" not allowed."}"#);
        assert_eq!(reply.header("allow"), Some("GET, HEAD, OPTIONS"), "{path}");
    }
}

#[tokio::test]
async fn options_answers_the_views_metadata() {
    let app = spawn_app().await;
    let reply = app.send(app.client.request(reqwest::Method::OPTIONS, app.url("/api/token/"))).await;
    reply.expect_status(200);
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(reply.json()["parses"][0], "application/json");
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let body = json!({"username": "u", "password": "p", "refresh": "r", "pad": "x".repeat(70_000)}).to_string();
    for path in ["/api/token/", "/api/auth/signup/", "/api/token/refresh/"] {
        let reply = app.post_raw(path, Some("application/json"), body.clone()).await;
        reply.expect(413, r#"{"detail":"Request body too large."}"#);
    }
}

#[tokio::test]
async fn body_over_the_limit_without_content_length_is_413() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20).map(|_| Ok(vec![b' '; 4096])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));

    let reply = app.post_raw("/api/token/", Some("application/json"), body).await;

    reply.expect(413, r#"{"detail":"Request body too large."}"#);
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_read() {
    let app = spawn_app().await;
    app.sign_up("ada").await;
    let mut body = json!({"username": "ada", "password": PASSWORD}).to_string();
    body.insert_str(1, &" ".repeat(65_536 - body.len()));
    assert_eq!(body.len(), 65_536);

    app.post_raw("/api/token/", Some("application/json"), body.clone()).await.expect_status(200);
    body.insert(1, ' ');
    app.post_raw("/api/token/", Some("application/json"), body).await.expect_status(413);
}

#[tokio::test]
async fn max_body_bytes_is_a_setting() {
    let app = spawn_app_with(|s| s.max_body_bytes = 2048).await;
    let body = json!({"refresh": "x".repeat(3000)}).to_string();
    app.post_raw("/api/token/refresh/", Some("application/json"), body).await.expect_status(413);
}

#[tokio::test]
async fn form_encoded_bodies_follow_the_same_rules() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    app.post_form("/api/token/refresh/", &[("refresh", &ada.refresh)]).await.expect_status(200);
    app.post_form("/api/token/verify/", &[("token", &ada.access)]).await.expect(200, "{}");
    app.post_form("/api/token/refresh/", &[("refresh", "")])
        .await
        .expect(400, r#"{"refresh":["This field may not be blank."]}"#);
    app.post_form("/api/token/refresh/", &[("other", "x")])
        .await
        .expect(400, r#"{"refresh":["This field is required."]}"#);
    app.post_form("/api/token/blacklist/", &[("refresh", &ada.refresh)]).await.expect(200, "{}");
}

#[tokio::test]
async fn multipart_bodies_are_read_and_file_parts_ignored() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let boundary = "XyZzY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"refresh\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n",
        ada.refresh
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");

    app.post_raw("/api/token/refresh/", Some(&content_type), body).await.expect_status(200);
    app.post_raw("/api/token/refresh/", Some(&content_type), format!("--{boundary}--\r\n"))
        .await
        .expect(400, r#"{"refresh":["This field is required."]}"#);
}

#[tokio::test]
async fn malformed_multipart_is_a_400() {
    let app = spawn_app().await;
    let reply = app.post_raw("/api/token/refresh/", Some("multipart/form-data"), "garbage").await;
    reply.expect(400, r#"{"detail":"Malformed request."}"#);
}

#[tokio::test]
async fn every_path_works_without_its_trailing_slash() {
    let app = spawn_app().await;
    let reply = app.post_json("/api/auth/signup", &json!({"username": "ada", "password": PASSWORD})).await;
    reply.expect_status(201);
    let access = reply.field("access");
    let credentials = json!({"username": "ada", "password": PASSWORD});

    app.post_json("/api/auth/signin", &credentials).await.expect_status(200);
    let refresh = app.post_json("/api/token", &credentials).await.expect_status(200).field("refresh");
    app.post_json("/api/token/refresh", &json!({"refresh": refresh})).await.expect_status(200);
    app.post_json("/api/token/verify", &json!({"token": access})).await.expect(200, "{}");
    let sliding = app.post_json("/api/token/sliding", &credentials).await.expect_status(200).field("token");
    app.post_json("/api/token/sliding/refresh", &json!({"token": sliding})).await.expect_status(200);
    app.get_with_token("/api/me", &access).await.expect_status(200);
    app.post_json("/api/token/blacklist", &json!({"refresh": refresh})).await.expect(200, "{}");
    app.get("/healthz/").await.expect(200, r#"{"status":"ok"}"#);
    app.get("/readyz/").await.expect(200, r#"{"status":"ok"}"#);
    let logout = app.client.post(app.url("/api/auth/logout-all")).bearer_auth(&access);
    app.send(logout).await.expect(200, "{}");
    let access = app.post_json("/api/token", &credentials).await.expect_status(200).field("access");
    let change = app
        .client
        .post(app.url("/api/auth/password"))
        .bearer_auth(&access)
        .json(&json!({"old_password": PASSWORD, "new_password": "another passphrase"}));
    app.send(change).await.expect(200, "{}");
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    app.get("/api/nothing/").await.expect(404, r#"{"detail":"Not found."}"#);
    app.post_json("/api/token/refresh/extra/", &json!({})).await.expect(404, r#"{"detail":"Not found."}"#);
}

#[tokio::test]
async fn token_answers_are_never_cached() {
    let app = spawn_app().await;
    let reply = app.post_json("/api/auth/signup/", &json!({"username": "ada", "password": PASSWORD})).await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}
