//! Real Django project shapes (SPEC §3, §5, §6): e-mail sign-in, UUID user ids, a string `sub`,
//! claims written from user fields and the user's own claims, groups, and `sid` in every token.

use serde_json::{json, Value};

use crate::helpers::{claims, forge, jwtd, jwtd_on, spawn_app, TestApp, NO_ACTIVE_ACCOUNT, PASSWORD, TOKEN_INVALID};

const EMAIL_UUID: [(&str, &str); 2] = [("USERNAME_FIELD", "email"), ("USER_ID_TYPE", "uuid")];

async fn email_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = EMAIL_UUID.to_vec();
    env.extend_from_slice(extra);
    TestApp::builder().env(&env).spawn().await
}

/// Signs up `email` in e-mail mode; returns the answer's body.
async fn email_sign_up(app: &TestApp, email: &str) -> Value {
    let reply = app.post_sign_up(&json!({"email": email, "password": PASSWORD})).await;
    reply.expect_status(201);
    reply.json()
}

async fn email_sign_in(app: &TestApp, email: &str) -> crate::helpers::Reply {
    app.post_json("/api/token/", &json!({"email": email, "password": PASSWORD})).await
}

#[tokio::test]
async fn e_mail_sign_in_with_uuid_ids_carries_the_uuid_everywhere() {
    let app = email_app(&[]).await;

    let body = email_sign_up(&app, "Ada.Lovelace@Example.ORG").await;

    let id = body["user"]["id"].as_str().expect("a string id").to_string();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().hyphenated().to_string(), id, "Django's str(uuid)");
    assert_eq!(body["user"], json!({"id": id, "email": "Ada.Lovelace@example.org"}), "normalize_email");
    assert_eq!(claims(body["access"].as_str().unwrap())["user_id"], json!(id));
    let pair = email_sign_in(&app, "ADA.LOVELACE@EXAMPLE.ORG").await;
    pair.expect_status(200);
    let me = app.me(&pair.field("access")).await.json();
    assert_eq!(
        (me["id"].clone(), me["email"].clone(), me["username"].clone()),
        (json!(id), json!("Ada.Lovelace@example.org"), json!(""))
    );
    let access = app.refresh(&pair.field("refresh")).await.field("access");
    assert_eq!(claims(&access)["user_id"], json!(id));
    app.me(&access).await.expect_status(200);
}

#[tokio::test]
async fn logout_all_revokes_access_tokens_by_their_uuid() {
    let app = email_app(&[]).await;
    let body = email_sign_up(&app, "ada@example.org").await;
    let access = body["access"].as_str().unwrap();
    app.advance(std::time::Duration::from_secs(1));

    app.logout_all(access).await.expect_status(200);

    assert_eq!(app.me(access).await.status, 401);
    app.refresh(body["refresh"].as_str().unwrap()).await.expect_status(401);
    let again = email_sign_in(&app, "ada@example.org").await;
    app.me(&again.field("access")).await.expect_status(200);
}

