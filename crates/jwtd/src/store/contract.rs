//! The [`Store`] contract as tests: one generic async fn per behaviour, run against every
//! backend. SQLite always runs; PostgreSQL runs when `JWTD_TEST_DATABASE_URL` names a server
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), each test in a fresh database on it.

use std::time::Duration;

use futures::future::join_all;

use super::postgres::{PgOptions, PgStore};
use super::sqlite::SqliteStore;
use super::*;
use crate::clock::Instant;

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Instant {
    Instant::from_secs(secs)
}

fn jti(n: u32) -> String {
    format!("{n:032x}")
}

async fn user(s: &dyn Store, name: &str) -> User {
    let new = NewUser {
        username: name.into(),
        password_hash: "hash".into(),
        email: String::new(),
        uuid: None,
        unique_email: false,
        now: at(T0),
    };
    s.create_user(new).await.unwrap()
}

fn record(jti: &str, user_id: i64, issued_at: i64) -> RefreshRecord {
    RefreshRecord { jti: jti.into(), user_id, issued_at, expires_at: issued_at + 86400 }
}

/// A client that sent neither a `User-Agent` nor its address.
static NO_CLIENT: SessionClient = SessionClient { user_agent: String::new(), ip: None };

/// A sign-in of `token` into `family` with the user as `seen`, by [`NO_CLIENT`].
fn sign_in<'a>(token: &'a RefreshRecord, family: &'a str, seen: &'a UserState) -> SignIn<'a> {
    SignIn { token, family, seen, client: &NO_CLIENT }
}

/// Records `token` as the first of `family`, as a sign-in does, with the user as it stands.
async fn recorded(s: &dyn Store, token: &RefreshRecord, family: &str) {
    let seen = s.user_by_id(token.user_id).await.unwrap().unwrap().state();
    assert!(s.record_sign_in(sign_in(token, family, &seen)).await.unwrap(), "the user is as read");
}

/// A rotation of `presented` at `now`. The successor's jti is `successor` when the family is
/// not a session id (the test families "fam", …) or shares its first 16 digits (`jti(n)`'s are
/// zeros, as are the families an unseen `jti(n)` starts).
fn rotate_req(presented: RefreshRecord, successor: &str, now: Instant) -> RotateRequest {
    RotateRequest {
        presented_iat: Some(presented.issued_at),
        session: jwtd_proto::session::session_of(None, &presented.jti).map(str::to_string),
        presented,
        successor_random: uuid::Uuid::try_parse(successor).unwrap(),
        now,
        lifetime: Duration::from_secs(86400),
        session_max: Duration::from_secs(30 * 86400),
        blacklist_after: true,
        grace: Duration::from_secs(10),
        require_active: true,
    }
}

async fn ping_answers(s: &dyn Store) {
    s.ping().await.unwrap();
}

async fn users_are_created_found_and_listed(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    assert!(ada.id < bob.id);
    assert!(ada.profile.is_active);
    assert_eq!(ada.profile.date_joined, at(T0));
    assert_eq!(ada.profile.last_login, None);
    assert_eq!(ada.tokens_valid_after, 0);
    assert_eq!(s.user_by_name("ada").await.unwrap(), Some(ada.clone()));
    assert_eq!(s.user_by_id(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(s.user_by_name("nobody").await.unwrap(), None);
    assert_eq!(s.user_by_id(bob.id + 1000).await.unwrap(), None);
    let listed: Vec<i64> = s.user_page(0, 100).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(listed, [ada.id, bob.id]);
}

async fn a_taken_username_is_refused(s: &dyn Store) {
    user(s, "ada").await;
    let again = NewUser {
        username: "ada".into(),
        password_hash: "h".into(),
        email: String::new(),
        uuid: None,
        unique_email: false,
        now: at(T0),
    };
    assert!(matches!(s.create_user(again).await, Err(StoreError::UsernameTaken)));
    assert_eq!(s.user_page(0, 100).await.unwrap().len(), 1);
}

fn by_email(email: &str, uuid: Option<uuid::Uuid>) -> NewUser {
    NewUser {
        username: String::new(),
        password_hash: "hash".into(),
        email: email.into(),
        uuid,
        unique_email: true,
        now: at(T0),
    }
}

async fn e_mail_users_with_uuids_are_found_case_insensitively(s: &dyn Store) {
    let id = uuid::Uuid::new_v4();
    let ada = s.create_user(by_email("Ada@example.org", Some(id))).await.unwrap();
    assert_eq!((ada.uuid, ada.profile.username.as_str()), (Some(id), ""));
    // usernames may stay blank for any number of users
    let bob = s.create_user(by_email("bob@example.org", None)).await.unwrap();
    assert_eq!(s.user_by_email("ADA@EXAMPLE.ORG").await.unwrap(), Some(ada.clone()));
    assert_eq!(s.user_by_uuid(id).await.unwrap(), Some(ada.clone()));
    assert_eq!(s.user_by_public_id(UserId::Uuid(id)).await.unwrap(), Some(ada.clone()));
    assert_eq!(s.user_by_public_id(UserId::Int(bob.id)).await.unwrap(), Some(bob));
    assert_eq!(s.user_by_uuid(uuid::Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(s.user_by_email("nobody@example.org").await.unwrap(), None);
    assert_eq!(ada.public_id(IdType::Uuid), Some(UserId::Uuid(id)));
    assert_eq!(ada.public_id(IdType::Int), Some(UserId::Int(ada.id)));
}

async fn a_taken_email_is_refused_in_any_case(s: &dyn Store) {
    s.create_user(by_email("ada@example.org", None)).await.unwrap();
    assert!(matches!(s.create_user(by_email("ADA@example.org", None)).await, Err(StoreError::EmailTaken)));
    // not checked when e-mail is not the login
    let other = NewUser { unique_email: false, ..by_email("ADA@example.org", None) };
    s.create_user(other).await.unwrap();
    assert_eq!(s.user_page(0, 100).await.unwrap().len(), 2);
}

async fn concurrent_sign_ups_of_one_email_create_one_user(s: &dyn Store) {
    let attempts = (0..8).map(|i| s.create_user(by_email(if i % 2 == 0 { "eve@x.org" } else { "EVE@x.org" }, None)));
    let created = join_all(attempts).await.into_iter().filter(Result::is_ok).count();
    assert_eq!(created, 1);
}

async fn the_user_id_type_is_fixed_by_the_first_call(s: &dyn Store) {
    assert_eq!(s.fix_user_id_type(IdType::Uuid).await.unwrap(), IdType::Uuid);
    assert_eq!(s.fix_user_id_type(IdType::Int).await.unwrap(), IdType::Uuid);
    assert_eq!(s.fix_user_id_type(IdType::Uuid).await.unwrap(), IdType::Uuid);
}

async fn a_database_with_integer_users_stays_integer(s: &dyn Store) {
    user(s, "ada").await;
    assert_eq!(s.fix_user_id_type(IdType::Uuid).await.unwrap(), IdType::Int);
}

async fn own_claims_and_groups_are_kept(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    assert!(ada.claims.is_empty());
    let claims = serde_json::json!({"role": "admin", "tenant": 7});
    let serde_json::Value::Object(claims) = claims else { unreachable!() };
    assert!(s.set_user_claims(ada.id, &claims).await.unwrap());
    assert!(!s.set_user_claims(bob.id + 1000, &claims).await.unwrap());
    assert_eq!(s.user_by_id(ada.id).await.unwrap().unwrap().claims, claims);
    assert!(s.set_user_claims(ada.id, &Map::new()).await.unwrap());
    assert!(s.user_by_name("ada").await.unwrap().unwrap().claims.is_empty());

    assert_eq!(s.user_groups(ada.id).await.unwrap(), Vec::<String>::new());
    let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let got = s.change_groups(ada.id, &names(&["staff", "Admins", "é"]), &[]).await.unwrap();
    assert_eq!(got, names(&["Admins", "staff", "é"]), "sorted by code point");
    assert_eq!(s.change_groups(bob.id, &names(&["staff"]), &[]).await.unwrap(), names(&["staff"]));
    let got = s.change_groups(ada.id, &names(&["staff"]), &names(&["Admins", "unknown"])).await.unwrap();
    assert_eq!(got, names(&["staff", "é"]));
    assert_eq!(s.user_groups(bob.id).await.unwrap(), names(&["staff"]));
    assert!(s.delete_user(ada.id, at(T0)).await.unwrap());
    assert_eq!(s.user_groups(ada.id).await.unwrap(), Vec::<String>::new());
}

async fn revocations_name_the_users_uuid(s: &dyn Store) {
    let id = uuid::Uuid::new_v4();
    let ada = s.create_user(by_email("ada@example.org", Some(id))).await.unwrap();
    s.revoke_all(ada.id, at(T0 + 5)).await.unwrap();
    let revocations = s.revocations_since(0, 10).await.unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].uuid, Some(id));
    assert_eq!(revocations[0].public_id(IdType::Uuid), Some(UserId::Uuid(id)));
    assert_eq!(revocations[0].public_id(IdType::Int), Some(UserId::Int(ada.id)));
}

async fn users_are_deactivated_and_deleted_with_their_tokens(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam-a").await;
    recorded(s, &record(&jti(2), bob.id, T0), "fam-b").await;
    let start = s.revocations_since(0, 100).await.unwrap().last().map_or(0, |r| r.cursor);
    assert!(s.set_active(ada.id, false, at(T0 + 3)).await.unwrap());
    let deactivated = s.user_by_name("ada").await.unwrap().unwrap();
    assert!(!deactivated.profile.is_active);
    assert_eq!(deactivated.tokens_valid_after, T0 + 4, "deactivation revokes like logout-all");
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().blacklisted, Some(at(T0 + 3)));
    assert!(s.set_active(ada.id, true, at(T0 + 5)).await.unwrap());
    assert_eq!(s.user_by_name("ada").await.unwrap().unwrap().tokens_valid_after, T0 + 4, "activation revokes nothing");
    assert!(!s.set_active(bob.id + 1000, false, at(T0 + 5)).await.unwrap());
    assert!(s.delete_user(ada.id, at(T0 + 7)).await.unwrap());
    assert!(!s.delete_user(ada.id, at(T0 + 8)).await.unwrap());
    assert_eq!(s.user_by_id(ada.id).await.unwrap(), None);
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap(), None);
    assert!(s.refresh_row(&jti(2)).await.unwrap().is_some());
    assert!(s.refresh_row(&jti(2)).await.unwrap().unwrap().blacklisted.is_none(), "bob's stay");
    let log: Vec<(i64, i64)> =
        s.revocations_since(start, 100).await.unwrap().iter().map(|r| (r.user_id, r.valid_after)).collect();
    assert_eq!(log, vec![(ada.id, T0 + 4), (ada.id, T0 + 8)], "a deleted user's revocations stay in the log");
}

