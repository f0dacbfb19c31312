//! The `jwtd` binary (SPEC §6) against a temporary database, often the one a test server is
//! running on, so each command's effect shows through the API. Settings reach the child
//! process through its own environment only; the test process's is never touched.

use jwtd::clock::Instant;
use serde_json::json;

use crate::helpers::{jwtd, jwtd_on, secs, spawn_app, NO_ACTIVE_ACCOUNT, PASSWORD, TOKEN_BLACKLISTED, TOKEN_INVALID};

fn list_line(id: i64, username: &str, active: bool, email: &str) -> String {
    format!("{id:>8}  {username:<32} {active:<8} {email}\n")
}

const LIST_HEADER: &str = "      id  username                         active   email\n";

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_the_user_can_sign_in() {
    let app = spawn_app().await;

    let run = jwtd_on(
        &app,
        &["user", "create", "ada", "--password-stdin", "--email", "ada@example.com"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;

    run.expect_success("created user ada (id 1)\n");
    let pair = app.obtain_pair("ada", PASSWORD).await;
    pair.expect_status(200);
    let me = app.me(&pair.field("access")).await.json();
    assert_eq!(
        (me["id"].clone(), me["username"].clone(), me["email"].clone()),
        (json!(1), json!("ada"), json!("ada@example.com"))
    );
}

#[tokio::test]
async fn user_create_refuses_a_short_password_and_a_taken_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jwtd.db").display());
    let env = [("JWTD_DATABASE_URL", url.as_str())];

    let short = jwtd(&["user", "create", "ada", "--password-stdin"], &env, Some("short\n")).await;
    assert_eq!((short.code, short.stderr.as_str()), (Some(1), "jwtd: the password needs at least 8 characters\n"));

    jwtd(&["user", "create", "ada", "--password-stdin"], &env, Some("long enough\n"))
        .await
        .expect_success("created user ada (id 1)\n");
    let taken = jwtd(&["user", "create", "ada", "--password-stdin"], &env, Some("long enough\n")).await;
    assert_eq!(taken.code, Some(1), "{taken:?}");
    assert!(taken.stderr.contains("already exists"), "{}", taken.stderr);
}

#[tokio::test]
async fn user_list_shows_every_user() {
    let app = spawn_app().await;
    app.sign_up("ada").await;
    app.post_sign_up(&json!({"username": "bob", "password": PASSWORD, "email": "bob@example.com"}))
        .await
        .expect_status(201);

    let run = jwtd_on(&app, &["user", "list"], None).await;

    run.expect_success(&format!(
        "{LIST_HEADER}{}{}",
        list_line(1, "ada", true, ""),
        list_line(2, "bob", true, "bob@example.com")
    ));
}

#[tokio::test]
async fn deactivated_user_cannot_sign_in_or_refresh_until_activated() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;

    jwtd_on(&app, &["user", "deactivate", "ada"], None).await.expect_success("deactivated ada\n");

    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);
    let list = jwtd_on(&app, &["user", "list"], None).await;
    list.expect_success(&format!("{LIST_HEADER}{}", list_line(1, "ada", false, "")));

    jwtd_on(&app, &["user", "activate", "ada"], None).await.expect_success("activated ada\n");

    let again = app.obtain_pair("ada", PASSWORD).await;
    app.refresh(&again.expect_status(200).field("refresh")).await.expect_status(200);
    // Deactivation revoked every token issued before it, as logout-all does.
    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn deactivation_and_deletion_revoke_access_tokens_on_every_instance() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;

    jwtd_on(&app, &["user", "deactivate", "ada"], None).await.expect_success("deactivated ada\n");
    jwtd_on(&app, &["user", "delete", "bob"], None).await.expect_success("deleted bob and every token row of theirs\n");
    // An instance started now reads the revocation log as every running one polls it.
    let app = app.restart(|b| b).await;

    for access in [&ada.access, &bob.access] {
        app.verify(access).await.expect(401, TOKEN_BLACKLISTED);
        app.me(access).await.expect_bearer_refused("Token is blacklisted");
    }
}

#[tokio::test]
async fn user_delete_removes_the_user_and_their_tokens() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;

    jwtd_on(&app, &["user", "delete", "ada"], None).await.expect_success("deleted ada and every token row of theirs\n");

    app.refresh(&ada.refresh).await.expect(401, TOKEN_INVALID);
    // The revocation poll (twice a second) brings the deletion's log row to the server; run it now.
    app.background.poll_revocations().await.unwrap();
    app.me(&ada.access).await.expect_bearer_refused("Token is blacklisted");
    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.refresh(&bob.refresh).await.expect_status(200);
    let list = jwtd_on(&app, &["user", "list"], None).await;
    list.expect_success(&format!("{LIST_HEADER}{}", list_line(2, "bob", true, "")));
}

