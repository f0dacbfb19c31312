//! Asymmetric keys end to end (SPEC §3, §5): the server signing with RS256/ES256/EdDSA keys;
//! JWKS; refused forgeries (key confusion, alg=none, unknown kid); key rotation; start-up
//! refusals naming the setting; `jwtd keys generate`.

use std::path::PathBuf;
use std::time::Duration;

use jwtd::tokens::Algorithm;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{
    access_claims, generate_key, header, jwtd, kid, spawn_app, token_with, TestApp, BEARER_INVALID, TOKEN_INVALID,
};

/// A server signing with `algorithm` and a new key.
async fn signing_with(algorithm: Algorithm) -> TestApp {
    TestApp::builder().key(algorithm, &generate_key(algorithm).private_pem).spawn().await
}

async fn assert_refused_everywhere(app: &TestApp, token: &str) {
    let me = app.me(token).await;
    assert_eq!(me.status, 401);
    let body = me.json();
    assert_eq!(body["detail"], BEARER_INVALID);
    assert_eq!(body["code"], "token_not_valid");
    app.verify(token).await.expect(401, TOKEN_INVALID);
}

#[tokio::test]
async fn tokens_carry_the_kid_that_jwks_publishes() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let mut app = signing_with(alg).await;
        let ada = app.sign_up("ada").await;
        let r = app.get("/.well-known/jwks.json").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["cache-control"], "public, max-age=300");
        let jwks = r.json();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{alg}");
        assert_eq!(keys[0]["alg"], alg.to_string());
        assert_eq!(keys[0]["use"], "sig");
        assert!(keys[0].get("d").is_none(), "{alg}: private key in JWKS");
        for token in [&ada.access, &ada.refresh] {
            assert_eq!(header(token), json!({"typ": "JWT", "alg": alg.to_string(), "kid": keys[0]["kid"]}));
        }
        assert_eq!(app.me(&ada.access).await.status, 200, "{alg}");
        assert_eq!(app.refresh(&ada.refresh).await.status, 200, "{alg}");
        app.shut_down().await;
    }
}

#[tokio::test]
async fn hmac_publishes_no_key_and_writes_no_kid() {
    let app = spawn_app().await;
    let access = app.sign_up("ada").await.access;
    assert_eq!(header(&access), json!({"typ": "JWT", "alg": "HS256"}));
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.headers["cache-control"], "public, max-age=300");
    assert_eq!(r.json(), json!({"keys": []}));
}

#[tokio::test]
async fn hs256_token_signed_with_the_public_key_is_refused() {
    let rsa = generate_key(Algorithm::RS256);
    let app = TestApp::builder().key(Algorithm::RS256, &rsa.private_pem).spawn().await;
    let ada = app.sign_up("ada").await;
    let kid = header(&ada.access)["kid"].clone();
    let hmac_with = |secret: Vec<u8>| {
        move |input: &[u8]| {
            let key = jsonwebtoken::EncodingKey::from_secret(&secret);
            jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
        }
    };
    let claims = access_claims(ada.id, app.now_secs());
    for h in [json!({"alg": "HS256", "typ": "JWT"}), json!({"alg": "HS256", "typ": "JWT", "kid": kid})] {
        let forged = token_with(h.clone(), &claims, hmac_with(rsa.public_pem.clone().into_bytes()));
        assert_refused_everywhere(&app, &forged).await;
        // The JWK's modulus, another form the "secret" could take.
        let jwks = app.jwks().await;
        let forged = token_with(h, &claims, hmac_with(jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec()));
        assert_refused_everywhere(&app, &forged).await;
    }
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = signing_with(Algorithm::ES256).await;
    let ada = app.sign_up("ada").await;
    let kid = header(&ada.access)["kid"].clone();
    for alg in ["none", "None"] {
        let forged =
            token_with(json!({"alg": alg, "typ": "JWT", "kid": kid}), &access_claims(ada.id, app.now_secs()), |_| {
                String::new()
            });
        assert_refused_everywhere(&app, &forged).await;
    }
}

#[tokio::test]
async fn a_token_whose_kid_matches_no_known_key_is_refused() {
    let app = signing_with(Algorithm::EdDSA).await;
    let ada = app.sign_up("ada").await;
    let stranger = generate_key(Algorithm::EdDSA);
    let stranger_encoding = jsonwebtoken::EncodingKey::from_ed_pem(stranger.private_pem.as_bytes()).unwrap();
    let sign =
        |input: &[u8]| jsonwebtoken::crypto::sign(input, &stranger_encoding, jsonwebtoken::Algorithm::EdDSA).unwrap();
    let claims = access_claims(ada.id, app.now_secs());
    // Its own kid, which the server does not know; a made-up kid; and the server's kid over a
    // signature of another key.
    for kid in [json!(kid(Algorithm::EdDSA, &stranger)), json!("made-up"), header(&ada.access)["kid"].clone()] {
        let forged = token_with(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), &claims, sign);
        assert_refused_everywhere(&app, &forged).await;
    }
    let now = app.now_secs();
    let refresh = token_with(
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "made-up"}),
        &json!({"token_type": "refresh", "exp": now + 300, "iat": now, "jti": "ab".repeat(16), "user_id": ada.id}),
        sign,
    );
    app.refresh(&refresh).await.expect(401, TOKEN_INVALID);
}