async fn last_login_and_password_hash_are_updated(s: &dyn Store) {
    let ada = user(s, "ada").await;
    s.set_last_login(ada.id, Instant::from_millis(T0 * 1000 + 123)).await.unwrap();
    assert!(s.update_password_hash(ada.id, "hash", "new-hash").await.unwrap());
    assert!(!s.update_password_hash(ada.id, "hash", "old-again").await.unwrap(), "compare-and-swap");
    let ada = s.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!(ada.profile.last_login, Some(Instant::from_millis(T0 * 1000 + 123)));
    assert_eq!(ada.password, "new-hash");
    assert_eq!(ada.tokens_valid_after, 0, "a rehash revokes nothing");
}

async fn a_secret_is_generated_once(s: &dyn Store) {
    let first = s.secret_or_insert("key", vec![1, 2, 3]).await.unwrap();
    let second = s.secret_or_insert("key", vec![9, 9]).await.unwrap();
    assert_eq!(first, vec![1, 2, 3]);
    assert_eq!(second, vec![1, 2, 3]);
    let raced = join_all((0..8u8).map(|i| s.secret_or_insert("raced", vec![i]))).await;
    let values: Vec<Vec<u8>> = raced.into_iter().map(Result::unwrap).collect();
    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
}

async fn a_recorded_refresh_token_reads_back(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let row = s.refresh_row(&jti(1)).await.unwrap().unwrap();
    assert_eq!(
        row,
        TokenRow {
            jti: jti(1),
            user_id: ada.id,
            family: "fam".into(),
            family_started: T0,
            issued_at: T0,
            expires_at: T0 + 86400,
            blacklisted: None,
            replaced_by: None,
            rotated: None,
        }
    );
    assert_eq!(s.refresh_row(&jti(2)).await.unwrap(), None);
}

async fn blacklisting_is_idempotent_and_records_unseen_tokens(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    s.blacklist(&record(&jti(1), ada.id, T0), "ignored", at(T0 + 1)).await.unwrap();
    s.blacklist(&record(&jti(1), ada.id, T0), "ignored", at(T0 + 2)).await.unwrap();
    let row = s.refresh_row(&jti(1)).await.unwrap().unwrap();
    assert_eq!(row.blacklisted, Some(at(T0 + 1)), "the first blacklisting time stays");
    assert_eq!(row.family, "fam");
    s.blacklist(&record(&jti(2), ada.id, T0), "fam-2", at(T0 + 3)).await.unwrap();
    let row = s.refresh_row(&jti(2)).await.unwrap().unwrap();
    assert_eq!((row.family.as_str(), row.blacklisted), ("fam-2", Some(at(T0 + 3))));
}

async fn a_refresh_check_reads_the_user_and_the_token_row(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let standing =
        |token| RefreshCheck { user: UserGate { is_active: true, tokens_valid_after: 0 }, token, session_known: false };
    assert_eq!(
        s.refresh_check(RefreshQuery { user_id: ada.id, jti: &jti(1), session: None }).await.unwrap(),
        Some(standing(None)),
        "an unrecorded token"
    );
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let recorded = TokenStanding { blacklisted: false, family_started: T0 };
    assert_eq!(
        s.refresh_check(RefreshQuery { user_id: ada.id, jti: &jti(1), session: None }).await.unwrap(),
        Some(standing(Some(recorded)))
    );
    s.blacklist(&record(&jti(1), ada.id, T0), "fam", at(T0 + 1)).await.unwrap();
    let blacklisted = TokenStanding { blacklisted: true, ..recorded };
    assert_eq!(
        s.refresh_check(RefreshQuery { user_id: ada.id, jti: &jti(1), session: None }).await.unwrap(),
        Some(standing(Some(blacklisted)))
    );
    assert!(s.set_active(ada.id, false, at(T0 + 2)).await.unwrap());
    s.revoke_all(ada.id, at(T0 + 9)).await.unwrap();
    let check = s.refresh_check(RefreshQuery { user_id: ada.id, jti: &jti(1), session: None }).await.unwrap().unwrap();
    assert_eq!(check.user, UserGate { is_active: false, tokens_valid_after: T0 + 10 });
    assert_eq!(
        s.refresh_check(RefreshQuery { user_id: ada.id + 1, jti: &jti(1), session: None }).await.unwrap(),
        None,
        "no such user"
    );
}

async fn rotation_creates_one_successor_and_hands_it_back_in_grace(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let first = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await.unwrap();
    let Rotation::Rotated(next) = first else { panic!("expected Rotated, got {first:?}") };
    assert_eq!((next.jti.as_str(), next.family.as_str(), next.family_started), (jti(2).as_str(), "fam", T0));
    assert_eq!((next.issued_at, next.expires_at), (T0 + 60, T0 + 60 + 86400));
    let old = s.refresh_row(&jti(1)).await.unwrap().unwrap();
    assert_eq!(old.replaced_by, Some(jti(2)));
    assert_eq!(old.rotated, Some(at(T0 + 60)));
    assert_eq!(old.blacklisted, Some(at(T0 + 60)));
    let again = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(3), at(T0 + 65))).await.unwrap();
    assert_eq!(again, Rotation::Grace(next));
    assert_eq!(s.refresh_row(&jti(3)).await.unwrap(), None);
}

