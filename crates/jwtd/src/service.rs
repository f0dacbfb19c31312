//! Use cases of SPEC §1 and §4: sign-up, sign-in, refresh with rotation, blacklist, verify,
//! sliding tokens, password change and logout-all; and the import of a Django project's users
//! and tokens (`import`). This layer owns the use cases and what a refusal means to the caller;
//! the SPEC §4 refusals of a refresh are decided by `store`'s rules, the same with rotation or
//! without (`RefreshCheck::refuses`, `decide_rotation`). It knows no HTTP (status codes and
//! bodies are `http`'s) and no SQL (that is `store`'s).

mod auth;
pub mod delivery;
mod hashing;
pub mod import;
#[cfg(test)]
mod races;
pub mod revocation;
mod service_tokens;
mod throttle;

pub use auth::{
    encode_uid, normalize_email, plausible_email, send_link, AuthError, AuthService, FieldErrors, Issued,
    IssuedRefresh, SignUp,
};
pub use delivery::Delivery;
pub use hashing::PasswordPool;
pub use jwtd_verify::{AccessClaims, BearerError, Verifier};
pub use jwtd_verify::{RemoteKeys, RemoteKeysError, RemoteOptions};
pub use service_tokens::ServiceTokens;
pub use throttle::{bucket, Reservation, Subject, Throttle, Throttled};