#[tokio::test]
async fn e_mail_mode_field_errors_name_the_email_field() {
    let app = email_app(&[]).await;
    email_sign_up(&app, "ada@example.org").await;

    app.post_json("/api/token/", &json!({"username": "ada", "password": PASSWORD}))
        .await
        .expect(400, r#"{"email":["This field is required."]}"#);
    app.post_json("/api/token/", &json!({"email": "", "password": PASSWORD}))
        .await
        .expect(400, r#"{"email":["This field may not be blank."]}"#);
    email_sign_in(&app, "nobody@example.org").await.expect(401, NO_ACTIVE_ACCOUNT);
    app.post_json("/api/token/sliding/", &json!({"username": "ada", "password": PASSWORD}))
        .await
        .expect(400, r#"{"email":["This field is required."]}"#);
    app.post_sign_up(&json!({"email": "ADA@EXAMPLE.ORG", "password": PASSWORD}))
        .await
        .expect(400, r#"{"email":["A user with that email already exists."]}"#);
    app.post_sign_up(&json!({"email": "not-an-address", "password": "short"})).await.expect(
        400,
        r#"{"email":["Enter a valid email address."],"password":["Ensure this field has at least 8 characters."]}"#,
    );
    app.post_sign_up(&json!({"username": "ada", "password": PASSWORD}))
        .await
        .expect(400, r#"{"email":["This field is required."]}"#);
}

#[tokio::test]
async fn a_malformed_or_integer_id_in_uuid_mode_is_an_invalid_token() {
    let app = email_app(&[]).await;
    email_sign_up(&app, "ada@example.org").await;
    let life = std::time::Duration::from_secs(300);

    for id in [json!("not-a-uuid"), json!("0000000-0000-0000-0000-000000000001"), json!(1), json!({"a": 1})] {
        let mut access = app.claims_for("access", 1, life);
        access["user_id"] = id.clone();
        assert_eq!(app.me(&forge(&access)).await.status, 401, "{id}");
        let mut refresh = app.claims_for("refresh", 1, life);
        refresh["user_id"] = id.clone();
        app.refresh(&forge(&refresh)).await.expect(401, TOKEN_INVALID);
        app.post_json("/api/token/verify/", &json!({"token": forge(&refresh)})).await.expect_status(401);
    }
}

#[tokio::test]
async fn a_sub_user_id_claim_is_always_a_string() {
    let app = TestApp::builder().env(&[("USER_ID_CLAIM", "sub")]).spawn().await;

    let ada = app.sign_up("ada").await;

    for token in [&ada.access, &ada.refresh] {
        assert_eq!(claims(token)["sub"], json!(ada.id.to_string()));
        assert!(claims(token).get("user_id").is_none());
    }
    app.me(&ada.access).await.expect_status(200);
    let access = app.refresh(&ada.refresh).await.field("access");
    assert_eq!(claims(&access)["sub"], json!(ada.id.to_string()));
    // an integer sub (an older jwtd) is still read
    let mut old = app.claims_for("access", ada.id, std::time::Duration::from_secs(60));
    old["sub"] = old["user_id"].take();
    app.me(&forge(&old)).await.expect_status(200);
}

#[tokio::test]
async fn tokens_hold_simplejwt_claims_and_no_session_id() {
    // SPEC §3's `sid` is not written: the shared suite and SimpleJWT hold a token's claims to
    // exactly these (see `AuthService::claims_for`).
    let core = ["token_type", "exp", "iat", "jti", "user_id"];
    let keys = |token: &str| claims(token).as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let app = TestApp::builder().env(&[("ROTATE_REFRESH_TOKENS", "true")]).spawn().await;
    let ada = app.sign_up("ada").await;
    assert_eq!(keys(&ada.refresh), core);
    assert_eq!(keys(&ada.access), core);

    let rotated = app.refresh(&ada.refresh).await;
    assert_eq!(keys(&rotated.field("refresh")), core);
    assert_eq!(keys(&rotated.field("access")), core);

    let sliding = app.obtain_sliding("ada", PASSWORD).await.field("token");
    assert_eq!(keys(&sliding), [&core[..], &["refresh_exp"]].concat());
}

#[tokio::test]
async fn token_claims_and_own_claims_are_written_at_sign_in_and_copied_on_refresh() {
    let app = email_app(&[("TOKEN_CLAIMS", "email,is_staff,is_superuser,first_name,groups")]).await;
    let body = email_sign_up(&app, "ada@Example.org").await;
    let first = claims(body["refresh"].as_str().unwrap());
    assert_eq!(
        (&first["email"], &first["is_staff"], &first["is_superuser"], &first["first_name"], &first["groups"]),
        (&json!("ada@example.org"), &json!(false), &json!(false), &json!(""), &json!([]))
    );

    jwtd_email(&app, &["user", "groups", "ADA@example.org", "--add", "staff", "--add", "Admins"])
        .await
        .expect_success("Admins\nstaff\n");
    jwtd_email(&app, &["user", "set-claims", "ada@example.org", r#"{"role":"admin","tenant":7}"#])
        .await
        .expect_success("claims of ada@example.org set: {\"role\":\"admin\",\"tenant\":7}\n");

    let pair = email_sign_in(&app, "ada@example.org").await;
    let access = app.refresh(&pair.field("refresh")).await.field("access");
    for token in [pair.field("refresh"), pair.field("access"), access] {
        let c = claims(&token);
        assert_eq!((&c["groups"], &c["role"], &c["tenant"]), (&json!(["Admins", "staff"]), &json!("admin"), &json!(7)));
    }
    let sliding =
        app.post_json("/api/token/sliding/", &json!({"email": "ada@example.org", "password": PASSWORD})).await;
    assert_eq!(claims(&sliding.field("token"))["role"], json!("admin"));

    jwtd_email(&app, &["user", "set-claims", "ada@example.org", "{}"])
        .await
        .expect_success("claims of ada@example.org set: {}\n");
    jwtd_email(&app, &["user", "groups", "ada@example.org", "--remove", "staff"]).await.expect_success("Admins\n");
    let c = claims(&email_sign_in(&app, "ada@example.org").await.field("access"));
    assert_eq!((c.get("role"), &c["groups"]), (None, &json!(["Admins"])));
}

/// `jwtd args…` on `app`'s database with the user shape settings of [`email_app`].
async fn jwtd_email(app: &TestApp, args: &[&str]) -> crate::helpers::Run {
    let url = app.database_url();
    let env = [("JWTD_DATABASE_URL", url.as_str()), ("JWTD_USERNAME_FIELD", "email"), ("JWTD_USER_ID_TYPE", "uuid")];
    jwtd(args, &env, None).await
}

#[tokio::test]
async fn set_claims_refuses_bad_input_with_exit_code_2_and_changes_nothing() {
    let app = spawn_app().await;
    app.sign_up("ada").await;

    for (json, says) in [
        ("[1]", "JSON: expected an object"),
        ("{", "JSON: not valid JSON"),
        (r#"{"exp": 1}"#, "JSON: \"exp\" is a registered claim"),
        (r#"{"user_id": 2}"#, "JSON: \"user_id\" is a registered claim"),
        (r#"{"sid": "x"}"#, "JSON: \"sid\" is a registered claim"),
    ] {
        let run = jwtd_on(&app, &["user", "set-claims", "ada", json], None).await;
        assert_eq!(run.code, Some(2), "{json}: {run:?}");
        assert!(run.stderr.contains(says), "{json}: {}", run.stderr);
    }
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(4096));
    assert_eq!(jwtd_on(&app, &["user", "set-claims", "ada", &big], None).await.code, Some(2));
    let c = claims(&app.obtain_pair("ada", PASSWORD).await.field("access"));
    assert_eq!(c.as_object().unwrap().keys().collect::<Vec<_>>(), ["token_type", "exp", "iat", "jti", "user_id"]);
}

#[tokio::test]
async fn token_claims_with_username_sign_in_and_unknown_fields_refused() {
    let app = TestApp::builder().env(&[("TOKEN_CLAIMS", "username,is_staff")]).spawn().await;
    let ada = app.sign_up("ada").await;
    let c = claims(&app.sign_in(&ada).await.access);
    assert_eq!((&c["username"], &c["is_staff"]), (&json!("ada"), &json!(false)));

    let bad = jwtd(&["config", "check"], &[("JWTD_TOKEN_CLAIMS", "email,role")], None).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("TOKEN_CLAIMS") && bad.stderr.contains("\"role\""), "{}", bad.stderr);
}

#[tokio::test]
async fn the_user_id_type_is_fixed_at_the_first_start() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let url = app.database_url();

    for args in [&["user", "list"][..], &["serve", "--addr", "127.0.0.1:0"]] {
        let run = jwtd(args, &[("JWTD_DATABASE_URL", &url), ("JWTD_USER_ID_TYPE", "uuid")], None).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains("USER_ID_TYPE"), "{}", run.stderr);
    }
    app.refresh(&ada.refresh).await.expect_status(200);
    let app = app.restart(|b| b).await;
    app.refresh(&ada.refresh).await.expect_status(200);
}

#[tokio::test]
async fn user_commands_take_e_mail_addresses_in_e_mail_mode() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jwtd.db").display());
    let env = [("JWTD_DATABASE_URL", url.as_str()), ("JWTD_USERNAME_FIELD", "email"), ("JWTD_USER_ID_TYPE", "uuid")];

    let created = jwtd(&["user", "create", "Eve@Example.org", "--password-stdin"], &env, Some("long enough\n")).await;
    assert_eq!(created.code, Some(0), "{created:?}");
    assert!(created.stdout.starts_with("created user Eve@example.org (id "), "{}", created.stdout);
    let not_an_address = jwtd(&["user", "create", "eve", "--password-stdin"], &env, Some("long enough\n")).await;
    assert_eq!(
        (not_an_address.code, not_an_address.stderr.as_str()),
        (Some(2), "jwtd: NAME: \"eve\" is not an e-mail address\n")
    );
    let taken = jwtd(&["user", "create", "EVE@example.org", "--password-stdin"], &env, Some("long enough\n")).await;
    assert_eq!(taken.code, Some(1), "{taken:?}");
    let groups = jwtd(&["user", "groups", "eve@example.org", "--add", "ops"], &env, None).await;
    assert_eq!((groups.code, groups.stdout.as_str()), (Some(0), "ops\n"), "{groups:?}");
    for (command, says) in [("deactivate", "deactivated"), ("activate", "activated")] {
        let run = jwtd(&["user", command, "EVE@example.org"], &env, None).await;
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), format!("{says} EVE@example.org\n").as_str()), "{run:?}");
    }
    let deleted = jwtd(&["user", "delete", "eve@example.org"], &env, None).await;
    assert_eq!(deleted.code, Some(0), "{deleted:?}");
    let ghost = jwtd(&["user", "groups", "ghost@example.org"], &env, None).await;
    assert_eq!(ghost.stderr, "jwtd: no user with the e-mail address \"ghost@example.org\"\n");
    let gone = jwtd(&["user", "deactivate", "eve@example.org"], &env, None).await;
    assert_eq!(gone.stderr, "jwtd: no user with the e-mail address \"eve@example.org\"\n");
}

#[tokio::test]
async fn the_api_document_describes_the_configured_login_field() {
    let app = email_app(&[]).await;
    let doc = app.get("/api/schema/").await.json();
    let credentials = &doc["components"]["schemas"]["Credentials"];
    assert_eq!(credentials["required"], json!(["email", "password"]));
    assert!(credentials["properties"].get("email").is_some() && credentials["properties"].get("username").is_none());
    assert_eq!(doc["components"]["schemas"]["SignUpRequest"]["required"], json!(["email", "password"]));

    let default = spawn_app().await.get("/api/schema/").await.json();
    assert!(default["components"]["schemas"]["Credentials"]["properties"].get("username").is_some());
}
