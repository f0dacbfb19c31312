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
    (@extractor auth $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @state [$crate::service::AuthService] $($x)* }
    };
    (@extractor metrics $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @state [::std::sync::Arc<$crate::telemetry::Metrics>] $($x)* }
    };
    (@extractor settings $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @state [::std::sync::Arc<$crate::config::Settings>] $($x)* }
    };
    (@extractor verifier $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @state [$crate::service::Verifier] $($x)* }
    };
    (@extractor state $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @state [$crate::http::AppState] $($x)* }
    };
    (@extractor addr $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @tuple [$crate::http::ClientAddr] $($x)* }
    };
    (@extractor user_agent $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @tuple [$crate::http::UserAgent] $($x)* }
    };
    (@extractor user $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @plain [$crate::http::AuthUser] $($x)* }
    };
    (@extractor cookie $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @plain [$crate::http::cookie::RefreshCookie] $($x)* }
    };
    (@extractor input $($x:tt)*) => {
        $crate::http::endpoints::endpoints! { @plain [$crate::http::Input] $($x)* }
    };
    (@extractor $other:ident $($x:tt)*) => {
        compile_error!(concat!("no extractor is named `", stringify!($other), "`: write it `name: Type`"));
    };

    // How the table's extractors bind their name: `State(name): State<T>`, `T(name): T`, `name: T`.
    (@state [$($type:tt)*] $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail
            [$($done)* ::axum::extract::State($name): ::axum::extract::State<$($type)*>,] $rest }
    };
    (@tuple [$($type:tt)*] $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail [$($done)* $($type)*($name): $($type)*,] $rest }
    };
    (@plain [$($type:tt)*] $name:ident $head:tt $tail:tt [$($done:tt)*] $rest:tt) => {
        $crate::http::endpoints::endpoints! { @params $head $tail [$($done)* $name: $($type)*,] $rest }
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
