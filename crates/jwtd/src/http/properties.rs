//! Property tests of the two parsers that see raw input first: the token decoder and the
//! request-body parser. Whatever the bytes or the JSON, they never panic and every refusal is
//! one of SPEC §2's errors (a 4xx with its exact body shape), never a 5xx.

use std::sync::{Arc, LazyLock};

use crate::clock::{FakeClock, Instant};
use crate::http::{ApiError, Input};
use crate::service::{AuthError, BearerError, Verifier};
use crate::tokens::{Algorithm, Codec, Policy, TokenError, TokenType};
use crate::Settings;
use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::BodyExt;
use jsonwebtoken::EncodingKey;
use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;
use serde_json::{Map, Value};

/// 10,000 cases a property; XorShift instead of ChaCha, whose unoptimised (debug) build otherwise
/// takes most of the time.
fn config() -> ProptestConfig {
    ProptestConfig { rng_algorithm: RngAlgorithm::XorShift, ..ProptestConfig::with_cases(10_000) }
}
const SECRET: &[u8] = b"property-test-secret-0123456789abcdef";
/// 2023-11-14T22:13:20Z, in milliseconds.
const NOW_MS: i64 = 1_700_000_000_000;

fn codec() -> &'static Codec {
    static CODEC: LazyLock<Codec> =
        LazyLock::new(|| Codec::from_secret(Algorithm::HS256, SECRET, Policy::default()).unwrap());
    &CODEC
}

/// The status and JSON body an error answers with.
fn answer(error: ApiError) -> (u16, Value) {
    let response = error.into_response();
    let status = response.status().as_u16();
    let bytes = futures::executor::block_on(response.into_body().collect()).unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// `{"detail": "..."}`, optionally with `code` and `messages`: SPEC §2's detail bodies.
fn is_detail_body(body: &Value) -> bool {
    let Some(object) = body.as_object() else { return false };
    object.get("detail").is_some_and(Value::is_string)
        && object.keys().all(|k| ["detail", "code", "messages"].contains(&k.as_str()))
}

/// DRF's validation body: every key a field (or `non_field_errors`) with a list of messages.
fn is_field_errors_body(body: &Value) -> bool {
    let Some(object) = body.as_object() else { return false };
    !object.is_empty()
        && object
            .values()
            .all(|v| v.as_array().is_some_and(|messages| !messages.is_empty() && messages.iter().all(Value::is_string)))
}

/// What a field may be refused with (SPEC §2, plus DRF's NUL rule).
const FIELD_MESSAGES: &[&str] = &[
    "This field is required.",
    "This field may not be blank.",
    "This field may not be null.",
    "Not a valid string.",
    "Null characters are not allowed.",
];

/// A refused token, as the token views and the Bearer extractor answer it.
fn assert_token_refusal(error: TokenError) {
    let (status, body) = answer(ApiError::Auth(AuthError::TokenInvalid(error.clone())));
    assert_eq!(status, 401);
    assert_eq!(body, serde_json::json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}));
    let (status, body) = answer(ApiError::Bearer(BearerError::Token(error, &[TokenType::Access])));
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Given token not valid for any token type");
    assert!(body["messages"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Any JSON value: scalars of every kind, nested arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".*", inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A claim value: mostly of a plausible type, sometimes anything.
fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (NOW_MS / 1000 - 100_000..NOW_MS / 1000 + 100_000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop_oneof![Just("access"), Just("refresh"), Just("sliding"), Just("42"), Just("-1"), Just("")]
            .prop_map(Value::from),
        "[0-9a-f]{32}".prop_map(Value::from),
        json_value(),
    ]
}

/// Claims sets built from SimpleJWT's claim names (each present or not) and arbitrary others.
fn claims() -> impl Strategy<Value = Value> {
    let names = ["token_type", "exp", "iat", "nbf", "jti", "user_id", "aud", "iss", "refresh_exp"];
    let known = prop::collection::vec(prop::option::of(claim_value()), names.len());
    let others = prop::collection::vec(("[a-z_]{1,8}", json_value()), 0..3);
    prop_oneof![
        4 => (known, others).prop_map(move |(values, others)| {
            let mut map: Map<String, Value> = names.iter().zip(values).filter_map(|(n, v)| Some((n.to_string(), v?))).collect();
            map.extend(others);
            Value::Object(map)
        }),
        1 => json_value(),
    ]
}

/// A JOSE header: mostly HS256 as signed, sometimes another or a broken one.
fn jose_header() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => Just(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        1 => prop_oneof![Just("none"), Just("HS512"), Just("RS256"), Just("hs256"), Just("")]
            .prop_map(|alg| serde_json::json!({"alg": alg, "typ": "JWT"})),
        1 => json_value(),
    ]
}

