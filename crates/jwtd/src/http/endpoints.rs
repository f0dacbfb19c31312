//! `endpoints!`, the one way views are declared: for each, its doc comment, method, default path,
//! tag, security scheme, parameters, request body, its answer and the refusals it may answer with
//! (the sets of `responses.rs`), then the handler with what it takes from the request. Each
//! module of views declares them in one `endpoints!` block. A view expands to its handler under
//! utoipa's `#[utoipa::path]` attribute, which the route table (`http::api`, utoipa-axum's
//! `routes!`) reads, so the router, the OpenAPI document and the metrics labels come from it as
//! from any handler. The doc comment stays on the handler: the operation's summary and
//! description come from it. rustfmt leaves the block alone: write the handlers as it would.
//!
//! ```text
//! endpoints! {
//!     /// Doc comment: the operation's summary (first line) and description.
//!     post "/api/token/refresh/" tag "token"     // method, default path (ROUTES may move it), tag
//!     security "bearerAuth"                       // optional: the scheme that authenticates the caller
//!     params ((…))                                // optional: utoipa's `params(…)`, as written there
//!     body RefreshRequest                         // optional: the request body's schema
//!     answers 200 TokenPair "What it answers."    // status, body (optional; `in "text/plain"` for
//!                                                 // another media type), description; optional
//!                                                 // `headers ((…))` after it
//!     refuses BodyErrors, TokenRefused, ServerFaults;   // optional: the refusal sets
//!     pub async fn refresh(auth, metrics, cookie, input) -> Result<Response, ApiError> { … }
//!
//!     /// The next view of the module.
//!     …
//! }
//! ```
//!
//! A handler takes each extractor by its name, which means the same everywhere:
//!
//! | name | extractor |
//! |---|---|
//! | `auth` | `State<AuthService>`: the use cases |
//! | `metrics` | `State<Arc<Metrics>>` |
//! | `settings` | `State<Arc<Settings>>` |
//! | `verifier` | `State<Verifier>` |
//! | `state` | `State<AppState>` |
//! | `addr` | `ClientAddr`: the client's address |
//! | `user_agent` | `UserAgent`: what a session records |
//! | `user` | `AuthUser`: the Bearer access token's user (401 without one) |
//! | `cookie` | `RefreshCookie`: REFRESH_COOKIE's mode, and the cookie the request carries |
//! | `input` | `Input`: the request body, parsed as DRF does |
//!
//! Any other extractor is written `name: Type`.

/// Declares the views of a module; see the module docs.
macro_rules! endpoints {
    // The parameters, one at a time: `name: Type` as written, a name of the table by its extractor.
    (@params $head:tt $tail:tt [$($done:tt)*] [$name:ident : $type:ty $(, $($rest:tt)*)?]) => {
        $crate::http::endpoints::endpoints! { @params $head $tail [$($done)* $name: $type,] [$($($rest)*)?] }
    };
    (@params $head:tt $tail:tt $done:tt [$name:ident $(, $($rest:tt)*)?]) => {
        $crate::http::endpoints::endpoints! { @extractor $name $name $head $tail $done [$($($rest)*)?] }
    };
    (@params [$($head:tt)*] [$($tail:tt)*] [$($done:tt)*] []) => {
        $($head)* ($($done)*) $($tail)*
    };

    // The table of the module docs. The name is matched in the first place and bound in the
    // second, so that the binding is the caller's own (macro hygiene).
    (@extractor auth $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<$crate::service::AuthService>,] $rest }
    };
    (@extractor metrics $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<::std::sync::Arc<$crate::telemetry::Metrics>>,]
            $rest }
    };
    (@extractor settings $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<::std::sync::Arc<$crate::config::Settings>>,]
            $rest }
    };
    (@extractor verifier $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<$crate::service::Verifier>,] $rest }
    };
    (@extractor state $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<$crate::http::AppState>,] $rest }
    };
    (@extractor addr $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* $crate::http::ClientAddr($name): $crate::http::ClientAddr,] $rest }
    };
    (@extractor user_agent $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* $crate::http::UserAgent($name): $crate::http::UserAgent,] $rest }
    };
    (@extractor user $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail [$($done)* $name: $crate::http::AuthUser,] $rest }
    };
    (@extractor cookie $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* $name: $crate::http::cookie::RefreshCookie,] $rest }
    };
    (@extractor input $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail [$($done)* $name: $crate::http::Input,] $rest }
    };

    // The views.
    ($(
        $(#[doc = $doc:literal])*
        $method:ident $path:literal tag $tag:literal
        $(security $scheme:literal)?
        $(params $params:tt)?
        $(body $request:ident)?
        answers $status:literal $($answer:ident $(in $content_type:literal)?)? $description:literal
        $(headers $headers:tt)?
        $(refuses $($refusal:ident),+)?;
        pub async fn $name:ident($($param:tt)*) -> $output:ty { $($body:tt)* }
    )+) => {$(
        $crate::http::endpoints::endpoints! {
            @params
            [
                $(#[doc = $doc])*
                #[utoipa::path(
                    $method,
                    path = $path,
                    tag = $tag,
                    $(security(($scheme = [])),)?
                    $(params $params,)?
                    $(request_body = $request,)?
                    responses(
                        (
                            status = $status,
                            description = $description
                            $(, body = $answer $(, content_type = $content_type)?)?
                            $(, headers $headers)?
                        ),
                        $($($refusal,)+)?
                    )
                )]
                pub async fn $name
            ]
            [-> $output { $($body)* }]
            []
            [$($param)*]
        }
    )+};
}

pub(super) use endpoints;