async fn reuse_after_grace_revokes_the_family(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    recorded(s, &record(&jti(9), ada.id, T0), "other-session").await;
    s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await.unwrap();
    let reuse = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(3), at(T0 + 71))).await.unwrap();
    assert_eq!(reuse, Rotation::Reused { family: "fam".into() });
    assert_eq!(s.refresh_row(&jti(2)).await.unwrap().unwrap().blacklisted, Some(at(T0 + 71)));
    assert_eq!(s.refresh_row(&jti(9)).await.unwrap().unwrap().blacklisted, None, "other families stay");
    let successor = s.rotate(&rotate_req(record(&jti(2), ada.id, T0 + 60), &jti(4), at(T0 + 72))).await.unwrap();
    assert_eq!(successor, Rotation::Blacklisted);
}

async fn rotation_without_blacklisting_leaves_the_presented_token_usable(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let req = |successor: u32, now| RotateRequest {
        blacklist_after: false,
        ..rotate_req(record(&jti(1), ada.id, T0), &jti(successor), at(now))
    };
    assert!(matches!(s.rotate(&req(2, T0 + 1)).await.unwrap(), Rotation::Rotated(_)));
    assert!(matches!(s.rotate(&req(3, T0 + 100)).await.unwrap(), Rotation::Rotated(_)));
    let row = s.refresh_row(&jti(1)).await.unwrap().unwrap();
    assert_eq!((row.blacklisted, row.replaced_by), (None, Some(jti(3))));
}

async fn rotation_is_refused_after_session_end_and_for_inactive_or_missing_users(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let late = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 30 * 86400))).await.unwrap();
    assert_eq!(late, Rotation::Invalid);
    let near_end = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 30 * 86400 - 10))).await;
    let Ok(Rotation::Rotated(next)) = near_end else { panic!("{near_end:?}") };
    assert_eq!(next.expires_at, T0 + 30 * 86400, "never past the session's end");
    s.set_active(ada.id, false, at(T0 - 10)).await.unwrap();
    recorded(s, &record(&jti(5), ada.id, T0), "fam-5").await;
    let inactive = s.rotate(&rotate_req(record(&jti(5), ada.id, T0), &jti(6), at(T0 + 1))).await.unwrap();
    assert_eq!(inactive, Rotation::Invalid);
    let allowed =
        RotateRequest { require_active: false, ..rotate_req(record(&jti(5), ada.id, T0), &jti(6), at(T0 + 1)) };
    assert!(matches!(s.rotate(&allowed).await.unwrap(), Rotation::Rotated(_)));
    let ghost = s.rotate(&rotate_req(record(&jti(7), ada.id + 1000, T0), &jti(8), at(T0 + 1))).await.unwrap();
    assert_eq!(ghost, Rotation::Invalid);
    assert_eq!(s.refresh_row(&jti(8)).await.unwrap(), None);
}

async fn rotation_of_a_blacklisted_or_revoked_token_is_refused(s: &dyn Store) {
    let ada = user(s, "ada").await;
    s.blacklist(&record(&jti(1), ada.id, T0), "fam", at(T0 + 1)).await.unwrap();
    let out = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 2))).await.unwrap();
    assert_eq!(out, Rotation::Blacklisted);
    s.revoke_all(ada.id, at(T0 + 10)).await.unwrap();
    // Never recorded, but issued before the revocation.
    let out = s.rotate(&rotate_req(record(&jti(3), ada.id, T0 + 5), &jti(4), at(T0 + 11))).await.unwrap();
    assert_eq!(out, Rotation::Blacklisted);
    assert_eq!(s.refresh_row(&jti(4)).await.unwrap(), None);
}

async fn an_unseen_token_is_recorded_when_rotated(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let out = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 5))).await.unwrap();
    let Rotation::Rotated(next) = out else { panic!("{out:?}") };
    let first = s.refresh_row(&jti(1)).await.unwrap().unwrap();
    assert_eq!(first.family, next.family);
    assert_eq!((first.family_started, next.family_started), (T0, T0));
    assert_eq!(first.replaced_by, Some(jti(2)));
}

/// SPEC §4: of any number of concurrent refreshes of one token, at most one successor.
async fn concurrent_rotations_create_one_successor(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let reqs: Vec<_> = (0..40).map(|i| rotate_req(record(&jti(1), ada.id, T0), &jti(100 + i), at(T0 + 1))).collect();
    let outcomes: Vec<Rotation> =
        join_all(reqs.iter().map(|r| s.rotate(r))).await.into_iter().map(Result::unwrap).collect();
    assert_one_successor(s, &outcomes).await;
}

async fn concurrent_rotations_of_an_unseen_token_create_one_successor(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let reqs: Vec<_> = (0..40).map(|i| rotate_req(record(&jti(1), ada.id, T0), &jti(100 + i), at(T0 + 1))).collect();
    let outcomes: Vec<Rotation> =
        join_all(reqs.iter().map(|r| s.rotate(r))).await.into_iter().map(Result::unwrap).collect();
    assert_one_successor(s, &outcomes).await;
}

/// A never-seen token rotated and logged out at the same moment: either order is fine, but the
/// token ends blacklisted, and a successor exists only if the rotation came first.
async fn a_never_seen_token_rotated_and_logged_out_at_once_ends_blacklisted(s: &dyn Store) {
    let ada = user(s, "ada").await;
    for i in 0..10 {
        // Each its own session: an unseen token of a session the user already has is refused.
        let (presented, successor) = (jti_in(i + 1, 1000), jti_in(i + 1, 2000));
        let req = rotate_req(record(&presented, ada.id, T0), &successor, at(T0 + 1));
        let logout = record(&presented, ada.id, T0);
        let (rotated, blacklisted) = futures::join!(s.rotate(&req), s.blacklist(&logout, "fam", at(T0 + 1)));
        blacklisted.unwrap();
        let rotated = rotated.unwrap();
        assert!(matches!(rotated, Rotation::Rotated(_) | Rotation::Blacklisted), "{rotated:?}");
        assert!(s.refresh_row(&presented).await.unwrap().unwrap().blacklisted.is_some());
        let successor_row = s.refresh_row(&successor).await.unwrap();
        assert_eq!(successor_row.is_some(), matches!(rotated, Rotation::Rotated(_)));
    }
}

async fn assert_one_successor(s: &dyn Store, outcomes: &[Rotation]) {
    let rotated: Vec<&TokenRow> =
        outcomes.iter().filter_map(|o| if let Rotation::Rotated(r) = o { Some(r) } else { None }).collect();
    assert_eq!(rotated.len(), 1, "{outcomes:?}");
    let winner = rotated[0];
    for o in outcomes {
        assert!(matches!(o, Rotation::Rotated(r) | Rotation::Grace(r) if r == winner), "{o:?}");
    }
    let family = s.refresh_row(&jti(1)).await.unwrap().unwrap().family;
    let mut members = 0;
    for i in 100..140 {
        if let Some(row) = s.refresh_row(&jti(i)).await.unwrap() {
            assert_eq!(row.family, family);
            members += 1;
        }
    }
    assert_eq!(members, 1, "exactly one successor row");
}