/// Restarts on the same database with a new signing key and the old public key in
/// PREVIOUS_VERIFYING_KEYS: old tokens keep working until they expire; new ones use the new key.
#[tokio::test]
async fn tokens_signed_before_a_key_rotation_work_until_they_expire() {
    let old = generate_key(Algorithm::ES256);
    let new = generate_key(Algorithm::ES256);

    let before = TestApp::builder().key(Algorithm::ES256, &old.private_pem).spawn().await;
    let ada = before.sign_up("ada").await;
    let old_kid = header(&ada.access)["kid"].clone();

    let after =
        before.restart(|b| b.key(Algorithm::ES256, &new.private_pem).previous_keys(&[old.public_pem.as_str()])).await;
    let kids: Vec<Value> = after.jwks().await["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[1], old_kid, "JWKS lists the current key, then the previous one");
    assert_eq!(after.me(&ada.access).await.status, 200);
    let r = after.refresh(&ada.refresh).await;
    assert_eq!(r.status, 200);
    let fresh_access = r.field("access");
    assert_eq!(header(&fresh_access)["kid"], kids[0], "new tokens are signed with the current key only");
    let new_access = after.sign_up("grace").await.access;
    assert_eq!(header(&new_access)["kid"], kids[0]);

    // Past the access lifetime (15 minutes) the old access token has expired like any other,
    // while the old refresh token (7 days) still works.
    after.clock.advance(Duration::from_secs(15 * 60));
    let expired = after.me(&ada.access).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["messages"][0]["message"], "Token is expired");
    assert_eq!(after.refresh(&ada.refresh).await.status, 200);

    // Once the previous key is dropped from the settings, its tokens are refused.
    let last = after.restart(|b| b.key(Algorithm::ES256, &new.private_pem)).await;
    last.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);
    assert_eq!(last.jwks().await["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn wrong_keys_stop_the_start_naming_the_setting() {
    let ec = generate_key(Algorithm::ES256);
    let rsa = generate_key(Algorithm::RS256);
    let err = TestApp::builder().key(Algorithm::ES256, &rsa.private_pem).start_error().await;
    assert_eq!(err, "SIGNING_KEY: ES256 needs a P-256 EC key, got an RSA key");

    let other = generate_key(Algorithm::ES256);
    let mismatched = TestApp::builder().key(Algorithm::ES256, &ec.private_pem).verifying_key(&other.public_pem);
    assert_eq!(mismatched.start_error().await, "VERIFYING_KEY: is not the public key of SIGNING_KEY");

    let mut matched =
        TestApp::builder().key(Algorithm::ES256, &ec.private_pem).verifying_key(&ec.public_pem).spawn().await;
    matched.shut_down().await;

    let previous = TestApp::builder().key(Algorithm::ES256, &ec.private_pem).previous_keys(&[rsa.public_pem.as_str()]);
    assert_eq!(
        previous.start_error().await,
        "PREVIOUS_VERIFYING_KEYS: PEM text: ES256 needs a P-256 EC key, got an RSA key"
    );

    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let small_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&small, rsa::pkcs8::LineEnding::LF).unwrap();
    let err = TestApp::builder().key(Algorithm::RS256, &small_pem).start_error().await;
    assert_eq!(err, "SIGNING_KEY: RSA keys need at least 2048 bits, got 1024");
    assert!(!err.contains("BEGIN"));
}

#[tokio::test]
async fn without_signing_key_a_key_is_generated_once_and_kept() {
    let generating = |s: &mut jwtd::Settings| {
        s.algorithm = Algorithm::EdDSA;
        s.signing_key = None;
    };
    let first = TestApp::builder().settings(generating).spawn().await;
    let access = first.sign_up("ada").await.access;
    let jwks = first.jwks().await;
    let second = first.restart(|b| b.settings(generating)).await;
    assert_eq!(second.jwks().await, jwks);
    assert_eq!(second.me(&access).await.status, 200);
}

#[tokio::test]
async fn keys_generate_writes_a_private_key_only_its_owner_reads() {
    let dir = TempDir::new().unwrap();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let out: PathBuf = dir.path().join(alg);
        let done = jwtd(&["keys", "generate", "--algorithm", alg, "--out", out.to_str().unwrap()], &[], None).await;
        assert_eq!(done.code, Some(0), "{}", done.stderr);
        let private = out.join("private.pem");
        let pem = std::fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(out.join("public.pem")).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let stdout = done.stdout;
        assert!(!stdout.contains("BEGIN"), "key material printed");

        // The written pair is what the server loads, by path, and config check agrees.
        let public = out.join("public.pem");
        let env = [
            ("JWTD_ALGORITHM", alg),
            ("JWTD_SIGNING_KEY", private.to_str().unwrap()),
            ("JWTD_VERIFYING_KEY", public.to_str().unwrap()),
        ];
        let check = jwtd(&["config", "check"], &env, None).await;
        let printed = check.stdout;
        assert_eq!(check.code, Some(0), "{}", check.stderr);
        assert!(printed.contains("SIGNING_KEY = ****") && !printed.contains("BEGIN"), "{printed}");
        let kid_line = stdout.lines().find(|l| l.starts_with("kid ")).unwrap().trim_start_matches("kid ");
        assert!(printed.contains(&format!("# kid of SIGNING_KEY: {kid_line}")), "{printed}");

        // Never overwrites.
        let again = jwtd(&["keys", "generate", "--algorithm", alg, "--out", out.to_str().unwrap()], &[], None).await;
        assert_ne!(again.code, Some(0));
        assert_eq!(std::fs::read_to_string(&private).unwrap(), pem);
    }
    let hmac =
        jwtd(&["keys", "generate", "--algorithm", "HS256", "--out", dir.path().to_str().unwrap()], &[], None).await;
    assert_ne!(hmac.code, Some(0));
}