#[tokio::test]
async fn user_commands_on_an_unknown_user_fail_naming_it() {
    let app = spawn_app().await;
    for command in ["deactivate", "activate", "delete"] {
        let run = jwtd_on(&app, &["user", command, "ghost"], None).await;
        assert_eq!((run.code, run.stderr.as_str()), (Some(1), "jwtd: no user named \"ghost\"\n"), "{command}");
    }
}

#[tokio::test]
async fn user_set_password_revokes_the_users_tokens() {
    let app = spawn_app().await;
    // Tokens issued a minute "ago": the command revokes at the wall clock's second.
    app.clock.set(Instant::from_secs(app.now_secs() - 60));
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;

    let run = jwtd_on(&app, &["user", "set-password", "ada", "--password-stdin"], Some("a new passphrase\n")).await;

    run.expect_success("password of ada changed; every token of theirs is revoked\n");
    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.refresh(&bob.refresh).await.expect_status(200);
    app.obtain_pair("ada", PASSWORD).await.expect(401, NO_ACTIVE_ACCOUNT);
    app.advance(secs(120)); // back past the wall clock
    let pair = app.obtain_pair("ada", "a new passphrase").await;
    pair.expect_status(200);
    app.refresh(&pair.field("refresh")).await.expect_status(200);
}

#[tokio::test]
async fn token_flush_expired_deletes_only_expired_rows() {
    let app = spawn_app().await;
    let now = app.now_secs();
    app.clock.set(Instant::from_secs(now - 30 * 86400));
    app.sign_up("old").await; // its refresh token expired 23 days ago
    app.clock.set(Instant::from_secs(now));
    let fresh = app.sign_up("fresh").await;

    jwtd_on(&app, &["token", "flush-expired"], None).await.expect_success("deleted 1 expired token rows\n");
    jwtd_on(&app, &["token", "flush-expired"], None).await.expect_success("deleted 0 expired token rows\n");

    app.refresh(&fresh.refresh).await.expect_status(200);
    // the row of a blacklisted token stays until the token expires
    app.blacklist(&fresh.refresh).await.expect(200, "{}");
    jwtd_on(&app, &["token", "flush-expired"], None).await.expect_success("deleted 0 expired token rows\n");
    app.refresh(&fresh.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test]
async fn config_check_prints_the_settings_with_the_signing_key_masked() {
    let secret = "a-very-secret-signing-key-0123456789abcdef";

    let run =
        jwtd(&["config", "check"], &[("JWTD_SIGNING_KEY", secret), ("JWTD_ACCESS_TOKEN_LIFETIME", "5m")], None).await;

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.contains(&"SIGNING_KEY = ****"), "{}", run.stdout);
    assert!(lines.contains(&"ACCESS_TOKEN_LIFETIME = 5m"), "{}", run.stdout);
    assert!(lines.contains(&"REFRESH_TOKEN_LIFETIME = 7d"), "{}", run.stdout);
    assert_eq!(lines.last(), Some(&"ok"));
}

#[tokio::test]
async fn flags_beat_the_environment() {
    let run =
        jwtd(&["config", "check", "--access-token-lifetime", "2m"], &[("JWTD_ACCESS_TOKEN_LIFETIME", "5m")], None)
            .await;
    assert!(run.stdout.lines().any(|l| l == "ACCESS_TOKEN_LIFETIME = 2m"), "{run:?}");
}

#[tokio::test]
async fn an_invalid_setting_exits_non_zero_naming_the_setting() {
    let run = jwtd(&["config", "check"], &[("JWTD_ACCESS_TOKEN_LIFETIME", "abc")], None).await;

    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (
            Some(2),
            "",
            "jwtd: invalid settings: JWTD_ACCESS_TOKEN_LIFETIME: expected a duration like 90, 90s, 15m, 2h or 7d, got \"abc\"\n"
        )
    );
}

#[tokio::test]
async fn serve_with_an_invalid_setting_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jwtd.db").display());
    let cases = [
        (("JWTD_SIGNING_KEY", "too short"), "JWTD_SIGNING_KEY: "),
        (("JWTD_ROTATE_REFRESH_TOKENS", "maybe"), "JWTD_ROTATE_REFRESH_TOKENS: "),
        (("JWTD_LOGIN_RATE", "10"), "JWTD_LOGIN_RATE: "),
        (("JWTD_ADDR", "nowhere"), "JWTD_ADDR: "),
    ];
    for ((name, value), named) in cases {
        let env = [("JWTD_DATABASE_URL", url.as_str()), ("JWTD_ADDR", "127.0.0.1:0"), (name, value)];
        let run = jwtd(&["serve"], &env, None).await;
        assert_eq!(run.code, Some(2), "{name}: {run:?}");
        assert!(run.stderr.starts_with(&format!("jwtd: invalid settings: {named}")), "{name}: {}", run.stderr);
    }
    assert!(!dir.path().join("jwtd.db").exists(), "no database is created by a refused start");
}

