//! Sessions (SPEC §1, §3): a session is a refresh-token family; its id, 16 hex digits, rides in
//! the jti of every token issued in it (`jwtd_proto::session`), which stays a UUID4 in hex.

use std::time::Duration;

use jwtd::clock::Clock;
use jwtd::config::RotationPolicy;
use serde_json::{json, Value};

use crate::helpers::{
    jti, jwtd_on, secs, spawn_app, spawn_app_with, Pair, Reply, TestApp, TestUser, TOKEN_BLACKLISTED,
};

/// The session a jti names, after checking it is a UUID4 in lowercase hex.
fn session(jti: &str) -> String {
    let parsed = uuid::Uuid::try_parse(jti).unwrap_or_else(|e| panic!("{jti}: {e}"));
    assert_eq!(parsed.get_version_num(), 4, "{jti}");
    assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{jti}");
    assert_eq!(parsed.simple().to_string(), jti, "32 lowercase hex digits");
    jwtd_proto::session::session_of(None, jti).unwrap().to_string()
}

#[tokio::test]
async fn the_tokens_of_a_sign_in_share_its_session_and_rotation_keeps_it() {
    let app =
        spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO }).await;
    let ada = app.sign_up("ada").await;
    let signed_up = session(&jti(&ada.refresh));
    assert_eq!(session(&jti(&ada.access)), signed_up);
    assert_ne!(jti(&ada.access), jti(&ada.refresh));
    let row = app.store().await.refresh_row(&jti(&ada.refresh)).await.unwrap().unwrap();
    assert_eq!(row.family, signed_up, "the family is the session");

    app.advance(secs(5));
    let rotated = app.refresh(&ada.refresh).await;
    rotated.expect_status(200);
    assert_eq!(session(&jti(&rotated.field("refresh"))), signed_up);
    assert_eq!(session(&jti(&rotated.field("access"))), signed_up);

    let again = app.sign_in(&ada).await;
    let signed_in = session(&jti(&again.refresh));
    assert_ne!(signed_in, signed_up, "each sign-in is a session of its own");
    assert_eq!(session(&jti(&again.access)), signed_in);
}

#[tokio::test]
async fn access_tokens_refreshed_without_rotation_stay_in_the_session() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let reply = app.refresh(&ada.refresh).await;
    reply.expect_status(200);
    assert_eq!(session(&jti(&reply.field("access"))), session(&jti(&ada.refresh)));
}

#[tokio::test]
async fn each_sliding_sign_in_is_a_session_of_its_own() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let first = app.obtain_sliding("ada", &ada.password).await;
    let second = app.obtain_sliding("ada", &ada.password).await;
    let (a, b) = (jti(&first.field("token")), jti(&second.field("token")));
    assert_ne!(session(&a), session(&b));
    assert_ne!(session(&a), session(&jti(&ada.refresh)));
}

/// A sign-in of `user` sending `user_agent`; the pair it answers.
async fn sign_in_as(app: &TestApp, user: &TestUser, user_agent: &str) -> Pair {
    let body = json!({"username": user.username, "password": user.password});
    let reply = app.send(app.client.post(app.url("/api/token/")).header("user-agent", user_agent).json(&body)).await;
    reply.expect_status(200);
    Pair { refresh: reply.field("refresh"), access: reply.field("access") }
}

async fn list(app: &TestApp, access: &str) -> Vec<Value> {
    let reply = app.get_with_token("/api/auth/sessions/", access).await;
    reply.expect_status(200);
    reply.json()["sessions"].as_array().unwrap().clone()
}

async fn delete(app: &TestApp, access: &str, id: &str) -> Reply {
    app.send(app.client.delete(app.url(&format!("/api/auth/sessions/{id}/"))).bearer_auth(access)).await
}

async fn logout_others(app: &TestApp, access: &str) -> Reply {
    app.send(app.client.post(app.url("/api/auth/logout-others/")).bearer_auth(access)).await
}

fn session_of(pair: &Pair) -> String {
    session(&jti(&pair.refresh))
}

