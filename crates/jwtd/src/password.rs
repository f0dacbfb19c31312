//! Password hashes. PURE: no I/O, no async; callers run these off the async runtime.
//!
//! New hashes are argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC form.
//! Stored hashes parse into [`PasswordHash`]: jwtd's own argon2id, or one of the forms Django
//! writes to `auth_user.password` (SPEC §6), each verified exactly as Django verifies it, so
//! that users imported from Django keep their passwords. Every Django form needs a rehash: the
//! first successful sign-in replaces it with argon2id.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash as Phc, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use sha2::Digest as _;
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

/// The most work a stored hash may ask for; above it, the hash is refused rather than computed
/// (a failed check, which the caller logs). One imported row with `pbkdf2_sha256$4000000000$…`
/// or bcrypt cost 31 would otherwise pin a hash thread for hours on every sign-in attempt for
/// that username, and a few such attempts starve the pool for everyone. Each bound is several
/// times Django's current default, so every hash Django writes, or wrote, passes: PBKDF2
/// iterations (Django 5.2: 1,000,000; 6.0: 1,200,000), argon2 time cost (Django: 2) and lanes
/// (8) beside [`MAX_MEMORY_KIB`] (Django: 100 MiB; jwtd's own OWASP hash: 19 MiB), bcrypt cost
/// (Django: 12, each step doubling the work).
pub const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;
pub const MAX_ARGON2_TIME_COST: u32 = 10;
pub const MAX_ARGON2_LANES: u32 = 64;
pub const MAX_BCRYPT_COST: u32 = 16;

/// libargon2 (and so argon2-cffi, which Django uses) reads a hash without a `v=` field as
/// version 0x10; the argon2 crate would assume 0x13.
const DJANGO_ARGON2_VERSION_WHEN_ABSENT: Version = Version::V0x10;

