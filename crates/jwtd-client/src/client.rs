//! [`Client`]: sign-up, sign-in and sign-out against the SPEC §1 endpoints, and the single-flight
//! refresh that every authorized request goes through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwtd_proto::{Credentials, RefreshRequest, SignUpRequest, TokenPair, UserSummary};
use reqwest::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::{debug, info, warn};
use url::Url;

use crate::clock::{unix_millis, Clock, SystemClock};
use crate::error::Error;
use crate::request::RequestBuilder;
use crate::session::{Current, End, Refresh, Seen, Session};
use crate::store::{MemoryStore, TokenStore, Tokens};

const SIGN_UP: &str = "api/auth/signup/";
const OBTAIN_PAIR: &str = "api/token/";
const REFRESH: &str = "api/token/refresh/";
const BLACKLIST: &str = "api/token/blacklist/";

/// Default [`ClientBuilder::refresh_margin`].
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Default [`ClientBuilder::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A jwtd session: signs in, attaches the access token to requests, and keeps it fresh.
///
/// Cloning is cheap and shares the session, so one client serves every task of a program.
/// However many tasks find the access token expired at once, one refresh request is sent and
/// the others wait for its result.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Ends with `/`, so joining a relative path keeps its path prefix.
    base: Url,
    store: Box<dyn TokenStore>,
    clock: Box<dyn Clock>,
    margin: Duration,
    session: Session,
    /// Held while refreshing, and by anything else that changes the session, so exactly one
    /// refresh is in flight and waiters see its outcome.
    flight: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("signed_in", &self.is_signed_in())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    store: Box<dyn TokenStore>,
    clock: Box<dyn Clock>,
    margin: Duration,
    timeout: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("margin", &self.margin)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Where the tokens are kept; default: a [`MemoryStore`]. A store that already holds tokens
    /// resumes their session.
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Box::new(store);
        self
    }

    /// The clock that decides when the access token is about to expire; default: the system
    /// clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Refresh the access token this long before its `exp` (at most half its lifetime);
    /// default 30 s. Zero refreshes only once it has expired or the server answers 401.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Limit on each HTTP request, from connecting to the end of the body; default 30 s. It
    /// also bounds how long requests wait for a refresh.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client and loads the store's tokens, if any.
    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base_url)?;
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // The cookie store holds the refresh token in the server's cookie mode.
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(self.timeout)
            .user_agent(concat!("jwtd-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let session = Session::new();
        if let Some(tokens) = self.store.load().map_err(Error::Store)? {
            session.install(tokens, None, self.margin)?;
        }
        let inner = Inner {
            http,
            base,
            store: self.store,
            clock: self.clock,
            margin: self.margin,
            session,
            flight: tokio::sync::Mutex::new(()),
        };
        Ok(Client { inner: Arc::new(inner) })
    }
}

impl Client {
    /// A client of the jwtd server at `base_url` (e.g. `https://auth.example.com`, or with a path
    /// prefix the API is mounted under), with tokens in memory.
    pub fn new(base_url: &str) -> Result<Client, Error> {
        Client::builder(base_url).build()
    }

    /// A [`ClientBuilder`] to choose the token store, clock, refresh margin or timeout.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_string(),
            store: Box::new(MemoryStore::new()),
            clock: Box::new(SystemClock),
            margin: DEFAULT_REFRESH_MARGIN,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Whether the client holds a session (it may still turn out expired at the next refresh).
    pub fn is_signed_in(&self) -> bool {
        self.inner.session.is_active()
    }

    /// Creates an account (`POST /api/auth/signup/`) and starts its session.
    pub async fn sign_up(&self, username: &str, password: &str, email: Option<&str>) -> Result<UserSummary, Error> {
        let body = SignUpRequest { username: username.into(), password: password.into(), email: email.map(Into::into) };
        let answer: jwtd_proto::SignUpResponse = self.post(SIGN_UP, &body).await?;
        self.start(Tokens { access: answer.tokens.access, refresh: answer.tokens.refresh }).await?;
        Ok(answer.user)
    }

    /// Signs in (`POST /api/token/`) and starts a session, replacing any previous one. In the
    /// server's cookie mode the answer has no refresh token; the cookie store keeps it.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<(), Error> {
        let body = Credentials { username: username.into(), password: password.into() };
        let pair: TokenPair = self.post(OBTAIN_PAIR, &body).await?;
        self.start(Tokens { access: pair.access, refresh: pair.refresh }).await
    }

    /// Signs out: blacklists the refresh token (`POST /api/token/blacklist/`) and forgets the
    /// tokens. A refresh token the server already refuses counts as signed out. On a network
    /// error or server fault the session is kept, so the sign-out can be tried again.
    pub async fn sign_out(&self) -> Result<(), Error> {
        let _flight = self.inner.flight.lock().await;
        let Some(refresh) = self.inner.session.refresh_token() else {
            self.inner.session.end(End::SignedOut);
            return self.inner.store.clear().map_err(Error::Store);
        };
        let cookie_mode = refresh.is_none();
        let response = self.send_refresh_token(BLACKLIST, refresh).await?;
        let status = response.status();
        if !status.is_success() && !refused(status, cookie_mode) {
            return Err(rejected(response).await);
        }
        self.inner.session.end(End::SignedOut);
        self.inner.store.clear().map_err(Error::Store)
    }

    /// A request to `path` under the base URL with the session's access token. Send it with
    /// [`RequestBuilder::send`]: the token is refreshed first when it is about to expire, and
    /// on a 401 answer it is refreshed and the request sent once more.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, self.endpoint(path))
    }

    pub(crate) fn endpoint(&self, path: &str) -> Result<Url, Error> {
        let base = &self.inner.base;
        match base.join(path.trim_start_matches('/')) {
            Ok(url) if url.as_str().starts_with(base.as_str()) => Ok(url),
            _ => Err(Error::PathOutsideBase(path.to_string())),
        }
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.inner.clock.now())
    }

    /// Sends `build(authorization)`; on 401, refreshes once and sends it once more.
    pub(crate) async fn execute(
        &self,
        build: impl Fn(reqwest::header::HeaderValue) -> Request,
    ) -> Result<Response, Error> {
        let current = self.access().await?;
        let response = self.inner.http.execute(build(current.authorization)).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        debug!("access token refused; refreshing and retrying once");
        self.refresh(current.seen).await?;
        let retry = self.inner.session.current(self.now_ms())?;
        Ok(self.inner.http.execute(build(retry.authorization)).await?)
    }

    /// The access token to send, refreshed first when it is within the margin of expiry.
    async fn access(&self) -> Result<Current, Error> {
        let current = self.inner.session.current(self.now_ms())?;
        if !current.refresh_due {
            return Ok(current);
        }
        match self.refresh(current.seen).await {
            Ok(()) => self.inner.session.current(self.now_ms()),
            // Not expired yet: a server or network hiccup need not fail this request.
            Err(e) if e.is_transient() && !current.expired => {
                debug!(error = %e, "refresh ahead of expiry failed; using the current access token");
                Ok(current)
            }
            Err(e) => Err(e),
        }
    }

    /// Single flight: the first caller of a generation refreshes; callers that queued behind it
    /// find the generation moved on and return at once, or find a new failure and share it.
    /// Only a refused refresh token ends the session.
    async fn refresh(&self, seen: Seen) -> Result<(), Error> {
        let _flight = self.inner.flight.lock().await;
        let refresh = match self.inner.session.refresh_for(seen)? {
            Refresh::AlreadyDone => return Ok(()),
            Refresh::With(refresh) => refresh,
        };
        match self.exchange(refresh).await {
            Ok(tokens) => self.install(tokens),
            Err(Error::SessionExpired) => {
                info!("refresh token refused; session expired");
                self.inner.session.end(End::Expired);
                if let Err(e) = self.inner.store.clear() {
                    warn!(error = %e, "could not clear the token store");
                }
                Err(Error::SessionExpired)
            }
            Err(cause) => {
                debug!(error = %cause, "refresh failed; session kept");
                let cause = Arc::new(cause);
                self.inner.session.record_failure(cause.clone());
                Err(Error::RefreshFailed(cause))
            }
        }
    }

    /// One refresh request: the new tokens, or `SessionExpired` if the token was refused.
    async fn exchange(&self, refresh: Option<String>) -> Result<Tokens, Error> {
        let cookie_mode = refresh.is_none();
        let response = self.send_refresh_token(REFRESH, refresh.clone()).await?;
        match response.status() {
            status if refused(status, cookie_mode) => Err(Error::SessionExpired),
            StatusCode::OK => {
                let pair: TokenPair = response.json().await?;
                // With rotation the answer carries the successor; without, keep the one we have.
                debug!(rotated = pair.refresh.is_some(), "access token refreshed");
                Ok(Tokens { access: pair.access, refresh: pair.refresh.or(refresh) })
            }
            _ => Err(rejected(response).await),
        }
    }

    async fn start(&self, tokens: Tokens) -> Result<(), Error> {
        let _flight = self.inner.flight.lock().await;
        self.install(tokens)
    }

    /// Call with the flight lock held.
    fn install(&self, tokens: Tokens) -> Result<(), Error> {
        self.inner.session.install(tokens.clone(), Some(self.now_ms()), self.inner.margin)?;
        // Saved after the session moved on: if saving fails this process keeps working and the
        // caller learns that a restart would not resume the session.
        self.inner.store.save(&tokens).map_err(Error::Store)
    }

    /// POSTs `{"refresh": ...}`, or `{}` in cookie mode, where the server reads the cookie.
    async fn send_refresh_token(&self, path: &str, refresh: Option<String>) -> Result<Response, Error> {
        let request = self.inner.http.post(self.endpoint(path)?);
        let request = match refresh {
            Some(refresh) => request.json(&RefreshRequest { refresh }),
            None => request.json(&serde_json::Map::new()),
        };
        Ok(request.send().await?)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Error> {
        let response = self.inner.http.post(self.endpoint(path)?).json(body).send().await?;
        if !response.status().is_success() {
            return Err(rejected(response).await);
        }
        Ok(response.json().await?)
    }
}

