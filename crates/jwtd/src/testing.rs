//! Seams for jwtd's own integration tests (`tests/api`), which drive the server over HTTP and
//! need, beside the public API, a few things no endpoint offers. Not part of the library's
//! promise: hidden from its documentation, and may change with any release.

use std::sync::Arc;

use crate::clock::Instant;
use crate::config::Settings;
use crate::store::{Store, StoreError};

/// A refresh token's row, as stored.
pub use crate::store::TokenRow;
use crate::tokens::{Algorithm, PrivateKey};

/// A generated key pair, as PEM text.
pub use crate::tokens::keys::GeneratedKey;

/// A second connection to a server's database, to change what no endpoint changes.
pub struct Database(Arc<dyn Store>);

impl Database {
    /// Opens the database `settings` name (DATABASE_URL), as the server does.
    pub async fn open(settings: &Settings) -> Result<Database, StoreError> {
        crate::app::open_store(settings).await.map(Database)
    }

    /// Deactivates or reactivates a user, as `jwtd user deactivate|activate` does.
    pub async fn set_active(&self, user_id: i64, active: bool, now: Instant) -> Result<bool, StoreError> {
        self.0.set_active(user_id, active, now).await
    }

    /// Records a sign-in's time as `last_login`, as another instance's sign-in does with
    /// UPDATE_LAST_LOGIN.
    pub async fn set_last_login(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        self.0.set_last_login(user_id, now).await
    }

    /// Revokes every token of a user, as logout-all does.
    pub async fn revoke_all(&self, user_id: i64, now: Instant) -> Result<(), StoreError> {
        self.0.revoke_all(user_id, now).await
    }

    /// The row of the refresh token `jti`.
    pub async fn refresh_row(&self, jti: &str) -> Result<Option<TokenRow>, StoreError> {
        self.0.refresh_row(jti).await
    }

    /// Whether a reset or activation link's row has this key (the stored digest of its token).
    pub async fn has_account_token(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self.0.account_token(digest).await?.is_some())
    }

    /// Deletes a user, as `jwtd user delete` does.
    pub async fn delete_user(&self, user_id: i64, now: Instant) -> Result<bool, StoreError> {
        self.0.delete_user(user_id, now).await
    }
}

/// A new key pair for `algorithm` (not HMAC), as `jwtd keys generate` writes it.
pub fn generate_key(algorithm: Algorithm) -> Option<GeneratedKey> {
    crate::tokens::keys::generate(algorithm, &mut rand::rngs::OsRng).ok()
}

/// The `kid` jwtd gives the public half of a private key.
pub fn kid(algorithm: Algorithm, private_pem: &str) -> Option<String> {
    PrivateKey::from_pem(algorithm, private_pem.as_bytes()).ok().map(|key| key.public().kid().to_string())
}
