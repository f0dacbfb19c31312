//! The one way this crate reads from jwtd over HTTP (its JWKS for [`RemoteKeys`](crate::RemoteKeys),
//! the pages of its revocation feed for [`RevocationFeed`](crate::RevocationFeed)): what is read
//! decides which tokens are accepted, so the URL must be `https://` (plain `http://` only to a
//! loopback address, for tests and a sidecar on the same host), redirects are not followed (an
//! answer of 3xx is a failed fetch), and a body is read up to a limit, so a hostile or broken
//! endpoint cannot make the service buffer without end.

use std::time::Duration;

use axum::http::HeaderMap;

/// Why a document could not be fetched from jwtd (its JWKS, a page of its revocation feed).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
    #[error("{url}: jwtd-verify reads over https only (http only from a loopback address)")]
    Insecure { url: String },
    #[error("fetching {url} failed")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url} answered something that is no {expected}")]
    Body { url: String, expected: &'static str },
}

/// Whether `url` may be read: `https://`, or `http://` to a loopback host.
pub(crate) fn is_secure_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else { return false };
    match parsed.scheme() {
        "https" => true,
        "http" => parsed.host_str().is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// One URL of jwtd's and the client that reads it under the rules above.
#[derive(Debug)]
pub(crate) struct Source {
    url: String,
    client: reqwest::Client,
    max_bytes: usize,
}

impl Source {
    /// `url`, refused unless secure; each fetch gives up after `timeout`, and reads at most
    /// `max_bytes` of body.
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        user_agent: &'static str,
        max_bytes: usize,
    ) -> Result<Self, FetchError> {
        if !is_secure_url(&url) {
            return Err(FetchError::Insecure { url });
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(FetchError::Client)?;
        Ok(Source { url, client, max_bytes })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// GETs the URL (the request as `request` completes it: query, headers) and reads the answer
    /// of a 2xx status: its headers and its body, at most `max_bytes`.
    pub(crate) async fn get(
        &self,
        request: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Vec<u8>), FetchError> {
        let failed = |source| FetchError::Fetch { url: self.url.clone(), source };
        let too_large = || FetchError::TooLarge { url: self.url.clone(), limit: self.max_bytes };
        let mut response = request(self.client.get(&self.url)).send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status { url: self.url.clone(), status: status.as_u16() });
        }
        if response.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(too_large());
        }
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((headers, body))
    }

    /// The error of a body that is not the `expected` document.
    pub(crate) fn unexpected(&self, expected: &'static str) -> FetchError {
        FetchError::Body { url: self.url.clone(), expected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_urls_are_read() {
        assert!(is_secure_url("https://auth.example/.well-known/jwks.json"));
        assert!(is_secure_url("http://127.0.0.1:8000/.well-known/jwks.json"));
        assert!(is_secure_url("http://[::1]:8000/.well-known/jwks.json"));
        assert!(is_secure_url("http://localhost:8000/.well-known/jwks.json"));
        assert!(!is_secure_url("http://auth.example/.well-known/jwks.json"));
        assert!(!is_secure_url("http://10.0.0.1/.well-known/jwks.json"));
        assert!(!is_secure_url("ftp://auth.example/jwks.json"));
        assert!(!is_secure_url("not a url"));
    }
}
