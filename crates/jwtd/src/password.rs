//! Password hashes. PURE: no I/O, no async; callers run these off the async runtime.
//!
//! New hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC form.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_ITERATIONS: u32 = 2;
pub const OWASP_LANES: u32 = 1;

/// Hashes and checks passwords.
#[derive(Clone)]
pub struct Hasher {
    argon2: Argon2<'static>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::owasp()
    }
}

impl Hasher {
    pub fn owasp() -> Self {
        Self::with_params(OWASP_MEMORY_KIB, OWASP_ITERATIONS, OWASP_LANES)
    }

    /// Other argon2id parameters, for tests that must hash many times quickly.
    pub fn with_params(memory_kib: u32, iterations: u32, lanes: u32) -> Self {
        let params = Params::new(memory_kib, iterations, lanes, None).unwrap_or_default();
        Hasher { argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params) }
    }

    /// A new argon2id PHC string for `password` with a random salt.
    pub fn hash(&self, password: &str) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(self.argon2.hash_password(password.as_bytes(), &salt)?.to_string())
    }

    /// Whether `password` matches `stored`. Unknown or unusable hashes never match.
    /// The comparison of digests is constant-time (password-hash's `Output` equality).
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match Phc::new(stored) {
            Ok(phc) if phc.algorithm == argon2::ARGON2ID_IDENT => {
                self.argon2.verify_password(password.as_bytes(), &phc).is_ok()
            }
            _ => false,
        }
    }

    /// Whether `stored` should be replaced by a hash of the current parameters after a
    /// successful sign-in.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(phc) = Phc::new(stored) else {
            return true;
        };
        if phc.algorithm != argon2::ARGON2ID_IDENT {
            return true;
        }
        match Params::try_from(&phc) {
            Ok(p) => {
                let want = self.argon2.params();
                p.m_cost() != want.m_cost() || p.t_cost() != want.t_cost() || p.p_cost() != want.p_cost()
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = Hasher::with_params(64, 1, 1);
        let stored = h.hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", &stored));
        assert!(!h.verify("correct horsf", &stored));
        assert!(!h.needs_rehash(&stored));
        assert!(Hasher::owasp().needs_rehash(&stored));
    }

    #[test]
    fn unusable_and_foreign_hashes_never_match() {
        let h = Hasher::with_params(64, 1, 1);
        assert!(!h.verify("x", "!unusable"));
        assert!(!h.verify("x", ""));
        assert!(!h.verify("x", "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA"));
    }
}
