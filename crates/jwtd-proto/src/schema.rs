//! OpenAPI schemas of request fields, as DRF's `CharField` reads them (feature `openapi`).
//!
//! A field is a string or a number (a number is taken as its decimal text); booleans, lists,
//! objects and `null` are refused. The text is trimmed of Unicode White_Space (Rust's `trim`),
//! and what is left must not be empty nor hold a NUL character. The patterns say exactly that,
//! with the server's own whitespace set spelled out (`\s` differs between regex dialects), and
//! length limits apply to the trimmed text, so they live in the patterns too.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// Unicode White_Space, what `str::trim` removes: the body of a character class.
macro_rules! ws {
    () => {
        r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Not blank once trimmed, no NUL.
const NOT_BLANK: &str = concat!(r"^[^\x00]*[^", ws!(), r"\x00][^\x00]*$");
/// 1 to 150 characters once trimmed, no NUL.
const USERNAME: &str =
    concat!("^[", ws!(), r"]*[^", ws!(), r"\x00](?:[^\x00]{0,148}[^", ws!(), r"\x00])?[", ws!(), "]*$");
/// At least 8 characters once trimmed, no NUL.
const EIGHT_OR_MORE: &str = concat!("^[", ws!(), r"]*[^", ws!(), r"\x00][^\x00]{6,}[^", ws!(), r"\x00][", ws!(), "]*$");
/// What an e-mail address never holds besides a second `@`: controls and whitespace.
macro_rules! not_in_address {
    () => {
        r"@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Once trimmed, at most 254 characters: one `@` between a non-empty local part and a domain
/// holding a dot but neither starting nor ending with one; no whitespace or control character.
#[rustfmt::skip]
const EMAIL: &str = concat!(
    "^[", ws!(), "]*(?=[^", ws!(), "]{1,254}[", ws!(), "]*$)",
    "[^", not_in_address!(), "]+@",
    "[^.", not_in_address!(), "][^", not_in_address!(), r"]*\.[^", not_in_address!(), "]*[^.", not_in_address!(), "]",
    "[", ws!(), "]*$"
);

fn string_or_number(description: &str, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type([Type::String, Type::Number].into_iter().collect::<utoipa::openapi::schema::SchemaType>())
        .description(Some(description))
        .pattern(Some(pattern))
}

/// Any required text field: a non-blank string (or a number).
pub fn char_field() -> Object {
    string_or_number("Text (or a number, read as its decimal text); trimmed, must not be blank.", NOT_BLANK).build()
}

/// The username of a new account: at most 150 characters.
pub fn new_username() -> Object {
    string_or_number("Case-sensitive username of at most 150 characters (a number is read as its text).", USERNAME)
        .build()
}

/// A new password: at least 8 characters once trimmed.
pub fn new_password() -> Object {
    // No `minLength`: the pattern holds the limit (on the trimmed text), and a tool merging the
    // two keywords into one pattern may rewrite the wrong quantifier.
    string_or_number("At least 8 characters once trimmed (a number is read as its text).", EIGHT_OR_MORE).build()
}

/// An optional e-mail address; when present, a well-formed address of at most 254 characters.
pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Optional; when sent, an e-mail address of at most 254 characters."))
        .pattern(Some(EMAIL))
        .build()
}

/// A required e-mail address (reset and activation-resend requests): well-formed, at most 254
/// characters.
pub fn account_email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An e-mail address of at most 254 characters."))
        .pattern(Some(EMAIL))
        .build()
}

/// A token in an answer: a compact JWS, three base64url parts.
pub fn token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A compact JWS: `header.payload.signature`, each base64url."))
        .pattern(Some(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"))
        .build()
}
