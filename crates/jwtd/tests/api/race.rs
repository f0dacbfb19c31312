//! Rotation is one atomic step (SPEC §4): of any number of concurrent refreshes of one token,
//! at most one new family member is created. CI runs `cargo test -p jwtd --test api race::`
//! 20 times in a row.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use jwtd::config::RotationPolicy;

use crate::helpers::{jti, secs, spawn_app_with, Reply, TestApp, TOKEN_BLACKLISTED};

const CONCURRENT: usize = 100;

async fn rotating(grace: Duration) -> TestApp {
    spawn_app_with(|s| s.rotation = RotationPolicy::On { blacklist_after: true, grace }).await
}

/// Sends `CONCURRENT` refreshes of `token` at once, each on its own open connection, so they
/// reach the server together rather than one connection set-up after another.
async fn refresh_concurrently(app: &TestApp, token: &str) -> Vec<Reply> {
    for warm_up in join_all((0..CONCURRENT).map(|_| app.get("/healthz"))).await {
        warm_up.expect_status(200);
    }
    join_all((0..CONCURRENT).map(|_| app.refresh(token))).await
}

/// The successors handed out with a 200, by jti.
fn successors(replies: &[Reply]) -> Vec<(String, String)> {
    replies.iter().filter(|r| r.status == 200).map(|r| (jti(&r.field("refresh")), r.field("refresh"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_create_at_most_one_successor() {
    let app = rotating(Duration::ZERO).await;
    let ada = app.sign_up("ada").await;

    let replies = refresh_concurrently(&app, &ada.refresh).await;

    for r in replies.iter().filter(|r| r.status != 200) {
        r.expect(401, TOKEN_BLACKLISTED);
    }
    let handed_out = successors(&replies);
    let distinct: BTreeSet<&String> = handed_out.iter().map(|(jti, _)| jti).collect();
    assert!(distinct.len() <= 1, "{} distinct successors: {distinct:?}", distinct.len());
    // Without a grace period only the first refresh can win; every later one is reuse.
    assert_eq!(handed_out.len(), 1, "exactly one refresh rotates");

    let mut accepted = 0;
    for (_, token) in &handed_out {
        let reply = app.refresh(token).await;
        if reply.status == 200 {
            accepted += 1;
        } else {
            reply.expect(401, TOKEN_BLACKLISTED);
        }
    }
    assert!(accepted <= 1, "{accepted} successors accepted afterwards");
    // The 99 losers presented a rotated token after the rotation: reuse, so the family is
    // revoked and the one successor is refused too.
    assert_eq!(accepted, 0, "the family was revoked by the reuse");
    app.refresh(&ada.refresh).await.expect(401, TOKEN_BLACKLISTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_within_the_grace_period_all_get_the_same_successor() {
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;

    let replies = refresh_concurrently(&app, &ada.refresh).await;

    for r in &replies {
        r.expect_status(200);
    }
    let handed_out = successors(&replies);
    let distinct: BTreeSet<&String> = handed_out.iter().map(|(jti, _)| jti).collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");
    assert_ne!(distinct.first().map(|j| j.as_str()), Some(jti(&ada.refresh).as_str()));

    // The one successor carries the family on.
    app.refresh(&handed_out[0].1).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_a_successor_still_create_one_member() {
    // The race one step down the chain, with the grace period on.
    let app = rotating(secs(10)).await;
    let ada = app.sign_up("ada").await;
    let successor = app.refresh(&ada.refresh).await.expect_status(200).field("refresh");
    app.advance(secs(1));

    let replies = refresh_concurrently(&app, &successor).await;

    let handed_out = successors(&replies);
    assert_eq!(handed_out.len(), CONCURRENT);
    let distinct: BTreeSet<&String> = handed_out.iter().map(|(jti, _)| jti).collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");
}
