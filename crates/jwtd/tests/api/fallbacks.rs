//! SIGNING_KEY_FALLBACKS: earlier HMAC secrets still verify every kind of token (Django's
//! SECRET_KEY_FALLBACKS); new tokens are signed with SIGNING_KEY only. Asymmetric algorithms
//! keep earlier keys in PREVIOUS_VERIFYING_KEYS instead.

use serde_json::json;

use crate::helpers::{claims, forge_with, jwtd, TestApp, PASSWORD};

const OLD: &str = "old-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const NEW: &str = "new-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn signed_with(token: &str, secret: &str) -> bool {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .is_ok()
}

#[tokio::test]
async fn tokens_of_a_fallback_secret_keep_working_after_a_rotation() {
    let app = TestApp::builder().env(&[("SIGNING_KEY", OLD), ("AUTH_TOKEN_CLASSES", "access,sliding")]).spawn().await;
    let ada = app.sign_up("ada").await;
    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");
    assert!(signed_with(&ada.access, OLD));

    let app = app
        .restart(|b| {
            b.env(&[
                ("SIGNING_KEY", NEW),
                ("SIGNING_KEY_FALLBACKS", &format!("{OLD}, ")),
                ("AUTH_TOKEN_CLASSES", "access,sliding"),
            ])
        })
        .await;

    app.me(&ada.access).await.expect_status(200);
    app.me(&sliding).await.expect_status(200);
    app.verify(&ada.refresh).await.expect(200, "{}");
    app.verify(&ada.access).await.expect(200, "{}");
    let access = app.refresh(&ada.refresh).await.expect_status(200).field("access");
    assert!(signed_with(&access, NEW) && !signed_with(&access, OLD));
    let renewed = app.refresh_sliding(&sliding).await.field("token");
    assert!(signed_with(&renewed, NEW) && !signed_with(&renewed, OLD));
    let fresh = app.obtain_pair("ada", PASSWORD).await.field("access");
    assert!(signed_with(&fresh, NEW));
    let mut payload = claims(&access);
    payload["jti"] = json!("0123456789abcdef0123456789abcdef");
    let forged = forge_with(&payload, "some-other-key-cccccccccccccccccccccccccccccccc");
    app.me(&forged).await.expect_status(401);
    app.blacklist(&ada.refresh).await.expect(200, "{}");

    // Once the fallback is dropped, tokens of the old secret end.
    let app = app.restart(|b| b.env(&[("SIGNING_KEY", NEW)])).await;
    app.me(&ada.access).await.expect_status(401);
    app.me(&access).await.expect_status(200);
}

#[tokio::test]
async fn fallbacks_with_an_asymmetric_algorithm_or_a_short_secret_exit_2_naming_the_setting() {
    let run =
        jwtd(&["config", "check"], &[("JWTD_ALGORITHM", "ES256"), ("JWTD_SIGNING_KEY_FALLBACKS", OLD)], None).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.starts_with("jwtd: invalid settings: JWTD_SIGNING_KEY_FALLBACKS: only for HMAC algorithms; ES256 keeps earlier keys in PREVIOUS_VERIFYING_KEYS"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(OLD));
    let run = jwtd(&["config", "check"], &[("JWTD_SIGNING_KEY_FALLBACKS", "short-secret")], None).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.starts_with("jwtd: invalid settings: JWTD_SIGNING_KEY_FALLBACKS: "), "{}", run.stderr);
    assert!(!run.stderr.contains("short-secret"), "{}", run.stderr);
}

#[tokio::test]
async fn config_check_masks_the_fallback_secrets() {
    let run = jwtd(
        &["config", "check"],
        &[("JWTD_SIGNING_KEY", NEW), ("JWTD_SIGNING_KEY_FALLBACKS", &format!("{OLD},{}", "x".repeat(40)))],
        None,
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "SIGNING_KEY_FALLBACKS = ****,****"), "{}", run.stdout);
    assert!(!run.stdout.contains(OLD) && !run.stdout.contains(&"x".repeat(40)), "{}", run.stdout);
}
