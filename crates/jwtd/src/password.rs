//! Password hashes. PURE: no I/O, no async; callers run these off the async runtime.
//!
//! New hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC form.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_ITERATIONS: u32 = 2;
pub const OWASP_LANES: u32 = 1;

/// Working memory for argon2, reused from one hash to the next. The allocator would otherwise
/// keep a fresh 19 MiB allocation per hash around, fragmented, and resident memory would grow
/// far past what the hashes in flight need.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// Stored hashes asking for more memory than this are refused rather than computed.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

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
    pub fn hash(&self, password: &str, scratch: &mut Scratch) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let mut out = [0u8; 32];
        let blocks = scratch.blocks(self.argon2.params().block_count());
        self.argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)?;
        let phc = Phc {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: self.argon2.params().try_into()?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out)?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches `stored`. Unknown or unusable hashes never match.
    /// The digests are compared in constant time.
    pub fn verify(&self, password: &str, stored: &str, scratch: &mut Scratch) -> bool {
        let Ok(phc) = Phc::new(stored) else { return false };
        if phc.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else { return false };
        let Ok(params) = Params::try_from(&phc) else { return false };
        if params.m_cost() > MAX_MEMORY_KIB {
            return false;
        }
        let version = match phc.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
        let blocks = scratch.blocks(argon2.params().block_count());
        if argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks).is_err() {
            return false;
        }
        out.ct_eq(expected.as_bytes()).into()
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

    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn hash_then_verify() {
        let h = Hasher::with_params(64, 1, 1);
        let s = &mut Scratch::default();
        let stored = h.hash("correct horse", s).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", &stored, s));
        assert!(!h.verify("correct horsf", &stored, s));
        assert!(!h.needs_rehash(&stored));
        assert!(Hasher::owasp().needs_rehash(&stored));
    }

    #[test]
    fn unusable_and_foreign_hashes_never_match() {
        let h = Hasher::with_params(64, 1, 1);
        let s = &mut Scratch::default();
        assert!(!h.verify("x", "!unusable", s));
        assert!(!h.verify("x", "", s));
        assert!(!h.verify("x", "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA", s));
    }

    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        let h = Hasher::with_params(128, 2, 1);
        let s = &mut Scratch::default();
        let ours = h.hash("pw-1", s).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(128, 2, 1, None).unwrap());
        assert!(reference.verify_password(b"pw-1", &Phc::new(&ours).unwrap()).is_ok());
        let theirs = reference.hash_password(b"pw-2", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(h.verify("pw-2", &theirs, s));
        assert!(!h.verify("pw-3", &theirs, s));
    }
}
