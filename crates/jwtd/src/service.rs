//! Use cases of SPEC §1 and §4: sign-up, sign-in, refresh with rotation, blacklist, verify,
//! sliding tokens, password change and logout-all; and the import of a Django project's users
//! and tokens (`import`). This layer owns the rules; it knows no HTTP (status codes and bodies
//! are `http`'s) and no SQL (that is `store`'s).

mod auth;
mod hashing;
pub mod import;
mod remote_keys;
mod throttle;
mod verifier;

pub use auth::{AuthError, AuthService, FieldErrors, Issued, SignUp};
pub use hashing::PasswordPool;
pub use remote_keys::{RemoteKeys, RemoteKeysError, RemoteOptions};
pub use throttle::{LoginThrottle, Throttled};
pub use verifier::{AccessClaims, BearerError, Verifier};