async fn revoke_all_blacklists_every_token_and_logs_in_order(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    recorded(s, &record(&jti(1), ada.id, T0), "a1").await;
    recorded(s, &record(&jti(2), ada.id, T0), "a2").await;
    recorded(s, &record(&jti(3), bob.id, T0), "b1").await;
    let start = s.revocations_since(0, 100).await.unwrap().last().map_or(0, |r| r.cursor);
    s.revoke_all(ada.id, Instant::from_millis((T0 + 10) * 1000 + 500)).await.unwrap();
    s.revoke_all(bob.id, at(T0 + 20)).await.unwrap();
    s.revoke_all(ada.id, at(T0 + 5)).await.unwrap();
    for j in [1, 2] {
        assert_eq!(
            s.refresh_row(&jti(j)).await.unwrap().unwrap().blacklisted,
            Some(Instant::from_millis((T0 + 10) * 1000 + 500))
        );
    }
    // The whole revoking second: tokens issued in it, before or after the call, are revoked.
    assert_eq!(s.user_by_id(ada.id).await.unwrap().unwrap().tokens_valid_after, T0 + 11, "never moves back");
    let log = s.revocations_since(start, 100).await.unwrap();
    let seen: Vec<(i64, i64)> = log.iter().map(|r| (r.user_id, r.valid_after)).collect();
    assert_eq!(seen, vec![(ada.id, T0 + 11), (bob.id, T0 + 21), (ada.id, T0 + 6)]);
    assert!(log.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let rest = s.revocations_since(log[0].cursor, 1).await.unwrap();
    assert_eq!(rest, vec![log[1].clone()]);
}

async fn a_password_change_revokes_every_token(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "a1").await;
    s.change_password(ada.id, "new-hash", at(T0 + 30)).await.unwrap();
    let ada = s.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!((ada.password.as_str(), ada.tokens_valid_after), ("new-hash", T0 + 31));
    assert!(s.refresh_row(&jti(1)).await.unwrap().unwrap().blacklisted.is_some());
    let log = s.revocations_since(0, 100).await.unwrap();
    assert_eq!(log.last().map(|r| (r.user_id, r.valid_after)), Some((ada.id, T0 + 31)));
}

async fn a_sign_in_is_recorded_only_while_the_user_is_as_checked(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let seen = ada.state();
    assert!(s.record_sign_in(sign_in(&record(&jti(1), ada.id, T0), "f1", &seen)).await.unwrap());
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().family, "f1");
    let ghost = User { id: ada.id + 1000, ..ada.clone() };
    assert!(!s.record_sign_in(sign_in(&record(&jti(2), ghost.id, T0), "f2", &ghost.state())).await.unwrap(), "no user");
    s.change_password(ada.id, "new-hash", at(T0 + 1)).await.unwrap();
    assert!(
        !s.record_sign_in(sign_in(&record(&jti(3), ada.id, T0 + 1), "f3", &seen)).await.unwrap(),
        "password changed"
    );
    let seen = s.user_by_id(ada.id).await.unwrap().unwrap().state();
    s.revoke_all(ada.id, at(T0 + 5)).await.unwrap();
    assert!(!s.record_sign_in(sign_in(&record(&jti(4), ada.id, T0 + 6), "f4", &seen)).await.unwrap(), "logout-all");
    let seen = s.user_by_id(ada.id).await.unwrap().unwrap().state();
    s.set_active(ada.id, false, at(T0 + 7)).await.unwrap();
    s.set_active(ada.id, true, at(T0 + 7)).await.unwrap();
    assert!(!s.record_sign_in(sign_in(&record(&jti(5), ada.id, T0 + 9), "f5", &seen)).await.unwrap(), "deactivated");
    let seen = s.user_by_id(ada.id).await.unwrap().unwrap().state();
    assert!(s.record_sign_in(sign_in(&record(&jti(6), ada.id, T0 + 9), "f6", &seen)).await.unwrap());
    for j in [2, 3, 4, 5] {
        assert_eq!(s.refresh_row(&jti(j)).await.unwrap(), None, "jti {j} not written");
    }
}

async fn a_grace_retry_of_a_token_whose_successor_was_rotated_is_blacklisted_and_revokes_nothing(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    let first = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await.unwrap();
    assert!(matches!(first, Rotation::Rotated(_)), "{first:?}");
    let second = s.rotate(&rotate_req(record(&jti(2), ada.id, T0 + 60), &jti(3), at(T0 + 61))).await.unwrap();
    assert!(matches!(second, Rotation::Rotated(_)), "{second:?}");
    let retry = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(4), at(T0 + 62))).await.unwrap();
    assert_eq!(retry, Rotation::Blacklisted);
    assert_eq!(s.refresh_row(&jti(3)).await.unwrap().unwrap().blacklisted, None, "the newest token stays");
    assert_eq!(s.refresh_row(&jti(4)).await.unwrap(), None);
    let next = s.rotate(&rotate_req(record(&jti(3), ada.id, T0 + 61), &jti(5), at(T0 + 63))).await.unwrap();
    assert!(matches!(next, Rotation::Rotated(_)), "{next:?}");
}

/// A token of the session `session` (16 hex digits as a number), the `n`th of it.
fn jti_in(session: u64, n: u64) -> String {
    format!("{session:016x}{n:016x}")
}