/// A token signed with the right key over arbitrary header and claims.
fn signed(header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

fn verifier() -> &'static Verifier {
    static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
        let clock = Arc::new(FakeClock::at(Instant::from_millis(NOW_MS)));
        Verifier::new(codec(), clock, vec!["Bearer".into()], "user_id".into())
    });
    &VERIFIER
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_decoder_refuses_arbitrary_bytes_with_a_token_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        match codec().decode(&text, Instant::from_millis(NOW_MS)) {
            Ok(claims) => prop_assert!(false, "accepted {text:?}: {claims:?}"),
            Err(error) => assert_token_refusal(error),
        }
    }

    #[test]
    fn the_decoder_refuses_arbitrary_three_part_tokens(parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 3)) {
        let token = parts.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".");
        match codec().decode(&token, Instant::from_millis(NOW_MS)) {
            Ok(claims) => prop_assert!(false, "accepted {token:?}: {claims:?}"),
            Err(error) => assert_token_refusal(error),
        }
    }

    /// Correctly signed, so the claims themselves are what is parsed: claims of the wrong type
    /// (exp as a string, user_id as an object) are a token error, never a panic (SPEC §3).
    #[test]
    fn signed_arbitrary_claims_decode_or_are_refused(header in jose_header(), claims in claims(), skew in -200_000i64..200_000) {
        let token = signed(&header, &claims);
        let now = Instant::from_millis(NOW_MS + skew * 1000);
        match codec().decode(&token, now) {
            Ok(decoded) => {
                prop_assert_eq!(&header["alg"], "HS256");
                prop_assert!(decoded.exp() * 1000.0 > now.millis() as f64, "expired but accepted: {claims}");
            }
            Err(error) => assert_token_refusal(error),
        }
        // The Bearer path adds the type, user id and revocation checks; each refusal is a 401.
        if let Err(error) = verifier().access(&token) {
            let (status, body) = answer(ApiError::Bearer(error));
            prop_assert_eq!(status, 401);
            prop_assert!(is_detail_body(&body), "{}", body);
        }
    }
}

/// The media types a body is parsed as; the rest must be a 415.
fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("application/json".to_string()),
        2 => Just("application/x-www-form-urlencoded".to_string()),
        2 => Just("multipart/form-data; boundary=XyZ".to_string()),
        1 => Just("multipart/form-data".to_string()),
        1 => Just("text/plain".to_string()),
        1 => "[ -~]{0,40}",
    ]
}

/// A body worth parsing: random bytes, JSON text, form pairs or multipart parts, each sometimes
/// cut short or with a byte flipped.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("username".to_string()),
        Just("password".to_string()),
        Just("email".to_string()),
        "[ -~]{0,12}",
    ];
    let text = prop_oneof![".{0,24}", "[ \t\n\u{0}\u{a0}\u{3000}a]{0,6}"];
    let json = json_value().prop_map(|v| v.to_string().into_bytes());
    let form = prop::collection::vec((field.clone(), text.clone()), 0..5)
        .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap().into_bytes());
    let multipart = prop::collection::vec((field, text), 0..5).prop_map(|parts| {
        let mut body = String::new();
        for (name, value) in parts {
            body.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
        }
        body.push_str("--XyZ--\r\n");
        body.into_bytes()
    });
    let raw = prop::collection::vec(any::<u8>(), 0..256);
    (prop_oneof![json, form, multipart, raw], any::<prop::sample::Index>(), any::<u8>(), 0u8..4).prop_map(
        |(mut bytes, at, byte, damage)| {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                match damage {
                    0 => bytes.truncate(i),
                    1 => bytes[i] = byte,
                    _ => {}
                }
            }
            bytes
        },
    )
}

/// A JSON object whose fields are the credentials a handler reads, each of any JSON type.
fn credentials_object() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        json_value(),
        "[ \t\n\u{0}\u{a0}\u{3000}a1]{0,6}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ];
    let fields = ["username", "password", "email"];
    (
        prop::collection::vec(prop::option::of(value), fields.len()),
        prop::collection::vec((".{0,8}", json_value()), 0..3),
    )
        .prop_map(move |(values, others)| {
            let mut map: Map<String, Value> = others.into_iter().collect();
            for (name, value) in fields.iter().zip(values) {
                if let Some(v) = value {
                    map.insert(name.to_string(), v);
                }
            }
            Value::Object(map).to_string().into_bytes()
        })
}