#[tokio::test]
async fn two_sign_ins_are_listed_and_revoking_the_other_refuses_its_tokens_and_keeps_the_callers() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    app.advance(secs(1));
    let phone = sign_in_as(&app, &ada, "Phone/1.0").await;
    app.advance(secs(1));
    let laptop = sign_in_as(&app, &ada, "Laptop/2.0").await;

    let sessions = list(&app, &laptop.access).await;
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [session_of(&laptop), session_of(&phone), session(&jti(&ada.refresh))], "newest first");
    let now = app.now_secs();
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["user_agent"], "Laptop/2.0");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[1]["user_agent"], "Phone/1.0");
    assert_eq!(sessions[1]["created_at"], sessions[1]["last_used_at"]);
    let created = sessions[1]["created_at"].as_str().unwrap();
    assert!(created.ends_with("+00:00"), "{created}");
    let parsed = time::OffsetDateTime::parse(created, &time::format_description::well_known::Iso8601::DEFAULT).unwrap();
    assert_eq!(parsed.unix_timestamp(), now - 1, "the phone's sign-in");
    assert_eq!(list(&app, &phone.access).await[1]["current"], true, "the phone sees itself as current");

    delete(&app, &laptop.access, &session_of(&phone)).await.expect_json(200, json!({}));

    app.refresh(&phone.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.me(&phone.access).await.expect_bearer_refused("Token is blacklisted");
    app.verify(&phone.access).await.expect(401, TOKEN_BLACKLISTED);
    app.me(&laptop.access).await.expect_status(200);
    app.refresh(&laptop.refresh).await.expect_status(200);
    app.me(&ada.access).await.expect_status(200);
    let ids: Vec<String> = list(&app, &laptop.access).await.iter().map(|s| s["id"].as_str().unwrap().into()).collect();
    assert_eq!(ids, [session_of(&laptop), session(&jti(&ada.refresh))]);
}

#[tokio::test]
async fn another_users_or_an_unknown_session_is_not_found() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let bob = app.sign_up("bob").await;
    let not_found = json!({"detail": "Not found."});
    let adas = session(&jti(&ada.refresh));

    delete(&app, &bob.access, &adas).await.expect_json(404, not_found.clone());
    delete(&app, &bob.access, "0123456789abcdef").await.expect_json(404, not_found.clone());
    delete(&app, &bob.access, "not-a-session").await.expect_json(404, not_found.clone());
    delete(&app, &bob.access, "%FF%FE").await.expect_json(404, not_found);
    delete(&app, "not-a-token", &adas).await.expect_status(401);

    app.refresh(&ada.refresh).await.expect_status(200);
    assert_eq!(list(&app, &ada.access).await.len(), 1);
}

#[tokio::test]
async fn logout_others_revokes_every_session_but_the_callers() {
    let app =
        spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO }).await;
    let ada = app.sign_up("ada").await;
    let phone = sign_in_as(&app, &ada, "Phone/1.0").await;
    let laptop = sign_in_as(&app, &ada, "Laptop/2.0").await;
    let bob = app.sign_up("bob").await;

    logout_others(&app, &laptop.access).await.expect_json(200, json!({}));

    for other in [&phone.refresh, &ada.refresh] {
        app.refresh(other).await.expect(401, TOKEN_BLACKLISTED);
    }
    for other in [&phone.access, &ada.access] {
        app.me(other).await.expect_bearer_refused("Token is blacklisted");
    }
    let rotated = app.refresh(&laptop.refresh).await;
    rotated.expect_status(200);
    app.me(&rotated.field("access")).await.expect_status(200);
    let sessions = list(&app, &laptop.access).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        (sessions[0]["id"].as_str().unwrap(), &sessions[0]["current"]),
        (session_of(&laptop).as_str(), &json!(true))
    );
    app.me(&bob.access).await.expect_status(200);
    assert_eq!(list(&app, &bob.access).await.len(), 1, "another user's sessions stay");
}