/// L-2 of issue 17: a refresh token without a row whose session is a family of the same user's
/// is one jwtd issued (its row purged or restored away): refused. One whose session no row
/// names (SimpleJWT's) is adopted as the family its session names; one naming another user's
/// family is adopted as a new family.
async fn an_unrecorded_token_of_a_users_own_session_is_refused_and_others_adopted(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    let ada_session = "00000000000000a1";
    recorded(s, &record(&jti_in(0xa1, 1), ada.id, T0), ada_session).await;
    let lost = rotate_req(record(&jti_in(0xa1, 2), ada.id, T0), &jti_in(0xa1, 3), at(T0 + 5));
    assert_eq!(s.rotate(&lost).await.unwrap(), Rotation::Invalid);
    assert_eq!(s.refresh_row(&jti_in(0xa1, 2)).await.unwrap(), None, "nothing recorded");
    let check = s
        .refresh_check(RefreshQuery { user_id: ada.id, jti: &jti_in(0xa1, 2), session: Some(ada_session) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((check.token, check.session_known), (None, true));
    let check = s
        .refresh_check(RefreshQuery { user_id: bob.id, jti: &jti_in(0xa1, 2), session: Some(ada_session) })
        .await
        .unwrap()
        .unwrap();
    assert!(!check.session_known, "another user's session");

    // Bob's token naming Ada's session: adopted, in a family of its own.
    let clash = rotate_req(record(&jti_in(0xa1, 9), bob.id, T0), &jti_in(0xb0, 2), at(T0 + 5));
    let Rotation::Rotated(next) = s.rotate(&clash).await.unwrap() else { panic!("adopted") };
    assert_ne!(next.family, ada_session);
    assert!(jwtd_proto::session::is_session_id(&next.family));
    assert!(next.jti.starts_with(&next.family), "its successor is in the new family");

    // A session row names it too, until its family's last token row is purged.
    let seen = ada.state();
    let signed_in = record(&jti_in(0xa2, 1), ada.id, T0 + 10);
    assert!(s.record_sign_in(sign_in(&signed_in, "00000000000000a2", &seen)).await.unwrap());
    assert_eq!(s.session_owner("00000000000000a2").await.unwrap(), Some(ada.id));
    assert!(s.flush_expired(at(T0 + 86400 + 1), 100).await.unwrap() > 0);
    assert_eq!(s.session_owner("00000000000000a2").await.unwrap(), Some(ada.id), "its token row is not expired");
    assert!(s.flush_expired(at(T0 + 86400 + 11), 100).await.unwrap() > 0);
    assert_eq!(s.session_owner("00000000000000a2").await.unwrap(), None, "its token row, then its session row");
    assert_eq!(s.session_owner(ada_session).await.unwrap(), None);

    // SimpleJWT's token: its session names no family; adopted as that family.
    let django = rotate_req(record(&jti_in(0xd1, 1), ada.id, T0), &jti_in(0xd1, 2), at(T0 + 5));
    let Rotation::Rotated(next) = s.rotate(&django).await.unwrap() else { panic!("adopted") };
    assert_eq!((next.family.as_str(), next.jti.as_str()), ("00000000000000d1", jti_in(0xd1, 2).as_str()));
}

async fn sessions_are_listed_revoked_one_or_all_but_one_and_touched(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    let client = |ua: &str| SessionClient { user_agent: ua.into(), ip: Some("192.0.2.7".into()) };
    let (phone, laptop, tablet) = ("000000000000000a", "000000000000000b", "000000000000000c");
    for (i, (session, ua)) in [(phone, "phone"), (laptop, "laptop"), (tablet, "tablet")].into_iter().enumerate() {
        let token = record(&jti_in(0xa + i as u64, 1), ada.id, T0 + i as i64);
        assert!(s
            .record_sign_in(SignIn { token: &token, family: session, seen: &ada.state(), client: &client(ua) })
            .await
            .unwrap());
    }
    let bobs = record(&jti_in(0xbb, 1), bob.id, T0);
    assert!(s.record_sign_in(sign_in(&bobs, "00000000000000bb", &bob.state())).await.unwrap());

    let listed = s.sessions(ada.id, at(T0 + 10)).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, [tablet, laptop, phone], "newest first");
    assert_eq!(
        listed[2],
        SessionListing {
            id: phone.into(),
            created_at: T0,
            last_used_at: T0,
            user_agent: "phone".into(),
            ip: Some("192.0.2.7".into())
        }
    );

    // last_used_at moves forward only, and rotation shows in it too.
    s.touch_sessions(&[(phone.into(), T0 + 50), (laptop.into(), T0 + 40), ("ffffffffffffffff".into(), T0)])
        .await
        .unwrap();
    s.touch_sessions(&[(phone.into(), T0 + 20)]).await.unwrap();
    let used = |listed: &[SessionListing], id: &str| listed.iter().find(|l| l.id == id).unwrap().last_used_at;
    let listed = s.sessions(ada.id, at(T0 + 60)).await.unwrap();
    assert_eq!((used(&listed, phone), used(&listed, laptop)), (T0 + 50, T0 + 40));
    let rotated = s.rotate(&rotate_req(record(&jti_in(0xc, 1), ada.id, T0 + 2), &jti_in(0xc, 2), at(T0 + 70))).await;
    assert!(matches!(rotated, Ok(Rotation::Rotated(_))), "{rotated:?}");
    assert_eq!(used(&s.sessions(ada.id, at(T0 + 71)).await.unwrap(), tablet), T0 + 70, "its newest token");

    // Another user's session or an unknown one: nothing.
    let start = s.revocations_since(0, 100).await.unwrap().last().map_or(0, |r| r.cursor);
    assert!(s
        .revoke_sessions(SessionRevocation { user_id: bob.id, scope: SessionScope::One(phone), now: at(T0 + 80) })
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .revoke_sessions(SessionRevocation {
            user_id: ada.id,
            scope: SessionScope::One("0123456789abcdef"),
            now: at(T0 + 80)
        })
        .await
        .unwrap()
        .is_empty());
    assert!(s.revocations_since(start, 100).await.unwrap().is_empty());

    let revoked = s
        .revoke_sessions(SessionRevocation { user_id: ada.id, scope: SessionScope::One(phone), now: at(T0 + 80) })
        .await
        .unwrap();
    assert_eq!(revoked, [phone]);
    assert!(s.refresh_row(&jti_in(0xa, 1)).await.unwrap().unwrap().blacklisted.is_some());
    let ids: Vec<String> = s.sessions(ada.id, at(T0 + 81)).await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [tablet, laptop]);
    let log = s.revocations_since(start, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].user_id, log[0].valid_after, log[0].session.as_deref()), (ada.id, T0 + 81, Some(phone)));
    assert_eq!(s.user_by_id(ada.id).await.unwrap().unwrap().tokens_valid_after, 0, "the user's other tokens stay");

    let mut others = s
        .revoke_sessions(SessionRevocation {
            user_id: ada.id,
            scope: SessionScope::AllBut(Some(tablet)),
            now: at(T0 + 90),
        })
        .await
        .unwrap();
    others.sort();
    assert_eq!(others, [laptop]);
    let ids: Vec<String> = s.sessions(ada.id, at(T0 + 91)).await.unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [tablet]);
    assert_eq!(s.sessions(bob.id, at(T0 + 91)).await.unwrap().len(), 1, "bob's stays");
    let log = s.revocations_since(start, 100).await.unwrap();
    assert_eq!(log.last().and_then(|r| r.session.as_deref()), Some(laptop));
    assert_eq!(s.session_owner(tablet).await.unwrap(), Some(ada.id));
    assert_eq!(s.session_owner("ffffffffffffffff").await.unwrap(), None);
    assert!(s.delete_user(ada.id, at(T0 + 95)).await.unwrap());
    assert_eq!(s.session_owner(tablet).await.unwrap(), None, "gone with the user");
}

async fn reuse_logs_the_revocation_of_the_session(s: &dyn Store) {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await.unwrap();
    let start = s.revocations_since(0, 100).await.unwrap().last().map_or(0, |r| r.cursor);
    let reuse = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(3), at(T0 + 71))).await.unwrap();
    assert_eq!(reuse, Rotation::Reused { family: "fam".into() });
    let log = s.revocations_since(start, 100).await.unwrap();
    assert_eq!(log.iter().map(|r| (r.user_id, r.session.as_deref())).collect::<Vec<_>>(), [(ada.id, Some("fam"))]);
}

async fn expired_rows_are_flushed_in_batches(s: &dyn Store) {
    let ada = user(s, "ada").await;
    for i in 0..5 {
        let r = RefreshRecord { jti: jti(i), user_id: ada.id, issued_at: T0, expires_at: T0 + 10 };
        recorded(s, &r, "old").await;
    }
    recorded(s, &record(&jti(50), ada.id, T0), "live").await;
    assert_eq!(s.flush_expired(at(T0 + 10), 100).await.unwrap(), 0, "exp == now is not yet past");
    assert_eq!(s.flush_expired(at(T0 + 11), 2).await.unwrap(), 2);
    assert_eq!(s.flush_expired(at(T0 + 11), 100).await.unwrap(), 3);
    assert_eq!(s.flush_expired(at(T0 + 11), 100).await.unwrap(), 0);
    assert!(s.refresh_row(&jti(50)).await.unwrap().is_some());
}

fn imported(id: i64, name: &str) -> ImportUser {
    ImportUser {
        id: SourceId::Int(id),
        password: "pbkdf2_sha256$1000$salt$hash".into(),
        profile: Profile {
            date_joined: Instant::from_millis(T0 * 1000 - 1234),
            last_login: Some(at(T0 - 60)),
            ..Profile::sample(name, &format!("{name}@example.com"))
        },
        groups: Vec::new(),
        tokens: Vec::new(),
    }
}

/// `user` bringing `tokens` as its refresh-token rows.
fn with_tokens(user: &ImportUser, tokens: &[TokenRow]) -> ImportUser {
    ImportUser { tokens: tokens.to_vec(), ..user.clone() }
}

/// A user of an e-mail sign-in project with UUID keys: no username.
fn imported_uuid(uuid: &str, email: &str) -> ImportUser {
    let base = imported(0, "");
    ImportUser {
        id: SourceId::Uuid(uuid.into()),
        profile: Profile {
            username: String::new(),
            email: email.into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            is_staff: true,
            ..base.profile
        },
        groups: vec!["editors".into(), "staff".into()],
        ..base
    }
}

fn imported_token(n: u32, user_id: i64, blacklisted: Option<Instant>) -> TokenRow {
    TokenRow {
        jti: jti(n),
        user_id,
        family: jti(n),
        family_started: T0,
        issued_at: T0,
        expires_at: T0 + 86400,
        blacklisted,
        replaced_by: None,
        rotated: None,
    }
}