/// Parses a body through the real extractor (content type, size limit) and reads the fields a
/// sign-up reads. Returns the error's status and body, or `None` when every field was fine.
fn parse_sign_up(content_type: &str, bytes: Vec<u8>, limit: usize) -> Option<(u16, Value)> {
    let settings = Arc::new(Settings { max_body_bytes: limit, ..Settings::default() });
    let request = Request::post("/").header("content-type", content_type).body(Body::from(bytes)).unwrap();
    let parsed = futures::executor::block_on(Input::from_request(request, &settings));
    let result = parsed.and_then(|mut input| {
        let username = input.string("username");
        let password = input.string("password");
        let email = input.optional_string("email");
        input.finish(username.zip(password)).map(|_| email)
    });
    result.err().map(answer)
}

/// Every refusal of a body is a SPEC §2 4xx: 400 with DRF's field errors or a detail, 413, 415.
fn assert_body_refusal(status: u16, body: &Value) -> Result<(), TestCaseError> {
    match status {
        400 if is_field_errors_body(body) => {
            let messages =
                body.as_object().into_iter().flat_map(|o| o.values()).flat_map(|v| v.as_array().into_iter().flatten());
            for message in messages {
                let message = message.as_str().unwrap_or_default();
                prop_assert!(
                    FIELD_MESSAGES.contains(&message)
                        || message.starts_with("Invalid data. Expected a dictionary, but got ")
                        || message == "No data provided",
                    "unexpected message {message:?}"
                );
            }
        }
        400 => {
            prop_assert!(is_detail_body(body), "{}", body);
            let detail = body["detail"].as_str().unwrap_or_default();
            prop_assert!(detail.starts_with("JSON parse error - ") || detail == "Malformed request.", "{detail}");
        }
        413 => prop_assert_eq!(body, &serde_json::json!({"detail": "Request body too large."})),
        415 => {
            let detail = body["detail"].as_str().unwrap_or_default();
            prop_assert!(
                detail.starts_with("Unsupported media type \"") && detail.ends_with("\" in request."),
                "{detail}"
            );
        }
        other => prop_assert!(false, "status {other}: {body}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bodies_parse_or_are_refused_with_a_spec_error(content_type in content_type(), bytes in body_bytes(), limit in prop_oneof![Just(65_536usize), 1usize..128]) {
        if let Some((status, body)) = parse_sign_up(&content_type, bytes, limit) {
            assert_body_refusal(status, &body)?;
        }
    }

    #[test]
    fn arbitrary_json_fields_follow_drf_char_field_rules(bytes in credentials_object()) {
        let fields: Value = serde_json::from_slice(&bytes).unwrap();
        let outcome = parse_sign_up("application/json", bytes, 65_536);
        let is_text = |name: &str| match &fields[name] {
            Value::String(s) => !s.trim().is_empty() && !s.contains('\0'),
            Value::Number(_) => true,
            _ => false,
        };
        let email_ok = fields.get("email").is_none() || is_text("email");
        match outcome {
            None => prop_assert!(is_text("username") && is_text("password") && email_ok, "accepted {fields}"),
            Some((status, body)) => {
                prop_assert_eq!(status, 400);
                prop_assert!(!(is_text("username") && is_text("password") && email_ok), "refused {fields}: {body}");
                assert_body_refusal(status, &body)?;
            }
        }
    }
}

/// The anchor for the generators above: a well-formed token signed the same way is accepted.
#[test]
fn a_well_formed_signed_token_is_accepted_and_a_flipped_byte_is_not() {
    let claims = serde_json::json!({
        "token_type": "access", "exp": NOW_MS / 1000 + 60, "iat": NOW_MS / 1000,
        "jti": "a".repeat(32), "user_id": 7,
    });
    let token = signed(&serde_json::json!({"alg": "HS256", "typ": "JWT"}), &claims);
    assert!(codec().decode(&token, Instant::from_millis(NOW_MS)).is_ok());
    assert!(verifier().access(&token).is_ok());
    let mut tampered = token.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(codec().decode(&tampered, Instant::from_millis(NOW_MS)).is_err());
}