/// A stored password hash, parsed. It borrows the stored string and, on purpose, implements
/// no `Debug`: hash material stays out of logs.
pub enum PasswordHash<'a> {
    /// jwtd's own: argon2id in PHC form, `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
    Argon2id(Phc<'a>),
    /// Django's PBKDF2PasswordHasher (`pbkdf2_sha256$iterations$salt$base64`) and
    /// PBKDF2SHA1PasswordHasher (`pbkdf2_sha1$…`).
    DjangoPbkdf2 { digest: Pbkdf2Digest, iterations: u32, salt: &'a str, encoded: &'a str },
    /// Django's Argon2PasswordHasher: `argon2` followed by argon2-cffi's PHC string,
    /// `argon2$argon2id$v=19$m=102400,t=2,p=8$salt$hash` (argon2i before Django 3.2).
    DjangoArgon2(Phc<'a>),
    /// Django's BCryptSHA256PasswordHasher, `bcrypt_sha256$$2b$12$…`: bcrypt of the hex
    /// SHA-256 of the password.
    DjangoBcryptSha256 { bcrypt: &'a str },
    /// Django's BCryptPasswordHasher, `bcrypt$$2b$12$…`: bcrypt of the password itself.
    DjangoBcrypt { bcrypt: &'a str },
    /// Django's unusable password (`!` and random characters): never matches.
    Unusable,
}

/// The PRF of a Django PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    Sha256,
    Sha1,
}

/// A stored hash jwtd cannot verify (another Django hasher such as scrypt or md5, or garbage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown password hash format{}", .scheme.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
pub struct UnknownHash {
    /// The algorithm name before the first `$`, when it looks like one (it is never hash material).
    pub scheme: Option<String>,
}

impl<'a> PasswordHash<'a> {
    /// Parses a stored hash. Only the format is checked here; [`PasswordHash::verify`] does the rest.
    pub fn parse(stored: &'a str) -> Result<Self, UnknownHash> {
        if stored.starts_with('!') {
            return Ok(PasswordHash::Unusable);
        }
        let unknown = || UnknownHash { scheme: scheme_of(stored) };
        if stored.starts_with('$') {
            return match Phc::new(stored) {
                Ok(phc) if phc.algorithm == argon2::ARGON2ID_IDENT => Ok(PasswordHash::Argon2id(phc)),
                _ => Err(unknown()),
            };
        }
        let (scheme, rest) = stored.split_once('$').ok_or_else(unknown)?;
        match scheme {
            "pbkdf2_sha256" | "pbkdf2_sha1" => {
                let digest = if scheme == "pbkdf2_sha256" { Pbkdf2Digest::Sha256 } else { Pbkdf2Digest::Sha1 };
                // Django: `algorithm, iterations, salt, hash = encoded.split("$", 3)`.
                let mut parts = rest.splitn(3, '$');
                let (Some(iterations), Some(salt), Some(_hash)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(unknown());
                };
                let iterations = iterations.parse().map_err(|_| unknown())?;
                Ok(PasswordHash::DjangoPbkdf2 { digest, iterations, salt, encoded: stored })
            }
            "argon2" => {
                // Django verifies `"$" + rest` with argon2-cffi, which takes all three variants.
                let phc = Phc::new(&stored[scheme.len()..]).map_err(|_| unknown())?;
                let known = [argon2::ARGON2ID_IDENT, argon2::ARGON2I_IDENT, argon2::ARGON2D_IDENT];
                if !known.contains(&phc.algorithm) {
                    return Err(unknown());
                }
                Ok(PasswordHash::DjangoArgon2(phc))
            }
            "bcrypt_sha256" => Ok(PasswordHash::DjangoBcryptSha256 { bcrypt: rest }),
            "bcrypt" => Ok(PasswordHash::DjangoBcrypt { bcrypt: rest }),
            _ => Err(unknown()),
        }
    }

    /// The algorithm, for reports: `argon2id`, `pbkdf2_sha256`, `argon2`, `bcrypt_sha256`, … .
    pub fn scheme(&self) -> &'static str {
        match self {
            PasswordHash::Argon2id(_) => "argon2id",
            PasswordHash::DjangoPbkdf2 { digest: Pbkdf2Digest::Sha256, .. } => "pbkdf2_sha256",
            PasswordHash::DjangoPbkdf2 { digest: Pbkdf2Digest::Sha1, .. } => "pbkdf2_sha1",
            PasswordHash::DjangoArgon2(_) => "argon2",
            PasswordHash::DjangoBcryptSha256 { .. } => "bcrypt_sha256",
            PasswordHash::DjangoBcrypt { .. } => "bcrypt",
            PasswordHash::Unusable => "unusable",
        }
    }

    /// Why this hash asks for more work than jwtd computes (see [`MAX_PBKDF2_ITERATIONS`]), or
    /// `None` when it is within the bounds. [`PasswordHash::verify`] refuses such a hash.
    pub fn too_costly(&self) -> Option<String> {
        match self {
            PasswordHash::DjangoPbkdf2 { iterations, .. } if *iterations > MAX_PBKDF2_ITERATIONS => {
                Some(format!("PBKDF2 iterations {iterations} > {MAX_PBKDF2_ITERATIONS}"))
            }
            PasswordHash::DjangoPbkdf2 { .. } => None,
            PasswordHash::Argon2id(phc) | PasswordHash::DjangoArgon2(phc) => {
                let Ok(params) = Params::try_from(phc) else { return None };
                if params.m_cost() > MAX_MEMORY_KIB {
                    Some(format!("argon2 memory {} KiB > {MAX_MEMORY_KIB}", params.m_cost()))
                } else if params.t_cost() > MAX_ARGON2_TIME_COST {
                    Some(format!("argon2 time cost {} > {MAX_ARGON2_TIME_COST}", params.t_cost()))
                } else if params.p_cost() > MAX_ARGON2_LANES {
                    Some(format!("argon2 lanes {} > {MAX_ARGON2_LANES}", params.p_cost()))
                } else {
                    None
                }
            }
            PasswordHash::DjangoBcryptSha256 { bcrypt } | PasswordHash::DjangoBcrypt { bcrypt } => {
                // `$2b$12$…`: the cost is the third `$` field.
                let cost: u32 = bcrypt.split('$').nth(2)?.parse().ok()?;
                (cost > MAX_BCRYPT_COST).then(|| format!("bcrypt cost {cost} > {MAX_BCRYPT_COST}"))
            }
            PasswordHash::Unusable => None,
        }
    }

    /// Whether a password can ever match this hash.
    pub fn is_usable(&self) -> bool {
        !matches!(self, PasswordHash::Unusable)
    }

    /// Whether `password` matches, decided as the hash's author decides it. Every comparison of
    /// digests is constant-time. jwtd's own argon2id hashes in `scratch`; Django's argon2 (100 MiB
    /// by default) in memory of its own, freed afterwards, so the scratch stays jwtd's size.
    pub fn verify(&self, password: &str, scratch: &mut Scratch) -> bool {
        if self.too_costly().is_some() {
            return false;
        }
        match self {
            PasswordHash::Argon2id(phc) => verify_argon2(phc, password.as_bytes(), Version::V0x13, Some(scratch)),
            PasswordHash::DjangoArgon2(phc) => {
                verify_argon2(phc, password.as_bytes(), DJANGO_ARGON2_VERSION_WHEN_ABSENT, None)
            }
            PasswordHash::DjangoPbkdf2 { digest, iterations, salt, encoded } => {
                verify_pbkdf2(*digest, *iterations, salt, encoded, password.as_bytes())
            }
            PasswordHash::DjangoBcryptSha256 { bcrypt } => {
                // Django hashes first so that bcrypt's 72-byte truncation cannot bite (#20138),
                // and feeds bcrypt the 64 lowercase hex digits, not the raw digest.
                let hex = hex_lower(&sha2::Sha256::digest(password.as_bytes()));
                bcrypt::verify(hex, bcrypt).unwrap_or(false)
            }
            // The plain hasher is subject to bcrypt's 72-byte truncation, as in Django.
            PasswordHash::DjangoBcrypt { bcrypt } => bcrypt::verify(password.as_bytes(), bcrypt).unwrap_or(false),
            PasswordHash::Unusable => false,
        }
    }
}

/// `pbkdf2_sha256$iterations$salt$hash` as Django verifies it: recompute with the stored salt
/// and iterations, encode the same way, and compare the two encoded strings in constant time
/// (`constant_time_compare(encoded, encoded_2)`), so a non-canonical stored form never matches.
fn verify_pbkdf2(digest: Pbkdf2Digest, iterations: u32, salt: &str, encoded: &str, password: &[u8]) -> bool {
    if iterations == 0 {
        return false;
    }
    let scheme = match digest {
        Pbkdf2Digest::Sha256 => "pbkdf2_sha256",
        Pbkdf2Digest::Sha1 => "pbkdf2_sha1",
    };
    let derived = match digest {
        Pbkdf2Digest::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt.as_bytes(), iterations).to_vec()
        }
        Pbkdf2Digest::Sha1 => {
            pbkdf2::pbkdf2_hmac_array::<sha1::Sha1, 20>(password, salt.as_bytes(), iterations).to_vec()
        }
    };
    let hash = base64::engine::general_purpose::STANDARD.encode(derived);
    let recomputed = format!("{scheme}${iterations}${salt}${hash}");
    recomputed.as_bytes().ct_eq(encoded.as_bytes()).into()
}