fn outcome(user: UserImport, user_id: Option<i64>, tokens: Vec<TokenImport>) -> ImportOutcome {
    ImportOutcome { user, user_id, tokens, groups: 0 }
}

async fn an_import_keeps_ids_and_only_adds(s: &dyn Store) {
    use TokenImport::{Blacklist, Conflict, Insert, Present};
    let write = ImportMode::Write;
    let mallory = user(s, "mallory").await;
    let ada = imported(40, "ada");
    let tokens = [imported_token(1, 40, None), imported_token(2, 40, Some(at(T0 + 5)))];
    let first = s.import_user(&with_tokens(&ada, &tokens), write).await.unwrap();
    assert_eq!(first, outcome(UserImport::Inserted, Some(40), vec![Insert, Insert]));
    let stored = s.user_by_id(40).await.unwrap().unwrap();
    assert_eq!((stored.profile.username.as_str(), stored.password.as_str()), ("ada", ada.password.as_str()));
    assert_eq!(
        (stored.profile.date_joined, stored.profile.last_login),
        (ada.profile.date_joined, ada.profile.last_login)
    );
    assert_eq!(s.refresh_row(&jti(2)).await.unwrap(), Some(tokens[1].clone()));
    assert!(user(s, "bob").await.id > 40, "sign-ups continue after imported ids");

    let again = s.import_user(&with_tokens(&ada, &tokens), write).await.unwrap();
    assert_eq!(again, outcome(UserImport::Present, Some(40), vec![Present, Present]));
    let mut changed = ada.clone();
    changed.password = "changed in Django since".into();
    let logged_out = [imported_token(1, 40, Some(at(T0 + 9))), imported_token(2, 40, None)];
    let later = s.import_user(&with_tokens(&changed, &logged_out), write).await.unwrap();
    assert_eq!(later, outcome(UserImport::Present, Some(40), vec![Blacklist, Present]));
    assert_eq!(s.user_by_id(40).await.unwrap(), Some(stored), "a user already here is left as it is");
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().blacklisted, Some(at(T0 + 9)));
    assert!(s.refresh_row(&jti(2)).await.unwrap().unwrap().blacklisted.is_some(), "never lifted");

    let eve = s.import_user(&with_tokens(&imported(40, "eve"), &[imported_token(9, 40, None)]), write).await.unwrap();
    assert_eq!(eve, outcome(UserImport::IdTaken { username: "ada".into() }, None, vec![]));
    let other =
        s.import_user(&with_tokens(&imported(99, "mallory"), &[imported_token(9, 99, None)]), write).await.unwrap();
    assert_eq!(other, outcome(UserImport::UsernameTaken { id: mallory.id }, None, vec![]));
    assert_eq!(s.user_by_id(99).await.unwrap(), None);
    assert_eq!(s.refresh_row(&jti(9)).await.unwrap(), None, "a refused user's tokens are not written");

    let zoe = s.import_user(&with_tokens(&imported(50, "zoe"), &[imported_token(1, 50, None)]), write).await.unwrap();
    assert_eq!(zoe, outcome(UserImport::Inserted, Some(50), vec![Conflict]));
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().user_id, 40);
}

const UUID_A: &str = "5f0c6d7e-8a9b-4c1d-9e2f-0a1b2c3d4e5f";

async fn an_import_of_uuid_users_gives_new_ids_and_keeps_uuids_and_groups(s: &dyn Store) {
    use TokenImport::{Insert, Present};
    let write = ImportMode::Write;
    assert_eq!(s.import_id_type(IdType::Uuid, ImportMode::DryRun).await.unwrap(), IdTypeCheck::Recorded);
    assert_eq!(s.import_id_type(IdType::Uuid, write).await.unwrap(), IdTypeCheck::Recorded);
    assert_eq!(s.import_id_type(IdType::Uuid, write).await.unwrap(), IdTypeCheck::Matches);
    assert_eq!(s.import_id_type(IdType::Int, write).await.unwrap(), IdTypeCheck::Mismatch { database: IdType::Uuid });
    let groups = ["editors".to_string(), "staff".to_string()];
    assert_eq!(s.import_groups(&groups, ImportMode::DryRun).await.unwrap(), 2);
    assert_eq!(s.import_groups(&groups, write).await.unwrap(), 2);
    assert_eq!(s.import_groups(&groups, write).await.unwrap(), 0);

    let ada = imported_uuid(UUID_A, "ada@example.com");
    // The rows' user_id is the store's to fill.
    let tokens = [imported_token(1, 0, None), imported_token(2, 0, Some(at(T0 + 5)))];
    let dry = s.import_user(&with_tokens(&ada, &tokens), ImportMode::DryRun).await.unwrap();
    assert_eq!(
        dry,
        ImportOutcome { user: UserImport::Inserted, user_id: None, tokens: vec![Insert, Insert], groups: 2 }
    );
    assert!(s.user_page(0, 10).await.unwrap().is_empty(), "a dry run writes nothing");
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap(), None);

    let first = s.import_user(&with_tokens(&ada, &tokens), write).await.unwrap();
    let id = first.user_id.unwrap();
    assert_eq!(
        first,
        ImportOutcome { user: UserImport::Inserted, user_id: Some(id), tokens: vec![Insert, Insert], groups: 2 }
    );
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().user_id, id);
    let listed = s.user_page(0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let u = &listed[0];
    assert_eq!(
        (u.id, u.uuid.as_deref(), u.profile.username.as_str(), u.profile.email.as_str()),
        (id, Some(UUID_A), "", "ada@example.com")
    );
    assert_eq!(
        (u.profile.first_name.as_str(), u.profile.last_name.as_str(), u.profile.is_staff, u.profile.is_superuser),
        ("Ada", "Lovelace", true, false)
    );
    assert_eq!(u.groups, ["editors", "staff"]);

    let again = s.import_user(&with_tokens(&ada, &tokens), write).await.unwrap();
    assert_eq!(again, outcome(UserImport::Present, Some(id), vec![Present, Present]));
    let again_dry = s.import_user(&with_tokens(&ada, &tokens), ImportMode::DryRun).await.unwrap();
    assert_eq!(again_dry, outcome(UserImport::Present, Some(id), vec![Present, Present]));
    // Another UUID with the same address (case aside) is someone else here.
    let twin = imported_uuid("00000000-0000-4000-8000-000000000001", "ADA@example.com");
    assert_eq!(s.import_user(&twin, write).await.unwrap(), outcome(UserImport::EmailTaken { id }, None, vec![]));
    // Blank usernames do not collide with each other.
    let bob = imported_uuid("00000000-0000-4000-8000-000000000002", "bob@example.com");
    let bob = s.import_user(&bob, write).await.unwrap();
    assert_eq!(bob.user, UserImport::Inserted);
    assert!(bob.user_id.unwrap() > id);
    let page = s.user_page(id, 1).await.unwrap();
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.user_id.unwrap()]);
    assert!(s.user_page(bob.user_id.unwrap(), 1).await.unwrap().is_empty());
}

async fn an_int_database_refuses_uuid_imports(s: &dyn Store) {
    user(s, "mallory").await;
    // Users without UUIDs and nothing recorded: an integer database.
    assert_eq!(
        s.import_id_type(IdType::Uuid, ImportMode::Write).await.unwrap(),
        IdTypeCheck::Mismatch { database: IdType::Int }
    );
    assert_eq!(s.import_id_type(IdType::Int, ImportMode::Write).await.unwrap(), IdTypeCheck::Recorded);
    assert_eq!(s.import_id_type(IdType::Int, ImportMode::Write).await.unwrap(), IdTypeCheck::Matches);
}

