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
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::{Layer, Service};

use crate::extract::authenticate;
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
    fn check(&self, request: Request) -> impl Future<Output = Result<Request, BearerError>> + Send + 'static {
        let verifier = self.verifier.clone();
        let optional = self.optional;
        async move {
            let (mut parts, body) = request.into_parts();
            match authenticate(&parts, &verifier).await {
                Ok(user) => {
                    parts.extensions.insert(user);
                }
                Err(BearerError::NotProvided) if optional => {}
                Err(refusal) => return Err(refusal),
            }
            Ok(Request::from_parts(parts, body))
        }
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
    fn check(&self, request: Request) -> impl Future<Output = Result<Request, BearerError>> + Send + 'static {
        let verdict = match request.extensions().get::<AuthUser>() {
            None => Err(BearerError::NotProvided),
            Some(user) if !(self.predicate)(&user.claims) => Err(BearerError::InsufficientScope),
            Some(_) => Ok(request),
        };
        std::future::ready(verdict)
    }
}

/// The service of a [`RequireClaims`] guard.
pub type Guarded<S> = Checked<S, RequireClaims>;

/// What a layer of this crate checks before its inner service runs: the request to pass on (the
/// [`AuthUser`] added to its extensions, say), or the refusal to answer with.
pub trait Check: sealed::Sealed + Clone + Send + 'static {
    /// The verdict on `request`, owning what it needs, so the inner service can be called after.
    fn check(&self, request: Request) -> impl Future<Output = Result<Request, BearerError>> + Send + 'static;
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
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let verdict = self.check.check(request);
        // The clone is ready only once polled; the one that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match verdict.await {
                Ok(request) => inner.call(request).await,
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}
