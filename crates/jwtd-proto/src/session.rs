//! Sessions in tokens: which session (refresh-token family) a token belongs to.
//!
//! jwtd writes no `sid` claim (its tokens hold exactly SimpleJWT's claims); the session id rides
//! in the `jti` instead, which stays a valid UUID4 in hex as SimpleJWT's checks expect:
//!
//! - a session id is 16 lowercase hex digits: the first 16 of a fresh UUID4's simple form (so
//!   its 13th digit is `4`, the UUID version);
//! - every token jwtd issues in a session has `jti` = the session id followed by the last 16 hex
//!   digits of another fresh UUID4, whose first is one of `8`, `9`, `a`, `b` (the UUID variant):
//!   62 random bits per token within its session;
//! - the session of a presented token is its `sid` claim when that is a string, else the first
//!   16 digits of a `jti` of 32 lowercase hex digits, else none ([`session_of`]). Tokens
//!   issued by SimpleJWT get a "session" that no jwtd family names, which is harmless.
//!
//! Randomness is passed in (pass `uuid::Uuid::new_v4()`): this crate does no I/O.

use uuid::Uuid;

/// The length of a session id, in hex digits.
pub const SESSION_ID_LEN: usize = 16;

/// A new session id from a fresh random UUID (version 4): its first 16 hex digits.
pub fn new_session_id(random: Uuid) -> String {
    let mut id = random.simple().to_string();
    id.truncate(SESSION_ID_LEN);
    id
}

/// The `jti` of a new token of `session`: the session id, then the last 16 hex digits of the
/// fresh random UUID (version 4) `random`. A session that is not a session id (a `sid` claim of
/// another shape) cannot ride in a jti: the token then gets `random` as its jti.
pub fn jti_in_session(session: Option<&str>, random: Uuid) -> String {
    let simple = random.simple().to_string();
    match session {
        Some(id) if is_session_id(id) => format!("{id}{}", &simple[SESSION_ID_LEN..]),
        _ => simple,
    }
}

/// Whether `s` has the shape of a session id: 16 lowercase hex digits.
pub fn is_session_id(s: &str) -> bool {
    s.len() == SESSION_ID_LEN && is_lower_hex(s)
}

/// The session of a presented token from its `sid` claim and its `jti`: `sid` when it is a
/// string, else the first 16 digits of a jti of 32 lowercase hex digits (a UUID in simple form),
/// else none.
pub fn session_of<'a>(sid: Option<&'a serde_json::Value>, jti: &'a str) -> Option<&'a str> {
    if let Some(sid) = sid.and_then(serde_json::Value::as_str) {
        return Some(sid);
    }
    (jti.len() == 2 * SESSION_ID_LEN && is_lower_hex(jti)).then(|| &jti[..SESSION_ID_LEN])
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn uuid4(n: u128) -> Uuid {
        // A version-4, variant-1 UUID from any bits, as `Uuid::new_v4` makes them.
        uuid::Builder::from_random_bytes(n.to_be_bytes()).into_uuid()
    }

    #[test]
    fn a_session_id_is_the_first_16_hex_digits_of_a_uuid4() {
        let id = new_session_id(uuid4(u128::MAX));
        assert_eq!(id, "ffffffffffff4fff");
        assert!(is_session_id(&id));
        assert_eq!(id.as_bytes()[12], b'4', "the UUID's version digit");
        assert!(!is_session_id("ffffffffffff4ff"), "15 digits");
        assert!(!is_session_id("FFFFFFFFFFFF4FFF"), "uppercase");
        assert!(!is_session_id("ffffffffffff4ffg"));
    }

    #[test]
    fn a_jti_in_a_session_is_a_uuid4_in_hex_starting_with_the_session() {
        for bits in [0u128, u128::MAX, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef] {
            let session = new_session_id(uuid4(bits));
            let jti = jti_in_session(Some(&session), uuid4(!bits));
            assert_eq!(jti.len(), 32);
            assert!(jti.starts_with(&session), "{jti}");
            let parsed = Uuid::try_parse(&jti).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{jti}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{jti}");
            assert!(matches!(jti.as_bytes()[16], b'8' | b'9' | b'a' | b'b'), "{jti}");
            assert_eq!(parsed.simple().to_string(), jti, "lowercase simple form");
            assert_eq!(session_of(None, &jti), Some(session.as_str()));
        }
    }

    #[test]
    fn tokens_of_one_session_differ_in_their_tails() {
        let session = new_session_id(uuid4(7));
        let a = jti_in_session(Some(&session), uuid4(1));
        let b = jti_in_session(Some(&session), uuid4(2));
        assert_ne!(a, b);
        assert_eq!(a[..16], b[..16]);
    }

    #[test]
    fn a_session_that_is_no_session_id_leaves_the_jti_random() {
        let random = uuid4(42);
        assert_eq!(jti_in_session(Some("not-a-session"), random), random.simple().to_string());
        assert_eq!(jti_in_session(None, random), random.simple().to_string());
    }

    #[test]
    fn the_session_of_a_token_is_its_sid_else_its_jti_prefix() {
        let jti = "0123456789abcdef89abcdef01234567";
        assert_eq!(session_of(Some(&json!("device-7")), jti), Some("device-7"), "sid wins");
        assert_eq!(session_of(Some(&json!(7)), jti), Some("0123456789abcdef"), "a non-string sid is ignored");
        assert_eq!(session_of(None, jti), Some("0123456789abcdef"));
        assert_eq!(session_of(None, "0123456789ABCDEF89abcdef01234567"), None, "uppercase");
        assert_eq!(session_of(None, "0123456789abcdef"), None, "too short");
        assert_eq!(session_of(None, "01234567-89ab-cdef-89ab-cdef01234567"), None, "hyphenated");
        assert_eq!(session_of(None, ""), None);
    }
}