/// A test per behaviour and backend: `sqlite::name` always, `postgres::name` when
/// JWTD_TEST_DATABASE_URL is set (otherwise it passes without running).
fn link(digest: &str, user_id: i64, purpose: Purpose, password_hash: &str, expires_at: i64) -> AccountToken {
    AccountToken {
        digest: digest.into(),
        user_id,
        purpose,
        bound: password_fingerprint(password_hash),
        expires_at,
        used: false,
    }
}

fn redemption(digest: &str, user_id: i64, purpose: Purpose, now: i64, new_password: Option<&str>) -> Redemption {
    Redemption { digest: digest.into(), user_id, purpose, now: at(now), new_password: new_password.map(Into::into) }
}

async fn a_reset_link_works_once_until_it_expires_and_revokes_every_token(s: &dyn Store) {
    let ada = user(s, "ada").await;
    let bob = user(s, "bob").await;
    recorded(s, &record(&jti(1), ada.id, T0), "f1").await;
    s.insert_account_token(&link("d1", ada.id, Purpose::PasswordReset, "hash", T0 + 60)).await.unwrap();
    s.insert_account_token(&link("d2", ada.id, Purpose::PasswordReset, "hash", T0 + 60)).await.unwrap();
    s.insert_account_token(&link("old", ada.id, Purpose::PasswordReset, "other hash", T0 + 60)).await.unwrap();
    assert_eq!(s.account_token("d1").await.unwrap().unwrap().user_id, ada.id);
    assert_eq!(s.account_token("nope").await.unwrap(), None);
    // Another user's id, another purpose, a link bound to another password, an expired one.
    assert_eq!(
        s.redeem(&redemption("d1", bob.id, Purpose::PasswordReset, T0, Some("new"))).await.unwrap(),
        Redeemed::Invalid
    );
    assert_eq!(s.redeem(&redemption("d1", ada.id, Purpose::Activation, T0, None)).await.unwrap(), Redeemed::Invalid);
    assert_eq!(
        s.redeem(&redemption("old", ada.id, Purpose::PasswordReset, T0, Some("new"))).await.unwrap(),
        Redeemed::Invalid
    );
    assert_eq!(
        s.redeem(&redemption("d1", ada.id, Purpose::PasswordReset, T0 + 60, Some("new"))).await.unwrap(),
        Redeemed::Invalid
    );
    assert_eq!(s.user_by_id(ada.id).await.unwrap().unwrap().password, "hash", "nothing refused changed anything");
    assert_eq!(
        s.redeem(&redemption("d1", ada.id, Purpose::PasswordReset, T0 + 59, Some("new"))).await.unwrap(),
        Redeemed::Done
    );
    let after = s.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!(after.password, "new");
    assert_eq!(after.tokens_valid_after, T0 + 60, "revoked like a password change");
    assert!(s.refresh_row(&jti(1)).await.unwrap().unwrap().blacklisted.is_some());
    // Used, and every other reset link of the user with it.
    assert_eq!(s.account_token("d1").await.unwrap(), None);
    assert_eq!(s.account_token("d2").await.unwrap(), None);
    assert_eq!(
        s.redeem(&redemption("d1", ada.id, Purpose::PasswordReset, T0 + 59, Some("x"))).await.unwrap(),
        Redeemed::Invalid
    );
}

async fn an_activation_link_activates_once_then_is_stale(s: &dyn Store) {
    let new = NewUser {
        username: "eve".into(),
        password_hash: "hash".into(),
        email: "eve@example.org".into(),
        uuid: None,
        unique_email: false,
        now: at(T0),
    };
    let eve = s.create_user_awaiting_activation(new).await.unwrap();
    assert!(!eve.profile.is_active);
    assert!(!s.user_by_id(eve.id).await.unwrap().unwrap().profile.is_active);
    assert!(s.awaits_activation(eve.id).await.unwrap());
    s.insert_account_token(&link("a1", eve.id, Purpose::Activation, "hash", T0 + 60)).await.unwrap();
    assert_eq!(
        s.redeem(&redemption("a1", eve.id, Purpose::PasswordReset, T0, Some("x"))).await.unwrap(),
        Redeemed::Invalid
    );
    assert_eq!(
        s.redeem(&redemption("a1", eve.id, Purpose::Activation, T0 + 60, None)).await.unwrap(),
        Redeemed::Invalid
    );
    assert_eq!(s.redeem(&redemption("a1", eve.id, Purpose::Activation, T0, None)).await.unwrap(), Redeemed::Done);
    assert!(s.user_by_id(eve.id).await.unwrap().unwrap().profile.is_active);
    assert!(!s.awaits_activation(eve.id).await.unwrap());
    assert_eq!(s.redeem(&redemption("a1", eve.id, Purpose::Activation, T0, None)).await.unwrap(), Redeemed::Stale);
    // An operator's decision ends the wait: a deactivated user cannot activate themselves.
    let new = NewUser { username: "mal".into(), email: "mal@example.org".into(), ..eve_like() };
    let mal = s.create_user_awaiting_activation(new).await.unwrap();
    s.insert_account_token(&link("m1", mal.id, Purpose::Activation, "hash", T0 + 60)).await.unwrap();
    s.set_active(mal.id, false, at(T0)).await.unwrap();
    assert!(!s.awaits_activation(mal.id).await.unwrap());
    assert_eq!(s.redeem(&redemption("m1", mal.id, Purpose::Activation, T0, None)).await.unwrap(), Redeemed::Stale);
    assert!(!s.user_by_id(mal.id).await.unwrap().unwrap().profile.is_active);
    // Expired links are flushed; deleting a user deletes theirs.
    assert!(s.flush_expired(at(T0 + 61), 100).await.unwrap() >= 2);
    assert_eq!(s.account_token("a1").await.unwrap(), None);
    s.insert_account_token(&link("m2", mal.id, Purpose::Activation, "hash", T0 + 600)).await.unwrap();
    s.delete_user(mal.id, at(T0)).await.unwrap();
    assert_eq!(s.account_token("m2").await.unwrap(), None);
}

fn eve_like() -> NewUser {
    NewUser {
        username: String::new(),
        password_hash: "hash".into(),
        email: String::new(),
        uuid: None,
        unique_email: false,
        now: at(T0),
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::SqliteStore::open(&dir.path().join("jwtd.db")).unwrap();
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDatabase::create().await else { return };
                    super::$name(&db.store).await;
                    db.drop_database().await;
                }
            )*
        }
    };
}

contract! {
    ping_answers,
    users_are_created_found_and_listed,
    a_taken_username_is_refused,
    e_mail_users_with_uuids_are_found_case_insensitively,
    a_taken_email_is_refused_in_any_case,
    concurrent_sign_ups_of_one_email_create_one_user,
    the_user_id_type_is_fixed_by_the_first_call,
    a_database_with_integer_users_stays_integer,
    own_claims_and_groups_are_kept,
    revocations_name_the_users_uuid,
    users_are_deactivated_and_deleted_with_their_tokens,
    last_login_and_password_hash_are_updated,
    a_secret_is_generated_once,
    a_recorded_refresh_token_reads_back,
    blacklisting_is_idempotent_and_records_unseen_tokens,
    a_refresh_check_reads_the_user_and_the_token_row,
    rotation_creates_one_successor_and_hands_it_back_in_grace,
    reuse_after_grace_revokes_the_family,
    rotation_without_blacklisting_leaves_the_presented_token_usable,
    rotation_is_refused_after_session_end_and_for_inactive_or_missing_users,
    rotation_of_a_blacklisted_or_revoked_token_is_refused,
    an_unseen_token_is_recorded_when_rotated,
    concurrent_rotations_create_one_successor,
    concurrent_rotations_of_an_unseen_token_create_one_successor,
    a_never_seen_token_rotated_and_logged_out_at_once_ends_blacklisted,
    revoke_all_blacklists_every_token_and_logs_in_order,
    a_password_change_revokes_every_token,
    a_sign_in_is_recorded_only_while_the_user_is_as_checked,
    a_grace_retry_of_a_token_whose_successor_was_rotated_is_blacklisted_and_revokes_nothing,
    an_unrecorded_token_of_a_users_own_session_is_refused_and_others_adopted,
    sessions_are_listed_revoked_one_or_all_but_one_and_touched,
    reuse_logs_the_revocation_of_the_session,
    expired_rows_are_flushed_in_batches,
    an_import_keeps_ids_and_only_adds,
    an_import_of_uuid_users_gives_new_ids_and_keeps_uuids_and_groups,
    an_int_database_refuses_uuid_imports,
    a_reset_link_works_once_until_it_expires_and_revokes_every_token,
    an_activation_link_activates_once_then_is_stale,
}