#[tokio::test]
async fn a_session_revoked_on_one_instance_is_refused_on_another_after_its_poll() {
    let a = spawn_app().await;
    let b = a.beside(|builder| builder).await;
    let ada = a.sign_up("ada").await;
    let phone = sign_in_as(&a, &ada, "Phone/1.0").await;
    b.me(&phone.access).await.expect_status(200);

    delete(&a, &ada.access, &session_of(&phone)).await.expect_json(200, json!({}));
    // The poll every instance runs each second, run now.
    b.background.poll_revocations().await.unwrap();

    b.me(&phone.access).await.expect_bearer_refused("Token is blacklisted");
    b.verify(&phone.access).await.expect(401, TOKEN_BLACKLISTED);
    b.refresh(&phone.refresh).await.expect(401, TOKEN_BLACKLISTED);
    b.me(&ada.access).await.expect_status(200);
    // A third instance started later reads the log at start.
    let c = a.beside(|builder| builder).await;
    c.me(&phone.access).await.expect_bearer_refused("Token is blacklisted");
    c.me(&ada.access).await.expect_status(200);
}

#[tokio::test]
async fn last_used_at_moves_after_a_refresh_once_the_batch_is_written() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada").await;
    let before = list(&app, &ada.access).await[0].clone();
    assert_eq!(before["last_used_at"], before["created_at"]);

    app.advance(secs(30));
    app.refresh(&ada.refresh).await.expect_status(200);
    assert_eq!(app.background.flush_session_activity().await.unwrap(), 1);

    let after = list(&app, &ada.access).await[0].clone();
    assert_eq!(after["created_at"], before["created_at"]);
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Iso8601::DEFAULT)
            .unwrap()
            .unix_timestamp()
    };
    assert_eq!(parse(&after["last_used_at"]), parse(&before["created_at"]) + 30);
    assert_eq!(app.background.flush_session_activity().await.unwrap(), 0, "the batch was emptied");
}

#[tokio::test]
async fn reuse_of_a_rotated_token_revokes_its_sessions_access_tokens() {
    let app =
        spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace: Duration::ZERO }).await;
    let ada = app.sign_up("ada").await;
    let other = app.sign_in(&ada).await;
    app.advance(secs(1));
    let rotated = app.refresh(&ada.refresh).await;
    rotated.expect_status(200);
    app.me(&rotated.field("access")).await.expect_status(200);

    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);

    app.me(&rotated.field("access")).await.expect_bearer_refused("Token is blacklisted");
    app.refresh(&rotated.field("refresh")).await.expect(401, TOKEN_BLACKLISTED);
    app.me(&other.access).await.expect_status(200);
}

#[tokio::test]
async fn operators_list_a_users_sessions_and_revoke_one() {
    let app = spawn_app().await;
    // The command reads the wall clock, which the server's fake one must not run ahead of: the
    // sign-up is dated earlier rather than the sign-in later.
    let start = app.clock.now();
    app.clock.set(jwtd::clock::Instant::from_millis(start.millis() - 2_000));
    let ada = app.sign_up("ada").await;
    app.clock.set(start);
    let phone = sign_in_as(&app, &ada, "Phone/1.0").await;

    let run = jwtd_on(&app, &["session", "list", "ada"], None).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("id "), "a header: {}", lines[0]);
    assert!(lines[1].starts_with(&session_of(&phone)) && lines[1].ends_with("Phone/1.0"), "newest first: {}", lines[1]);
    assert!(lines[1].contains("127.0.0.1"), "{}", lines[1]);
    assert!(lines[2].starts_with(&session(&jti(&ada.refresh))), "{}", lines[2]);

    let run = jwtd_on(&app, &["session", "revoke", &session_of(&phone)], None).await;
    run.expect_success(&format!(
        "revoked session {}; serving instances refuse its tokens within a second\n",
        session_of(&phone)
    ));
    app.refresh(&phone.refresh).await.expect(401, TOKEN_BLACKLISTED);
    app.background.poll_revocations().await.unwrap();
    app.me(&phone.access).await.expect_bearer_refused("Token is blacklisted");
    app.me(&ada.access).await.expect_status(200);

    let unknown = jwtd_on(&app, &["session", "revoke", "0123456789abcdef"], None).await;
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("no session \"0123456789abcdef\""), "{}", unknown.stderr);
    let nobody = jwtd_on(&app, &["session", "list", "nobody"], None).await;
    assert_eq!(nobody.code, Some(1), "{nobody:?}");
    assert!(nobody.stderr.contains("no user named \"nobody\""), "{}", nobody.stderr);
}
