//! [`RequestBuilder`]: an authorized request whose body is buffered, so it can be sent again
//! after a refresh.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Request, Response};
use serde::Serialize;
use url::Url;

use crate::client::Client;
use crate::error::Error;

/// A request under construction; made by [`Client::request`], sent by [`RequestBuilder::send`].
///
/// Errors (a path outside the base URL, a body that does not serialize) are reported by `send`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: Result<Url, Error>,
    headers: HeaderMap,
    body: Option<Bytes>,
    timeout: Option<Duration>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, method: Method, url: Result<Url, Error>) -> Self {
        RequestBuilder { client, method, url, headers: HeaderMap::new(), body: None, timeout: None }
    }

    /// Adds a header. `Authorization` is always replaced by the session's.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds the query parameters of `query` (serialized as a form, e.g. a struct or `&[(k, v)]`).
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        if let Ok(url) = &mut self.url {
            match serde_urlencoded::to_string(query) {
                Ok(pairs) if pairs.is_empty() => {}
                Ok(pairs) => {
                    let joined = match url.query() {
                        Some(existing) if !existing.is_empty() => format!("{existing}&{pairs}"),
                        _ => pairs,
                    };
                    url.set_query(Some(&joined));
                }
                Err(e) => self.url = Err(Error::Body(Box::new(e))),
            }
        }
        self
    }

    /// A JSON body; sets `Content-Type: application/json` unless already set.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Self {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Body(Box::new(e)));
        self.with_body(bytes, "application/json")
    }

    /// A form body; sets `Content-Type: application/x-www-form-urlencoded` unless already set.
    pub fn form<T: Serialize + ?Sized>(self, body: &T) -> Self {
        let bytes = serde_urlencoded::to_string(body).map(String::into_bytes).map_err(|e| Error::Body(Box::new(e)));
        self.with_body(bytes, "application/x-www-form-urlencoded")
    }

    /// A raw body, kept in memory so that it can be sent twice.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A limit for this request (each of its attempts), instead of the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn with_body(mut self, bytes: Result<Vec<u8>, Error>, content_type: &'static str) -> Self {
        match bytes {
            Ok(bytes) => {
                self.headers.entry(CONTENT_TYPE).or_insert(HeaderValue::from_static(content_type));
                self.body = Some(bytes.into());
            }
            Err(e) => self.url = Err(e),
        }
        self
    }

    /// Sends the request with `Authorization: Bearer <access token>` and returns the response,
    /// whatever its status. The access token is refreshed first when it is about to expire; on
    /// a 401 it is refreshed and the request sent once more, and that answer is returned.
    ///
    /// Fails with [`Error::SessionExpired`] when the server refuses the refresh token,
    /// [`Error::NotSignedIn`] without a session, [`Error::Http`] when the network fails.
    pub async fn send(self) -> Result<Response, Error> {
        let RequestBuilder { client, method, url, headers, body, timeout } = self;
        let url = url?;
        let build = |authorization: HeaderValue| {
            let mut request = Request::new(method.clone(), url.clone());
            *request.headers_mut() = headers.clone();
            request.headers_mut().insert(AUTHORIZATION, authorization);
            *request.body_mut() = body.clone().map(Into::into);
            *request.timeout_mut() = timeout;
            request
        };
        client.execute(build).await
    }
}
