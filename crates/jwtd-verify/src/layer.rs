//! Tower layers: [`VerifyLayer`] authenticates every request (or lets anonymous ones through,
//! [`VerifyLayer::optional`]) and leaves the [`AuthUser`] in the request's extensions, where the
//! extractors and [`RequireClaims`] find it; [`RequireClaims`] answers 403 with
//! `WWW-Authenticate: Bearer error="insufficient_scope"` to a token whose claims do not qualify.
//!
//! With axum, the layer added last runs first: `.layer(RequireClaims::…).layer(VerifyLayer::new(v))`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::{Layer, Service};

use crate::extract::{authenticate, bearer};
use crate::tokens::Claims;
use crate::{AuthUser, BearerError, Verifier};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Authenticates every request with a [`Verifier`], leaving the [`AuthUser`] in the request's
/// extensions for the extractors and [`RequireClaims`].
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    optional: bool,
}

impl VerifyLayer {
    /// Refuses every request without a valid Bearer token (SPEC §2's 401s).
    pub fn new(verifier: Verifier) -> Self {
        VerifyLayer { verifier, optional: false }
    }

    /// Lets requests without credentials through (handlers take `Option<AuthUser>`); a bad token
    /// is still refused.
    pub fn optional(verifier: Verifier) -> Self {
        VerifyLayer { verifier, optional: true }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Checked { inner, check: self.clone() }
    }
}

impl Check for VerifyLayer {
    fn check(&self, mut request: Request) -> Verdict {
        if self.verifier.waits() {
            let (verifier, optional) = (self.verifier.clone(), self.optional);
            return Verdict::Later(Box::pin(async move {
                let (mut parts, body) = request.into_parts();
                match authenticate(&parts, &verifier).await {
                    Ok(user) => {
                        parts.extensions.insert(user);
                    }
                    Err(BearerError::NotProvided) if optional => {}
                    Err(refusal) => return Err(refusal),
                }
                Ok(Request::from_parts(parts, body))
            }));
        }
        // Local keys: decided now, on the request as it is (`authenticate`'s steps, without a wait).
        if request.extensions().get::<AuthUser>().is_some() {
            return Verdict::Now(Ok(request));
        }
        let header = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let user = match bearer(header, self.verifier.header_types()) {
            Ok(raw) => self.verifier.access(raw).map(AuthUser::from),
            Err(BearerError::NotProvided) if self.optional => return Verdict::Now(Ok(request)),
            Err(refusal) => Err(refusal),
        };
        Verdict::Now(user.map(|user| {
            request.extensions_mut().insert(user);
            request
        }))
    }
}

/// The service of a [`VerifyLayer`].
pub type Verify<S> = Checked<S, VerifyLayer>;

type Predicate = Arc<dyn Fn(&Claims) -> bool + Send + Sync>;

/// A claim guard: lets through requests whose token's claims satisfy a predicate, answers 403
/// (`{"detail":"You do not have permission to perform this action."}`, DRF's, with
/// `WWW-Authenticate: Bearer error="insufficient_scope"`) to the others, and 401 to a request
/// that no [`VerifyLayer`] outside it authenticated.
#[derive(Clone)]
pub struct RequireClaims {
    predicate: Predicate,
}

impl std::fmt::Debug for RequireClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireClaims")
    }
}

impl RequireClaims {
    /// Requests whose claims make `predicate` true.
    pub fn new(predicate: impl Fn(&Claims) -> bool + Send + Sync + 'static) -> Self {
        RequireClaims { predicate: Arc::new(predicate) }
    }

    /// Requests whose claim `name` equals `value` (`RequireClaims::equals("is_staff", true)`).
    pub fn equals(name: &'static str, value: impl Into<Value>) -> Self {
        let value = value.into();
        RequireClaims::new(move |claims| claims.get(name) == Some(&value))
    }

    /// Requests whose claim `name` holds `item`: an array with it (`groups`), or a
    /// space-separated string with it as a word (an OAuth `scope`).
    pub fn contains(name: &'static str, item: &'static str) -> Self {
        RequireClaims::new(move |claims| match claims.get(name) {
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(item)),
            Some(Value::String(words)) => words.split(' ').any(|w| w == item),
            _ => false,
        })
    }
}

impl<S> Layer<S> for RequireClaims {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Checked { inner, check: self.clone() }
    }
}

impl Check for RequireClaims {
    fn check(&self, request: Request) -> Verdict {
        Verdict::Now(match request.extensions().get::<AuthUser>() {
            None => Err(BearerError::NotProvided),
            Some(user) if !(self.predicate)(&user.claims) => Err(BearerError::InsufficientScope),
            Some(_) => Ok(request),
        })
    }
}

/// The service of a [`RequireClaims`] guard.
pub type Guarded<S> = Checked<S, RequireClaims>;

/// What a layer of this crate checks before its inner service runs: the request to pass on (the
/// [`AuthUser`] added to its extensions, say), or the refusal to answer with.
pub trait Check: sealed::Sealed + Clone + Send + 'static {
    /// The verdict on `request`, owning what it needs, so the inner service can be called after.
    fn check(&self, request: Request) -> Verdict;
}

/// A [`Check`]'s verdict: the request to pass on, or the refusal. Known at once when nothing is
/// awaited (local keys, claim guards); else after the wait (remote keys being fetched).
// The request is held by value: boxing it would cost the allocation per request this type saves.
#[allow(clippy::large_enum_variant)]
pub enum Verdict {
    /// Decided: the inner service is called at once, with no copy of it and no boxed future.
    Now(Result<Request, BearerError>),
    /// Decided once the future is ready.
    Later(BoxFuture<Result<Request, BearerError>>),
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Now(Ok(_)) => f.write_str("Verdict::Now(Ok(..))"),
            Verdict::Now(Err(refusal)) => f.debug_tuple("Verdict::Now").field(&Err::<(), _>(refusal)).finish(),
            Verdict::Later(_) => f.write_str("Verdict::Later(..)"),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::VerifyLayer {}
    impl Sealed for super::RequireClaims {}
}

/// The service of a layer of this crate ([`Verify`], [`Guarded`]): the layer's [`Check`], then
/// the inner service `S` with the request it let through, or the refusal's answer (SPEC §2).
#[derive(Debug, Clone)]
pub struct Checked<S, C> {
    inner: S,
    check: C,
}

impl<S, C> Service<Request> for Checked<S, C>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: Check,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CheckedFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.check.check(request) {
            // The inner service was polled ready for this call.
            Verdict::Now(Ok(request)) => CheckedFuture::Inner { future: self.inner.call(request) },
            Verdict::Now(Err(refusal)) => {
                CheckedFuture::Refused { answer: std::future::ready(Ok(refusal.into_response())) }
            }
            Verdict::Later(verdict) => {
                // The clone is ready only once polled; the one that was polled ready serves this request.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                CheckedFuture::Waiting {
                    future: Box::pin(async move {
                        match verdict.await {
                            Ok(request) => inner.call(request).await,
                            Err(refusal) => Ok(refusal.into_response()),
                        }
                    }),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`Checked`] service: the inner service's, the refusal's answer, or the
    /// wait for a [`Verdict::Later`] and then the inner service.
    #[project = CheckedProjection]
    pub enum CheckedFuture<F, E> {
        Inner { #[pin] future: F },
        Refused { answer: std::future::Ready<Result<Response, E>> },
        Waiting { future: BoxFuture<Result<Response, E>> },
    }
}

impl<F, E> Future for CheckedFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CheckedProjection::Inner { future } => future.poll(cx),
            CheckedProjection::Refused { answer } => Pin::new(answer).poll(cx),
            CheckedProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}
