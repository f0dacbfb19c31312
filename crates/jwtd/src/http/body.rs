//! Request bodies as DRF parses them: JSON or form-encoded, a size limit, and CharField rules
//! for each field (required, not null, not blank, a string or number, trimmed).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header;
use jwtd_proto::messages::{BLANK, NOT_A_STRING, NO_DATA, NULL, NULL_CHARACTERS, REQUIRED};
use serde_json::{Map, Value};

use super::ApiError;
use crate::config::Settings;
use crate::service::FieldErrors;

/// When the request body must have arrived; set per request by the transport's limits layer.
/// A client still sending at that point gets 408 (its fault), never the 503 of a slow server.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// A parsed request body: the fields of a JSON object or of a form. `Debug` shows the field
/// names only: their values are passwords and tokens.
#[derive(Default)]
pub struct Input {
    fields: Map<String, Value>,
    errors: FieldErrors,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("errors", &self.errors)
            .finish()
    }
}

/// Python's name for a JSON value's type, as DRF's "Expected a dictionary, but got …".
fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

impl Input {
    /// Parses `bytes` sent as `content_type` (the media type without parameters, lower case).
    pub async fn parse(content_type: &str, full_type: &str, bytes: &[u8]) -> Result<Input, ApiError> {
        if bytes.is_empty() {
            // DRF: an empty body is an empty dictionary, whatever its declared type.
            return Ok(Input::default());
        }
        let fields = match content_type {
            "application/json" => match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(map)) => map,
                Ok(Value::Null) => {
                    let mut errors = FieldErrors::default();
                    errors.add("non_field_errors", NO_DATA);
                    return Err(ApiError::Fields(errors));
                }
                Ok(other) => return Err(ApiError::NotAnObject(python_type(&other))),
                Err(e) => return Err(ApiError::JsonParse(e.to_string())),
            },
            "application/x-www-form-urlencoded" => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(bytes).map_err(|_| ApiError::FormParse)?;
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k, Value::String(v)); // the last value wins, as QueryDict.get
                }
                map
            }
            "multipart/form-data" => multipart_fields(full_type, bytes).await?,
            other => return Err(ApiError::UnsupportedMediaType(other.to_string())),
        };
        Ok(Input { fields, errors: FieldErrors::default() })
    }

    /// Whether the body has a non-empty value for `name` (absent, `null` and `""` are empty).
    pub fn has_value(&self, name: &str) -> bool {
        match self.fields.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        }
    }

    /// A required CharField.
    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.fields.get(name) {
            None => {
                self.errors.add(name, REQUIRED);
                None
            }
            Some(_) => self.optional_string(name),
        }
    }

    /// An optional CharField: absent is `None`, present is checked like a required one.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        let text = match self.fields.get(name)? {
            Value::Null => Err(NULL),
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(NOT_A_STRING),
        };
        let trimmed = text.map(|s| s.trim().to_string());
        match trimmed {
            Ok(s) if s.is_empty() => self.errors.add(name, BLANK),
            Ok(s) if s.contains('\0') => self.errors.add(name, NULL_CHARACTERS),
            Ok(s) => return Some(s),
            Err(message) => self.errors.add(name, message),
        }
        None
    }

    /// Required CharFields, read in the order given (DRF's 400 body lists every field's error):
    /// their values, in that order.
    pub fn required<const N: usize>(mut self, names: [&str; N]) -> Result<[String; N], ApiError> {
        let values = names.map(|name| self.string(name));
        let values = values.iter().all(Option::is_some).then(|| values.map(Option::unwrap_or_default));
        self.finish(values)
    }

    /// Ends field extraction: the values when every field was fine, else DRF's 400 body.
    pub fn finish<T>(self, values: Option<T>) -> Result<T, ApiError> {
        match values {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ => Err(ApiError::Fields(self.errors)),
        }
    }
}

/// The text fields of a multipart body (DRF's MultiPartParser); file parts are ignored.
async fn multipart_fields(full_type: &str, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let boundary = multer::parse_boundary(full_type).map_err(|_| ApiError::FormParse)?;
    let body = bytes.to_vec();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut map = Map::new();
    while let Some(field) = multipart.next_field().await.map_err(|_| ApiError::FormParse)? {
        let Some(name) = field.name().map(String::from) else {
            continue;
        };
        if field.file_name().is_some() {
            continue;
        }
        let text = field.text().await.map_err(|_| ApiError::FormParse)?;
        map.insert(name, Value::String(text));
    }
    Ok(map)
}

impl<S> FromRequest<S> for Input
where
    S: Send + Sync,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = Arc::<Settings>::from_ref(state).max_body_bytes;
        let full_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let content_type = full_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::BodyTooLarge);
        }
        let deadline = req.extensions().get::<BodyDeadline>().copied();
        let read = axum::body::to_bytes(req.into_body(), limit);
        let read = match deadline {
            Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| ApiError::BodyTimeout)?,
            None => read.await,
        };
        let bytes = read.map_err(|e| {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::BodyTooLarge
            } else {
                ApiError::BodyRead
            }
        })?;
        Input::parse(&content_type, &full_type, &bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(content_type: &str, body: &[u8]) -> Result<Input, ApiError> {
        futures::executor::block_on(Input::parse(content_type, content_type, body))
    }

    fn field(body: &str, name: &str) -> Result<String, ApiError> {
        let mut input = parse("application/json", body.as_bytes())?;
        let v = input.string(name);
        input.finish(v)
    }

    fn message(r: Result<String, ApiError>) -> String {
        match r {
            Err(ApiError::Fields(e)) => e.0[0].1[0].clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn char_field_rules() {
        assert_eq!(field(r#"{"a": " x "}"#, "a").unwrap(), "x");
        assert_eq!(field(r#"{"a": 12}"#, "a").unwrap(), "12");
        assert_eq!(message(field(r#"{}"#, "a")), REQUIRED);
        assert_eq!(message(field(r#"{"a": null}"#, "a")), NULL);
        assert_eq!(message(field(r#"{"a": "  "}"#, "a")), BLANK);
        assert_eq!(message(field(r#"{"a": true}"#, "a")), NOT_A_STRING);
        assert_eq!(message(field(r#"{"a": []}"#, "a")), NOT_A_STRING);
    }

    #[test]
    fn required_fields_come_in_order_and_every_missing_one_is_named() {
        let input = parse("application/json", br#"{"b": " 2 ", "a": "1"}"#).unwrap();
        assert_eq!(input.required(["a", "b"]).unwrap(), ["1", "2"]);
        let input = parse("application/json", br#"{"b": "", "c": "3"}"#).unwrap();
        match input.required(["a", "b", "c"]) {
            Err(ApiError::Fields(e)) => {
                let named: Vec<_> = e.0.iter().map(|(name, messages)| (name.as_str(), messages[0].as_str())).collect();
                assert_eq!(named, [("a", REQUIRED), ("b", BLANK)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_objects_and_bad_json() {
        assert!(matches!(parse("application/json", b"[]"), Err(ApiError::NotAnObject("list"))));
        assert!(matches!(parse("application/json", b"3.5"), Err(ApiError::NotAnObject("float"))));
        assert!(matches!(parse("application/json", b"{"), Err(ApiError::JsonParse(_))));
        assert!(matches!(parse("text/plain", b"x"), Err(ApiError::UnsupportedMediaType(t)) if t == "text/plain"));
        assert!(parse("text/plain", b"").is_ok());
    }
}
