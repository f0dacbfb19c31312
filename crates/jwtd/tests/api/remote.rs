//! Another service authenticating jwtd's tokens through the JWKS URL alone (SPEC §7): a
//! separate axum app with `AuthUser` and a remote verifier, against a jwtd server or none.

use std::time::Duration;

use jwtd::clock::FakeClock;
use jwtd::tokens::Algorithm;
use serde_json::json;

use crate::helpers::{access_claims, generate_key, token_with, ResourceServer, TestApp, BEARER_INVALID};

#[tokio::test]
async fn another_service_authenticates_jwtd_tokens_through_jwks() {
    let first_key = generate_key(Algorithm::ES256);
    let jwtd_app = TestApp::builder().key(Algorithm::ES256, &first_key.private_pem).spawn().await;
    let ada = jwtd_app.sign_up("ada").await;
    let service =
        ResourceServer::spawn(jwtd_app.url("/.well-known/jwks.json"), &jwtd_app.clock, Algorithm::ES256).await;

    service.hello(&ada.access).await.expect(200, &format!("hello, user {}", ada.id));
    let forged = token_with(json!({"alg": "none", "typ": "JWT"}), &access_claims(ada.id, jwtd_app.now_secs()), |_| {
        String::new()
    });
    let r = service.hello(&forged).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], BEARER_INVALID);
    assert_eq!(service.hello_anonymously().await.status, 401);
    service.layered(Some(&ada.access)).await.expect(200, &format!("hello, user {}", ada.id));
    let r = service.layered(Some(&forged)).await;
    assert_eq!((r.status, r.json()["detail"].as_str()), (401, Some(BEARER_INVALID)));
    assert_eq!(service.layered(None).await.status, 401);

    // jwtd rotates its key (old one kept as previous), on the same address. The service meets
    // the new kid and fetches the JWKS again; old and new tokens both pass.
    let second_key = generate_key(Algorithm::ES256);
    let addr = jwtd_app.addr;
    let jwtd_app = jwtd_app
        .restart(|b| {
            b.key(Algorithm::ES256, &second_key.private_pem)
                .previous_keys(&[first_key.public_pem.as_str()])
                .settings(move |s| s.addr = addr)
        })
        .await;
    let new_access = jwtd_app.sign_up("grace").await.access;
    jwtd_app.clock.advance(Duration::from_secs(11)); // past RemoteOptions::min_refresh, no sleep
    assert_eq!(service.hello(&new_access).await.status, 200);
    assert_eq!(service.hello(&ada.access).await.status, 200);
    assert_eq!(service.layered(Some(&new_access)).await.status, 200);

    // A made-up kid right after a fetch does not fetch again (min_refresh) and is refused.
    let stranger = generate_key(Algorithm::ES256);
    let stranger_key = jsonwebtoken::EncodingKey::from_ec_pem(stranger.private_pem.as_bytes()).unwrap();
    let forged = token_with(
        json!({"alg": "ES256", "typ": "JWT", "kid": "made-up"}),
        &access_claims(ada.id, jwtd_app.now_secs()),
        |input| jsonwebtoken::crypto::sign(input, &stranger_key, jsonwebtoken::Algorithm::ES256).unwrap(),
    );
    assert_eq!(service.hello(&forged).await.status, 401);
}

#[tokio::test]
async fn remote_verification_without_any_fetched_key_is_a_503() {
    let clock = FakeClock::new();
    // A port nothing listens on: bind, read the port, close.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let jwks_url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");
    let service = ResourceServer::spawn(jwks_url, &clock, Algorithm::EdDSA).await;
    let signer = generate_key(Algorithm::EdDSA);
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(signer.private_pem.as_bytes()).unwrap();
    let token = token_with(
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "k"}),
        &access_claims(1, jwtd::clock::Clock::now(&clock).secs()),
        |input| jsonwebtoken::crypto::sign(input, &encoding, jsonwebtoken::Algorithm::EdDSA).unwrap(),
    );
    let r = service.hello(&token).await;
    assert_eq!(r.status, 503);
    assert!(r.json()["detail"].is_string());
    assert_eq!(service.layered(Some(&token)).await.status, 503);
}

/// Serves `router` on 127.0.0.1:0; its base URL.
async fn serve_jwks(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn a_jwks_answer_too_large_or_redirected_is_a_failed_fetch() {
    use axum::response::Redirect;
    use axum::routing::get;
    use jwtd::service::{RemoteKeys, RemoteKeysError, RemoteOptions};
    let huge = format!(r#"{{"keys":[],"padding":"{}"}}"#, "x".repeat(300 * 1024));
    let router = axum::Router::new()
        .route("/huge", get(move || async move { huge }))
        .route(
            "/chunked",
            get(|| async {
                let chunks = (0..300).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("http://127.0.0.1:1/elsewhere") }));
    let base = serve_jwks(router).await;
    let now = jwtd::clock::Instant::from_secs(1_000_000);
    for (path, too_large) in [("/huge", true), ("/chunked", true), ("/moved", false)] {
        let keys = RemoteKeys::new(format!("{base}{path}"), RemoteOptions::default()).unwrap();
        let err = keys.refresh(now).await.unwrap_err();
        match err {
            RemoteKeysError::TooLarge { .. } => assert!(too_large, "{path}"),
            RemoteKeysError::Status { status, .. } => assert!(!too_large && status == 307, "{path}: {status}"),
            other => panic!("{path}: {other}"),
        }
    }
}
