//! The public id of a user, as tokens and answers carry it (SPEC §3): an integer
//! (`USER_ID_TYPE=int`) or a UUID written as Django's `str(uuid)` (`uuid`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A user id as it travels: JSON integer for [`UserId::Int`], lowercase hyphenated string for
/// [`UserId::Uuid`]. Reading accepts an integer, a decimal string (SimpleJWT 5.5 writes ids as
/// strings) or a UUID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserId {
    /// An integer id (Django's `AutoField`).
    Int(i64),
    /// A UUID id (Django's `UUIDField`).
    Uuid(uuid::Uuid),
}

impl UserId {
    /// The integer id, when it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            UserId::Int(id) => Some(*id),
            UserId::Uuid(_) => None,
        }
    }

    /// The id as a JSON value: an integer, or the UUID's text. With `as_string` (the `sub`
    /// claim, RFC 7519) an integer is written as its decimal text too.
    pub fn to_json(&self, as_string: bool) -> serde_json::Value {
        match self {
            UserId::Int(id) if !as_string => (*id).into(),
            other => other.to_string().into(),
        }
    }

    /// Reads an id from JSON: an integer, a decimal string, or a UUID string; anything else
    /// (a float, an object, a malformed UUID) is `None`.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::Number(n) => n.as_i64().map(UserId::Int),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserId::Int(id) => write!(f, "{id}"),
            UserId::Uuid(id) => write!(f, "{}", id.hyphenated()),
        }
    }
}

/// Why a text is not a user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadUserId;

impl fmt::Display for BadUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an integer or UUID user id")
    }
}

impl std::error::Error for BadUserId {}

impl FromStr for UserId {
    type Err = BadUserId;

    /// A decimal integer (at most 19 digits, optional `-`), or a UUID in any form Python's
    /// `uuid.UUID` reads (hyphenated or not, any case, braces or `urn:uuid:`).
    fn from_str(s: &str) -> Result<Self, BadUserId> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if !digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(UserId::Int).map_err(|_| BadUserId);
        }
        uuid::Uuid::try_parse(s).map(UserId::Uuid).map_err(|_| BadUserId)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UserId::Int(id) => serializer.serialize_i64(*id),
            UserId::Uuid(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        UserId::from_json(&value).ok_or_else(|| serde::de::Error::custom(BadUserId))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for UserId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".into()))),
            )
            .description(Some("User id: an integer, or a UUID string when USER_ID_TYPE=uuid."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for UserId {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_travel_as_integers_or_django_uuid_text() {
        let u = uuid::Uuid::from_u128(0xABCD);
        assert_eq!(serde_json::to_value(UserId::Int(7)).unwrap(), json!(7));
        assert_eq!(serde_json::to_value(UserId::Uuid(u)).unwrap(), json!("00000000-0000-0000-0000-00000000abcd"));
        assert_eq!(UserId::Int(7).to_json(true), json!("7"));
        assert_eq!(UserId::from_json(&json!("7")), Some(UserId::Int(7)));
        assert_eq!(UserId::from_json(&json!("00000000-0000-0000-0000-00000000ABCD")), Some(UserId::Uuid(u)));
        assert_eq!(UserId::from_json(&json!("not-a-uuid")), None);
        assert_eq!(UserId::from_json(&json!(1.5)), None);
        assert_eq!(UserId::from_json(&json!({"a": 1})), None);
    }
}
