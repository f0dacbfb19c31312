//! A Rust client for jwtd (SPEC §7) that keeps a session alive.
//!
//! [`Client`] signs up or signs in, attaches `Authorization: Bearer <access>` to every request
//! made with [`Client::request`], and refreshes the access token when it is about to expire or
//! when the server answers 401, then sends the request once more. However many tasks find the
//! token expired at once, exactly one refresh request is sent and all of them wait for it. With
//! rotation on, the new refresh token replaces the old one in the [`TokenStore`]. When the
//! server refuses the refresh token, calls fail with [`Error::SessionExpired`]: sign in again.
//! A network error or server fault during a refresh is [`Error::RefreshFailed`] instead, shared
//! by every request that waited for that refresh; the session is kept.
//! In the server's cookie mode (`REFRESH_COOKIE`) the refresh token lives in the client's
//! cookie store instead; that store is in memory, so such a session ends with the process (a
//! new process resuming it from a [`FileStore`] gets [`Error::SessionExpired`] at its first
//! refresh).
//!
//! ```no_run
//! use jwtd_client::{Client, Error, FileStore, Method};
//! use jwtd_client::proto::Me;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Error> {
//!     // Tokens survive restarts in a file only its owner can read.
//!     let client = Client::builder("http://127.0.0.1:8000").store(FileStore::new("tokens.json")).build()?;
//!     if !client.is_signed_in() {
//!         client.sign_in("ada", "correct horse battery").await?;
//!     }
//!
//!     // Clones share the session: hand one to every task.
//!     let response = match client.request(Method::GET, "/api/me/").send().await {
//!         // The server refused the refresh token (expired, signed out elsewhere): sign in again.
//!         Err(Error::SessionExpired) => {
//!             client.sign_in("ada", "correct horse battery").await?;
//!             client.request(Method::GET, "/api/me/").send().await?
//!         }
//!         other => other?,
//!     };
//!     let me: Me = response.error_for_status()?.json().await?;
//!     println!("signed in as {}", me.username);
//!
//!     // Your own routes, mounted beside jwtd's and guarded by its `AuthUser` extractor. Bodies
//!     // are buffered, so a request refused with 401 is sent again after the refresh.
//!     let created = client
//!         .request(Method::POST, "/api/notes/")
//!         .json(&serde_json::json!({"text": "remember the milk"}))
//!         .send()
//!         .await?;
//!     println!("note: {}", created.status());
//!
//!     // Blacklists the refresh token and forgets the tokens.
//!     client.sign_out().await
//! }
//! ```
//!
//! The access token's expiry is read without verifying its signature, in [`dangerous`]: the
//! client holds no key and only uses it to schedule the refresh.
#![deny(missing_docs)]

mod client;
pub mod clock;
pub mod dangerous;
mod error;
mod request;
mod session;
mod store;

pub use client::{Client, ClientBuilder, DEFAULT_REFRESH_MARGIN, DEFAULT_TIMEOUT};
pub use clock::{Clock, SystemClock};
pub use error::Error;
pub use jwtd_proto as proto;
pub use request::RequestBuilder;
pub use reqwest::{self, Method, Response, StatusCode};
pub use store::{FileStore, MemoryStore, TokenStore, Tokens};

#[cfg(test)]
mod tests {
    /// The lines of the first ```-fenced block opening with `fence` after the line `after`.
    fn block(lines: &[&str], after: &str, fence: &str) -> Vec<String> {
        let from = lines.iter().position(|l| *l == after).unwrap();
        let start = from + lines[from..].iter().position(|l| *l == fence).unwrap() + 1;
        let len = lines[start..].iter().position(|l| l.starts_with("```")).unwrap();
        lines[start..start + len].iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn readme_shows_the_example_of_the_crate_docs() {
        let docs: Vec<&str> = include_str!("lib.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        let readme: Vec<&str> = include_str!("../../../README.md").lines().collect();
        let docs = block(&docs, "A Rust client for jwtd (SPEC §7) that keeps a session alive.", "```no_run");
        let readme = block(&readme, "## Rust client", "```rust,no_run");
        assert!(docs.len() > 20, "{docs:?}");
        assert_eq!(docs, readme, "README.md's \"Rust client\" example must be the one in the crate docs");
    }
}