/// An argon2 PHC hash with the variant, version and parameters it states, in `scratch` or, when
/// `None`, in memory of its own. The digests are compared in constant time.
fn verify_argon2(phc: &Phc<'_>, password: &[u8], version_when_absent: Version, scratch: Option<&mut Scratch>) -> bool {
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else { return false };
    let Ok(params) = Params::try_from(phc) else { return false };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm) else { return false };
    let version = match phc.version.map(Version::try_from) {
        None => version_when_absent,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    let count = argon2.params().block_count();
    let mut own = Vec::new();
    let blocks = match scratch {
        Some(scratch) => scratch.blocks(count),
        None => {
            own.resize(count, Block::default());
            &mut own[..]
        }
    };
    if argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks).is_err() {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)] as char, DIGITS[usize::from(b & 0xf)] as char]).collect()
}

/// The name before the first `$` when it looks like an algorithm name, never other text.
fn scheme_of(stored: &str) -> Option<String> {
    let (scheme, _) = stored.split_once('$')?;
    let plausible = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plausible.then(|| scheme.to_string())
}

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

    /// Whether `password` matches `stored` (any form [`PasswordHash`] knows). Unknown or
    /// unusable hashes never match.
    pub fn verify(&self, password: &str, stored: &str, scratch: &mut Scratch) -> bool {
        PasswordHash::parse(stored).is_ok_and(|hash| hash.verify(password, scratch))
    }

    /// Whether `stored` should be replaced by a hash of the current parameters after a
    /// successful sign-in: every Django form, and argon2id with other parameters.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match PasswordHash::parse(stored) {
            Ok(PasswordHash::Argon2id(phc)) => match Params::try_from(&phc) {
                Ok(p) => {
                    let want = self.argon2.params();
                    p.m_cost() != want.m_cost() || p.t_cost() != want.t_cost() || p.p_cost() != want.p_cost()
                }
                Err(_) => true,
            },
            Ok(PasswordHash::Unusable) => false,
            Ok(_) | Err(_) => true,
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

    // Known answers written by Django 5.2.19's own hashers (make_password, or the hasher's
    // encode() with lower work factors so that debug test builds stay fast; the format is the
    // same), with argon2-cffi 25.1.0 and bcrypt 5.0.0. Each was checked with Django's
    // check_password.
    const PW: &str = "correct horse battery staple";
    const UNICODE_PW: &str = "pässwörd ✓ 🔑";

    /// Django's hashes of [`PW`], one per scheme and variant. A hash's scheme is its prefix, the
    /// algorithm name Django's `identify_hasher` reads.
    const PW_HASHES: &[&str] = &[
        "pbkdf2_sha256$1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=",
        "pbkdf2_sha1$1000$NqeWAudHgd4EdcLABDp78e$u+L7YI5aOYqiT/taZVjdHECqi1U=",
        "argon2$argon2id$v=19$m=64,t=1,p=2$UXdhdEFpTTFmeFo4UGVXUkgwYXJ4Zw$dFYL/4azFCauUHVNyUiyBGg7IjvEGmR/oXTehpAQX+k",
        // argon2i, Django's variant before 3.2.
        "argon2$argon2i$v=19$m=64,t=1,p=2$MUt3ZWVHRnlFcHp3dWFTRExZeUZmeQ$kP7QmXbgJLVO6MGH91+LfXuIYZV5ZEuiYXWYnX6P7oo",
        // No version field (Django 1.10's argon2-cffi): libargon2 reads it as version 0x10.
        "argon2$argon2i$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$hpkopB0MlYvMFPIxIm3fENT3Zj8hEHgKO54ZrchGGbk",
        "bcrypt_sha256$$2b$04$uVomhOcdqMKGReverULvletIQcoYA3itokJNeZJO4.rE1NQYE0iBy",
        "bcrypt$$2b$04$e0mlqQYTtLlbCIDCXzIME.IFAUZjam3FM5bIGmcz8tt7OoPavkm/W",
    ];

    /// Django's hashes of [`UNICODE_PW`].
    const UNICODE_PW_HASHES: &[&str] = &[
        "pbkdf2_sha256$1000$nLBtjf1n7YfSFMzIPhwYUc$I4MvRyO5ASHnutDLM3ITx9YTHd3LQi67JVqeUXPlhkM=",
        "pbkdf2_sha1$1000$TyjsHEX3m7qNVVuYahHCVv$SPLcgHmg/MJfd1EpDc8/eq+CadY=",
        "argon2$argon2id$v=19$m=64,t=1,p=2$eWZzVTNRenlLRXlmYTlLMzZ1aXVmRQ$jLmhYrhu6TVnAEMH8VTLlCdUbKOS6AGwZ/zRDinXqAc",
        "bcrypt_sha256$$2b$04$BQV88qVAlvKgbpdIj80r3eH41X9VANCx6V4z2hJRQylly3uxSt5/e",
    ];

    #[test]
    fn django_hashes_verify_as_django_verifies_them() {
        let h = Hasher::with_params(64, 1, 1);
        let s = &mut Scratch::default();
        for (password, hashes) in [(PW, PW_HASHES), (UNICODE_PW, UNICODE_PW_HASHES)] {
            for stored in hashes {
                let parsed = PasswordHash::parse(stored).unwrap();
                let scheme = stored.split('$').next().unwrap();
                assert_eq!(parsed.scheme(), scheme, "{stored}");
                assert!(parsed.verify(password, s), "right password refused for {stored}");
                assert!(!parsed.verify(&format!("{password}x"), s), "wrong password accepted for {stored}");
                assert!(!parsed.verify("", s), "empty password accepted for {stored}");
                assert!(h.verify(password, stored, s));
                assert!(h.needs_rehash(stored), "{stored} must be upgraded to argon2id");
            }
        }
    }

    #[test]
    fn django_default_work_factors_verify() {
        // Django 5.2's defaults: bcrypt cost 12, argon2 m=100 MiB, t=2, p=8 (fast enough with
        // the optimised crypto crates of Cargo.toml's dev profile). PBKDF2's 1,000,000
        // iterations would take seconds here, as its generic code is compiled into this crate
        // unoptimised: .ci/steps/30-django.sh signs in with such hashes on the release binary.
        let s = &mut Scratch::default();
        let vectors = [
            "bcrypt_sha256$$2b$12$ISa07Bk4O.r0Vkt8tX.vyOJVbMVfhWYq/nDkxymJUpXOFHePWesOK",
            "argon2$argon2id$v=19$m=102400,t=2,p=8$MlkzUHRVWlg3WndtaTlOY3FzUnd5NA$hozN/x3KA+9wlArKhHhcMKDDmLsI978tvuHjbMjGFGY",
        ];
        for stored in vectors {
            assert!(PasswordHash::parse(stored).unwrap().verify(PW, s), "{stored}");
        }
        assert!(s.0.is_empty(), "Django's 100 MiB argon2 memory is not kept in the scratch");
    }

    #[test]
    fn tampered_django_hashes_never_match() {
        let h = Hasher::with_params(64, 1, 1);
        let s = &mut Scratch::default();
        let tampered = [
            // other iterations than the digest was made with
            "pbkdf2_sha256$1001$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=",
            // non-canonical iteration count: Django re-encodes "%d" and compares whole strings
            "pbkdf2_sha256$01000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=",
            "pbkdf2_sha256$+1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=",
            // base64 without its padding
            "pbkdf2_sha256$1000$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo",
            // sha1 digest labelled sha256
            "pbkdf2_sha256$1000$NqeWAudHgd4EdcLABDp78e$u+L7YI5aOYqiT/taZVjdHECqi1U=",
            "pbkdf2_sha256$0$UkO2b7mkdXm0233Eoy7SWM$D0/6F5UNZrgCc2Tuu4Uf3ssWjXBZu+l6Hu8fXWZSFyo=",
            // bcrypt of the raw password labelled bcrypt_sha256, and the reverse
            "bcrypt_sha256$$2b$04$e0mlqQYTtLlbCIDCXzIME.IFAUZjam3FM5bIGmcz8tt7OoPavkm/W",
            "bcrypt$$2b$04$uVomhOcdqMKGReverULvletIQcoYA3itokJNeZJO4.rE1NQYE0iBy",
            "bcrypt_sha256$$2b$04$uVomhOcdqMKGReverULvletIQcoYA3itokJNeZJO4.rE1NQYE0iBz",
            // argon2id digest labelled argon2i
            "argon2$argon2i$v=19$m=64,t=1,p=2$UXdhdEFpTTFmeFo4UGVXUkgwYXJ4Zw$dFYL/4azFCauUHVNyUiyBGg7IjvEGmR/oXTehpAQX+k",
            // Django's argon2 form without its prefix is not jwtd's own argon2id either
            "argon2id$v=19$m=64,t=1,p=2$UXdhdEFpTTFmeFo4UGVXUkgwYXJ4Zw$dFYL/4azFCauUHVNyUiyBGg7IjvEGmR/oXTehpAQX+k",
        ];
        for stored in tampered {
            assert!(!h.verify(PW, stored, s), "{stored}");
        }
    }

    #[test]
    fn unusable_and_unknown_django_forms() {
        let h = Hasher::with_params(64, 1, 1);
        let s = &mut Scratch::default();
        let unusable = "!Tq3dOdhM92yuIi430IKNbI97y5oq7HWGh29YN5O5";
        assert!(matches!(PasswordHash::parse(unusable), Ok(PasswordHash::Unusable)));
        for (stored, refused) in [
            ("pbkdf2_sha256$4000000000$salt$aGFzaA==", true),
            ("pbkdf2_sha256$5000001$salt$aGFzaA==", true),
            ("pbkdf2_sha256$1200000$salt$aGFzaA==", false),
            ("bcrypt$$2b$31$abcdefghijklmnopqrstuu5cR8wAZbKu1SbPUdbrvbL1IFtbKYn5y", true),
            ("bcrypt_sha256$$2b$17$abcdefghijklmnopqrstuu5cR8wAZbKu1SbPUdbrvbL1IFtbKYn5y", true),
            ("bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuu5cR8wAZbKu1SbPUdbrvbL1IFtbKYn5y", false),
            ("argon2$argon2id$v=19$m=102400,t=11,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", true),
            ("argon2$argon2id$v=19$m=102400,t=2,p=65$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", true),
            ("argon2$argon2id$v=19$m=300000,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", true),
            ("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false),
        ] {
            let hash = PasswordHash::parse(stored).unwrap();
            assert_eq!(hash.too_costly().is_some(), refused, "{stored}");
            if refused {
                // Refused without being computed: this returns at once whatever the cost says.
                assert!(!hash.verify(PW, &mut Scratch::default()), "{stored}");
            }
        }
        assert!(!h.verify(PW, unusable, s));
        assert!(!h.needs_rehash(unusable));

        let scrypt = "scrypt$16384$nIkLxiNRBByRED1KYFuRL7$8$5$kkZSOSFkWFsd2eecU0y0d0UkGfOgiqlgY+CDxi5ppUjn6XLJm+Cy6xC+7WuiN6zDvyeEVsUuzlb+0cih9Tpq0g==";
        assert_eq!(PasswordHash::parse(scrypt).err(), Some(UnknownHash { scheme: Some("scrypt".into()) }));
        assert!(!h.verify(PW, scrypt, s));
        // An unsalted md5 hex digest has no `$`; nothing of it is echoed back.
        assert_eq!(PasswordHash::parse("5f4dcc3b5aa765d61d8327deb882cf99").err(), Some(UnknownHash { scheme: None }));
        for garbage in ["", "$", "pbkdf2_sha256$", "pbkdf2_sha256$x$salt$hash", "argon2$", "bcrypt_sha256$$2b$"] {
            assert!(!h.verify(PW, garbage, s), "{garbage:?}");
        }
    }
}