/// A fresh database on the server named by JWTD_TEST_DATABASE_URL.
pub(crate) struct TestDatabase {
    pub(crate) store: PgStore,
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let base = match head[authority_start..].find('/') {
        Some(slash) => &head[..authority_start + slash],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDatabase {
    pub(crate) async fn create() -> Option<TestDatabase> {
        let admin_url = std::env::var("JWTD_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("JWTD_TEST_DATABASE_URL does not answer: {e}"));
        tokio::spawn(connection);
        let name = format!("jwtd_test_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let options = PgOptions { max_connections: 16, startup_wait: Duration::from_secs(5), tls: Default::default() };
        let url = with_database(&admin_url, &name);
        let store = PgStore::connect(&url, options).await.unwrap();
        Some(TestDatabase { store, admin, name, url })
    }

    /// A connection of its own to the test database, beside the store's.
    async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// The states of the store's connections (`pg_stat_activity`), once none is running a
    /// statement: `idle`, or `idle in transaction` for one left inside a transaction.
    async fn settled_store_connections(&self) -> Vec<String> {
        for _ in 0..10_000 {
            let rows = self
                .admin
                .query(
                    "SELECT state FROM pg_stat_activity WHERE datname = $1 AND application_name = 'jwtd' ORDER BY pid",
                    &[&self.name],
                )
                .await
                .unwrap();
            let states: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if !states.iter().any(|s| s == "active") {
                return states;
            }
        }
        panic!("the store's connections kept running statements");
    }

    /// Returns once one of the store's connections waits for a lock.
    async fn until_the_store_waits_for_a_lock(&self) {
        for _ in 0..10_000 {
            let sql = "SELECT count(*) FROM pg_stat_activity
                       WHERE datname = $1 AND application_name = 'jwtd' AND wait_event_type = 'Lock'";
            let waiting: i64 = self.admin.query_one(sql, &[&self.name]).await.unwrap().get(0);
            if waiting > 0 {
                return;
            }
        }
        panic!("the store never waited for the lock");
    }

    pub(crate) async fn drop_database(self) {
        self.store.close();
        self.admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

#[test]
fn test_urls_name_the_fresh_database() {
    assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
    assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

/// Start-up against a server that is not there gives up after the wait, as "unavailable",
/// naming the database without its password.
#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_after_the_startup_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://jwtd:s3cret@127.0.0.1:{port}/jwtd");
    let started = std::time::Instant::now();
    let options = PgOptions { max_connections: 2, startup_wait: Duration::from_millis(700), tls: Default::default() };
    let err = PgStore::connect(&url, options).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(5), "{waited:?}");
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    assert!(text.contains(&format!("postgres://jwtd:****@127.0.0.1:{port}/jwtd")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// Ada, with token 1 (family "fam") never rotated, on a store whose connection has prepared the
/// rotation's statements by rotating token 5 (another family): its next rotation pipelines.
async fn ready_to_pipeline(s: &PgStore) -> User {
    let ada = user(s, "ada").await;
    recorded(s, &record(&jti(1), ada.id, T0), "fam").await;
    recorded(s, &record(&jti(5), ada.id, T0), "other").await;
    s.rotate(&rotate_req(record(&jti(5), ada.id, T0), &jti(6), at(T0 + 60))).await.unwrap();
    ada
}

/// PostgreSQL only: a rotation sends BEGIN and its locking reads in one flight, its writes and
/// COMMIT in another. Dropped while waiting mid-flight (a request given up), it leaves its
/// pooled connection outside any transaction, having written nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_dropped_mid_flight_leaves_no_transaction_open() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = &db.store;
    let ada = ready_to_pipeline(s).await;
    let holder = db.connect().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&ada.id]).await.unwrap();
    let req = rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60));
    tokio::select! {
        r = s.rotate(&req) => {
            panic!("rotated while another transaction held the user's row: {r:?}")
        }
        () = db.until_the_store_waits_for_a_lock() => {}
    }
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(db.settled_store_connections().await, ["idle"]);
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().replaced_by, None, "nothing written");
    assert_eq!(s.refresh_row(&jti(2)).await.unwrap(), None);
    let again = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await.unwrap();
    assert!(matches!(again, Rotation::Rotated(ref r) if r.jti == jti(2)), "{again:?}");
    db.drop_database().await;
}

/// PostgreSQL only: a write that fails in the flight of the writes and COMMIT rolls the whole
/// rotation back, is the error reported (not the aborted transaction's that follow it), and
/// leaves the connection outside any transaction, ready for the next rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_mid_flight_rolls_the_rotation_back() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = &db.store;
    let ada = ready_to_pipeline(s).await;
    let other = db.connect().await;
    let limit = format!("ALTER TABLE refresh_tokens ADD CONSTRAINT too_late CHECK (issued_at < {})", T0 + 100);
    other.batch_execute(&limit).await.unwrap();
    let err = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 100))).await.unwrap_err();
    let StoreError::Database(e) = err else { panic!("expected a database error, got {err:?}") };
    let code = e.downcast_ref::<tokio_postgres::Error>().and_then(tokio_postgres::Error::code);
    assert_eq!(code, Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION), "{e}");
    assert_eq!(db.settled_store_connections().await, ["idle"]);
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().replaced_by, None, "rolled back whole");
    assert_eq!(s.refresh_row(&jti(2)).await.unwrap(), None);
    other.batch_execute("ALTER TABLE refresh_tokens DROP CONSTRAINT too_late").await.unwrap();
    let again = s.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 100))).await.unwrap();
    assert!(matches!(again, Rotation::Rotated(ref r) if r.jti == jti(2)), "{again:?}");
    db.drop_database().await;
}

/// PostgreSQL only: a deadlock reported inside the first flight (the user's row locked, the
/// token's row held by a transaction that then waits for the user's row) is rolled back and
/// retried on the same connection, and the rotation goes through once the other transaction ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_mid_flight_is_retried() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = &db.store;
    let ada = ready_to_pipeline(s).await;
    let holder = db.connect().await;
    // The rotation's deadlock check (after PostgreSQL's default deadlock_timeout, 1 s) runs first
    // and finds the cycle: the rotation is the transaction aborted, not this one.
    holder.batch_execute("SET deadlock_timeout = '60s'; BEGIN").await.unwrap();
    holder.execute("SELECT 1 FROM refresh_tokens WHERE jti = $1 FOR UPDATE", &[&jti(1)]).await.unwrap();
    let store = s.clone();
    let rotation =
        tokio::spawn(async move { store.rotate(&rotate_req(record(&jti(1), ada.id, T0), &jti(2), at(T0 + 60))).await });
    db.until_the_store_waits_for_a_lock().await;
    holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&ada.id]).await.unwrap();
    holder.batch_execute("COMMIT").await.unwrap();
    let rotated = rotation.await.unwrap().unwrap();
    assert!(matches!(rotated, Rotation::Rotated(ref r) if r.jti == jti(2)), "{rotated:?}");
    assert_eq!(s.refresh_row(&jti(1)).await.unwrap().unwrap().replaced_by, Some(jti(2)));
    assert_eq!(db.settled_store_connections().await, ["idle"]);
    db.drop_database().await;
}