#[tokio::test]
async fn an_invalid_flag_is_named_as_a_flag() {
    let run = jwtd(&["config", "check", "--leeway", "soon"], &[], None).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.starts_with("jwtd: invalid settings: --leeway: "), "{}", run.stderr);
}

/// A Django database as `manage.py migrate` leaves it (the columns import-django reads), with one
/// user whose password Django hashed, and one live refresh token of theirs.
fn django_database(dir: &std::path::Path) -> String {
    let path = dir.join("django.sqlite3");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        r#"CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL,
               "last_login" datetime NULL, "username" varchar(150) NOT NULL UNIQUE, "email" varchar(254) NOT NULL,
               "is_active" bool NOT NULL, "date_joined" datetime NOT NULL);
           CREATE TABLE "token_blacklist_outstandingtoken" ("token" text NOT NULL, "created_at" datetime NULL,
               "expires_at" datetime NOT NULL, "user_id" integer NULL, "jti" varchar(255) NOT NULL UNIQUE,
               "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT);
           CREATE TABLE "token_blacklist_blacklistedtoken" ("blacklisted_at" datetime NOT NULL,
               "token_id" bigint NOT NULL UNIQUE, "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT);
           -- "correct horse battery staple", hashed by Django 5.2's PBKDF2PasswordHasher (1000 iterations)
           INSERT INTO auth_user VALUES (7,
               'pbkdf2_sha256$1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=',
               NULL, 'ada', 'ada@example.com', 1, '2026-01-02 03:04:05.678900');
           INSERT INTO token_blacklist_outstandingtoken VALUES ('a.b.c', '2026-01-02 03:04:05', '2999-01-01 00:00:00', 7,
               '0123456789abcdef0123456789abcdef', 1);"#,
    )
    .unwrap();
    format!("sqlite://{}", path.display())
}

#[tokio::test]
async fn import_django_brings_users_who_sign_in_with_their_django_password() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let django = django_database(dir.path());

    let run = jwtd_on(&app, &["import-django", "--from", &django], None).await;

    assert_eq!(run.code, Some(0), "{run:?}");
    // The first line says whether this import recorded the id type or found it recorded at start.
    let (ids, report) = run.stdout.split_once('\n').unwrap();
    assert!(ids.starts_with("user ids: int"), "{run:?}");
    assert_eq!(
        report,
        "user table without: first_name, last_name, is_staff, is_superuser (defaults used)\n\
         users: 1 new, 0 already imported, 0 skipped; 0 of the new are staff or superusers\n\
         groups: 0 new, 0 memberships\n\
         refresh tokens: 1 new (0 of them blacklisted), 0 newly blacklisted, 0 already imported, 0 expired (left out), 0 skipped\n\
         import done: 2 new\n"
    );
    let pair = app.obtain_pair("ada", "correct horse battery staple").await;
    pair.expect_status(200);
    let me = app.me(&pair.field("access")).await.json();
    assert_eq!((me["id"].clone(), me["email"].clone()), (json!(7), json!("ada@example.com")));
    let again = jwtd_on(&app, &["import-django", "--from", &django], None).await;
    assert!(again.stdout.ends_with("\nimport done: 0 new\n"), "{again:?}");
}

#[tokio::test]
async fn import_django_refuses_a_database_without_django_tables_and_never_prints_the_url() {
    let app = spawn_app().await;

    let own = jwtd_on(&app, &["import-django", "--from", &app.database_url()], None).await;
    assert_eq!(own.code, Some(1), "{own:?}");
    assert!(
        own.stderr.starts_with("jwtd: cannot import from the Django database: table auth_user not found"),
        "{}",
        own.stderr
    );

    let mysql = jwtd_on(&app, &["import-django", "--from", "mysql://root:hunter2@db/app"], None).await;
    assert_eq!(mysql.code, Some(1), "{mysql:?}");
    assert!(mysql.stderr.starts_with("jwtd: --from: expected sqlite:///PATH or postgres://"), "{}", mysql.stderr);
    assert!(!mysql.stderr.contains("hunter2"));
}

#[tokio::test]
async fn import_django_dry_run_prints_the_report_and_writes_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let django = django_database(dir.path());

    let dry = jwtd_on(&app, &["import-django", "--from", &django, "--dry-run"], None).await;

    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert!(dry.stdout.starts_with("dry run: nothing is written; an import would do this\n"), "{dry:?}");
    assert!(dry.stdout.ends_with("\ndry run done: 2 new (nothing written)\n"), "{dry:?}");
    app.obtain_pair("ada", "correct horse battery staple").await.expect(401, NO_ACTIVE_ACCOUNT);
    jwtd_on(&app, &["user", "list", "--json"], None).await.expect_success("{\"users\":[],\"next\":null}\n");
    let real = jwtd_on(&app, &["import-django", "--from", &django, "--batch-size", "1"], None).await;
    let same = dry.stdout.replace("dry run: nothing is written; an import would do this\n", "");
    assert_eq!(same.replace("dry run done: 2 new (nothing written)", "import done: 2 new"), real.stdout);
}

