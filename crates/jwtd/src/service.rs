//! Use cases of SPEC §1 and §4: sign-up, sign-in, refresh with rotation, blacklist, verify,
//! sliding tokens, password change and logout-all, sessions (list, revoke one, revoke the others); and the import of a Django project's users
//! and tokens (`import`). This layer owns the use cases and what a refusal means to the caller;
//! the SPEC §4 refusals of a refresh are decided by `store`'s rules, the same with rotation or
//! without (`RefreshCheck::refuses`, `decide_rotation`). It knows no HTTP (status codes and
//! bodies are `http`'s) and no SQL (that is `store`'s).

mod activity;
mod auth;
pub(crate) mod delivery;
mod hashing;
pub(crate) mod import;
mod profiles;
#[cfg(test)]
mod races;
pub(crate) mod revocation;
mod service_tokens;
mod throttle;

pub(crate) use activity::SessionActivity;
pub use jwtd_verify::{AccessClaims, BearerError, Verifier};
pub use jwtd_verify::{RemoteKeys, RemoteKeysError, RemoteOptions};

pub(crate) use auth::{
    normalize_email, plausible_email, send_link, AuthError, AuthService, FieldErrors, Issued, IssuedRefresh,
};
pub(crate) use delivery::Delivery;
pub(crate) use hashing::PasswordPool;
pub(crate) use profiles::Profiles;
pub(crate) use service_tokens::ServiceTokens;
pub(crate) use throttle::{Reservation, Subject, Throttle, Throttled};
