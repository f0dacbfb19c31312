//! GET /api/schema/: the OpenAPI 3.1 document (SPEC §1). CI's Schemathesis step holds the server
//! to it; these tests hold the document to SPEC's route list and to itself.

use jwtd_proto::messages;
use serde_json::Value;

use crate::helpers::spawn_app;

/// SPEC §1's endpoints, as SimpleJWT spells their paths (introspection and the revocation feed
/// only with SERVICE_TOKENS, which the default test server has none of).
const ENDPOINTS: [(&str, &str); 20] = [
    ("post", "/api/auth/signup/"),
    ("post", "/api/auth/signin/"),
    ("post", "/api/token/"),
    ("post", "/api/token/refresh/"),
    ("post", "/api/token/verify/"),
    ("post", "/api/token/blacklist/"),
    ("post", "/api/token/sliding/"),
    ("post", "/api/token/sliding/refresh/"),
    ("get", "/api/me/"),
    ("post", "/api/auth/password/"),
    ("post", "/api/auth/logout-all/"),
    ("get", "/api/auth/sessions/"),
    ("delete", "/api/auth/sessions/{id}/"),
    ("post", "/api/auth/logout-others/"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/schema/"),
    ("get", "/api/auth/check/"),
];

async fn document() -> Value {
    let app = spawn_app().await;
    let reply = app.get("/api/schema/").await;
    reply.expect_status(200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(app.get("/api/schema").await.text, reply.text, "the path without its trailing slash");
    reply.json()
}

/// Every `$ref` of the document, wherever it is.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_exactly_the_spec_endpoints() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .collect();
    let expected: Vec<(String, String)> = ENDPOINTS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);
}

#[tokio::test]
async fn every_reference_resolves() {
    let doc = document().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("external reference {target}"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
}

#[tokio::test]
async fn bodies_are_json_form_or_multipart_and_answers_cover_spec_errors() {
    let doc = document().await;
    for (method, path) in ENDPOINTS {
        let operation = &doc["paths"][path][method];
        let responses = operation["responses"].as_object().unwrap();
        let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
        if let Some(body) = operation.get("requestBody") {
            let types: Vec<&String> = body["content"].as_object().unwrap().keys().collect();
            assert_eq!(
                types,
                ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
                "{path}"
            );
            for status in ["400", "413", "415"] {
                assert!(statuses.contains(&status), "{path} lacks {status}");
            }
        }
        // The transport limits hold everywhere: headers too large, a body or an answer too slow.
        for status in ["408", "431", "503"] {
            assert!(statuses.contains(&status), "{path} lacks {status}");
        }
    }
    let components = &doc["components"]["responses"];
    for name in ["TokenNotValid", "NoActiveAccount", "NotAuthenticated", "Throttled", "MethodNotAllowed"] {
        assert!(components[name]["content"]["application/json"]["schema"].is_object(), "{name}");
    }
    assert!(components["Throttled"]["headers"]["Retry-After"].is_object());
    assert!(components["MethodNotAllowed"]["headers"]["Allow"].is_object());
    // Too many requests in flight: the edge layer's 503 with `Retry-After`, on every route.
    let unavailable = &components["Unavailable"];
    assert!(unavailable["headers"]["Retry-After"].is_object());
    let texts = &unavailable["content"]["application/json"]["schema"]["properties"]["detail"]["enum"];
    for text in [messages::UNAVAILABLE, messages::REQUEST_TIMED_OUT, messages::BUSY] {
        assert!(texts.as_array().unwrap().contains(&Value::from(text)), "{text}");
    }
}

#[tokio::test]
async fn the_protected_routes_and_only_they_need_a_bearer_token() {
    let doc = document().await;
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    for (method, path) in ENDPOINTS {
        let operation = &doc["paths"][path][method];
        let protected = [
            "/api/me/",
            "/api/auth/password/",
            "/api/auth/logout-all/",
            "/api/auth/sessions/",
            "/api/auth/sessions/{id}/",
            "/api/auth/logout-others/",
            "/api/auth/check/",
        ]
        .contains(&path);
        assert_eq!(operation.get("security").is_some(), protected, "{path}");
        if protected {
            assert_eq!(operation["security"], serde_json::json!([{"bearerAuth": []}]));
            assert_eq!(operation["responses"]["401"]["$ref"], "#/components/responses/NotAuthenticated");
        }
    }
}

#[tokio::test]
async fn links_name_existing_operations_in_openapi_spelling() {
    let doc = document().await;
    let ids: Vec<&str> = ENDPOINTS.iter().map(|(m, p)| doc["paths"][p][m]["operationId"].as_str().unwrap()).collect();
    let refresh_links = &doc["paths"]["/api/token/"]["post"]["responses"]["200"]["links"];
    assert_eq!(refresh_links["RefreshToken"]["operationId"], "refresh");
    assert_eq!(refresh_links["RefreshToken"]["requestBody"]["refresh"], "$response.body#/refresh");
    let mut count = 0;
    for (method, path) in ENDPOINTS {
        for response in doc["paths"][path][method]["responses"].as_object().unwrap().values() {
            for link in response.get("links").and_then(Value::as_object).into_iter().flat_map(|l| l.values()) {
                assert!(ids.contains(&link["operationId"].as_str().unwrap()), "{link}");
                assert!(link.get("operation_id").is_none() && link.get("request_body").is_none(), "{link}");
                count += 1;
            }
        }
    }
    assert!(count >= 10, "{count} links");
}