/// The server refused the refresh token: 401, or in cookie mode a 400, the answer when the
/// request carried no cookie for the server to read the token from (SPEC §2, field required;
/// e.g. a session resumed from a [`TokenStore`] by a new process, whose cookie store is empty).
fn refused(status: StatusCode, cookie_mode: bool) -> bool {
    status == StatusCode::UNAUTHORIZED || (cookie_mode && status == StatusCode::BAD_REQUEST)
}

async fn rejected(response: Response) -> Error {
    let status = response.status();
    match response.text().await {
        Ok(body) => Error::Rejected { status, body },
        Err(e) => Error::Http(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(base: &str, path: &str) -> Result<String, Error> {
        Client::new(base).unwrap().endpoint(path).map(String::from)
    }

    #[test]
    fn paths_join_under_the_base_and_its_prefix() {
        assert_eq!(endpoint("http://h:8000", "/api/me/").unwrap(), "http://h:8000/api/me/");
        assert_eq!(endpoint("http://h/auth", "/api/me/").unwrap(), "http://h/auth/api/me/");
        assert_eq!(endpoint("http://h/auth/?x=1#f", "api/me/?a=b").unwrap(), "http://h/auth/api/me/?a=b");
        assert_eq!(endpoint("http://h", "//other/x").unwrap(), "http://h/other/x");
    }

    #[test]
    fn only_a_refused_refresh_token_ends_the_session() {
        assert!(refused(StatusCode::UNAUTHORIZED, false));
        assert!(refused(StatusCode::BAD_REQUEST, true), "cookie mode without a cookie");
        for status in [StatusCode::BAD_REQUEST, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE] {
            assert!(!refused(status, false), "{status}");
        }
    }

    #[test]
    fn paths_leaving_the_base_are_refused() {
        for path in ["https://other/", "http://h/", "../x", "/api/../../x"] {
            let err = endpoint("http://h/auth/", path).unwrap_err();
            assert!(matches!(err, Error::PathOutsideBase(_)), "{path}: {err:?}");
        }
    }
}