#[tokio::test]
async fn user_list_pages_and_prints_one_json_document() {
    let app = spawn_app().await;
    for name in ["ada", "bob", "carol"] {
        app.sign_up(name).await;
    }

    let first = jwtd_on(&app, &["user", "list", "--json", "--limit", "2"], None).await;
    let rest = jwtd_on(&app, &["user", "list", "--json", "--limit", "2", "--after", "2"], None).await;
    let text = jwtd_on(&app, &["user", "list", "--limit", "1"], None).await;

    let first: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let names: Vec<&str> = first["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!((names, first["next"].clone()), (vec!["ada", "bob"], json!(2)));
    let ada = &first["users"][0];
    assert_eq!(
        (ada["id"].clone(), ada["uuid"].clone(), ada["is_staff"].clone(), ada["groups"].clone()),
        (json!(1), json!(null), json!(false), json!([]))
    );
    assert!(ada["date_joined"].as_str().unwrap().ends_with('Z'), "{ada}");
    let rest: serde_json::Value = serde_json::from_str(&rest.stdout).unwrap();
    assert_eq!((rest["users"][0]["username"].clone(), rest["next"].clone()), (json!("carol"), json!(null)));
    text.expect_success(&format!("{LIST_HEADER}{}# more: --after 1\n", list_line(1, "ada", true, "")));
}

/// A custom user model's table with UUID keys, as Django's SQLite backend writes them (32 hex digits).
fn django_uuid_database(dir: &std::path::Path) -> String {
    let path = dir.join("custom.sqlite3");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        r#"CREATE TABLE "accounts_user" ("password" varchar(128) NOT NULL, "last_login" datetime NULL,
               "id" char(32) NOT NULL PRIMARY KEY, "email" varchar(254) NOT NULL UNIQUE, "is_active" bool NOT NULL);
           INSERT INTO accounts_user VALUES ('!', NULL, '5f0c6d7e8a9b4c1d9e2f0a1b2c3d4e5f', 'ada@example.com', 1);"#,
    )
    .unwrap();
    format!("sqlite://{}", path.display())
}

#[tokio::test]
async fn import_django_of_uuid_users_into_an_int_database_stops_with_exit_code_2() {
    let app = spawn_app().await;
    app.sign_up("mallory").await;
    let dir = tempfile::tempdir().unwrap();
    let django = django_uuid_database(dir.path());
    let args = ["import-django", "--from", &django, "--user-table", "accounts_user", "--users-only"];

    let run = jwtd_on(&app, &args, None).await;

    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("the Django users have uuid ids but jwtd's database is made for int ids"), "{run:?}");
    let list = jwtd_on(&app, &["user", "list"], None).await;
    list.expect_success(&format!("{LIST_HEADER}{}", list_line(1, "mallory", true, "")));
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_jwtd_is_refused_with_exit_code_2() {
    let app = spawn_app().await;
    let url = app.database_url();
    let db = app.db_path.clone();
    let known: i64 =
        rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    rusqlite::Connection::open(&db).unwrap().pragma_update(None, "user_version", known + 1).unwrap();
    let run = jwtd(&["token", "flush-expired"], &[("JWTD_DATABASE_URL", &url)], None).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let newer = format!("the database is at schema version {}, newer than the {known} this jwtd knows", known + 1);
    assert!(run.stderr.contains(&newer), "{}", run.stderr);
}

#[tokio::test]
async fn a_database_tls_setting_with_sqlite_or_a_missing_ca_file_exits_2_naming_it() {
    let cases = [
        (vec![("JWTD_DATABASE_TLS", "verify-full")], "JWTD_DATABASE_TLS: only for PostgreSQL"),
        (
            vec![
                ("JWTD_DATABASE_URL", "postgres://jwtd@localhost/jwtd"),
                ("JWTD_DATABASE_CA_CERT", "/nonexistent/ca.pem"),
            ],
            "JWTD_DATABASE_CA_CERT: cannot read /nonexistent/ca.pem",
        ),
        (vec![("JWTD_DATABASE_URL", "postgres://jwtd@localhost/jwtd?sslmode=maybe")], "JWTD_DATABASE_URL: sslmode: "),
    ];
    for (env, message) in cases {
        let run = jwtd(&["config", "check"], &env, None).await;
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains(message), "{message}: {}", run.stderr);
    }
}
